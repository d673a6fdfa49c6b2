//! The routes of `/api/v1`, grouped by what they are about, and the layers around them:
//! authentication, body limit, timeout, metrics, security headers, and the conversion of
//! every non-JSON failure (axum's and tower's plain-text rejections, 404, 405) into the
//! API's error shape.

pub(crate) mod instances;
pub(crate) mod market;
pub(crate) mod money;
pub(crate) mod provider;
pub(crate) mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use qubix_protocol::api::{ApiError, ErrorCode};
use tower_http::limit::RequestBodyLimitLayer;

use crate::auth::require_auth;
use crate::config::AppState;
use crate::error::{ApiErrorResponse, code_for_status, message_for_status};
use crate::node_api::NodeApi;
use crate::{console, metrics, openapi};

/// The whole application: public routes, authenticated routes, the console, and the layers.
pub(crate) fn app<A: NodeApi>(state: AppState<A>) -> Router {
    let limit = state.config.body_limit;
    let timeout = state.config.request_timeout;
    let protected = protected::<A>().route_layer(middleware::from_fn_with_state(
        Arc::clone(&state.auth),
        require_auth,
    ));
    Router::new()
        .route("/api/v1/health", get(market::health::<A>))
        .route("/api/v1/login", post(session::login::<A>))
        .merge(protected)
        .merge(console::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(timeout, time_limit))
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(middleware::map_response(json_errors))
        .layer(middleware::map_response(security_headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track::<A>,
        ))
        .with_state(state)
}

/// Every route that needs a bearer token or a console session.
fn protected<A: NodeApi>() -> Router<AppState<A>> {
    Router::new()
        .route("/api/v1/logout", post(session::logout::<A>))
        .route("/api/v1/session", get(session::session::<A>))
        .route("/api/v1/node", get(market::node::<A>))
        .route("/api/v1/peers", get(market::peers::<A>))
        .route("/api/v1/offers", get(market::offers::<A>))
        .route("/api/v1/offers/explain", post(market::explain::<A>))
        .route("/api/v1/gpus", get(market::gpus::<A>))
        .route("/api/v1/events", get(market::events::<A>))
        .route(
            "/api/v1/instances",
            get(instances::list::<A>).post(instances::launch::<A>),
        )
        .route(
            "/api/v1/instances/{id}",
            get(instances::get_one::<A>).delete(instances::terminate::<A>),
        )
        .route("/api/v1/instances/{id}/{action}", post(instances::act::<A>))
        .route("/api/v1/instances/{id}/logs", get(instances::logs::<A>))
        .route(
            "/api/v1/instances/{id}/metrics",
            get(instances::metrics::<A>),
        )
        .route("/api/v1/billing", get(money::billing::<A>))
        .route("/api/v1/ledger/entries", get(money::ledger_entries::<A>))
        .route("/api/v1/ledger/receipts/{id}", get(money::receipts::<A>))
        .route("/api/v1/wallet", get(money::wallet::<A>))
        .route("/api/v1/wallet/withdraw", post(money::withdraw::<A>))
        .route(
            "/api/v1/provider/pricing",
            get(provider::pricing::<A>).put(provider::set_pricing::<A>),
        )
        .route("/api/v1/provider/jobs", get(provider::jobs::<A>))
        .route("/api/v1/provider/earnings", get(provider::earnings::<A>))
        .route("/api/v1/provider/status", get(provider::status::<A>))
        .route("/api/v1/openapi.json", get(openapi::serve_document))
        .route("/metrics", get(metrics::prometheus::<A>))
}

async fn not_found() -> ApiErrorResponse {
    ApiErrorResponse(ApiError::new(
        ErrorCode::NotFound,
        message_for_status(StatusCode::NOT_FOUND),
    ))
}

async fn method_not_allowed() -> ApiErrorResponse {
    ApiErrorResponse(ApiError::new(
        ErrorCode::MethodNotAllowed,
        message_for_status(StatusCode::METHOD_NOT_ALLOWED),
    ))
}

/// Fails a request that takes longer than `limit` with `timeout`. WebSocket streams are not
/// affected: their request ends at the upgrade.
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "request timed out");
            let message = format!(
                "the node did not answer within {} s; retry later",
                limit.as_secs()
            );
            ApiErrorResponse(ApiError::new(ErrorCode::Timeout, message)).into_response()
        }
    }
}

/// Replaces any failure that is not already JSON (axum's plain-text rejections, tower's
/// empty 413 and 408, the router's 405) with the API's error shape, keeping its status and
/// headers such as `Allow`.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let detail = axum::body::to_bytes(body, 1024)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok());
    let mut message = message_for_status(status).to_owned();
    if let Some(detail) = detail.filter(|d| !d.trim().is_empty()) {
        message = format!("{message} ({})", detail.trim());
    }
    let error = crate::error::redact(ApiError::new(code_for_status(status), message));
    let body = serde_json::to_vec(&error).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Headers every response carries: no sniffing, no framing, no referrer, and no caching of
/// API data.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
