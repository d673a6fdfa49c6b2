//! Provider routes: pricing, jobs run for others, earnings, and the onboarding checklist.
//! A node that is not a provider answers them with `not_enabled` (except `status`).

use axum::Json;
use axum::extract::State;
use qubix_protocol::api::{ApiError, Earnings, ProviderJob, ProviderPricing, ProviderStatus};

use super::market::reply;
use crate::config::AppState;
use crate::error::ApiErrorResponse;
use crate::extract::ApiJson;
use crate::node_api::NodeApi;
use crate::validate;

/// `GET /api/v1/provider/pricing`
#[utoipa::path(get, path = "/api/v1/provider/pricing", tag = "provider",
    responses((status = 200, description = "The prices offers are published at", body = ProviderPricing),
        (status = 404, description = "`not_enabled`: not a provider", body = ApiError)))]
pub(crate) async fn pricing<A: NodeApi>(
    State(s): State<AppState<A>>,
) -> Result<Json<ProviderPricing>, ApiErrorResponse> {
    reply(s.api.pricing().await)
}

/// `PUT /api/v1/provider/pricing`
#[utoipa::path(put, path = "/api/v1/provider/pricing", tag = "provider", request_body = ProviderPricing,
    responses((status = 200, description = "The new pricing; offers are republished", body = ProviderPricing),
        (status = 400, description = "`invalid_json` or `invalid_value`", body = ApiError),
        (status = 404, description = "`not_enabled`: not a provider", body = ApiError)))]
pub(crate) async fn set_pricing<A: NodeApi>(
    State(s): State<AppState<A>>,
    ApiJson(pricing): ApiJson<ProviderPricing>,
) -> Result<Json<ProviderPricing>, ApiErrorResponse> {
    validate::pricing(&pricing)?;
    let default_price = pricing.default_price_per_gpu_hour.0;
    let saved = reply(s.api.set_pricing(pricing).await)?;
    tracing::info!(default_price, "provider pricing changed");
    Ok(saved)
}

/// `GET /api/v1/provider/jobs`
#[utoipa::path(get, path = "/api/v1/provider/jobs", tag = "provider",
    responses((status = 200, description = "Jobs this node runs for others, newest first", body = Vec<ProviderJob>),
        (status = 404, description = "`not_enabled`: not a provider", body = ApiError)))]
pub(crate) async fn jobs<A: NodeApi>(
    State(s): State<AppState<A>>,
) -> Result<Json<Vec<ProviderJob>>, ApiErrorResponse> {
    reply(s.api.provider_jobs().await)
}

/// `GET /api/v1/provider/earnings`
#[utoipa::path(get, path = "/api/v1/provider/earnings", tag = "provider",
    responses((status = 200, description = "Earned, held and owed QU, and earnings per day", body = Earnings),
        (status = 404, description = "`not_enabled`: not a provider", body = ApiError)))]
pub(crate) async fn earnings<A: NodeApi>(
    State(s): State<AppState<A>>,
) -> Result<Json<Earnings>, ApiErrorResponse> {
    reply(s.api.earnings().await)
}

/// `GET /api/v1/provider/status`
#[utoipa::path(get, path = "/api/v1/provider/status", tag = "provider",
    responses((status = 200, description = "The onboarding checklist", body = ProviderStatus)))]
pub(crate) async fn status<A: NodeApi>(
    State(s): State<AppState<A>>,
) -> Result<Json<ProviderStatus>, ApiErrorResponse> {
    reply(s.api.provider_status().await)
}
