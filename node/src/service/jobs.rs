//! The provider's side of jobs: turning confirmed agreements into lifecycle state and a
//! runner, applying inputs (payments, runner reports, consumer control, time) to the pure
//! lifecycle, performing its effects, and answering `job/1` requests.

use std::net::IpAddr;

use libp2p::PeerId;
use libp2p::request_response::ResponseChannel;
use qubix_ledger::qubic::TxId;
use qubix_ledger::settle::Settlement;
use qubix_protocol::billing::{Receipt, UsageReport};
use qubix_protocol::control::{
    JobAction, JobControl, JobErrorCode, JobMessage, JobReply, JobState, JobStatus, LOG_PAGE_MAX,
    METRICS_PAGE_MAX,
};
use qubix_protocol::job::{AgreementTerms, JobRequest};
use qubix_protocol::offer::MAX_CLOCK_SKEW;
use qubix_protocol::{AgreementId, NodeId, Qu, Signed, UnixMillis};
use tracing::{info, warn};

use super::{Internal, Service};
use crate::jobs::{Effect, Input, Job, Meter};
use crate::runtime::ContainerSpec;
use crate::store::Role;

/// How far back a control request may have been signed.
const CONTROL_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(300);

fn container_spec(
    terms: &AgreementTerms,
    request: &JobRequest,
    gpus: &[String],
    simulated: bool,
    publish_ip: IpAddr,
) -> ContainerSpec {
    ContainerSpec {
        agreement_id: terms.agreement_id,
        image: request.image.clone(),
        command: request.command.clone(),
        env: request.env.clone(),
        gpu_uuids: gpus.to_vec(),
        attach_gpus: !simulated,
        cpu_cores: request.cpu_cores.max(1),
        memory_mib: request.ram_mib.max(64),
        shm_mib: (request.ram_mib / 4).clamp(64, 16 * 1024),
        pids_limit: 4096,
        disk_gib: request.disk_gib,
        ports: request.ports.clone(),
        publish_ip,
        workspace: true,
    }
}

impl Service {
    /// Starts the lifecycle and the runner of a freshly confirmed provider job.
    pub(super) fn start_provider_job(&mut self, id: AgreementId) {
        let now = UnixMillis::now();
        let idle = self.provider.as_ref().and_then(|p| p.max_idle_secs());
        let Some(record) = self.jobs.get_mut(&id) else {
            return;
        };
        let Ok(terms) = record.terms(&self.network_name) else {
            return;
        };
        let t = terms.payload();
        if record.lifecycle.is_none() {
            record.lifecycle = Some(
                Job::new(
                    Meter::new(t.price_per_gpu_hour, t.gpus, t.duration_secs, t.payment),
                    now,
                )
                .with_idle_limit(idle),
            );
        }
        self.spawn_runner(id);
    }

    pub(super) fn spawn_runner(&mut self, id: AgreementId) {
        let (Some(runtime), Some(record)) = (self.runtime.clone(), self.jobs.get(&id)) else {
            return;
        };
        if self.runners.contains_key(&id) || record.state.is_final() {
            return;
        }
        let Ok(terms) = record.terms(&self.network_name) else {
            return;
        };
        let Ok(request) = terms.payload().open_request(&self.network_name) else {
            return;
        };
        let ip = self
            .public_host
            .parse()
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let spec = container_spec(
            terms.payload(),
            request.payload(),
            &record.gpu_uuids,
            record.simulated,
            ip,
        );
        let probe = self.provider.as_ref().map(|p| p.probe());
        let handle = crate::jobs::spawn(
            spec,
            terms.payload().consumer,
            runtime,
            probe,
            self.job_inputs.clone(),
            matches!(record.state, JobState::Running | JobState::Stopped),
            self.shutdown.clone(),
        );
        if record.state == JobState::Pulling {
            // The node stopped mid-pull: pull again (a present image returns at once).
            handle.try_perform(Effect::Pull);
        }
        self.runners.insert(id, handle);
    }

    /// Applies an input to a provider job and performs what the lifecycle decides.
    pub(super) async fn apply(
        &mut self,
        id: AgreementId,
        input: Input,
    ) -> Result<(), JobErrorCode> {
        let now = UnixMillis::now();
        let record = self.jobs.get_mut(&id).ok_or(JobErrorCode::UnknownJob)?;
        let job = record.lifecycle.as_mut().ok_or(JobErrorCode::UnknownJob)?;
        let before = job.state;
        let effects = job.step(input, now)?;
        let job = job.clone();
        record.state = job.state;
        record.since = job.since;
        record.reason = job.reason;
        record.exit_code = job.exit_code;
        record.paid = job.meter.paid;
        record.spent = job.meter.due();
        if job.state == JobState::Running && record.started_at.is_none() {
            record.started_at = Some(now);
        }
        if let Some(runner) = self.runners.get(&id) {
            record.ports = runner.published(&self.public_host);
        }
        if before != job.state {
            info!(job = %id, from = before.as_str(), to = job.state.as_str(), "job state");
            if before == JobState::Negotiated {
                self.desk.activate(&id);
            }
        }
        let record = record.clone();
        if let Err(e) = self.store.put_job(&id, &record) {
            warn!(job = %id, error = %e, "cannot persist job");
        }
        let ended = before != job.state && job.state.is_final();
        for effect in effects {
            self.perform(id, effect).await;
        }
        if ended {
            self.job_ended(id);
        }
        Ok(())
    }

    async fn perform(&mut self, id: AgreementId, effect: Effect) {
        match effect {
            Effect::Release => {
                self.desk.release(&id);
                self.publish_offers().await;
            }
            Effect::Refund(amount) => {
                // The ledger decides the refund once the consumer's final receipt is in
                // (see `accounts`); the meter's figure is what that receipt should say.
                info!(job = %id, %amount, "unused paid time to refund once the books close");
            }
            other => {
                let done = matches!(other, Effect::Remove);
                if let Some(runner) = self.runners.get(&id) {
                    runner.perform(other).await;
                }
                if done {
                    self.runners.remove(&id);
                }
            }
        }
    }

    /// Removes labelled containers of jobs this node no longer runs (left over from a crash
    /// or from another data dir), in a task.
    pub(super) fn reconcile_containers(&self) {
        let Some(runtime) = self.runtime.clone() else {
            return;
        };
        let live: std::collections::HashSet<AgreementId> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.role == Role::Provider && !j.state.is_final())
            .map(|(id, _)| *id)
            .collect();
        self.spawn(async move {
            let Ok(list) = runtime.list_managed().await else {
                return;
            };
            for orphan in list
                .into_iter()
                .filter(|m| !live.contains(&m.id.agreement_id))
            {
                warn!(container = %orphan.id, agreement = %orphan.id.agreement_id, "removing a container of a job this node does not run");
                let _ = runtime.remove(&orphan.id, true).await;
            }
        });
    }

    /// Ticks every live provider job.
    pub(super) async fn tick_jobs(&mut self) {
        let live: Vec<AgreementId> = self
            .jobs
            .iter()
            .filter(|(_, j)| {
                j.role == Role::Provider && !j.state.is_final() && j.lifecycle.is_some()
            })
            .map(|(id, _)| *id)
            .collect();
        for id in live {
            let _ = self.apply(id, Input::Tick).await;
        }
    }

    /// Answers a `job/1` request from `peer`.
    pub(super) async fn on_job(
        &mut self,
        peer: PeerId,
        request: JobMessage,
        channel: ResponseChannel<JobReply>,
    ) {
        let reply = match NodeId::from_peer_id(&peer) {
            Ok(peer) => self
                .answer_job(&peer, request)
                .await
                .unwrap_or_else(JobReply::Error),
            Err(_) => JobReply::Error(JobErrorCode::Refused),
        };
        let _ = self.net.respond_job(channel, reply).await;
    }

    /// Whether `peer` is the consumer of provider job `id`. Asked on every `job/1` request:
    /// a live job's runner knows its consumer from the terms verified when it started, so
    /// only ended jobs verify their stored agreement again.
    fn consumer_of(&self, id: &AgreementId, peer: &NodeId) -> Result<(), JobErrorCode> {
        let record = self
            .jobs
            .get(id)
            .filter(|j| j.role == Role::Provider)
            .ok_or(JobErrorCode::UnknownJob)?;
        let consumer = match self.runners.get(id) {
            Some(runner) => runner.consumer,
            None => {
                let terms = record
                    .terms(&self.network_name)
                    .map_err(|_| JobErrorCode::UnknownJob)?;
                terms.payload().consumer
            }
        };
        if consumer == *peer {
            Ok(())
        } else {
            Err(JobErrorCode::NotYourJob)
        }
    }

    async fn answer_job(
        &mut self,
        peer: &NodeId,
        request: JobMessage,
    ) -> Result<JobReply, JobErrorCode> {
        match request {
            JobMessage::Control(envelope) => {
                let control = envelope
                    .open_from::<JobControl>(&self.network_name, peer)
                    .map_err(|_| JobErrorCode::Refused)?;
                let c = control.payload().clone();
                self.consumer_of(&c.agreement_id, peer)?;
                self.check_control_freshness(&c)?;
                let input = match c.action {
                    JobAction::Status | JobAction::Heartbeat => Input::Tick,
                    action => Input::Control(action),
                };
                self.apply(c.agreement_id, input).await?;
                self.status(&c.agreement_id).map(JobReply::Status)
            }
            JobMessage::Paid {
                agreement_id,
                window: _,
                tx_id,
            } => {
                self.consumer_of(&agreement_id, peer)?;
                self.verify_payment(agreement_id, &tx_id)?;
                self.status(&agreement_id).map(JobReply::Status)
            }
            JobMessage::Logs {
                agreement_id,
                after,
                max,
            } => {
                self.consumer_of(&agreement_id, peer)?;
                let runner = self.runners.get(&agreement_id);
                let (lines, dropped) = runner.map_or((Vec::new(), 0), |r| {
                    r.logs.after(after, usize::from(max.min(LOG_PAGE_MAX)))
                });
                Ok(JobReply::Logs { lines, dropped })
            }
            JobMessage::Metrics {
                agreement_id,
                after,
                max,
            } => {
                self.consumer_of(&agreement_id, peer)?;
                let runner = self.runners.get(&agreement_id);
                let samples = runner.map_or_else(Vec::new, |r| {
                    r.metrics
                        .after(after, usize::from(max.min(METRICS_PAGE_MAX)))
                        .0
                });
                Ok(JobReply::Metrics { samples })
            }
            JobMessage::PullProgress { agreement_id } => {
                self.consumer_of(&agreement_id, peer)?;
                let pull = self.runners.get(&agreement_id);
                let summary = pull.and_then(|r| r.pull_progress()).map(|p| p.summary());
                Ok(JobReply::PullProgress(summary))
            }
            JobMessage::UsageQuery { agreement_id } => {
                self.consumer_of(&agreement_id, peer)?;
                self.usage_report(&agreement_id).map(JobReply::Usage)
            }
            JobMessage::Receipt(envelope) => {
                let receipt = envelope
                    .open_from::<Receipt>(&self.network_name, peer)
                    .map_err(|_| JobErrorCode::Refused)?;
                let id = receipt.payload().agreement_id;
                self.consumer_of(&id, peer)?;
                self.keep_receipt(&id, envelope)?;
                self.status(&id).map(JobReply::Status)
            }
        }
    }

    fn check_control_freshness(&mut self, c: &JobControl) -> Result<(), JobErrorCode> {
        let now = UnixMillis::now();
        let fresh = c.issued_at <= now.saturating_add(MAX_CLOCK_SKEW)
            && now.since(c.issued_at) <= CONTROL_MAX_AGE;
        if !fresh || self.control_nonces.contains_key(&c.nonce) {
            return Err(JobErrorCode::Refused);
        }
        self.control_nonces
            .retain(|_, at| now.since(*at) <= CONTROL_MAX_AGE + MAX_CLOCK_SKEW);
        if self.control_nonces.len() >= 100_000 {
            return Err(JobErrorCode::Refused);
        }
        self.control_nonces.insert(c.nonce, c.issued_at);
        Ok(())
    }

    /// Checks a consumer's payment on chain in a task; the result returns as `Internal::Paid`.
    fn verify_payment(&self, id: AgreementId, tx_id: &str) -> Result<(), JobErrorCode> {
        let settlement = self.settlement.clone().ok_or(JobErrorCode::Failed)?;
        let record = self.jobs.get(&id).ok_or(JobErrorCode::UnknownJob)?;
        if record.credited.iter().any(|t| t == tx_id) {
            return Ok(());
        }
        let tx: TxId = tx_id.parse().map_err(|_| JobErrorCode::Refused)?;
        let me = settlement.identity();
        let internal = self.internal_tx.clone();
        self.spawn(async move {
            for _ in 0..30 {
                match settlement.verify_incoming(&tx, &me, None, Qu(1)).await {
                    Ok(incoming) => {
                        let _ = internal.send(Internal::Paid { id, incoming }).await;
                        return;
                    }
                    Err(qubix_ledger::settle::SettlementError::IncomingNotFound { .. }) => {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await
                    }
                    Err(e) => {
                        warn!(job = %id, error = %e, "payment does not verify");
                        return;
                    }
                }
            }
        });
        Ok(())
    }

    /// Credits a verified payment once.
    pub(super) async fn credit(
        &mut self,
        id: AgreementId,
        incoming: qubix_ledger::settle::IncomingTransfer,
    ) {
        let Some(record) = self.jobs.get_mut(&id) else {
            return;
        };
        let tx_id = incoming.tx_id.to_string();
        if record.credited.contains(&tx_id) {
            return;
        }
        record.credited.push(tx_id.clone());
        let window = u32::try_from(record.credited.len() - 1).unwrap_or(u32::MAX);
        let amount = incoming.amount;
        info!(job = %id, %amount, tx = %tx_id, "payment confirmed");
        self.book_window_received(id, window, &incoming);
        let _ = self.apply(id, Input::Paid(amount)).await;
    }

    /// A signed report of the usage so far (cumulative).
    fn usage_report(&mut self, id: &AgreementId) -> Result<qubix_protocol::Envelope, JobErrorCode> {
        let record = self.jobs.get_mut(id).ok_or(JobErrorCode::UnknownJob)?;
        let meter = &record
            .lifecycle
            .as_ref()
            .ok_or(JobErrorCode::UnknownJob)?
            .meter;
        let report = UsageReport {
            agreement_id: *id,
            provider: self.key.node_id(),
            sequence: UnixMillis::now().0,
            billable_millis: meter.billable_millis,
            amount_due: meter.due(),
            amount_received: meter.paid,
            issued_at: UnixMillis::now(),
        };
        let signed = Signed::sign(report, self.key.signing_key(), &self.network_name)
            .map_err(|_| JobErrorCode::Failed)?;
        record.evidence = Some((
            signed.envelope().clone(),
            record
                .evidence
                .as_ref()
                .map_or_else(|| signed.envelope().clone(), |(_, r)| r.clone()),
        ));
        Ok(signed.envelope().clone())
    }

    /// Keeps the consumer's receipt if it acknowledges no more than what is due.
    fn keep_receipt(
        &mut self,
        id: &AgreementId,
        envelope: qubix_protocol::Envelope,
    ) -> Result<(), JobErrorCode> {
        let record = self.jobs.get_mut(id).ok_or(JobErrorCode::UnknownJob)?;
        let due = record
            .lifecycle
            .as_ref()
            .ok_or(JobErrorCode::UnknownJob)?
            .meter
            .due();
        let receipt = envelope
            .open::<Receipt>(&self.network_name)
            .map_err(|_| JobErrorCode::Refused)?;
        if receipt.payload().amount > due {
            return Err(JobErrorCode::Refused);
        }
        let report = record
            .evidence
            .as_ref()
            .map(|(r, _)| r.clone())
            .ok_or(JobErrorCode::Refused)?;
        let last = receipt.payload().amount == due;
        record.evidence = Some((report, envelope.clone()));
        let record = record.clone();
        self.store
            .put_job(id, &record)
            .map_err(|_| JobErrorCode::Failed)?;
        self.book_receipt(*id, &envelope);
        if last && record.state.is_final() && self.ending.contains_key(id) {
            self.close_job(*id);
        }
        Ok(())
    }

    /// A provider job's status for its consumer.
    pub(super) fn status(&self, id: &AgreementId) -> Result<JobStatus, JobErrorCode> {
        let record = self.jobs.get(id).ok_or(JobErrorCode::UnknownJob)?;
        Ok(JobStatus {
            agreement_id: *id,
            state: record.state,
            exit_code: record.exit_code,
            reason: record.reason,
            ports: record.ports.clone(),
            since: record.since,
            paid: record.paid,
            refunds: record.refund_tx.iter().cloned().collect(),
        })
    }
}
