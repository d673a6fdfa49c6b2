//! The consumer's side of jobs: for each rented instance a driver task pays the prepaid
//! windows (the first before anything runs, then top-ups before paid time runs out), polls
//! the provider's status, logs and metrics over `job/1`, and reports back to the service,
//! which keeps the record and the API's live feeds. Control actions are signed requests.

use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use qubix_ledger::qubic::Identity;
use qubix_ledger::settle::{PaymentPurpose, QubicSettlement, Settlement};
use qubix_protocol::api::{Connection, ErrorCode, Event, Instance, LogLine, LogStream, Progress};
use qubix_protocol::billing::{Receipt, UsageReport};
use qubix_protocol::control::{
    EndReason, JobAction, JobControl, JobErrorCode, JobMessage, JobReply, JobState, JobStatus,
    LOG_PAGE_MAX, METRICS_PAGE_MAX, PullSummary,
};
use qubix_protocol::job::PortPurpose;
use qubix_protocol::topics::Network;
use qubix_protocol::{AgreementId, NodeId, Nonce, Qu, Signed, UnixMillis};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Internal, Service, ServiceError};
use crate::jobs::books::{Book, LOG_LINES, METRICS_SAMPLES, system_line};
use crate::jobs::{LogBook, MetricsBook};
use crate::keys::NodeKey;
use crate::network::NetworkHandle;
use crate::store::Role;

/// How often the driver asks the provider for status and logs.
const POLL: Duration = Duration::from_secs(1);
/// How long a provider may stay silent before the instance counts as lost.
const PROVIDER_SILENCE: Duration = Duration::from_secs(30);

/// The consumer's live buffers of one instance.
#[derive(Debug, Clone)]
pub(crate) struct InstanceFeeds {
    pub(crate) logs: Arc<LogBook>,
    pub(crate) metrics: Arc<MetricsBook>,
}

struct Driver {
    id: AgreementId,
    provider: PeerId,
    key: NodeKey,
    network: Network,
    net: NetworkHandle,
    settlement: Option<QubicSettlement>,
    pay_to: Option<Identity>,
    price: Qu,
    gpus: u32,
    budget: Qu,
    window: Qu,
    paid: Qu,
    used_ms: u64,
    acknowledged_ms: u64,
    last_state: Option<(JobState, UnixMillis)>,
    image: String,
    last_pull: Option<PullSummary>,
    feeds: InstanceFeeds,
    internal: mpsc::Sender<Internal>,
}

pub(crate) fn connection_of(p: &qubix_protocol::control::PublishedPort) -> Connection {
    let hint = match p.purpose {
        PortPurpose::Ssh => format!("ssh -p {} root@{}", p.host_port, p.host),
        PortPurpose::Jupyter => format!("http://{}:{}/", p.host, p.host_port),
        PortPurpose::Tcp => format!("{}:{}", p.host, p.host_port),
    };
    Connection {
        container_port: p.container_port,
        purpose: p.purpose,
        host: p.host.clone(),
        port: p.host_port,
        hint,
    }
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

impl Driver {
    async fn progress(&self, phase: &str, detail: String) {
        self.report_progress(Progress::text(phase, detail)).await;
    }

    async fn report_progress(&self, progress: Progress) {
        let _ = self
            .internal
            .send(Internal::Progress {
                id: self.id,
                progress,
            })
            .await;
    }

    /// While the provider pulls the image: its layer and byte figures, when they changed.
    /// A provider that predates pull figures answers nothing decodable; the instance then
    /// shows only its state.
    async fn follow_pull(&mut self) {
        let request = JobMessage::PullProgress {
            agreement_id: self.id,
        };
        let Ok(JobReply::PullProgress(Some(pull))) = self.net.job(self.provider, request).await
        else {
            return;
        };
        if self.last_pull != Some(pull) {
            self.last_pull = Some(pull);
            self.report_progress(Progress::pulling(&self.image, &pull))
                .await;
        }
    }

    fn paid_ms(&self) -> u64 {
        self.paid_ms_for(self.paid)
    }

    /// Pays the next window when less than half a window of paid time is left.
    async fn top_up_if_due(&mut self) {
        let window_ms = self.paid_ms_for(self.window);
        let left = self.paid_ms().saturating_sub(self.used_ms);
        if self.paid >= self.budget || (self.paid > Qu::ZERO && left > window_ms / 2) {
            return;
        }
        let (Some(settlement), Some(to)) = (self.settlement.clone(), self.pay_to.clone()) else {
            self.progress(
                "paying",
                "this node has no working wallet connection; the job cannot be paid".into(),
            )
            .await;
            return;
        };
        let amount = self.window.min(self.budget.saturating_sub(self.paid));
        let window =
            u32::try_from(self.paid.0.checked_div(self.window.0).unwrap_or(0)).unwrap_or(u32::MAX);
        self.progress(
            "paying",
            format!("paying window {} ({amount}) to the provider", window + 1),
        )
        .await;
        let result = async {
            let transfer = settlement
                .pay(
                    &to,
                    amount,
                    PaymentPurpose::Window {
                        agreement: self.id,
                        window,
                    },
                )
                .await?;
            settlement
                .wait_final(&transfer, Duration::from_secs(180))
                .await
        }
        .await;
        match result {
            Ok(done) => {
                self.paid = self.paid.checked_add(done.amount).unwrap_or(self.paid);
                let _ = self
                    .internal
                    .send(Internal::ConsumerPaid {
                        id: self.id,
                        window,
                        transfer: done.clone(),
                    })
                    .await;
                let paid = JobMessage::Paid {
                    agreement_id: self.id,
                    window,
                    tx_id: done.tx_id.to_string(),
                };
                if let Err(e) = self.net.job(self.provider, paid).await {
                    warn!(instance = %self.id, error = %e, "could not tell the provider about the payment; it will see it on the next poll");
                }
                self.progress(
                    "paid",
                    format!("window {} paid ({amount}, tick {})", window + 1, done.tick),
                )
                .await;
            }
            Err(e) => {
                warn!(instance = %self.id, error = %e, "payment failed");
                self.progress("paying", format!("payment failed: {e}"))
                    .await;
            }
        }
    }

    fn paid_ms_for(&self, amount: Qu) -> u64 {
        let per_hour = u128::from(self.price.0) * u128::from(self.gpus);
        (u128::from(amount.0) * 3_600_000)
            .checked_div(per_hour)
            .map_or(u64::MAX, |ms| u64::try_from(ms).unwrap_or(u64::MAX))
    }

    fn observe(&mut self, status: &JobStatus, now: UnixMillis) {
        if let Some((state, at)) = self.last_state {
            if state.is_billable() {
                self.used_ms = self
                    .used_ms
                    .saturating_add(now.since(at).as_millis() as u64);
            }
        }
        self.last_state = Some((status.state, now));
    }

    async fn pull_logs(&mut self, after: &mut u64) {
        let request = JobMessage::Logs {
            agreement_id: self.id,
            after: *after,
            max: LOG_PAGE_MAX,
        };
        if let Ok(JobReply::Logs { lines, dropped }) = self.net.job(self.provider, request).await {
            if dropped > 0 {
                self.feeds.logs.push(LogLine {
                    at: UnixMillis::now(),
                    stream: LogStream::System,
                    line: format!("… {dropped} lines dropped by the provider's buffer"),
                });
            }
            for (seq, line) in lines {
                *after = seq;
                self.feeds.logs.push(line);
            }
        }
    }

    /// Fetches the provider's signed usage report, checks it against the terms and what
    /// this node saw, and countersigns it as a cumulative receipt.
    async fn settle_usage(&mut self) {
        let Ok(JobReply::Usage(envelope)) = self
            .net
            .job(
                self.provider,
                JobMessage::UsageQuery {
                    agreement_id: self.id,
                },
            )
            .await
        else {
            return;
        };
        let Ok(report) = envelope.open_from::<UsageReport>(
            &self.network,
            &NodeId::from_peer_id(&self.provider).unwrap_or_else(|_| self.key.node_id()),
        ) else {
            warn!(instance = %self.id, "usage report with a bad signature: not acknowledged");
            return;
        };
        let r = report.payload();
        let expected = self.price.cost_for(self.gpus, r.billable_millis).ok();
        // Allow 30 s of difference between what the provider billed and what this node saw.
        let plausible = r.agreement_id == self.id
            && expected == Some(r.amount_due)
            && r.billable_millis <= self.used_ms.saturating_add(30_000)
            && r.billable_millis >= self.acknowledged_ms;
        if !plausible {
            warn!(instance = %self.id, billed_ms = r.billable_millis, seen_ms = self.used_ms, "usage report does not match: not acknowledged");
            return;
        }
        let receipt = Receipt {
            agreement_id: self.id,
            consumer: self.key.node_id(),
            report_sequence: r.sequence,
            billable_millis: r.billable_millis,
            amount: r.amount_due,
            issued_at: UnixMillis::now(),
        };
        let Ok(signed) = Signed::sign(receipt, self.key.signing_key(), &self.network) else {
            return;
        };
        if let Ok(JobReply::Status(_)) = self
            .net
            .job(
                self.provider,
                JobMessage::Receipt(signed.envelope().clone()),
            )
            .await
        {
            self.acknowledged_ms = r.billable_millis;
            let _ = self
                .internal
                .send(Internal::Usage {
                    id: self.id,
                    spent: r.amount_due,
                    evidence: (envelope.clone(), signed.envelope().clone()),
                })
                .await;
        }
    }

    async fn pull_metrics(&mut self, after: &mut u64) {
        let request = JobMessage::Metrics {
            agreement_id: self.id,
            after: *after,
            max: METRICS_PAGE_MAX,
        };
        if let Ok(JobReply::Metrics { samples }) = self.net.job(self.provider, request).await {
            for (seq, sample) in samples {
                *after = seq;
                self.feeds.metrics.push(sample);
            }
        }
    }

    async fn run(mut self, cancel: CancellationToken) {
        let (mut log_seq, mut metric_seq, mut polls) = (0u64, 0u64, 0u64);
        let mut last_heard = tokio::time::Instant::now();
        let mut poll = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                _ = poll.tick() => {}
            }
            self.top_up_if_due().await;
            let status = control(
                &self.net,
                &self.network,
                &self.key,
                self.provider,
                self.id,
                JobAction::Status,
            )
            .await;
            match status {
                Ok(status) => {
                    last_heard = tokio::time::Instant::now();
                    self.observe(&status, UnixMillis::now());
                    self.pull_logs(&mut log_seq).await;
                    self.pull_metrics(&mut metric_seq).await;
                    polls += 1;
                    if polls % 5 == 0 || status.state.is_final() {
                        self.settle_usage().await;
                    }
                    let done = status.state.is_final();
                    let pulling = status.state == JobState::Pulling;
                    let _ = self
                        .internal
                        .send(Internal::Status {
                            id: self.id,
                            status,
                        })
                        .await;
                    // After the status: a new state clears the progress it reported.
                    if pulling {
                        self.follow_pull().await;
                    }
                    if done {
                        // The final receipt is in (or was refused): close the books.
                        let _ = self
                            .internal
                            .send(Internal::InstanceEnded { id: self.id })
                            .await;
                        return;
                    }
                }
                Err(e) if last_heard.elapsed() > PROVIDER_SILENCE => {
                    warn!(instance = %self.id, error = %e, "provider lost");
                    system_line(
                        &self.feeds.logs,
                        format!("the provider stopped answering: {e}"),
                    );
                    let _ = self
                        .internal
                        .send(Internal::ProviderLost { id: self.id })
                        .await;
                    return;
                }
                Err(_) => {}
            }
        }
    }
}

impl Service {
    /// The feeds of a consumer instance (created on first use).
    pub(crate) fn feeds(&mut self, id: AgreementId) -> InstanceFeeds {
        self.feeds
            .entry(id)
            .or_insert_with(|| InstanceFeeds {
                logs: Book::new(LOG_LINES),
                metrics: Book::new(METRICS_SAMPLES),
            })
            .clone()
    }

    /// Starts the driver of a consumer instance that is not over.
    pub(super) fn drive_instance(&mut self, id: AgreementId) {
        let Some(record) = self
            .jobs
            .get(&id)
            .filter(|j| j.role == Role::Consumer && !j.state.is_final())
        else {
            return;
        };
        let Ok(terms) = record.terms(&self.network_name) else {
            return;
        };
        let t = terms.payload().clone();
        let paid = record.paid;
        let feeds = self.feeds(id);
        let driver = Driver {
            id,
            provider: t.provider.to_peer_id(),
            key: self.key.clone(),
            network: self.network_name.clone(),
            net: self.net.clone(),
            settlement: self.settlement.clone(),
            pay_to: t.pay_to.parse().ok(),
            price: t.price_per_gpu_hour,
            gpus: t.gpus,
            budget: t.budget,
            window: t.window_cost(),
            paid,
            used_ms: 0,
            acknowledged_ms: 0,
            last_state: None,
            image: t
                .open_request(&self.network_name)
                .map(|r| r.payload().image.clone())
                .unwrap_or_default(),
            last_pull: None,
            feeds,
            internal: self.internal_tx.clone(),
        };
        self.spawn(driver.run(self.shutdown.child_token()));
    }

    /// Records what the provider said about an instance.
    pub(super) fn on_status(&mut self, id: AgreementId, status: JobStatus) {
        let Some(record) = self.jobs.get_mut(&id) else {
            return;
        };
        // A poll answered before an action's reply must not undo it: never leave a final
        // state, never go back to an older one.
        if (record.state.is_final() && !status.state.is_final()) || status.since < record.since {
            return;
        }
        let changed = record.state != status.state;
        if status.state == JobState::Running && record.started_at.is_none() {
            record.started_at = Some(UnixMillis::now());
        }
        record.state = status.state;
        record.since = status.since;
        record.reason = status.reason;
        record.exit_code = status.exit_code;
        record.ports = status.ports;
        if changed {
            info!(instance = %id, state = status.state.as_str(), "instance state");
            self.progress.remove(&id);
            let _ = self.events.send(Event::InstanceState {
                id,
                state: status.state,
            });
        }
        let record = record.clone();
        if changed && let Err(e) = self.store.put_job(&id, &record) {
            warn!(instance = %id, error = %e, "cannot persist instance");
        }
    }

    pub(super) fn on_provider_lost(&mut self, id: AgreementId) {
        let Some(record) = self.jobs.get_mut(&id) else {
            return;
        };
        record.state = JobState::Failed;
        record.reason = Some(EndReason::ProviderLost);
        record.since = UnixMillis::now();
        let record = record.clone();
        self.progress.remove(&id);
        let _ = self.store.put_job(&id, &record);
        let _ = self.events.send(Event::InstanceState {
            id,
            state: JobState::Failed,
        });
        self.close_instance(id);
    }

    pub(super) fn on_usage(
        &mut self,
        id: AgreementId,
        spent: Qu,
        evidence: (qubix_protocol::Envelope, qubix_protocol::Envelope),
    ) {
        let Some(record) = self.jobs.get_mut(&id) else {
            return;
        };
        record.spent = spent;
        record.evidence = Some(evidence.clone());
        let record = record.clone();
        let _ = self.store.put_job(&id, &record);
        self.book_receipt(id, &evidence.1);
    }

    pub(super) fn on_consumer_paid(
        &mut self,
        id: AgreementId,
        window: u32,
        transfer: &qubix_ledger::settle::FinalTransfer,
    ) {
        let Some(record) = self.jobs.get_mut(&id) else {
            return;
        };
        record.paid = record
            .paid
            .checked_add(transfer.amount)
            .unwrap_or(record.paid);
        let record = record.clone();
        let _ = self.store.put_job(&id, &record);
        self.book_window_paid(id, window, transfer);
    }

    pub(super) fn on_progress(&mut self, id: AgreementId, progress: Progress) {
        let _ = self.events.send(Event::InstanceProgress {
            id,
            progress: progress.clone(),
        });
        self.progress.insert(id, progress);
    }

    /// A stop/start/restart/terminate from the API: signed, sent, answered in a task.
    pub(super) fn act(
        &mut self,
        id: AgreementId,
        action: JobAction,
        reply: tokio::sync::oneshot::Sender<Result<Instance, ServiceError>>,
    ) {
        let Some(record) = self.jobs.get(&id).filter(|j| j.role == Role::Consumer) else {
            let _ = reply.send(Err(ServiceError::Api(
                ErrorCode::NotFound,
                format!("no instance {id}"),
                None,
            )));
            return;
        };
        if record.state.is_final() {
            // Terminating an instance that has already ended is a no-op that answers the
            // instance; anything else is a conflict the caller must hear about.
            let _ = reply.send(if action == JobAction::Terminate {
                self.instance_view(id)
            } else {
                Err(ServiceError::Api(
                    ErrorCode::WrongState,
                    format!("instance {id} is {}", record.state.as_str()),
                    None,
                ))
            });
            return;
        }
        let terms = match record.terms(&self.network_name) {
            Ok(terms) => terms,
            Err(e) => {
                let _ = reply.send(Err(ServiceError::Internal(format!(
                    "instance {id} has unreadable terms: {e}"
                ))));
                return;
            }
        };
        let (net, key, internal) = (self.net.clone(), self.key.clone(), self.internal_tx.clone());
        let network = self.network_name.clone();
        let provider = terms.payload().provider.to_peer_id();
        self.spawn(async move {
            let result = control(&net, &network, &key, provider, id, action).await;
            let _ = internal.send(Internal::Acted { id, result, reply }).await;
        });
    }

    pub(super) fn acted(
        &mut self,
        id: AgreementId,
        result: Result<JobStatus, ServiceError>,
        reply: tokio::sync::oneshot::Sender<Result<Instance, ServiceError>>,
    ) {
        let result = result.and_then(|status| {
            self.on_status(id, status);
            self.instance_view(id)
        });
        let _ = reply.send(result);
    }

    /// The API view of a consumer instance, with live progress and connections.
    pub(super) fn instance_view(&self, id: AgreementId) -> Result<Instance, ServiceError> {
        let record = self
            .jobs
            .get(&id)
            .filter(|j| j.role == Role::Consumer)
            .ok_or_else(|| {
                ServiceError::Api(ErrorCode::NotFound, format!("no instance {id}"), None)
            })?;
        let mut instance = super::commands::instance_of(&self.network_name, &id, record)?;
        instance.connections = record.ports.iter().map(connection_of).collect();
        instance.progress = self.progress.get(&id).cloned();
        Ok(instance)
    }
}
