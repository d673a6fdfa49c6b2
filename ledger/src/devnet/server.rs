//! The devnet's HTTP face: the Live and Query API subset with the real services' paths,
//! JSON shapes (64-bit numbers as strings) and errors (`{"code","message","details"}`,
//! 400 / 404 / 500).

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::chain::{Chain, Refusal};
use crate::qubic::Identity;
use crate::rpc::ErrorBody;
use crate::rpc::identity_query::IdentityTransactionsRequest;

/// Shared state of the handlers.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) chain: Arc<Mutex<Chain>>,
}

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut Chain) -> T) -> T {
        let mut chain = self.chain.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut chain)
    }
}

/// The router.
pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .route("/live/v1/tick-info", get(tick_info))
        .route("/live/v1/balances/{id}", get(balance))
        .route("/live/v1/broadcast-transaction", post(broadcast))
        .route("/query/v1/getLastProcessedTick", get(last_processed))
        .route("/query/v1/getProcessedTickIntervals", get(intervals))
        .route("/query/v1/getTransactionByHash", post(transaction))
        .route(
            "/query/v1/getTransactionsForIdentity",
            post(transactions_for_identity),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "Not Found") })
        .with_state(shared)
}

/// A grpc-gateway error body.
fn error(status: StatusCode, message: &str) -> Response {
    let code = match status {
        StatusCode::BAD_REQUEST => 3,
        StatusCode::NOT_FOUND => 5,
        _ => 13,
    };
    let body = ErrorBody {
        code,
        message: message.to_owned(),
        details: Vec::new(),
    };
    (status, axum::Json(body)).into_response()
}

fn ok<T: serde::Serialize>(value: T) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

async fn tick_info(State(s): State<Shared>) -> Response {
    ok(json!({ "tickInfo": s.with(|c| c.tick_info()) }))
}

async fn balance(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    match id.parse::<Identity>() {
        Ok(identity) => {
            let balance = s.with(|c| c.balance(&identity.public_key(), identity.as_str()));
            ok(json!({ "balance": balance }))
        }
        Err(_) => error(StatusCode::BAD_REQUEST, "invalid id format"),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BroadcastRequest {
    encoded_transaction: String,
}

async fn broadcast(State(s): State<Shared>, body: Bytes) -> Response {
    let request: BroadcastRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    answer(s.with(|c| c.broadcast(&request.encoded_transaction)))
}

/// The value, or the refusal as a grpc-gateway error.
fn answer<T: serde::Serialize>(result: Result<T, Refusal>) -> Response {
    match result {
        Ok(value) => ok(value),
        Err(Refusal { status, message }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(status, &message)
        }
    }
}

async fn last_processed(State(s): State<Shared>) -> Response {
    ok(s.with(|c| c.last_processed()))
}

async fn intervals(State(s): State<Shared>) -> Response {
    ok(json!({ "processedTickIntervals": s.with(|c| c.intervals()) }))
}

#[derive(Deserialize)]
struct HashRequest {
    hash: String,
}

async fn transaction(State(s): State<Shared>, body: Bytes) -> Response {
    let request: HashRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match s.with(|c| c.transaction(&request.hash)) {
        Some(tx) => ok(tx),
        None => error(StatusCode::NOT_FOUND, "transaction not found"),
    }
}

async fn transactions_for_identity(State(s): State<Shared>, body: Bytes) -> Response {
    let request: IdentityTransactionsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    answer(s.with(|c| c.transactions_for_identity(&request)))
}
