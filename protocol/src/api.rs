//! JSON types of the gateway's REST and WebSocket API (`/api/v1`), shared by the gateway,
//! which serves them, and the SDK, which reads them. Amounts are whole QU; times are unix
//! milliseconds; ids are strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::amount::Qu;
use crate::control::{EndReason, JobState};
use crate::ids::{AgreementId, NodeId, OfferId, OfferRef};
use crate::job::{Capability, PortPurpose, PortRequest};
use crate::offer::Offer;
use crate::time::UnixMillis;

/// Every error response: `{ "error": { "code", "message", "field"? } }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// The error.
    pub error: ApiErrorBody,
}

/// The body of an error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What went wrong and what to do, for a person.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ApiErrorBody {
                code,
                message: message.into(),
                field: None,
            },
        }
    }

    /// The same error, naming the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.error.field = Some(field.into());
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error.field {
            Some(field) => write!(
                f,
                "{} ({field}): {}",
                self.error.code.as_str(),
                self.error.message
            ),
            None => write!(f, "{}: {}", self.error.code.as_str(), self.error.message),
        }
    }
}

/// Machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON or not the expected shape.
    InvalidJson,
    /// A value is out of range or malformed.
    InvalidValue,
    /// The offer query does not parse.
    InvalidQuery,
    /// No credentials, or wrong ones.
    Unauthorized,
    /// Credentials are fine but the request is not allowed (CSRF, wrong role).
    Forbidden,
    /// No such resource.
    NotFound,
    /// The resource is in a state that does not allow this.
    WrongState,
    /// Not enough available QU.
    InsufficientFunds,
    /// The body is larger than allowed.
    PayloadTooLarge,
    /// No offer matched, or the provider refused.
    NoMatch,
    /// The provider refused or did not answer.
    ProviderRefused,
    /// The node is busy or a dependency is down; retry later.
    Unavailable,
    /// The request took too long.
    Timeout,
    /// The feature is not enabled on this node (e.g. provider routes on a consumer).
    NotEnabled,
    /// A bug: the node logged the details.
    Internal,
    /// The route exists but not with this HTTP method.
    MethodNotAllowed,
    /// The provider's terms are outside what this node accepts (the field names which).
    UnacceptableTerms,
    /// An `Idempotency-Key` was used before with a different request.
    IdempotencyKeyReused,
}

impl ErrorCode {
    /// The code as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidValue => "invalid_value",
            Self::InvalidQuery => "invalid_query",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::WrongState => "wrong_state",
            Self::InsufficientFunds => "insufficient_funds",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NoMatch => "no_match",
            Self::ProviderRefused => "provider_refused",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::NotEnabled => "not_enabled",
            Self::Internal => "internal",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnacceptableTerms => "unacceptable_terms",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
        }
    }

    /// The HTTP status this code is served with.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidJson | Self::InvalidValue | Self::InvalidQuery => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound | Self::NotEnabled => 404,
            Self::WrongState => 409,
            Self::InsufficientFunds => 402,
            Self::PayloadTooLarge => 413,
            Self::NoMatch
            | Self::ProviderRefused
            | Self::UnacceptableTerms
            | Self::IdempotencyKeyReused => 422,
            Self::Unavailable => 503,
            Self::Timeout => 504,
            Self::Internal => 500,
            Self::MethodNotAllowed => 405,
        }
    }
}

/// `GET /api/v1/health` (public).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` when the node runs.
    pub status: String,
    /// The node's version.
    pub version: String,
}

/// `GET /api/v1/node`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeInfo {
    /// This node's id (PeerId).
    pub node_id: NodeId,
    /// Network name.
    pub network: String,
    /// Version of the `qubix` binary.
    pub version: String,
    /// Addresses the node listens on.
    pub listen_addrs: Vec<String>,
    /// Whether this node offers GPUs.
    pub provider: bool,
    /// The wallet's Qubic identity, when a wallet is configured.
    pub wallet_identity: Option<String>,
    /// Connected peers.
    pub peers: usize,
    /// Offers in the local book.
    pub offers_known: usize,
    /// When the node started.
    pub started_at: UnixMillis,
}

/// `GET /api/v1/peers` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeerInfo {
    /// Peer id.
    pub node_id: NodeId,
    /// Known addresses.
    pub addresses: Vec<String>,
    /// Last measured round trip, in milliseconds.
    pub rtt_ms: Option<u64>,
    /// The peer's agent string (from identify).
    pub agent: Option<String>,
    /// Offers of this peer in the local book.
    pub offers: usize,
}

/// An offer as the API shows it: the signed offer plus what this node knows about the
/// provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OfferView {
    /// The offer's name, `<offer id>@<provider>`: what launching takes.
    pub id: OfferRef,
    /// The verified offer.
    pub offer: Offer,
    /// Provider reliability 0..1 from this node's receipts; `None` when there is no record.
    pub reliability: Option<f64>,
}

/// `GET /api/v1/offers` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OffersPage {
    /// Offers matching the query, before paging.
    pub total: usize,
    /// Offset applied.
    pub offset: u32,
    /// Limit applied.
    pub limit: u32,
    /// The page.
    pub offers: Vec<OfferView>,
}

/// `POST /api/v1/offers/explain` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// The query to explain.
    pub q: String,
}

/// `POST /api/v1/offers/explain` response: why a query matched what it matched, and what
/// to relax when it matched nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Explanation {
    /// Offers in the local book.
    pub total: usize,
    /// Offers that pass every constraint.
    pub matched: usize,
    /// One entry per constraint of the query, in query order.
    pub constraints: Vec<ConstraintReport>,
    /// The offers that failed the fewest constraints, closest first.
    pub near_misses: Vec<NearMiss>,
    /// One sentence for a person, e.g. "price<=100 excluded all 12 offers".
    pub summary: String,
}

impl Explanation {
    /// The API's explanation of what the query language found (`query::explain`), with each
    /// near miss's offer as `view` shows it (a near miss `view` does not know is left out).
    pub fn of(
        found: crate::query::Explanation,
        view: impl Fn(OfferRef) -> Option<OfferView>,
    ) -> Self {
        let summary = found.summary();
        Self {
            total: found.total,
            matched: found.matched,
            constraints: found
                .constraints
                .into_iter()
                .map(|c| ConstraintReport {
                    constraint: c.constraint,
                    excluded: c.excluded,
                    only_blocker: c.only_blocker,
                })
                .collect(),
            near_misses: found
                .near_misses
                .into_iter()
                .filter_map(|m| {
                    Some(NearMiss {
                        offer: view(OfferRef::new(m.provider, m.offer_id))?,
                        failed: m
                            .failed
                            .into_iter()
                            .map(|f| format!("{}: {}", f.constraint, f.reason))
                            .collect(),
                    })
                })
                .collect(),
            summary,
        }
    }
}

/// What one constraint of a query did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConstraintReport {
    /// The constraint as written, e.g. `gpu_ram>=48`.
    pub constraint: String,
    /// Offers this constraint fails.
    pub excluded: usize,
    /// Offers that this constraint alone fails (relaxing it would admit them).
    pub only_blocker: usize,
}

/// An offer that almost matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NearMiss {
    /// The offer.
    pub offer: OfferView,
    /// The constraints it fails, as written.
    pub failed: Vec<String>,
}

/// One GPU of this node, as `GET /api/v1/gpus` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GpuInfo {
    /// Index on the host.
    pub index: u32,
    /// Driver UUID (`GPU-…`), used to attach it to a container.
    pub uuid: String,
    /// Model name.
    pub model: String,
    /// Memory in MiB.
    pub vram_mib: u64,
    /// Driver version.
    pub driver_version: String,
    /// Highest CUDA version supported.
    pub cuda_version: String,
    /// Compute capability.
    pub compute_capability: String,
    /// True for the testnet's simulated GPUs.
    pub simulated: bool,
    /// The job it is reserved for, if any.
    pub allocated_to: Option<AgreementId>,
}

/// `GET /api/v1/gpus` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GpusView {
    /// `nvml`, `simulated` or `none`.
    pub probe: String,
    /// Why no GPU was found, when none was.
    pub reason: Option<String>,
    /// The GPUs.
    pub gpus: Vec<GpuInfo>,
}

/// `POST /api/v1/instances` body: rent GPUs and run a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchRequest {
    /// The offer to rent, as the offers list names it (`<offer id>@<provider>`; the offer id
    /// alone works while one provider alone publishes it); or give `query` and the cheapest
    /// match is used.
    #[serde(default)]
    pub offer_id: Option<OfferRef>,
    /// An offer query; used when `offer_id` is absent.
    #[serde(default)]
    pub query: Option<String>,
    /// Container image.
    pub image: String,
    /// Command and arguments; empty runs the image's default.
    #[serde(default)]
    pub command: Vec<String>,
    /// Environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Ports to publish.
    #[serde(default)]
    pub ports: Vec<PortRequest>,
    /// GPUs wanted.
    pub gpus: u32,
    /// Rental length in seconds.
    pub duration_secs: u64,
    /// The most to pay per GPU-hour; defaults to the offer's price.
    #[serde(default)]
    pub max_price_per_gpu_hour: Option<Qu>,
    /// CPU cores; defaults to the offer's share per GPU.
    #[serde(default)]
    pub cpu_cores: Option<u32>,
    /// RAM in MiB; defaults to the offer's share per GPU.
    #[serde(default)]
    pub ram_mib: Option<u64>,
    /// Disk in GiB; defaults to the offer's share per GPU.
    #[serde(default)]
    pub disk_gib: Option<u64>,
    /// Linux capabilities the job needs beyond its base set (`KILL`, `NET_BIND_SERVICE`,
    /// `AUDIT_WRITE`); a provider grants those its policy allows and refuses the rental
    /// otherwise. An SSH port asks for what sshd needs by itself.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

/// How to reach one published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Connection {
    /// Port inside the container.
    pub container_port: u16,
    /// What it serves.
    pub purpose: PortPurpose,
    /// Host to connect to.
    pub host: String,
    /// Port to connect to.
    pub port: u16,
    /// A ready-to-use command or URL (`ssh -p 40022 root@host`, `http://host:48888/`).
    pub hint: String,
}

/// What a launch or pull is doing now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// Phase: `negotiating`, `paying`, `pulling`, `starting`.
    pub phase: String,
    /// Detail for a person.
    pub detail: String,
    /// Bytes done, when known.
    pub done: Option<u64>,
    /// Bytes in total, when known.
    pub total: Option<u64>,
    /// Image layers pulled (or already present), while pulling.
    pub layers_done: Option<u32>,
    /// Image layers seen, while pulling.
    pub layers_total: Option<u32>,
}

impl Progress {
    /// A phase with words only.
    pub fn text(phase: &str, detail: impl Into<String>) -> Self {
        Self {
            phase: phase.into(),
            detail: detail.into(),
            done: None,
            total: None,
            layers_done: None,
            layers_total: None,
        }
    }

    /// The `pulling` phase with the provider's figures.
    pub fn pulling(image: &str, pull: &crate::control::PullSummary) -> Self {
        Self {
            phase: "pulling".into(),
            detail: format!("pulling {image}: {pull}"),
            done: Some(
                pull.bytes_total
                    .map_or(pull.bytes_done, |t| pull.bytes_done.min(t)),
            ),
            total: pull.bytes_total,
            layers_done: Some(pull.layers_done),
            layers_total: Some(pull.layers_total.max(pull.layers_done)),
        }
    }
}

/// An instance: a job this node rented, as its consumer sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Instance {
    /// The agreement id.
    pub id: AgreementId,
    /// The provider.
    pub provider: NodeId,
    /// The offer rented.
    pub offer_id: OfferId,
    /// Lifecycle state.
    pub state: JobState,
    /// Container image.
    pub image: String,
    /// GPUs rented.
    pub gpus: u32,
    /// GPU model.
    pub gpu_model: String,
    /// True when the provider's GPUs are simulated.
    pub simulated: bool,
    /// Agreed price per GPU-hour.
    pub price_per_gpu_hour: Qu,
    /// Rental length in seconds.
    pub duration_secs: u64,
    /// Whole-rental budget locked in escrow.
    pub budget: Qu,
    /// Paid to the provider so far.
    pub paid: Qu,
    /// Earned by the provider so far (per receipts).
    pub spent: Qu,
    /// When the agreement was made.
    pub created_at: UnixMillis,
    /// When the container first ran.
    pub started_at: Option<UnixMillis>,
    /// Exit code, when it exited.
    pub exit_code: Option<i64>,
    /// Why it ended, when it did.
    pub reason: Option<EndReason>,
    /// Connection details for published ports.
    pub connections: Vec<Connection>,
    /// What it is doing, while launching.
    pub progress: Option<Progress>,
}

/// `POST /api/v1/instances/{id}/{action}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceAction {
    /// Stop, keeping data.
    Stop,
    /// Start a stopped instance.
    Start,
    /// Restart.
    Restart,
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Lifecycle messages from the provider's node.
    System,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    /// When it was written.
    pub at: UnixMillis,
    /// Where from.
    pub stream: LogStream,
    /// The text, without the newline.
    pub line: String,
}

/// A message on a log stream (WebSocket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LogEvent {
    /// A line.
    Line(LogLine),
    /// The reader was too slow and `missed` lines were dropped.
    Lagged {
        /// Lines dropped.
        missed: u64,
    },
}

/// One GPU's figures in a metrics sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GpuSample {
    /// GPU UUID.
    pub uuid: String,
    /// Utilisation 0–100 %.
    pub utilization_pct: f64,
    /// Memory used, MiB.
    pub memory_used_mib: u64,
    /// Memory in total, MiB.
    pub memory_total_mib: u64,
    /// Temperature, °C.
    pub temperature_c: f64,
    /// Power draw, W.
    pub power_w: f64,
}

/// A metrics sample of one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricsSample {
    /// When it was taken.
    pub at: UnixMillis,
    /// Container CPU use in % of one core.
    pub cpu_pct: f64,
    /// Container memory in use, MiB.
    pub memory_used_mib: u64,
    /// Container memory limit, MiB.
    pub memory_limit_mib: u64,
    /// Per-GPU figures.
    pub gpus: Vec<GpuSample>,
    /// True when the GPU figures come from the simulated probe.
    pub simulated: bool,
}

/// One instance's money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstanceBilling {
    /// The instance.
    pub id: AgreementId,
    /// Budget locked.
    pub budget: Qu,
    /// Escrow not yet paid out.
    pub escrow: Qu,
    /// Paid to the provider.
    pub paid: Qu,
    /// Acknowledged as used (receipts).
    pub spent: Qu,
    /// Refunded.
    pub refunded: Qu,
}

/// `GET /api/v1/billing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Billing {
    /// The wallet's identity (deposit here).
    pub deposit_identity: Option<String>,
    /// QU free to spend.
    pub available: Qu,
    /// QU locked for running rentals.
    pub escrow: Qu,
    /// QU paid in prepaid windows not yet used.
    pub prepaid: Qu,
    /// QU spent in total.
    pub spent: Qu,
    /// Per instance.
    pub instances: Vec<InstanceBilling>,
}

/// One posting of a ledger transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Posting {
    /// Account name, e.g. `available`, `escrow/<agreement>`.
    pub account: String,
    /// Signed change in QU (debits positive).
    pub delta: i64,
}

/// `GET /api/v1/ledger/entries` item: one balanced transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LedgerEntry {
    /// Idempotency id of the transaction.
    pub id: String,
    /// When it was recorded.
    pub at: UnixMillis,
    /// What it was (`deposit`, `lock_escrow`, `pay_window`, `receipt`, `refund`, …).
    pub kind: String,
    /// The agreement it concerns, if any.
    pub agreement_id: Option<AgreementId>,
    /// Postings; they sum to zero.
    pub postings: Vec<Posting>,
}

/// `GET /api/v1/ledger/receipts/{id}` item: a cumulative usage receipt the consumer signed,
/// as this node's ledger keeps it. The envelope is the evidence: anyone holding it can check
/// the consumer's signature without trusting this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedReceipt {
    /// The agreement.
    pub agreement_id: AgreementId,
    /// The consumer who signed it.
    pub consumer: NodeId,
    /// The usage report it acknowledges.
    pub report_sequence: u64,
    /// Billable milliseconds acknowledged in total.
    pub billable_millis: u64,
    /// Amount acknowledged as earned by the provider, in total.
    pub amount: Qu,
    /// When the consumer signed it.
    pub issued_at: UnixMillis,
    /// The signed envelope exactly as sent on the wire, hex-encoded.
    pub envelope: String,
}

impl SignedReceipt {
    /// The API view of a receipt whose signature has been checked.
    pub fn from_signed(signed: &crate::signed::Signed<crate::billing::Receipt>) -> Self {
        let r = signed.payload();
        Self {
            agreement_id: r.agreement_id,
            consumer: signed.signer(),
            report_sequence: r.report_sequence,
            billable_millis: r.billable_millis,
            amount: r.amount,
            issued_at: r.issued_at,
            envelope: hex::encode(signed.envelope().as_bytes()),
        }
    }
}

/// `GET /api/v1/wallet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Wallet {
    /// The wallet's Qubic identity; `None` when no wallet is configured.
    pub identity: Option<String>,
    /// Balance on chain, when the RPC answered.
    pub balance: Option<Qu>,
    /// The chain's current tick, when the RPC answered.
    pub tick: Option<u32>,
    /// The RPC endpoint used.
    pub rpc: String,
    /// Why the balance is missing, when it is.
    pub error: Option<String>,
}

/// `POST /api/v1/wallet/withdraw` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    /// Destination Qubic identity.
    pub to: String,
    /// Amount.
    pub amount: Qu,
}

/// A transfer the node signed and is confirming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Transfer {
    /// Qubic transaction id.
    pub tx_id: String,
    /// Destination identity.
    pub to: String,
    /// Amount.
    pub amount: Qu,
    /// The tick it targets.
    pub target_tick: u32,
    /// `pending`, `confirmed` or `failed`.
    pub status: String,
}

/// `GET|PUT /api/v1/provider/pricing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderPricing {
    /// Price per GPU-hour for models without their own price.
    pub default_price_per_gpu_hour: Qu,
    /// Price per GPU-hour by GPU model name.
    #[serde(default)]
    pub per_model: BTreeMap<String, Qu>,
    /// Shortest rental accepted, seconds.
    pub min_rental_secs: u64,
    /// Longest rental accepted, seconds.
    pub max_rental_secs: u64,
}

/// `GET /api/v1/provider/jobs` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProviderJob {
    /// The agreement.
    pub id: AgreementId,
    /// Who rents.
    pub consumer: NodeId,
    /// Lifecycle state.
    pub state: JobState,
    /// Image.
    pub image: String,
    /// GPUs.
    pub gpus: u32,
    /// Price per GPU-hour.
    pub price_per_gpu_hour: Qu,
    /// Earned so far (per receipts).
    pub earned: Qu,
    /// When the agreement was made.
    pub created_at: UnixMillis,
    /// Why it ended, when it did.
    pub reason: Option<EndReason>,
}

/// `GET /api/v1/provider/earnings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Earnings {
    /// Earned in total (receipts).
    pub earned: Qu,
    /// Received on chain but not yet earned (prepaid windows running).
    pub prepaid_held: Qu,
    /// Owed back to consumers.
    pub refunds_due: Qu,
    /// Earned per UTC day, oldest first: (`YYYY-MM-DD`, amount).
    pub by_day: Vec<(String, Qu)>,
}

/// `GET /api/v1/provider/status`: the provider onboarding checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProviderStatus {
    /// Whether this node offers its GPUs (provider mode).
    pub provider: bool,
    /// The checks, in the order a new provider should fix them.
    pub checks: Vec<ProviderCheck>,
}

/// One item of the provider checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProviderCheck {
    /// What is checked.
    pub kind: CheckKind,
    /// Whether it passes.
    pub ok: bool,
    /// What was found, or what to do when it fails.
    pub detail: String,
}

/// What a provider check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// At least one GPU was found (NVML, or simulated on testnet).
    Gpu,
    /// The Docker daemon answers.
    Docker,
    /// Docker has the NVIDIA container runtime.
    NvidiaRuntime,
    /// A wallet is configured to be paid at.
    Wallet,
    /// A price is set.
    Pricing,
}

/// Messages on `GET /api/v1/events` (WebSocket).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An offer appeared or changed.
    OfferUpdated {
        /// The offer.
        offer: Box<OfferView>,
    },
    /// An offer was withdrawn or expired.
    OfferRemoved {
        /// Its id.
        offer_id: OfferId,
        /// Its provider.
        provider: NodeId,
    },
    /// An instance changed state.
    InstanceState {
        /// The instance.
        id: AgreementId,
        /// New state.
        state: JobState,
    },
    /// Launch progress of an instance.
    InstanceProgress {
        /// The instance.
        id: AgreementId,
        /// What it is doing.
        progress: Progress,
    },
    /// Balances changed.
    Billing {
        /// The new figures.
        billing: Billing,
    },
    /// A peer connected or disconnected.
    Peer {
        /// The peer.
        node_id: NodeId,
        /// Whether it is now connected.
        connected: bool,
    },
    /// The client was too slow and `missed` events were dropped; refetch state.
    Lagged {
        /// Events dropped.
        missed: u64,
    },
}

/// A message on a metrics stream (`GET /api/v1/instances/{id}/metrics`, WebSocket).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetricsEvent {
    /// A sample.
    Sample(MetricsSample),
    /// The reader was too slow and `missed` samples were dropped.
    Lagged {
        /// Samples dropped.
        missed: u64,
    },
}

/// `POST /api/v1/login` body: the console trades the API token for a session cookie.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The API token from `<data-dir>/api-token`.
    pub token: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginRequest { token: <redacted> }")
    }
}

/// `POST /api/v1/login` and `GET /api/v1/session` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    /// Send it as the `X-Qubix-CSRF` header with every POST, PUT and DELETE made with the
    /// session cookie.
    pub csrf: String,
    /// When the session ends unless renewed by a new login.
    pub expires_at: UnixMillis,
}

/// OpenAPI schemas of the protocol types the API embeds. Those types live in modules that
/// know nothing of OpenAPI, so each gets a mirror here that serializes exactly like it. The
/// `From` conversions destructure every field and match every variant, so adding a field or
/// variant to a mirrored type fails to compile until its mirror follows; the tests check
/// that each mirror serializes like the type it stands for.
mod schema {
    use std::borrow::Cow;

    use serde::Serialize;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;
    use utoipa::{PartialSchema, ToSchema};

    use crate::amount::Qu;
    use crate::control::{EndReason, JobState};
    use crate::ids::{AgreementId, NodeId, OfferId, OfferRef};
    use crate::job::{Capability, PortPurpose, PortRequest};
    use crate::offer::{GpuSpec, Interruptible, Isolation, Location, Offer, PcieLink, Version};
    use crate::time::UnixMillis;

    /// Gives `$ty` the schema of `$mirror`, under the component name of `$ty`.
    macro_rules! schema_via {
        ($ty:ident, $mirror:ty) => {
            impl PartialSchema for $ty {
                fn schema() -> RefOr<Schema> {
                    <$mirror as PartialSchema>::schema()
                }
            }

            impl ToSchema for $ty {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($ty))
                }

                fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
                    <$mirror as ToSchema>::schemas(out)
                }
            }
        };
    }

    schema_via!(NodeId, NodeIdSchema);
    schema_via!(OfferId, OfferIdSchema);
    schema_via!(OfferRef, OfferRefSchema);
    schema_via!(AgreementId, AgreementIdSchema);
    schema_via!(Qu, QuSchema);
    schema_via!(UnixMillis, UnixMillisSchema);
    schema_via!(JobState, JobStateSchema);
    schema_via!(EndReason, EndReasonSchema);
    schema_via!(PortPurpose, PortPurposeSchema);
    schema_via!(PortRequest, PortRequestSchema);
    schema_via!(Capability, CapabilitySchema);
    schema_via!(Offer, OfferSchema);
    schema_via!(GpuSpec, GpuSpecSchema);
    schema_via!(Version, VersionSchema);
    schema_via!(PcieLink, PcieLinkSchema);
    schema_via!(Location, LocationSchema);
    schema_via!(Isolation, IsolationSchema);
    schema_via!(Interruptible, InterruptibleSchema);

    /// A node id: the base58 libp2p PeerId of the node's ed25519 key.
    #[derive(Serialize, ToSchema)]
    #[schema(example = "12D3KooWHdiAxVd8uMQR1hGWXccidmfCwLqcMpGwR6QcTP6QRMuD")]
    pub(super) struct NodeIdSchema(String);

    /// An offer id: 32 hexadecimal characters.
    #[derive(Serialize, ToSchema)]
    #[schema(example = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f")]
    pub(super) struct OfferIdSchema(String);

    /// An offer's name: its offer id and its provider, `<offer id>@<provider>` (the offer id
    /// alone names it while a single provider publishes that id).
    #[derive(Serialize, ToSchema)]
    #[schema(
        example = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f@12D3KooWHdiAxVd8uMQR1hGWXccidmfCwLqcMpGwR6QcTP6QRMuD"
    )]
    pub(super) struct OfferRefSchema(String);

    /// An agreement id, which is also the id of its instance and job: 32 hexadecimal
    /// characters.
    #[derive(Serialize, ToSchema)]
    #[schema(example = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1")]
    pub(super) struct AgreementIdSchema(String);

    /// An amount in whole QU (QUBIC has no decimals).
    #[derive(Serialize, ToSchema)]
    pub(super) struct QuSchema(u64);

    /// Unix time in milliseconds (UTC).
    #[derive(Serialize, ToSchema)]
    pub(super) struct UnixMillisSchema(u64);

    /// The lifecycle of a job: negotiated → funded → pulling → running ⇄ stopped →
    /// terminated | completed | failed (`migrating` is reserved for failover).
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(super) enum JobStateSchema {
        Negotiated,
        Funded,
        Pulling,
        Running,
        Stopped,
        Migrating,
        Terminated,
        Completed,
        Failed,
    }

    /// Why a job ended.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(super) enum EndReasonSchema {
        ConsumerTerminated,
        DurationElapsed,
        Unpaid,
        ImagePullFailed,
        StartFailed,
        NonZeroExit,
        OutOfMemory,
        ContainerLost,
        IdleTimeout,
        ProviderLost,
        Unacknowledged,
    }

    /// How a provider keeps jobs away from its host: `container` (each job in its own
    /// unprivileged container) or `unisolated` (plain processes on the host; testnet only).
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(super) enum IsolationSchema {
        Container,
        Unisolated,
    }

    /// Interruptible rentals: cheaper, reclaimable after a notice.
    #[derive(Serialize, ToSchema)]
    pub(super) struct InterruptibleSchema {
        /// Price in QU per GPU-hour.
        price_per_gpu_hour: Qu,
        /// Notice before a rental is reclaimed, seconds.
        notice_secs: u64,
    }

    /// What a published port serves.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(super) enum PortPurposeSchema {
        Ssh,
        Jupyter,
        Tcp,
    }

    /// A Linux capability, by its kernel name without `CAP_`.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub(super) enum CapabilitySchema {
        Chown,
        DacOverride,
        Fowner,
        Fsetid,
        Kill,
        Setgid,
        Setuid,
        Setpcap,
        NetBindService,
        NetRaw,
        SysChroot,
        Mknod,
        AuditWrite,
        Setfcap,
    }

    /// A container port to publish.
    #[derive(Serialize, ToSchema)]
    pub(super) struct PortRequestSchema {
        /// Port inside the container (1–65535).
        container_port: u16,
        /// What it serves.
        purpose: PortPurpose,
    }

    /// A provider's signed offer, as verified by this node.
    #[derive(Serialize, ToSchema)]
    pub(super) struct OfferSchema {
        /// The provider's node id.
        provider: NodeId,
        /// Stable id across republishes.
        offer_id: OfferId,
        /// Increases with every change.
        sequence: u64,
        /// The GPU kind offered.
        gpu: GpuSpec,
        /// GPUs available now.
        gpu_count: u32,
        /// CPU cores with the whole offer.
        cpu_cores: u32,
        /// RAM in MiB with the whole offer.
        ram_mib: u64,
        /// Disk in GiB with the whole offer.
        disk_gib: u64,
        /// Where the provider is.
        location: Location,
        /// Price in QU per GPU-hour.
        price_per_gpu_hour: Qu,
        /// Shortest rental accepted, seconds.
        min_rental_secs: u64,
        /// Longest rental accepted, seconds.
        max_rental_secs: u64,
        /// Qubic identity that receives payment.
        pay_to: String,
        /// True when the GPUs are simulated (testnet only).
        simulated: bool,
        /// How jobs are kept away from the provider's host.
        isolation: Isolation,
        /// Price in QU per GPU-hour of a hot standby; absent when not offered.
        standby_price_per_gpu_hour: Option<Qu>,
        /// Interruptible rentals, when offered.
        interruptible: Option<Interruptible>,
        /// How long the last checkpoint is kept after a rental ends, seconds.
        checkpoint_retention_secs: u64,
        /// When the provider signed it.
        issued_at: UnixMillis,
        /// When it stops being valid unless republished.
        expires_at: UnixMillis,
    }

    /// One kind of GPU.
    #[derive(Serialize, ToSchema)]
    pub(super) struct GpuSpecSchema {
        /// Model name as the driver reports it.
        model: String,
        /// Memory per GPU, MiB.
        vram_mib: u64,
        /// CUDA compute capability.
        compute_capability: Version,
        /// Highest CUDA version the driver supports.
        cuda_version: Version,
        /// Driver version.
        driver_version: String,
        /// PCIe link, when known.
        pcie: Option<PcieLink>,
        /// NVLink, when known.
        nvlink: Option<bool>,
    }

    /// A `major.minor` version.
    #[derive(Serialize, ToSchema)]
    pub(super) struct VersionSchema {
        /// Major number.
        major: u16,
        /// Minor number.
        minor: u16,
    }

    /// A PCIe link.
    #[derive(Serialize, ToSchema)]
    pub(super) struct PcieLinkSchema {
        /// Generation (3, 4, 5…).
        generation: u8,
        /// Lanes.
        width: u8,
    }

    /// Where a provider is.
    #[derive(Serialize, ToSchema)]
    pub(super) struct LocationSchema {
        /// ISO 3166-1 alpha-2 country code.
        country: String,
        /// Free-form region.
        region: Option<String>,
    }

    impl From<&NodeId> for NodeIdSchema {
        fn from(id: &NodeId) -> Self {
            Self(id.to_string())
        }
    }

    impl From<&OfferId> for OfferIdSchema {
        fn from(id: &OfferId) -> Self {
            Self(id.to_string())
        }
    }

    impl From<&OfferRef> for OfferRefSchema {
        fn from(id: &OfferRef) -> Self {
            Self(id.to_string())
        }
    }

    impl From<&AgreementId> for AgreementIdSchema {
        fn from(id: &AgreementId) -> Self {
            Self(id.to_string())
        }
    }

    impl From<Qu> for QuSchema {
        fn from(qu: Qu) -> Self {
            Self(qu.0)
        }
    }

    impl From<UnixMillis> for UnixMillisSchema {
        fn from(t: UnixMillis) -> Self {
            Self(t.0)
        }
    }

    impl From<JobState> for JobStateSchema {
        fn from(s: JobState) -> Self {
            match s {
                JobState::Negotiated => Self::Negotiated,
                JobState::Funded => Self::Funded,
                JobState::Pulling => Self::Pulling,
                JobState::Running => Self::Running,
                JobState::Stopped => Self::Stopped,
                JobState::Migrating => Self::Migrating,
                JobState::Terminated => Self::Terminated,
                JobState::Completed => Self::Completed,
                JobState::Failed => Self::Failed,
            }
        }
    }

    impl From<EndReason> for EndReasonSchema {
        fn from(r: EndReason) -> Self {
            match r {
                EndReason::ConsumerTerminated => Self::ConsumerTerminated,
                EndReason::DurationElapsed => Self::DurationElapsed,
                EndReason::Unpaid => Self::Unpaid,
                EndReason::ImagePullFailed => Self::ImagePullFailed,
                EndReason::StartFailed => Self::StartFailed,
                EndReason::NonZeroExit => Self::NonZeroExit,
                EndReason::OutOfMemory => Self::OutOfMemory,
                EndReason::ContainerLost => Self::ContainerLost,
                EndReason::IdleTimeout => Self::IdleTimeout,
                EndReason::ProviderLost => Self::ProviderLost,
                EndReason::Unacknowledged => Self::Unacknowledged,
            }
        }
    }

    impl From<PortPurpose> for PortPurposeSchema {
        fn from(p: PortPurpose) -> Self {
            match p {
                PortPurpose::Ssh => Self::Ssh,
                PortPurpose::Jupyter => Self::Jupyter,
                PortPurpose::Tcp => Self::Tcp,
            }
        }
    }

    impl From<Capability> for CapabilitySchema {
        fn from(c: Capability) -> Self {
            match c {
                Capability::Chown => Self::Chown,
                Capability::DacOverride => Self::DacOverride,
                Capability::Fowner => Self::Fowner,
                Capability::Fsetid => Self::Fsetid,
                Capability::Kill => Self::Kill,
                Capability::Setgid => Self::Setgid,
                Capability::Setuid => Self::Setuid,
                Capability::Setpcap => Self::Setpcap,
                Capability::NetBindService => Self::NetBindService,
                Capability::NetRaw => Self::NetRaw,
                Capability::SysChroot => Self::SysChroot,
                Capability::Mknod => Self::Mknod,
                Capability::AuditWrite => Self::AuditWrite,
                Capability::Setfcap => Self::Setfcap,
            }
        }
    }

    impl From<&PortRequest> for PortRequestSchema {
        fn from(p: &PortRequest) -> Self {
            let PortRequest {
                container_port,
                purpose,
            } = *p;
            Self {
                container_port,
                purpose,
            }
        }
    }

    impl From<&Offer> for OfferSchema {
        fn from(o: &Offer) -> Self {
            let Offer {
                provider,
                offer_id,
                sequence,
                gpu,
                gpu_count,
                cpu_cores,
                ram_mib,
                disk_gib,
                location,
                price_per_gpu_hour,
                min_rental_secs,
                max_rental_secs,
                pay_to,
                simulated,
                isolation,
                standby_price_per_gpu_hour,
                interruptible,
                checkpoint_retention_secs,
                issued_at,
                expires_at,
            } = o.clone();
            Self {
                provider,
                offer_id,
                sequence,
                gpu,
                gpu_count,
                cpu_cores,
                ram_mib,
                disk_gib,
                location,
                price_per_gpu_hour,
                min_rental_secs,
                max_rental_secs,
                pay_to,
                simulated,
                isolation,
                standby_price_per_gpu_hour,
                interruptible,
                checkpoint_retention_secs,
                issued_at,
                expires_at,
            }
        }
    }

    impl From<Isolation> for IsolationSchema {
        fn from(i: Isolation) -> Self {
            match i {
                Isolation::Container => Self::Container,
                Isolation::Unisolated => Self::Unisolated,
            }
        }
    }

    impl From<Interruptible> for InterruptibleSchema {
        fn from(i: Interruptible) -> Self {
            let Interruptible {
                price_per_gpu_hour,
                notice_secs,
            } = i;
            Self {
                price_per_gpu_hour,
                notice_secs,
            }
        }
    }

    impl From<&GpuSpec> for GpuSpecSchema {
        fn from(g: &GpuSpec) -> Self {
            let GpuSpec {
                model,
                vram_mib,
                compute_capability,
                cuda_version,
                driver_version,
                pcie,
                nvlink,
            } = g.clone();
            Self {
                model,
                vram_mib,
                compute_capability,
                cuda_version,
                driver_version,
                pcie,
                nvlink,
            }
        }
    }

    impl From<Version> for VersionSchema {
        fn from(v: Version) -> Self {
            let Version { major, minor } = v;
            Self { major, minor }
        }
    }

    impl From<PcieLink> for PcieLinkSchema {
        fn from(p: PcieLink) -> Self {
            let PcieLink { generation, width } = p;
            Self { generation, width }
        }
    }

    impl From<&Location> for LocationSchema {
        fn from(l: &Location) -> Self {
            let Location { country, region } = l.clone();
            Self { country, region }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn same_json<T: Serialize, M: Serialize>(value: &T, mirror: &M) {
            let (a, b) = (
                serde_json::to_value(value).unwrap(),
                serde_json::to_value(mirror).unwrap(),
            );
            assert_eq!(
                a, b,
                "a schema mirror serializes differently from the type it stands for"
            );
        }

        fn offer() -> Offer {
            let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
            Offer {
                provider: NodeId::from_verifying_key(&key.verifying_key()),
                offer_id: OfferId::from_bytes([1; 16]),
                sequence: 3,
                gpu: GpuSpec {
                    model: "NVIDIA GeForce RTX 4090".into(),
                    vram_mib: 24_576,
                    compute_capability: Version::new(8, 9),
                    cuda_version: Version::new(12, 4),
                    driver_version: "550.54.15".into(),
                    pcie: Some(PcieLink {
                        generation: 4,
                        width: 16,
                    }),
                    nvlink: None,
                },
                gpu_count: 2,
                cpu_cores: 16,
                ram_mib: 65_536,
                disk_gib: 500,
                location: Location {
                    country: "DE".into(),
                    region: None,
                },
                price_per_gpu_hour: Qu(1_200),
                min_rental_secs: 600,
                max_rental_secs: 86_400,
                pay_to: "A".repeat(60),
                simulated: true,
                isolation: Isolation::Container,
                standby_price_per_gpu_hour: Some(Qu(300)),
                interruptible: Some(Interruptible {
                    price_per_gpu_hour: Qu(700),
                    notice_secs: 600,
                }),
                checkpoint_retention_secs: 86_400,
                issued_at: UnixMillis(1),
                expires_at: UnixMillis(2),
            }
        }

        #[test]
        fn structs_and_ids_serialize_like_their_mirrors() {
            let o = offer();
            same_json(&o, &OfferSchema::from(&o));
            same_json(&o.gpu, &GpuSpecSchema::from(&o.gpu));
            same_json(&o.location, &LocationSchema::from(&o.location));
            same_json(&o.provider, &NodeIdSchema::from(&o.provider));
            same_json(&o.offer_id, &OfferIdSchema::from(&o.offer_id));
            let named = OfferRef::new(o.provider, o.offer_id);
            same_json(&named, &OfferRefSchema::from(&named));
            let id = AgreementId::from_bytes([9; 16]);
            same_json(&id, &AgreementIdSchema::from(&id));
            same_json(&o.price_per_gpu_hour, &QuSchema::from(o.price_per_gpu_hour));
            same_json(&o.issued_at, &UnixMillisSchema::from(o.issued_at));
            let port = PortRequest {
                container_port: 22,
                purpose: PortPurpose::Ssh,
            };
            same_json(&port, &PortRequestSchema::from(&port));
        }

        #[test]
        fn enums_serialize_like_their_mirrors() {
            use JobState::*;
            for s in [
                Negotiated, Funded, Pulling, Running, Stopped, Migrating, Terminated, Completed,
                Failed,
            ] {
                same_json(&s, &JobStateSchema::from(s));
            }
            use EndReason::*;
            let reasons = [
                ConsumerTerminated,
                DurationElapsed,
                Unpaid,
                ImagePullFailed,
                StartFailed,
                NonZeroExit,
                OutOfMemory,
                ContainerLost,
                IdleTimeout,
                ProviderLost,
                Unacknowledged,
            ];
            for r in reasons {
                same_json(&r, &EndReasonSchema::from(r));
            }
            for p in [PortPurpose::Ssh, PortPurpose::Jupyter, PortPurpose::Tcp] {
                same_json(&p, &PortPurposeSchema::from(p));
            }
            for i in [Isolation::Container, Isolation::Unisolated] {
                same_json(&i, &IsolationSchema::from(i));
            }
            for c in Capability::ALL {
                same_json(&c, &CapabilitySchema::from(c));
                assert_eq!(
                    serde_json::to_value(c).unwrap(),
                    c.name(),
                    "the kernel's name"
                );
                assert_eq!(c.name().parse::<Capability>(), Ok(c));
            }
            let i = Interruptible {
                price_per_gpu_hour: Qu(5),
                notice_secs: 60,
            };
            same_json(&i, &InterruptibleSchema::from(i));
        }

        #[test]
        fn every_mirrored_type_is_a_named_component() {
            let mut out = Vec::new();
            <Offer as ToSchema>::schemas(&mut out);
            let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
            for name in [
                "NodeId",
                "OfferId",
                "GpuSpec",
                "Version",
                "PcieLink",
                "Location",
                "Qu",
                "UnixMillis",
            ] {
                assert!(names.contains(&name), "{name} missing from {names:?}");
            }
        }
    }
}

#[cfg(test)]
mod progress_tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::Progress;
    use crate::control::PullSummary;

    #[test]
    fn pull_figures_reach_the_api_progress() {
        let pull = PullSummary {
            layers_done: 2,
            layers_total: 5,
            bytes_done: 30_000_000,
            bytes_total: Some(120_000_000),
            complete: false,
        };
        let p = Progress::pulling("pytorch/pytorch:2.3", &pull);
        assert_eq!(p.phase, "pulling");
        assert_eq!(
            p.detail,
            "pulling pytorch/pytorch:2.3: layers 2/5, 30.0 of 120.0 MB"
        );
        assert_eq!((p.done, p.total), (Some(30_000_000), Some(120_000_000)));
        assert_eq!((p.layers_done, p.layers_total), (Some(2), Some(5)));
    }

    #[test]
    fn progress_without_layer_figures_still_decodes() {
        // What nodes sent before layers were counted.
        let old = r#"{"phase":"paying","detail":"paying window 1","done":null,"total":null}"#;
        let p: Progress = serde_json::from_str(old).unwrap();
        assert_eq!(p, Progress::text("paying", "paying window 1"));
    }
}
