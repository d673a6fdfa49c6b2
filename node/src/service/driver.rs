//! The consumer's driver of one rented instance: a task that pays the prepaid windows (the
//! first before anything runs, then top-ups before paid time runs out), repeats each
//! payment notice until the provider's status shows the credit, polls the provider's
//! status, logs and metrics over `job/2`, countersigns the usage reports its meter accepts,
//! and reports everything back to the service. Decisions about money and time are the
//! meter's (`jobs::usage`); the driver performs them.

use std::time::Duration;

use libp2p::PeerId;
use qubix_ledger::qubic::Identity;
use qubix_ledger::settle::{PaymentPurpose, QubicSettlement, Settlement};
use qubix_protocol::api::{ErrorCode, LogLine, LogStream, Progress};
use qubix_protocol::billing::{Receipt, UsageReport};
use qubix_protocol::control::{
    JobAction, JobControl, JobErrorCode, JobMessage, JobReply, JobStatus, LOG_PAGE_MAX,
    METRICS_PAGE_MAX, PullSummary,
};
use qubix_protocol::topics::Network;
use qubix_protocol::{AgreementId, Envelope, NodeId, Nonce, Qu, Signed, UnixMillis};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::instances::InstanceFeeds;
use super::{Internal, ServiceError};
use crate::jobs::books::system_line;
use crate::jobs::usage::ConsumerMeter;
use crate::keys::NodeKey;
use crate::network::NetworkHandle;
use crate::store::WindowPayment;

/// How often the driver asks the provider for status and logs.
const POLL: Duration = Duration::from_secs(1);
/// How long a provider may stay silent before the instance counts as lost.
const PROVIDER_SILENCE: Duration = Duration::from_secs(30);
/// How long a window's payment may take to become final.
const PAYMENT_FINAL_WITHIN: Duration = Duration::from_secs(180);

/// Who the driver talks to, and as whom.
#[derive(Clone)]
pub(super) struct Link {
    pub(super) provider: NodeId,
    pub(super) key: NodeKey,
    pub(super) network: Network,
    pub(super) net: NetworkHandle,
}

impl Link {
    fn peer(&self) -> PeerId {
        self.provider.to_peer_id()
    }

    async fn ask(&self, message: JobMessage) -> Option<JobReply> {
        self.net.job(self.peer(), message).await.ok()
    }
}

/// How the driver pays.
pub(super) struct Wallet {
    pub(super) settlement: Option<QubicSettlement>,
    pub(super) pay_to: Option<Identity>,
}

/// A window's payment on its way to being final.
pub(super) struct Paying {
    window: u32,
    amount: Qu,
    task: tokio::task::JoinHandle<
        Result<qubix_ledger::settle::FinalTransfer, qubix_ledger::settle::SettlementError>,
    >,
}

impl Drop for Paying {
    /// A driver that stops stops waiting (the settlement still finishes the transfer, and
    /// the next start records it).
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One instance's driver.
pub(super) struct Driver {
    pub(super) id: AgreementId,
    pub(super) link: Link,
    pub(super) wallet: Wallet,
    pub(super) meter: ConsumerMeter,
    /// Payments whose credit the provider's status does not show yet.
    pub(super) unconfirmed: Vec<WindowPayment>,
    /// The window being paid, if one is.
    pub(super) paying: Option<Paying>,
    pub(super) image: String,
    pub(super) feeds: InstanceFeeds,
    pub(super) internal: mpsc::Sender<Internal>,
    /// A rogue consumer's misbehaviours (hostile test suite only).
    #[cfg(feature = "rogue")]
    pub(super) rogue: crate::rogue::RogueConfig,
}

fn signed_control(
    key: &NodeKey,
    network: &Network,
    id: AgreementId,
    action: JobAction,
) -> Result<JobMessage, ServiceError> {
    let control = JobControl {
        agreement_id: id,
        consumer: key.node_id(),
        action,
        nonce: Nonce::random(),
        issued_at: UnixMillis::now(),
    };
    let signed = Signed::sign(control, key.signing_key(), network)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(JobMessage::Control(signed.envelope().clone()))
}

/// Sends a signed control request and returns the provider's status.
pub(crate) async fn control(
    net: &NetworkHandle,
    network: &Network,
    key: &NodeKey,
    provider: PeerId,
    id: AgreementId,
    action: JobAction,
) -> Result<JobStatus, ServiceError> {
    let message = signed_control(key, network, id, action)?;
    match net.job(provider, message).await.map_err(|e| {
        ServiceError::Api(
            ErrorCode::Unavailable,
            format!("provider unreachable: {e}"),
            None,
        )
    })? {
        JobReply::Status(status) => Ok(status),
        JobReply::Error(code) => Err(ServiceError::Api(
            match code {
                JobErrorCode::UnknownJob => ErrorCode::NotFound,
                JobErrorCode::NotYourJob | JobErrorCode::Refused => ErrorCode::Forbidden,
                JobErrorCode::WrongState => ErrorCode::WrongState,
                JobErrorCode::Failed | JobErrorCode::RateLimited => ErrorCode::Unavailable,
            },
            format!("the provider refused: {code}"),
            None,
        )),
        _ => Err(ServiceError::Internal("unexpected job reply".into())),
    }
}

/// A line from a stranger made safe for a terminal: control characters (escape sequences
/// among them) are shown as `\u{..}` escapes, and the line is cut at 16 KiB.
pub(crate) fn terminal_safe(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(crate::runtime::MAX_LOG_LINE_BYTES));
    for c in line.chars() {
        if out.len() >= crate::runtime::MAX_LOG_LINE_BYTES {
            out.push('…');
            break;
        }
        if c.is_control() && c != '\t' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

impl Driver {
    async fn report(&self, message: Internal) {
        let _ = self.internal.send(message).await;
    }

    async fn progress(&self, phase: &str, detail: String) {
        let progress = Progress::text(phase, detail);
        self.report(Internal::Progress {
            id: self.id,
            progress,
        })
        .await;
    }

    /// While the provider pulls the image: its layer and byte figures, when they changed.
    async fn follow_pull(&self, last: &mut Option<PullSummary>) {
        let request = JobMessage::PullProgress {
            agreement_id: self.id,
        };
        let Some(JobReply::PullProgress(Some(pull))) = self.link.ask(request).await else {
            return;
        };
        if *last != Some(pull) {
            *last = Some(pull);
            let progress = Progress::pulling(&self.image, &pull);
            self.report(Internal::Progress {
                id: self.id,
                progress,
            })
            .await;
        }
    }

    /// Pays the next window when the meter says it is due, in a task, so polls and receipts
    /// go on while the chain confirms it; once it is final, notices the provider.
    async fn top_up_if_due(&mut self) {
        if let Some(paying) = self.paying.take() {
            if !paying.task.is_finished() {
                self.paying = Some(paying);
                return;
            }
            return self.paid(paying).await;
        }
        let Some((window, amount)) = self.meter.top_up_due() else {
            return;
        };
        let (Some(settlement), Some(to)) = (&self.wallet.settlement, &self.wallet.pay_to) else {
            let why = "this node has no working wallet connection; the job cannot be paid";
            return self.progress("paying", why.into()).await;
        };
        let detail = format!("paying window {} ({amount}) to the provider", window + 1);
        self.progress("paying", detail).await;
        let purpose = PaymentPurpose::Window {
            agreement: self.id,
            window,
        };
        let (settlement, to) = (settlement.clone(), to.clone());
        let task = tokio::spawn(async move {
            let transfer = settlement.pay(&to, amount, purpose).await?;
            settlement.wait_final(&transfer, PAYMENT_FINAL_WITHIN).await
        });
        self.paying = Some(Paying {
            window,
            amount,
            task,
        });
    }

    /// A window's payment task ended: final (counted, reported, noticed) or failed (tried
    /// again at the next poll, under the same purpose: never paid twice).
    async fn paid(&mut self, mut paying: Paying) {
        let (window, amount) = (paying.window, paying.amount);
        let result = match (&mut paying.task).await {
            Ok(result) => result,
            Err(e) => return warn!(instance = %self.id, error = %e, "payment task failed"),
        };
        match result {
            Ok(done) => {
                self.meter.paid(done.amount);
                let payment = WindowPayment {
                    window,
                    tx_id: done.tx_id.to_string(),
                };
                self.unconfirmed.push(payment);
                let detail = format!("window {} paid ({amount}, tick {})", window + 1, done.tick);
                self.report(Internal::ConsumerPaid {
                    id: self.id,
                    window,
                    transfer: done,
                })
                .await;
                self.notify_payments().await;
                self.progress("paid", detail).await;
            }
            Err(e) => {
                warn!(instance = %self.id, error = %e, "payment failed");
                self.progress("paying", format!("payment failed: {e}"))
                    .await;
            }
        }
    }

    /// Tells the provider about every payment its status does not show yet.
    async fn notify_payments(&self) {
        for p in &self.unconfirmed {
            let notice = JobMessage::Paid {
                agreement_id: self.id,
                window: p.window,
                tx_id: p.tx_id.clone(),
            };
            if self.link.ask(notice).await.is_none() {
                info!(instance = %self.id, window = p.window, "payment notice not delivered; it is sent again");
            }
        }
    }

    /// After a status: payments the provider shows are confirmed; the others are sent again.
    async fn confirm_payments(&mut self, status: &JobStatus) {
        if status.paid >= self.meter.paid {
            self.unconfirmed.clear();
        } else if !self.unconfirmed.is_empty() {
            self.notify_payments().await;
        }
    }

    async fn pull_logs(&self, after: &mut u64) {
        let request = JobMessage::Logs {
            agreement_id: self.id,
            after: *after,
            max: LOG_PAGE_MAX,
        };
        let Some(JobReply::Logs { lines, dropped }) = self.link.ask(request).await else {
            return;
        };
        if dropped > 0 {
            self.feeds.logs.push(LogLine {
                at: UnixMillis::now(),
                stream: LogStream::System,
                line: format!("… {dropped} lines dropped by the provider's buffer"),
            });
        }
        for (seq, mut line) in lines {
            *after = seq;
            line.line = terminal_safe(&line.line);
            self.feeds.logs.push(line);
        }
    }

    async fn pull_metrics(&self, after: &mut u64) {
        let request = JobMessage::Metrics {
            agreement_id: self.id,
            after: *after,
            max: METRICS_PAGE_MAX,
        };
        if let Some(JobReply::Metrics { samples }) = self.link.ask(request).await {
            for (seq, sample) in samples {
                *after = seq;
                self.feeds.metrics.push(sample);
            }
        }
    }

    /// Fetches the provider's signed usage report and countersigns it when the meter
    /// accepts it; either way the service keeps the report.
    async fn settle_usage(&mut self) {
        let query = JobMessage::UsageQuery {
            agreement_id: self.id,
        };
        let Some(JobReply::Usage(envelope)) = self.link.ask(query).await else {
            return;
        };
        let opened = envelope.open_from::<UsageReport>(&self.link.network, &self.link.provider);
        let Ok(report) = opened else {
            warn!(instance = %self.id, "usage report with a bad signature: not acknowledged");
            return;
        };
        #[cfg(feature = "rogue")]
        if self.rogue.withhold_receipts {
            return;
        }
        let receipt = match self.meter.judge(report.payload()) {
            Ok(()) => self.countersign(report.payload()).await,
            Err(why) => {
                warn!(instance = %self.id, reason = %why, "usage report not acknowledged");
                None
            }
        };
        self.report(Internal::Usage {
            id: self.id,
            report: envelope,
            receipt,
        })
        .await;
    }

    /// Signs and sends a receipt for `r`; the receipt, once the provider took it.
    async fn countersign(&mut self, r: &UsageReport) -> Option<Envelope> {
        let receipt = Receipt {
            agreement_id: self.id,
            consumer: self.link.key.node_id(),
            report_sequence: r.sequence,
            billable_millis: r.billable_millis,
            amount: r.amount_due,
            issued_at: UnixMillis::now(),
        };
        let signed = Signed::sign(receipt, self.link.key.signing_key(), &self.link.network).ok()?;
        let message = JobMessage::Receipt(signed.envelope().clone());
        match self.link.ask(message).await {
            Some(JobReply::Status(_)) => {
                self.meter.acknowledge(r);
                Some(signed.envelope().clone())
            }
            _ => None,
        }
    }

    pub(super) async fn run(mut self, cancel: CancellationToken) {
        let (mut log_seq, mut metric_seq) = (0u64, 0u64);
        let mut last_pull = None;
        let mut last_heard = tokio::time::Instant::now();
        let mut settled = tokio::time::Instant::now();
        let mut poll = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                _ = poll.tick() => {}
            }
            self.top_up_if_due().await;
            let link = &self.link;
            let asked = control(
                &link.net,
                &link.network,
                &link.key,
                link.peer(),
                self.id,
                JobAction::Status,
            )
            .await;
            let status = match asked {
                Ok(status) => status,
                Err(e) if last_heard.elapsed() > PROVIDER_SILENCE => {
                    warn!(instance = %self.id, error = %e, "provider lost");
                    let line = format!("the provider stopped answering: {e}");
                    system_line(&self.feeds.logs, line);
                    return self.report(Internal::ProviderLost { id: self.id }).await;
                }
                Err(_) => continue,
            };
            last_heard = tokio::time::Instant::now();
            self.meter.observe(status.state, UnixMillis::now());
            self.confirm_payments(&status).await;
            self.pull_logs(&mut log_seq).await;
            self.pull_metrics(&mut metric_seq).await;
            let done = status.state.is_final();
            if done || settled.elapsed() >= self.meter.settle_every() {
                settled = tokio::time::Instant::now();
                self.settle_usage().await;
            }
            let pulling = status.state == qubix_protocol::control::JobState::Pulling;
            self.report(Internal::Status {
                id: self.id,
                status,
            })
            .await;
            // After the status: a new state clears the progress it reported.
            if pulling {
                self.follow_pull(&mut last_pull).await;
            }
            if done {
                // The final receipt is in (or was refused): close the books.
                return self.report(Internal::InstanceEnded { id: self.id }).await;
            }
        }
    }
}

/// Milliseconds and amount of the receipt inside `evidence`, if it opens.
pub(super) fn receipt_figures(
    evidence: Option<&(Envelope, Envelope)>,
    network: &Network,
) -> Option<(u64, Qu, UnixMillis)> {
    let (_, receipt) = evidence?;
    let r = receipt.open::<Receipt>(network).ok()?;
    let p = r.payload();
    Some((p.billable_millis, p.amount, p.issued_at))
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn escape_sequences_from_a_provider_never_reach_a_terminal() {
        let line = "ok \u{1b}]0;owned\u{7}\u{1b}[2J tab\tend\r\n";
        let safe = terminal_safe(line);
        assert!(
            !safe.chars().any(|c| c.is_control() && c != '\t'),
            "{safe:?}"
        );
        assert!(safe.starts_with("ok \\u{1b}]0;owned\\u{7}"), "{safe}");
        assert!(safe.contains("tab\tend"));
        let long = "x".repeat(100_000);
        assert!(terminal_safe(&long).len() <= crate::runtime::MAX_LOG_LINE_BYTES + 4);
    }
}
