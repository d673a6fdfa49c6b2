//! Job control on `/qubix/<network>/job/1`: the consumer's signed [`JobControl`] requests,
//! the lifecycle [`JobState`], the provider's [`JobStatus`] answers and, while an image is
//! pulled, its [`PullSummary`]. Heartbeats ride on
//! the same protocol so a dead provider can be detected and, later, failed over.

use serde::{Deserialize, Serialize};

use crate::api::{LogLine, MetricsSample};
use crate::codec::WireMessage;
use crate::ids::{AgreementId, NodeId, Nonce};
use crate::job::PortPurpose;
use crate::signed::{Authored, Envelope};
use crate::time::UnixMillis;

/// The lifecycle of a job (persisted by both nodes).
///
/// `Negotiated → Funded → Pulling → Running ⇄ Stopped → Terminated | Completed | Failed`.
/// `Migrating` is reserved for failover to a standby provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Both sides signed; not yet paid.
    Negotiated,
    /// The first window is paid and confirmed.
    Funded,
    /// The image is being pulled.
    Pulling,
    /// The container runs.
    Running,
    /// The container is stopped; its data is kept.
    Stopped,
    /// Moving to a standby provider (reserved).
    Migrating,
    /// Ended by the consumer, the provider's policy, or non-payment.
    Terminated,
    /// The container exited with status 0.
    Completed,
    /// It could not run, or exited non-zero, or was killed.
    Failed,
}

impl JobState {
    /// Whether no further transition is possible.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Terminated | Self::Completed | Self::Failed)
    }

    /// Whether the provider bills for time in this state: only while the container runs.
    /// An image pull is the provider's own cost, and how long it takes is the provider's
    /// word alone.
    pub fn is_billable(self) -> bool {
        matches!(self, Self::Running)
    }

    /// Lower-case name, as the API and console show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Negotiated => "negotiated",
            Self::Funded => "funded",
            Self::Pulling => "pulling",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Migrating => "migrating",
            Self::Terminated => "terminated",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// What the consumer asks the provider to do with a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobAction {
    /// Report the job's status.
    Status,
    /// Stop the container, keeping its data.
    Stop,
    /// Start a stopped container.
    Start,
    /// Restart the container.
    Restart,
    /// Remove the container and its data, and end billing.
    Terminate,
    /// Liveness probe; answered with the status.
    Heartbeat,
}

/// A consumer's signed control request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobControl {
    /// The job.
    pub agreement_id: AgreementId,
    /// The consumer; must be the signer and the agreement's consumer.
    pub consumer: NodeId,
    /// What to do.
    pub action: JobAction,
    /// Single-use value against replay.
    pub nonce: Nonce,
    /// When it was signed.
    pub issued_at: UnixMillis,
}

impl WireMessage for JobControl {
    const TAG: &'static str = "job-control/";
    const MAX_SIZE: usize = 256;
}

impl Authored for JobControl {
    fn author(&self) -> NodeId {
        self.consumer
    }
}

/// Why a job failed or ended (codes, no internal text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The consumer terminated it.
    ConsumerTerminated,
    /// The rental's duration ran out.
    DurationElapsed,
    /// A top-up was not confirmed within the grace period.
    Unpaid,
    /// The image could not be pulled.
    ImagePullFailed,
    /// The container could not be created or started.
    StartFailed,
    /// The process exited non-zero.
    NonZeroExit,
    /// The process was killed for exceeding its memory limit.
    OutOfMemory,
    /// The container disappeared outside the node's control.
    ContainerLost,
    /// The provider's idle policy ended a stopped job.
    IdleTimeout,
    /// The provider stopped answering.
    ProviderLost,
    /// The consumer did not acknowledge the usage it was billed for (no receipts) within
    /// the grace period.
    Unacknowledged,
}

/// A published port as the consumer reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedPort {
    /// Port inside the container.
    pub container_port: u16,
    /// Host address the provider announced.
    pub host: String,
    /// Port on that host.
    pub host_port: u16,
    /// What it serves.
    pub purpose: PortPurpose,
}

/// A provider's view of a job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job.
    pub agreement_id: AgreementId,
    /// Where it is in its lifecycle.
    pub state: JobState,
    /// Exit code when the process ended.
    pub exit_code: Option<i64>,
    /// Why it ended, when it did.
    pub reason: Option<EndReason>,
    /// Published ports.
    pub ports: Vec<PublishedPort>,
    /// When the state last changed.
    pub since: UnixMillis,
    /// What the provider has credited to the job: payments its Qubic RPC showed as executed, in total.
    /// The consumer resends a payment notice until this shows it.
    pub paid: crate::amount::Qu,
    /// The provider's refunds of unused paid time, once each transfer is final (Qubic
    /// transaction ids the consumer verifies on chain before recording them); at most
    /// [`MAX_REFUNDS_LISTED`], oldest first.
    pub refunds: Vec<String>,
}

/// The most refunds one [`JobStatus`] lists.
pub const MAX_REFUNDS_LISTED: usize = 16;

/// Requests on `/qubix/<network>/job/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobMessage {
    /// A signed [`JobControl`].
    Control(Envelope),
    /// A signed [`crate::billing::Receipt`] for the latest usage report.
    Receipt(Envelope),
    /// The consumer paid a window: the Qubic transaction id to confirm.
    Paid {
        /// The job.
        agreement_id: AgreementId,
        /// The window paid, from 0 (the first; later ones are top-ups).
        window: u32,
        /// Qubic transaction id (60 lower-case letters).
        tx_id: String,
    },
    /// Log lines after sequence number `after` (the peer must be the job's consumer).
    Logs {
        /// The job.
        agreement_id: AgreementId,
        /// Return lines with a higher sequence number.
        after: u64,
        /// At most this many lines.
        max: u16,
    },
    /// Asks for a signed usage report of the job, to countersign as a receipt.
    UsageQuery {
        /// The job.
        agreement_id: AgreementId,
    },
    /// Metrics samples after sequence number `after`.
    Metrics {
        /// The job.
        agreement_id: AgreementId,
        /// Return samples with a higher sequence number.
        after: u64,
        /// At most this many samples.
        max: u16,
    },
    /// How far the job's image pull has come (asked while the job is `Pulling`). Added
    /// after the others, so their encodings are unchanged; a provider that predates it
    /// cannot decode it and the consumer goes without the figures.
    PullProgress {
        /// The job.
        agreement_id: AgreementId,
    },
}

/// The most log lines in one [`JobReply::Logs`].
pub const LOG_PAGE_MAX: u16 = 500;
/// The most metrics samples in one [`JobReply::Metrics`].
pub const METRICS_PAGE_MAX: u16 = 120;

impl WireMessage for JobMessage {
    const TAG: &'static str = "job-message/";
    const MAX_SIZE: usize = 1024;
}

/// Codes a provider answers a job request with when it cannot act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobErrorCode {
    /// No job with that agreement id.
    UnknownJob,
    /// The signer is not the agreement's consumer.
    NotYourJob,
    /// The action is not possible in the job's state.
    WrongState,
    /// Bad signature, replayed nonce or stale request.
    Refused,
    /// The provider could not complete the action; the status says what happened.
    Failed,
    /// Too many requests from this peer; retry shortly.
    RateLimited,
}

impl std::fmt::Display for JobErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::UnknownJob => "the provider has no such job",
            Self::NotYourJob => "the job belongs to another consumer",
            Self::WrongState => "the action is not possible in the job's state",
            Self::Refused => "the request was refused (bad signature, replay or stale)",
            Self::Failed => "the provider could not complete the action",
            Self::RateLimited => "the provider is receiving too many requests from this node",
        })
    }
}

/// Responses on `/qubix/<network>/job/1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum JobReply {
    /// The job's status after the request.
    Status(JobStatus),
    /// A signed usage report answering a receipt or payment notice.
    Usage(Envelope),
    /// The request was refused.
    Error(JobErrorCode),
    /// Log lines, oldest first, each with its sequence number.
    Logs {
        /// The lines.
        lines: Vec<(u64, LogLine)>,
        /// Lines that fell out of the provider's buffer before they were read.
        dropped: u64,
    },
    /// Metrics samples, oldest first, each with its sequence number.
    Metrics {
        /// The samples.
        samples: Vec<(u64, MetricsSample)>,
    },
    /// The job's image pull; `None` before the pull began.
    PullProgress(Option<PullSummary>),
}

/// An image pull as the provider's engine reports it, folded into a few figures whatever
/// the number of layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PullSummary {
    /// Layers fully pulled or already present.
    pub layers_done: u32,
    /// Layers of the image seen so far.
    pub layers_total: u32,
    /// Bytes downloaded so far.
    pub bytes_done: u64,
    /// Bytes to download; `None` while some layer's size is still unknown.
    pub bytes_total: Option<u64>,
    /// The image is present and the pull over.
    pub complete: bool,
}

impl std::fmt::Display for PullSummary {
    /// `layers 3/7, 12.5 of 48.0 MB`, `layers 1/4, 2.0 MB so far`, or
    /// `image present on the provider` when nothing had to be downloaded.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.complete && self.layers_total == 0 {
            return f.write_str("image present on the provider");
        }
        let total = self.layers_total.max(self.layers_done);
        write!(f, "layers {}/{total}, ", self.layers_done)?;
        let mb = |bytes: u64| bytes as f64 / 1_000_000.0;
        match self.bytes_total {
            Some(all) => write!(
                f,
                "{:.1} of {:.1} MB",
                mb(self.bytes_done.min(all)),
                mb(all)
            ),
            None => write!(f, "{:.1} MB so far", mb(self.bytes_done)),
        }
    }
}

impl WireMessage for JobReply {
    const TAG: &'static str = "job-reply/";
    const MAX_SIZE: usize = 1024 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(done: u32, total: u32, bytes: u64, of: Option<u64>) -> PullSummary {
        PullSummary {
            layers_done: done,
            layers_total: total,
            bytes_done: bytes,
            bytes_total: of,
            complete: false,
        }
    }

    #[test]
    fn pull_summaries_read_as_layers_and_megabytes() {
        let cases = [
            (
                pull(3, 7, 12_500_000, Some(48_000_000)),
                "layers 3/7, 12.5 of 48.0 MB",
            ),
            (pull(1, 4, 2_000_000, None), "layers 1/4, 2.0 MB so far"),
            (pull(0, 0, 0, None), "layers 0/0, 0.0 MB so far"),
            // A peer's odd figures never read as more done than there is.
            (
                pull(5, 2, 9_000_000, Some(1_000_000)),
                "layers 5/5, 1.0 of 1.0 MB",
            ),
        ];
        for (summary, text) in cases {
            assert_eq!(summary.to_string(), text);
        }
        let present = PullSummary {
            complete: true,
            ..pull(0, 0, 0, None)
        };
        assert_eq!(present.to_string(), "image present on the provider");
    }
}
