//! Money: billing figures, ledger entries, the wallet and withdrawals.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use qubix_protocol::api::{
    ApiError, Billing, ErrorCode, LedgerEntry, SignedReceipt, Transfer, Wallet, WithdrawRequest,
};

use super::market::reply;
use crate::auth::Caller;
use crate::config::AppState;
use crate::error::ApiErrorResponse;
use crate::extract::{ApiJson, InstanceId, Params};
use crate::idempotency;
use crate::node_api::NodeApi;
use crate::validate;

/// The largest page of ledger entries.
pub(crate) const MAX_LEDGER_LIMIT: u32 = 1000;
/// The page size when none is asked for.
const DEFAULT_LEDGER_LIMIT: u32 = 100;

/// `GET /api/v1/billing`
#[utoipa::path(get, path = "/api/v1/billing", tag = "money",
    responses((status = 200, description = "Balances, escrow and spend per instance", body = Billing)))]
pub(crate) async fn billing<A: NodeApi>(
    State(s): State<AppState<A>>,
) -> Result<Json<Billing>, ApiErrorResponse> {
    reply(s.api.billing().await)
}

/// `GET /api/v1/ledger/entries?limit=&offset=`
#[utoipa::path(get, path = "/api/v1/ledger/entries", tag = "money",
    params(("limit" = Option<u32>, Query, description = "At most 1000 (default 100)"),
        ("offset" = Option<u32>, Query, description = "Entries to skip")),
    responses((status = 200, description = "Balanced ledger transactions, newest first", body = Vec<LedgerEntry>),
        (status = 400, description = "`invalid_value`", body = ApiError)))]
pub(crate) async fn ledger_entries<A: NodeApi>(
    State(s): State<AppState<A>>,
    params: Params,
) -> Result<Json<Vec<LedgerEntry>>, ApiErrorResponse> {
    params.only(&["limit", "offset"])?;
    let limit = params
        .number("limit", MAX_LEDGER_LIMIT)?
        .unwrap_or(DEFAULT_LEDGER_LIMIT);
    let offset = params.number("offset", u32::MAX)?.unwrap_or(0);
    reply(s.api.ledger_entries(limit, offset).await)
}

/// `GET /api/v1/ledger/receipts/{id}`
#[utoipa::path(get, path = "/api/v1/ledger/receipts/{id}", tag = "money",
    params(("id" = String, Path, description = "Agreement (instance) id")),
    responses((status = 200, description = "The consumer's signed cumulative receipts, oldest first", body = Vec<SignedReceipt>),
        (status = 400, description = "`invalid_value`: not an agreement id", body = ApiError),
        (status = 404, description = "`not_found`: the ledger does not know the agreement", body = ApiError)))]
pub(crate) async fn receipts<A: NodeApi>(
    State(s): State<AppState<A>>,
    InstanceId(id): InstanceId,
) -> Result<Json<Vec<SignedReceipt>>, ApiErrorResponse> {
    reply(s.api.receipts(id).await)
}

/// `GET /api/v1/wallet`
#[utoipa::path(get, path = "/api/v1/wallet", tag = "money",
    responses((status = 200, description = "The wallet's identity and on-chain balance", body = Wallet)))]
pub(crate) async fn wallet<A: NodeApi>(
    State(s): State<AppState<A>>,
) -> Result<Json<Wallet>, ApiErrorResponse> {
    reply(s.api.wallet().await)
}

/// Refusals of a withdrawal that sent nothing (bad destination or amount, not enough QU,
/// no wallet); any other failure may have sent the transfer and is kept.
const WITHDRAW: idempotency::Route = idempotency::Route {
    name: "withdraw",
    no_effect: |e| {
        matches!(
            e.error.code,
            ErrorCode::InvalidValue | ErrorCode::InsufficientFunds | ErrorCode::NotEnabled
        )
    },
};

/// `POST /api/v1/wallet/withdraw`
#[utoipa::path(post, path = "/api/v1/wallet/withdraw", tag = "money", request_body = WithdrawRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = super::instances::IDEMPOTENCY_DOC)),
    responses((status = 200, description = "The signed transfer, being confirmed (`pending` with no tx id yet while it waits in the wallet's queue)", body = Transfer,
            headers(("idempotent-replayed" = String, description = "`true` when this is the kept answer of an earlier call with the same Idempotency-Key"))),
        (status = 400, description = "`invalid_json` or `invalid_value`", body = ApiError),
        (status = 402, description = "`insufficient_funds`", body = ApiError),
        (status = 404, description = "`not_enabled`: no wallet configured", body = ApiError),
        (status = 422, description = "`idempotency_key_reused`: the key was used with another body", body = ApiError)))]
pub(crate) async fn withdraw<A: NodeApi>(
    State(s): State<AppState<A>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<WithdrawRequest>,
) -> Result<Response, ApiErrorResponse> {
    validate::withdraw(&request)?;
    let key = idempotency::key_of(&headers)?;
    let api = Arc::clone(&s.api);
    let work = {
        let request = request.clone();
        async move {
            let amount = request.amount;
            let transfer = api.withdraw(request).await?;
            tracing::info!(amount = amount.0, tx = %transfer.tx_id, "withdrawal signed");
            Ok(transfer)
        }
    };
    Ok(idempotency::once(
        &s.idempotency,
        WITHDRAW,
        &caller,
        key,
        &request,
        StatusCode::OK,
        work,
    )
    .await)
}
