//! [`NodeApi`]: everything the gateway asks of the node. The node crate implements it; the
//! gateway's tests implement it in memory. One method per route, plus live feeds.
//!
//! Rules for implementers:
//!
//! - Return `Err(ApiError)` with the code that fits ([`ErrorCode`]): `not_found` for an
//!   unknown id, `wrong_state` for an action the instance's state forbids,
//!   `insufficient_funds`, `invalid_query` (with a message that points at the offending token),
//!   `not_enabled` for provider routes on a node that is not a provider, `unavailable` when a
//!   dependency is down. The gateway serves the code's HTTP status and logs nothing but the
//!   code; put what the user should do in the message, and keep secrets out of it.
//! - Every method is called from a request task with a timeout (30 s by default): answer from
//!   state you hold, or hand the work to the task that owns it and await a bounded reply.
//!   `launch` in particular should return once the agreement is signed (or sooner, with the
//!   instance's `progress` set) and let payment, pull and start continue in the background,
//!   reporting them as [`Event::InstanceProgress`] and [`Event::InstanceState`].
//! - The gateway has already checked the shape of request bodies (ranges, lengths, formats;
//!   see `validate`); semantic checks (does the offer exist, is the price acceptable) are
//!   the node's.
//! - Feeds are `tokio::sync::broadcast` receivers: the node's sender never waits for a slow
//!   client; a client that falls behind gets `Lagged` and the gateway tells it so.
//!
//! [`ErrorCode`]: qubix_protocol::api::ErrorCode

use std::future::Future;

use qubix_protocol::AgreementId;
use qubix_protocol::api::{
    ApiError, Billing, Earnings, Event, Explanation, GpusView, Health, Instance, InstanceAction,
    LaunchRequest, LedgerEntry, LogLine, MetricsSample, NodeInfo, OffersPage, PeerInfo,
    ProviderJob, ProviderPricing, ProviderStatus, SignedReceipt, Transfer, Wallet, WithdrawRequest,
};
use tokio::sync::broadcast;

/// What a node call returns: the value, or the error the client receives.
pub type ApiResult<T> = Result<T, ApiError>;

/// One instance's log: the most recent lines and a live feed of the lines after them.
///
/// Take both under the lock that guards the log buffer's push (subscribe, then copy the
/// tail), so that every line is either in `history` or arrives on `live`, never both and
/// never neither.
#[derive(Debug)]
pub struct LogFeed {
    /// The last lines, oldest first (at most the `tail` asked for).
    pub history: Vec<LogLine>,
    /// Lines written from now on. Closing the sender (instance ended) ends the stream.
    pub live: broadcast::Receiver<LogLine>,
}

/// One instance's metrics: recent samples and a live feed, with the same rule as
/// [`LogFeed`].
#[derive(Debug)]
pub struct MetricsFeed {
    /// The last samples, oldest first (at most the `history` asked for).
    pub history: Vec<MetricsSample>,
    /// Samples taken from now on. Closing the sender ends the stream.
    pub live: broadcast::Receiver<MetricsSample>,
}

/// The node as the gateway sees it. Every method answers one route of `/api/v1`.
///
/// Methods return `impl Future + Send` so that the router can be generic over the
/// implementation without boxing; implement them with `async fn` in the impl block.
pub trait NodeApi: Send + Sync + 'static {
    /// `GET health` (public): `status: "ok"` while the node service runs.
    fn health(&self) -> impl Future<Output = ApiResult<Health>> + Send;

    /// `GET node`: this node's id, network, addresses and counts.
    fn node_info(&self) -> impl Future<Output = ApiResult<NodeInfo>> + Send;

    /// `GET peers`: connected peers.
    fn peers(&self) -> impl Future<Output = ApiResult<Vec<PeerInfo>>> + Send;

    /// `GET offers`: offers of the local book matching `q`, sorted by `sort` (e.g. `price`,
    /// `-reliability`; `None` for the node's default), `offset` skipped, at most `limit`
    /// (`None` for the node's default; the gateway caps it at 1000). The query string is
    /// passed through untouched: the language belongs to `qubix_protocol::query`. A query
    /// that does not parse is `invalid_query`, with a message that names the offending token.
    fn offers(
        &self,
        q: String,
        sort: Option<String>,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> impl Future<Output = ApiResult<OffersPage>> + Send;

    /// `POST offers/explain`: what each constraint of `q` excluded, and the near misses.
    fn explain(&self, q: String) -> impl Future<Output = ApiResult<Explanation>> + Send;

    /// `GET gpus`: this node's GPUs, or why it has none.
    fn gpus(&self) -> impl Future<Output = ApiResult<GpusView>> + Send;

    /// `POST instances`: rent GPUs and run a container (see the module docs on timing).
    fn launch(&self, request: LaunchRequest) -> impl Future<Output = ApiResult<Instance>> + Send;

    /// `GET instances`: every instance this node rented, newest first.
    fn instances(&self) -> impl Future<Output = ApiResult<Vec<Instance>>> + Send;

    /// `GET instances/{id}`: one instance; `not_found` for an unknown id.
    fn instance(&self, id: AgreementId) -> impl Future<Output = ApiResult<Instance>> + Send;

    /// `POST instances/{id}/{stop|start|restart}`: `wrong_state` when the state forbids it.
    /// Returns the instance after the provider answered.
    fn instance_action(
        &self,
        id: AgreementId,
        action: InstanceAction,
    ) -> impl Future<Output = ApiResult<Instance>> + Send;

    /// `DELETE instances/{id}`: terminate, remove the container, end billing, refund.
    fn terminate(&self, id: AgreementId) -> impl Future<Output = ApiResult<Instance>> + Send;

    /// `GET instances/{id}/logs`: the last `tail` lines and a live feed.
    fn logs(&self, id: AgreementId, tail: usize)
    -> impl Future<Output = ApiResult<LogFeed>> + Send;

    /// `GET instances/{id}/metrics`: the last `history` samples and a live feed.
    fn metrics(
        &self,
        id: AgreementId,
        history: usize,
    ) -> impl Future<Output = ApiResult<MetricsFeed>> + Send;

    /// `GET billing`: balances, escrow and spend per instance.
    fn billing(&self) -> impl Future<Output = ApiResult<Billing>> + Send;

    /// `GET ledger/entries`: ledger transactions, newest first, `offset` skipped, at most
    /// `limit` (the gateway caps it at 1000).
    fn ledger_entries(
        &self,
        limit: u32,
        offset: u32,
    ) -> impl Future<Output = ApiResult<Vec<LedgerEntry>>> + Send;

    /// `GET ledger/receipts/{id}`: the signed usage receipts kept for agreement `id`, oldest
    /// first; `not_found` when this node's ledger does not know the agreement.
    fn receipts(
        &self,
        id: AgreementId,
    ) -> impl Future<Output = ApiResult<Vec<SignedReceipt>>> + Send;

    /// `GET wallet`: the wallet's identity and on-chain balance.
    fn wallet(&self) -> impl Future<Output = ApiResult<Wallet>> + Send;

    /// `POST wallet/withdraw`: send available QU to another identity;
    /// `insufficient_funds` when the available balance is short.
    fn withdraw(
        &self,
        request: WithdrawRequest,
    ) -> impl Future<Output = ApiResult<Transfer>> + Send;

    /// `GET provider/pricing`.
    fn pricing(&self) -> impl Future<Output = ApiResult<ProviderPricing>> + Send;

    /// `PUT provider/pricing`: replace the pricing and republish offers; returns it.
    fn set_pricing(
        &self,
        pricing: ProviderPricing,
    ) -> impl Future<Output = ApiResult<ProviderPricing>> + Send;

    /// `GET provider/jobs`: jobs this node runs for others, newest first.
    fn provider_jobs(&self) -> impl Future<Output = ApiResult<Vec<ProviderJob>>> + Send;

    /// `GET provider/earnings`.
    fn earnings(&self) -> impl Future<Output = ApiResult<Earnings>> + Send;

    /// `GET provider/status`: the onboarding checklist (GPU, Docker, NVIDIA runtime, wallet,
    /// pricing). Answer it on a consumer node too, with `provider: false`.
    fn provider_status(&self) -> impl Future<Output = ApiResult<ProviderStatus>> + Send;

    /// `GET events` (WebSocket): a new receiver of the node's event broadcast.
    fn events(&self) -> broadcast::Receiver<Event>;

    /// `GET /metrics`: the node's own figures in Prometheus text format (appended after
    /// the gateway's). Every line must end with a newline; use the `qubix_` prefix.
    fn prometheus(&self) -> impl Future<Output = String> + Send;
}
