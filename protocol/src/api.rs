//! JSON types of the gateway's REST and WebSocket API (`/api/v1`), shared by the gateway,
//! which serves them, and the SDK, which reads them. Amounts are whole QU; times are unix
//! milliseconds; ids are strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::amount::Qu;
use crate::control::{EndReason, JobState};
use crate::ids::{AgreementId, NodeId, OfferId};
use crate::job::{PortPurpose, PortRequest};
use crate::offer::Offer;
use crate::time::UnixMillis;

/// Every error response: `{ "error": { "code", "message", "field"? } }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// The error.
    pub error: ApiErrorBody,
}

/// The body of an error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        Self { error: ApiErrorBody { code, message: message.into(), field: None } }
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
            Some(field) => write!(f, "{} ({field}): {}", self.error.code.as_str(), self.error.message),
            None => write!(f, "{}: {}", self.error.code.as_str(), self.error.message),
        }
    }
}

/// Machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
            Self::NoMatch | Self::ProviderRefused => 422,
            Self::Unavailable => 503,
            Self::Timeout => 504,
            Self::Internal => 500,
        }
    }
}

/// `GET /api/v1/health` (public).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` when the node runs.
    pub status: String,
    /// The node's version.
    pub version: String,
}

/// `GET /api/v1/node`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferView {
    /// The verified offer.
    pub offer: Offer,
    /// Provider reliability 0..1 from this node's receipts; `None` when there is no record.
    pub reliability: Option<f64>,
}

/// `GET /api/v1/offers` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// The query to explain.
    pub q: String,
}

/// One GPU of this node, as `GET /api/v1/gpus` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpusView {
    /// `nvml`, `simulated` or `none`.
    pub probe: String,
    /// Why no GPU was found, when none was.
    pub reason: Option<String>,
    /// The GPUs.
    pub gpus: Vec<GpuInfo>,
}

/// `POST /api/v1/instances` body: rent GPUs and run a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchRequest {
    /// The offer to rent; or give `query` and the cheapest match is used.
    #[serde(default)]
    pub offer_id: Option<OfferId>,
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
}

/// How to reach one published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Phase: `negotiating`, `paying`, `pulling`, `starting`.
    pub phase: String,
    /// Detail for a person.
    pub detail: String,
    /// Bytes done, when known.
    pub done: Option<u64>,
    /// Bytes in total, when known.
    pub total: Option<u64>,
}

/// An instance: a job this node rented, as its consumer sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When it was written.
    pub at: UnixMillis,
    /// Where from.
    pub stream: LogStream,
    /// The text, without the newline.
    pub line: String,
}

/// A message on a log stream (WebSocket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    /// Account name, e.g. `available`, `escrow/<agreement>`.
    pub account: String,
    /// Signed change in QU (debits positive).
    pub delta: i64,
}

/// `GET /api/v1/ledger/entries` item: one balanced transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// `GET /api/v1/wallet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    /// Destination Qubic identity.
    pub to: String,
    /// Amount.
    pub amount: Qu,
}

/// A transfer the node signed and is confirming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// Messages on `GET /api/v1/events` (WebSocket).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An offer appeared or changed.
    OfferUpdated {
        /// The offer.
        offer: OfferView,
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
