//! Qubix gateway: the node's REST and WebSocket API under `/api/v1`, its OpenAPI document,
//! Prometheus figures at `/metrics`, and the web console, in one axum [`Router`].
//!
//! The gateway never depends on the node. It defines [`NodeApi`], the trait it needs (one
//! method per route plus live feeds), and the node implements it. Data flows:
//!
//! ```text
//! HTTP request ─ metrics ─ security headers ─ JSON errors ─ body limit ─ timeout
//!     ─ auth (bearer token, or session cookie + CSRF) ─ handler (routes::*)
//!     ─ shape checks (validate) ─ NodeApi method ─ JSON response | ApiError
//! WebSocket ─ same, up to the upgrade ─ ws::open: history, then a bounded broadcast feed
//! ```
//!
//! - [`node_api`]: the [`NodeApi`] trait and the feeds it returns.
//! - [`token`]: the API token file, constant-time checks, the console login URL.
//! - `auth`, `session`: who may call; console sessions with CSRF protection.
//! - `extract`, `validate`: request parsing and checks whose failures are API errors.
//! - `routes`: the handlers, and the layers that turn every failure into `ApiError` JSON.
//! - `ws`: live streams with per-client lag reporting.
//! - [`openapi`]: the generated OpenAPI document.
//! - `console`: the embedded web console (HTML, CSS, ES modules).
//! - [`browser`] (feature `browser`): headless Chromium helpers for console tests.
//!
//! Only `GET /api/v1/health`, `POST /api/v1/login` and the console's static files are
//! public. Bind to loopback; [`serve`] warns otherwise.

mod auth;
mod config;
mod console;
mod error;
mod extract;
pub mod idempotency;
mod metrics;
pub mod node_api;
pub mod openapi;
pub mod routes;
mod server;
mod session;
pub mod token;
mod validate;
mod ws;

#[cfg(feature = "browser")]
pub mod browser;

use std::sync::Arc;

use axum::Router;
use tokio::sync::Semaphore;

pub use config::{ConfigError, GatewayConfig};
pub use error::{ApiErrorResponse, GatewayError};
pub use node_api::{ApiResult, LogFeed, MetricsFeed, NodeApi};
pub use server::{DEFAULT_ADDR, Gateway, serve, serve_with};
pub use session::{CSRF_HEADER, SESSION_COOKIE};
pub use token::{ApiToken, load_or_create_token, login_url, read_token_file};
pub use validate::{MAX_PRICED_MODELS, MAX_QUERY_LEN};
pub use ws::SESSION_ENDED;

use crate::auth::Auth;
use crate::config::{AppState, Shutdown};
use crate::idempotency::IdempotencyKeys;
use crate::metrics::GatewayMetrics;
use crate::session::SessionStore;

/// The API's routes as the router serves them for node API `A`: method, path template and
/// who may call each (the console's static files aside).
pub fn route_table<A: NodeApi>() -> Vec<routes::Route> {
    routes::routes_of::<A>()
}

/// The whole application as a [`Router`], for tests and for embedding: the API, the
/// console, and every layer. Live streams end when their client leaves; use [`serve`] to
/// also end them at shutdown.
pub fn router<A: NodeApi>(api: Arc<A>, token: ApiToken, config: GatewayConfig) -> Router {
    build(api, token, config, Shutdown::never())
}

fn build<A: NodeApi>(
    api: Arc<A>,
    token: ApiToken,
    config: GatewayConfig,
    shutdown: Shutdown,
) -> Router {
    let sessions = SessionStore::new(config.max_sessions, config.session_ttl);
    let state = AppState {
        api,
        auth: Arc::new(Auth { token, sessions }),
        metrics: Arc::new(GatewayMetrics::default()),
        streams: Arc::new(Semaphore::new(config.max_streams)),
        expensive: Arc::new(Semaphore::new(config.max_expensive)),
        idempotency: Arc::new(IdempotencyKeys::new(
            config.max_idempotency_keys,
            idempotency::KEY_TTL,
        )),
        config: Arc::new(config),
        shutdown,
    };
    routes::app(state)
}
