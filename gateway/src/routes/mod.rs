//! The routes of `/api/v1`, grouped by what they are about, and the layers around them:
//! authentication, body limit, timeout, metrics, security headers, and the conversion of
//! every non-JSON failure (axum's and tower's plain-text rejections, 404, 405) into the
//! API's error shape.

pub(crate) mod instances;
pub(crate) mod market;
pub(crate) mod money;
pub(crate) mod provider;
pub(crate) mod session;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::http::Method;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use qubix_protocol::api::{ApiError, ErrorCode};
use tower_http::limit::RequestBodyLimitLayer;

use crate::auth::require_auth;
use crate::config::AppState;
use crate::error::{ApiErrorResponse, code_for_status, message_for_status};
use crate::node_api::NodeApi;
use crate::{console, metrics, openapi};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone who reaches the gateway (health and login only).
    Public,
    /// The bearer token, or a console session (plus CSRF on state changes).
    Owner,
}

/// One route of the API as the router serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path template (`{id}` for a path parameter).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// The API's routes, each once, with its handler: the router is built from this table, and
/// [`crate::route_table`] lists it for tests, so what is served and what is checked agree.
/// (The console's static files are public and added beside it.)
fn table<A: NodeApi>() -> Vec<(Route, MethodRouter<AppState<A>>)> {
    use Access::{Owner, Public};
    vec![
        route(Method::GET, "/api/v1/health", Public, market::health::<A>),
        route(Method::POST, "/api/v1/login", Public, session::login::<A>),
        route(Method::POST, "/api/v1/logout", Owner, session::logout::<A>),
        route(Method::GET, "/api/v1/session", Owner, session::session::<A>),
        route(Method::GET, "/api/v1/node", Owner, market::node::<A>),
        route(Method::GET, "/api/v1/peers", Owner, market::peers::<A>),
        route(Method::GET, "/api/v1/offers", Owner, market::offers::<A>),
        route(
            Method::POST,
            "/api/v1/offers/explain",
            Owner,
            market::explain::<A>,
        ),
        route(Method::GET, "/api/v1/gpus", Owner, market::gpus::<A>),
        route(Method::GET, "/api/v1/events", Owner, market::events::<A>),
        route(
            Method::GET,
            "/api/v1/instances",
            Owner,
            instances::list::<A>,
        ),
        route(
            Method::POST,
            "/api/v1/instances",
            Owner,
            instances::launch::<A>,
        ),
        route(
            Method::GET,
            "/api/v1/instances/{id}",
            Owner,
            instances::get_one::<A>,
        ),
        route(
            Method::DELETE,
            "/api/v1/instances/{id}",
            Owner,
            instances::terminate::<A>,
        ),
        route(
            Method::POST,
            "/api/v1/instances/{id}/{action}",
            Owner,
            instances::act::<A>,
        ),
        route(
            Method::GET,
            "/api/v1/instances/{id}/logs",
            Owner,
            instances::logs::<A>,
        ),
        route(
            Method::GET,
            "/api/v1/instances/{id}/metrics",
            Owner,
            instances::metrics::<A>,
        ),
        route(Method::GET, "/api/v1/billing", Owner, money::billing::<A>),
        route(
            Method::GET,
            "/api/v1/ledger/entries",
            Owner,
            money::ledger_entries::<A>,
        ),
        route(
            Method::GET,
            "/api/v1/ledger/receipts/{id}",
            Owner,
            money::receipts::<A>,
        ),
        route(Method::GET, "/api/v1/wallet", Owner, money::wallet::<A>),
        route(
            Method::POST,
            "/api/v1/wallet/withdraw",
            Owner,
            money::withdraw::<A>,
        ),
        route(
            Method::GET,
            "/api/v1/provider/pricing",
            Owner,
            provider::pricing::<A>,
        ),
        route(
            Method::PUT,
            "/api/v1/provider/pricing",
            Owner,
            provider::set_pricing::<A>,
        ),
        route(
            Method::GET,
            "/api/v1/provider/jobs",
            Owner,
            provider::jobs::<A>,
        ),
        route(
            Method::GET,
            "/api/v1/provider/earnings",
            Owner,
            provider::earnings::<A>,
        ),
        route(
            Method::GET,
            "/api/v1/provider/status",
            Owner,
            provider::status::<A>,
        ),
        route(
            Method::GET,
            "/api/v1/openapi.json",
            Owner,
            openapi::serve_document,
        ),
        route(Method::GET, "/metrics", Owner, metrics::prometheus::<A>),
    ]
}

fn route<A, H, T>(
    method: Method,
    path: &'static str,
    access: Access,
    handler: H,
) -> (Route, MethodRouter<AppState<A>>)
where
    A: NodeApi,
    H: Handler<T, AppState<A>>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone())
        .unwrap_or_else(|_| unreachable!("the table names standard methods only"));
    (
        Route {
            method,
            path,
            access,
        },
        on(filter, handler),
    )
}

/// The routes the router serves for a node API `A` (see [`table`]).
pub(crate) fn routes_of<A: NodeApi>() -> Vec<Route> {
    table::<A>().into_iter().map(|(r, _)| r).collect()
}

/// The whole application: the table's routes (the owner's behind authentication), the
/// console, and the layers.
pub(crate) fn app<A: NodeApi>(state: AppState<A>) -> Router {
    let limit = state.config.body_limit;
    let timeout = state.config.request_timeout;
    let mut public: BTreeMap<&str, MethodRouter<AppState<A>>> = BTreeMap::new();
    let mut owner: BTreeMap<&str, MethodRouter<AppState<A>>> = BTreeMap::new();
    for (r, handler) in table::<A>() {
        let side = match r.access {
            Access::Public => &mut public,
            Access::Owner => &mut owner,
        };
        let merged = match side.remove(r.path) {
            Some(existing) => existing.merge(handler),
            None => handler,
        };
        side.insert(r.path, merged);
    }
    let protected = owner
        .into_iter()
        .fold(Router::new(), |router, (path, handler)| {
            router.route(path, handler)
        })
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state.auth),
            require_auth,
        ));
    public
        .into_iter()
        .fold(Router::new(), |router, (path, handler)| {
            router.route(path, handler)
        })
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
