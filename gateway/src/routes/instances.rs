//! Instances: launch, list, inspect, stop/start/restart, terminate, and their logs and
//! metrics (a WebSocket when the client upgrades, else the recent tail as JSON).

use axum::extract::State;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use qubix_protocol::api::{
    ApiError, Instance, InstanceAction, LaunchRequest, LogEvent, LogLine, MetricsEvent,
    MetricsSample,
};

use super::market::reply;
use crate::auth::Caller;
use crate::config::AppState;
use crate::error::ApiErrorResponse;
use crate::extract::{ActionSegment, ApiJson, InstanceId, MaybeUpgrade, Params};
use crate::idempotency;
use crate::node_api::NodeApi;
use crate::validate;
use crate::ws::{self, Feed};

/// The most log lines or samples one request may ask for.
pub(crate) const MAX_TAIL: u32 = 10_000;

/// What the OpenAPI document says of `Idempotency-Key`.
pub(crate) const IDEMPOTENCY_DOC: &str = "Optional, 1 to 255 visible ASCII characters (a UUID). \
    A retry with the same key and body returns the first answer (header `Idempotent-Replayed: true`) \
    and never acts twice, even when the first call outlived its timeout; keys belong to the API's owner \
    (token or console session alike), are kept 24 h (at most 4096: when full, the oldest answered go first), \
    and a refusal that changed nothing keeps none, so its retry runs anew. \
    The same key with another body is refused with 422 `idempotency_key_reused`.";

/// A failed launch rented nothing: the node releases the escrow of a negotiation that did
/// not end in an agreement, and pays only after one. A retry may run anew.
const LAUNCH: idempotency::Route = idempotency::Route {
    name: "launch",
    no_effect: |_| true,
};

/// `POST /api/v1/instances`
#[utoipa::path(post, path = "/api/v1/instances", tag = "instances", request_body = LaunchRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY_DOC)),
    responses((status = 201, description = "Agreed with a provider; payment, pull and start follow (see `progress` and the events stream)", body = Instance,
            headers(("idempotent-replayed" = String, description = "`true` when this is the kept answer of an earlier call with the same Idempotency-Key"))),
        (status = 400, description = "`invalid_json`, `invalid_value` or `invalid_query`", body = ApiError),
        (status = 402, description = "`insufficient_funds`", body = ApiError),
        (status = 404, description = "`not_found`: no such offer", body = ApiError),
        (status = 422, description = "`no_match`, `provider_refused`, or `idempotency_key_reused`: the key was used with another body", body = ApiError)))]
pub(crate) async fn launch<A: NodeApi>(
    State(s): State<AppState<A>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<LaunchRequest>,
) -> Result<Response, ApiErrorResponse> {
    validate::launch(&request)?;
    let key = idempotency::key_of(&headers)?;
    let api = Arc::clone(&s.api);
    let work = {
        let request = request.clone();
        async move {
            let instance = api.launch(request).await?;
            tracing::info!(instance = %instance.id, provider = %instance.provider, "instance launched");
            Ok(instance)
        }
    };
    Ok(idempotency::once(
        &s.idempotency,
        LAUNCH,
        &caller,
        key,
        &request,
        StatusCode::CREATED,
        work,
    )
    .await)
}

/// `GET /api/v1/instances`
#[utoipa::path(get, path = "/api/v1/instances", tag = "instances",
    responses((status = 200, description = "Every instance this node rented, newest first", body = Vec<Instance>)))]
pub(crate) async fn list<A: NodeApi>(
    State(s): State<AppState<A>>,
) -> Result<Json<Vec<Instance>>, ApiErrorResponse> {
    reply(s.api.instances().await)
}

/// `GET /api/v1/instances/{id}`
#[utoipa::path(get, path = "/api/v1/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance (agreement) id")),
    responses((status = 200, description = "The instance", body = Instance),
        (status = 404, description = "`not_found`", body = ApiError)))]
pub(crate) async fn get_one<A: NodeApi>(
    State(s): State<AppState<A>>,
    InstanceId(id): InstanceId,
) -> Result<Json<Instance>, ApiErrorResponse> {
    reply(s.api.instance(id).await)
}

/// `POST /api/v1/instances/{id}/{action}`
#[utoipa::path(post, path = "/api/v1/instances/{id}/{action}", tag = "instances",
    params(("id" = String, Path, description = "Instance (agreement) id"),
        ("action" = InstanceAction, Path, description = "`stop` (keeps data), `start` or `restart`")),
    responses((status = 200, description = "The instance after the provider acted", body = Instance),
        (status = 404, description = "`not_found`: no such instance or action", body = ApiError),
        (status = 409, description = "`wrong_state`", body = ApiError),
        (status = 422, description = "`provider_refused`", body = ApiError)))]
pub(crate) async fn act<A: NodeApi>(
    State(s): State<AppState<A>>,
    InstanceId(id): InstanceId,
    ActionSegment(action): ActionSegment,
) -> Result<Json<Instance>, ApiErrorResponse> {
    let instance = reply(s.api.instance_action(id, action).await)?;
    tracing::info!(instance = %id, ?action, state = instance.state.as_str(), "instance action done");
    Ok(instance)
}

/// `DELETE /api/v1/instances/{id}`
#[utoipa::path(delete, path = "/api/v1/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance (agreement) id")),
    responses((status = 200, description = "Terminated: container removed, billing ended, unused escrow returned", body = Instance),
        (status = 404, description = "`not_found`", body = ApiError),
        (status = 409, description = "`wrong_state`: already ended", body = ApiError)))]
pub(crate) async fn terminate<A: NodeApi>(
    State(s): State<AppState<A>>,
    InstanceId(id): InstanceId,
) -> Result<Json<Instance>, ApiErrorResponse> {
    let instance = reply(s.api.terminate(id).await)?;
    tracing::info!(instance = %id, "instance terminated");
    Ok(instance)
}

/// `GET /api/v1/instances/{id}/logs?tail=`
#[utoipa::path(get, path = "/api/v1/instances/{id}/logs", tag = "streams",
    description = "With `Upgrade: websocket`: the last `tail` lines, then live lines, each a `LogEvent` \
        (`line`, or `lagged` when lines were dropped for a slow reader). Without: the last `tail` lines as JSON.",
    params(("id" = String, Path, description = "Instance (agreement) id"),
        ("tail" = Option<u32>, Query, description = "Lines of history, at most 10000 (default 200)")),
    responses((status = 200, description = "The last lines, oldest first", body = Vec<LogLine>),
        (status = 101, description = "Switching to a WebSocket of `LogEvent` messages", body = LogEvent),
        (status = 404, description = "`not_found`", body = ApiError)))]
pub(crate) async fn logs<A: NodeApi>(
    State(s): State<AppState<A>>,
    InstanceId(id): InstanceId,
    params: Params,
    MaybeUpgrade(upgrade): MaybeUpgrade,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiErrorResponse> {
    params.only(&["tail"])?;
    let tail = params
        .number("tail", MAX_TAIL)?
        .map_or(s.config.default_log_tail, |n| n as usize);
    let feed = s.api.logs(id, tail).await.map_err(ApiErrorResponse)?;
    let Some(upgrade) = upgrade else {
        return Ok(Json(feed.history).into_response());
    };
    let history = feed.history.into_iter().map(LogEvent::Line).collect();
    let feed = Feed {
        history,
        live: feed.live,
        wrap: LogEvent::Line,
        lagged: |missed| LogEvent::Lagged { missed },
    };
    Ok(ws::open(&s, &caller, upgrade, "logs", feed))
}

/// `GET /api/v1/instances/{id}/metrics?history=`
#[utoipa::path(get, path = "/api/v1/instances/{id}/metrics", tag = "streams",
    description = "With `Upgrade: websocket`: the last `history` samples, then live ones, each a `MetricsEvent` \
        (`sample`, or `lagged`). Without: the last `history` samples as JSON.",
    params(("id" = String, Path, description = "Instance (agreement) id"),
        ("history" = Option<u32>, Query, description = "Samples of history, at most 10000 (default 120)")),
    responses((status = 200, description = "The last samples, oldest first", body = Vec<MetricsSample>),
        (status = 101, description = "Switching to a WebSocket of `MetricsEvent` messages", body = MetricsEvent),
        (status = 404, description = "`not_found`", body = ApiError)))]
pub(crate) async fn metrics<A: NodeApi>(
    State(s): State<AppState<A>>,
    InstanceId(id): InstanceId,
    params: Params,
    MaybeUpgrade(upgrade): MaybeUpgrade,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiErrorResponse> {
    params.only(&["history"])?;
    let history = params
        .number("history", MAX_TAIL)?
        .map_or(s.config.default_metrics_history, |n| n as usize);
    let feed = s.api.metrics(id, history).await.map_err(ApiErrorResponse)?;
    let Some(upgrade) = upgrade else {
        return Ok(Json(feed.history).into_response());
    };
    let history = feed.history.into_iter().map(MetricsEvent::Sample).collect();
    let feed = Feed {
        history,
        live: feed.live,
        wrap: MetricsEvent::Sample,
        lagged: |missed| MetricsEvent::Lagged { missed },
    };
    Ok(ws::open(&s, &caller, upgrade, "metrics", feed))
}
