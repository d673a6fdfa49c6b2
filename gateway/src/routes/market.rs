//! The node and its market: health, node, peers, offers (the query string is passed to the
//! node untouched), explain, GPUs, and the events stream.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use qubix_protocol::api::{
    ApiError, ErrorCode, Event, ExplainRequest, Explanation, GpusView, Health, NodeInfo,
    OffersPage, PeerInfo,
};

use crate::auth::Caller;
use crate::config::AppState;
use crate::error::{ApiErrorResponse, api_error};
use crate::extract::{ApiJson, MaybeUpgrade, Params};
use crate::node_api::{ApiResult, NodeApi};
use crate::validate;
use crate::ws::{self, Feed};

/// The largest page of offers.
pub(crate) const MAX_OFFERS_LIMIT: u32 = 1000;

/// A node answer as a JSON response.
pub(crate) fn reply<T>(result: ApiResult<T>) -> Result<Json<T>, ApiErrorResponse> {
    result.map(Json).map_err(ApiErrorResponse)
}

/// `GET /api/v1/health`
#[utoipa::path(get, path = "/api/v1/health", tag = "node", security(()),
    responses((status = 200, description = "The node runs", body = Health),
        (status = 503, description = "The node service is down", body = ApiError)))]
pub(crate) async fn health<A: NodeApi>(
    State(s): State<AppState<A>>,
) -> Result<Json<Health>, ApiErrorResponse> {
    reply(s.api.health().await)
}

/// `GET /api/v1/node`
#[utoipa::path(get, path = "/api/v1/node", tag = "node",
    responses((status = 200, description = "This node", body = NodeInfo)))]
pub(crate) async fn node<A: NodeApi>(
    State(s): State<AppState<A>>,
) -> Result<Json<NodeInfo>, ApiErrorResponse> {
    reply(s.api.node_info().await)
}

/// `GET /api/v1/peers`
#[utoipa::path(get, path = "/api/v1/peers", tag = "node",
    responses((status = 200, description = "Connected peers", body = Vec<PeerInfo>)))]
pub(crate) async fn peers<A: NodeApi>(
    State(s): State<AppState<A>>,
) -> Result<Json<Vec<PeerInfo>>, ApiErrorResponse> {
    reply(s.api.peers().await)
}

/// `GET /api/v1/offers?q=&sort=&limit=&offset=`
#[utoipa::path(get, path = "/api/v1/offers", tag = "market",
    params(
        ("q" = Option<String>, Query, description = "Offer query, e.g. `gpu_name=RTX_4090 num_gpus>=2 price<=1500`; empty matches all"),
        ("sort" = Option<String>, Query, description = "Sort key: `price`, `-reliability`, …"),
        ("limit" = Option<u32>, Query, description = "Page size, at most 1000"),
        ("offset" = Option<u32>, Query, description = "Offers to skip"),
    ),
    responses((status = 200, description = "Matching offers, paged", body = OffersPage),
        (status = 400, description = "`invalid_query` (the message points at the token) or `invalid_value`", body = ApiError)))]
pub(crate) async fn offers<A: NodeApi>(
    State(s): State<AppState<A>>,
    params: Params,
) -> Result<Json<OffersPage>, ApiErrorResponse> {
    params.only(&["q", "sort", "limit", "offset"])?;
    let q = params.text("q").unwrap_or_default();
    validate::query(&q, "q")?;
    let sort = params.text("sort").filter(|s| !s.is_empty());
    if sort.as_ref().is_some_and(|s| s.len() > 64) {
        return Err(ApiErrorResponse(
            ApiError::new(ErrorCode::InvalidValue, "sort: at most 64 bytes").with_field("sort"),
        ));
    }
    let limit = params.number("limit", MAX_OFFERS_LIMIT)?;
    let offset = params.number("offset", u32::MAX)?;
    reply(s.api.offers(q, sort, limit, offset).await)
}

/// `POST /api/v1/offers/explain`
#[utoipa::path(post, path = "/api/v1/offers/explain", tag = "market", request_body = ExplainRequest,
    responses((status = 200, description = "What each constraint excluded, and the near misses", body = Explanation),
        (status = 400, description = "`invalid_query`, `invalid_json` or `invalid_value`", body = ApiError),
        (status = 503, description = "`unavailable`: as many explanations as the node allows at once are running; retry", body = ApiError)))]
pub(crate) async fn explain<A: NodeApi>(
    State(s): State<AppState<A>>,
    ApiJson(body): ApiJson<ExplainRequest>,
) -> Result<Json<Explanation>, ApiErrorResponse> {
    validate::query(&body.q, "q")?;
    // Explaining reads every offer of the book: a few at a time, the rest refused at once.
    let Ok(_permit) = s.expensive.try_acquire() else {
        return Err(api_error(
            ErrorCode::Unavailable,
            "too many explanations are running at once; retry in a moment",
        ));
    };
    reply(s.api.explain(body.q).await)
}

/// `GET /api/v1/gpus`
#[utoipa::path(get, path = "/api/v1/gpus", tag = "node",
    responses((status = 200, description = "This node's GPUs, or why it has none", body = GpusView)))]
pub(crate) async fn gpus<A: NodeApi>(
    State(s): State<AppState<A>>,
) -> Result<Json<GpusView>, ApiErrorResponse> {
    reply(s.api.gpus().await)
}

/// `GET /api/v1/events` (WebSocket only)
#[utoipa::path(get, path = "/api/v1/events", tag = "streams",
    description = "WebSocket (send `Upgrade: websocket`). Each text message is one `Event` as JSON; \
        `lagged` says events were dropped because the client read too slowly: refetch state.",
    responses((status = 101, description = "Switching to a WebSocket of `Event` messages", body = Event),
        (status = 400, description = "Not a WebSocket request", body = ApiError),
        (status = 503, description = "Too many streams open", body = ApiError)))]
pub(crate) async fn events<A: NodeApi>(
    State(s): State<AppState<A>>,
    MaybeUpgrade(upgrade): MaybeUpgrade,
    Extension(caller): Extension<Caller>,
) -> Response {
    let Some(upgrade) = upgrade else {
        return api_error(
            ErrorCode::InvalidValue,
            "GET /api/v1/events is a WebSocket: connect with `Upgrade: websocket`",
        )
        .into_response();
    };
    let feed = Feed {
        history: Vec::new(),
        live: s.api.events(),
        wrap: |e: Event| e,
        lagged: |missed| Event::Lagged { missed },
    };
    ws::open(&s, &caller, upgrade, "events", feed)
}
