//! The provider's answers on `job/2`: control, payment notices, receipts, usage reports,
//! logs, metrics and pull figures, each from the job's consumer only.
//!
//! What a peer can try here, and what bounds it:
//! - **Flood.** Requests are rate-limited per peer, well above what twenty live rentals with
//!   second-by-second polls need; an ended job answers its status without any work.
//! - **Replay a control request.** Stop, start, restart and terminate carry a nonce that is
//!   kept per consumer, capped per consumer, and stored durably, so a captured request
//!   cannot be replayed, not even after a restart. Status and heartbeats change nothing
//!   and are checked for freshness only.
//! - **Poison the receipts.** A receipt must acknowledge exactly a report this provider
//!   issued (sequence, time and amount).

use std::collections::{HashMap, VecDeque};

use libp2p::PeerId;
use libp2p::request_response::ResponseChannel;
use qubix_protocol::billing::{Receipt, UsageReport};
use qubix_protocol::control::{
    JobAction, JobControl, JobErrorCode, JobMessage, JobReply, JobStatus, LOG_PAGE_MAX,
    MAX_REFUNDS_LISTED, METRICS_PAGE_MAX,
};
use qubix_protocol::offer::MAX_CLOCK_SKEW;
use qubix_protocol::{AgreementId, Envelope, NodeId, Signed, UnixMillis};
use tracing::{debug, warn};

use super::Service;
use crate::jobs::Input;
use crate::market::RateLimiter;
use crate::store::{IssuedReport, Role};

/// How far back a control request may have been signed.
pub(super) const CONTROL_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(300);
/// Most nonces kept per consumer (within [`CONTROL_MAX_AGE`]).
const NONCES_PER_CONSUMER: usize = 4_096;
/// Most reports issued and not yet receipted that a job remembers.
const ISSUED_REPORTS: usize = 8;

/// What guards `job/2` against a peer that abuses it.
#[derive(Debug)]
pub(crate) struct JobGuards {
    /// Requests per peer: `provider.job_requests_per_sec` sustained, bursts of three
    /// seconds' worth.
    rate: RateLimiter<PeerId>,
    /// Nonces each consumer has in the store.
    nonces: HashMap<NodeId, usize>,
}

impl JobGuards {
    /// Guards answering `per_sec` requests a second per peer, that know the nonces each
    /// consumer already has stored.
    pub(crate) fn new(per_sec: u32, nonces: HashMap<NodeId, usize>) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        Self {
            rate: RateLimiter::new(per_sec, 3.0 * per_sec, 10_000),
            nonces,
        }
    }
}

impl Service {
    /// Answers a `job/2` request from `peer`.
    pub(super) async fn on_job(
        &mut self,
        peer: PeerId,
        request: JobMessage,
        channel: ResponseChannel<JobReply>,
    ) {
        let reply = match NodeId::from_peer_id(&peer) {
            Ok(_) if !self.job_guards.rate.allow(&peer, UnixMillis::now()) => {
                JobReply::Error(JobErrorCode::RateLimited)
            }
            Ok(peer) => self
                .answer_job(&peer, request)
                .await
                .unwrap_or_else(JobReply::Error),
            Err(_) => JobReply::Error(JobErrorCode::Refused),
        };
        let _ = self.net.respond_job(channel, reply).await;
    }

    /// Whether `peer` is the consumer of provider job `id`. Asked on every `job/2` request:
    /// a live job's runner knows its consumer from the terms verified when it started, so
    /// only ended jobs verify their stored agreement again.
    fn consumer_of(&self, id: &AgreementId, peer: &NodeId) -> Result<(), JobErrorCode> {
        let consumer = match (self.jobs.get(id), self.runners.get(id)) {
            (Some(record), _) if record.role != Role::Provider => {
                return Err(JobErrorCode::UnknownJob);
            }
            (Some(_), Some(runner)) => runner.consumer,
            (Some(record), None) => {
                let terms = record
                    .terms(&self.network_name)
                    .map_err(|_| JobErrorCode::UnknownJob)?;
                terms.payload().consumer
            }
            (None, _) => {
                let kept = self.archived(id).ok_or(JobErrorCode::UnknownJob)?;
                let terms = kept
                    .agreement
                    .verify(&self.network_name)
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
            JobMessage::Control(envelope) => self.on_control(peer, &envelope).await,
            JobMessage::Paid {
                agreement_id,
                window,
                tx_id,
            } => {
                self.consumer_of(&agreement_id, peer)?;
                self.payment_notice(agreement_id, window, &tx_id)?;
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
                self.keep_receipt(&id, receipt.payload(), envelope).await?;
                self.status(&id).map(JobReply::Status)
            }
        }
    }

    async fn on_control(
        &mut self,
        peer: &NodeId,
        envelope: &Envelope,
    ) -> Result<JobReply, JobErrorCode> {
        let control = envelope
            .open_from::<JobControl>(&self.network_name, peer)
            .map_err(|_| JobErrorCode::Refused)?;
        let c = control.payload();
        self.consumer_of(&c.agreement_id, peer)?;
        check_freshness(c, UnixMillis::now())?;
        let id = c.agreement_id;
        // Past `consumer_of`, a job without a record is one whose record was pruned.
        let archived = !self.jobs.contains_key(&id);
        let ended = archived || self.jobs.get(&id).is_some_and(|j| j.state.is_final());
        match c.action {
            // A status read changes nothing: no nonce to keep, and an ended job answers at
            // once.
            JobAction::Status | JobAction::Heartbeat if ended => {}
            _ if archived => return Err(JobErrorCode::WrongState),
            JobAction::Status | JobAction::Heartbeat => self.apply(id, Input::Tick).await?,
            action => {
                self.use_nonce(c)?;
                self.apply(id, Input::Control(action)).await?;
            }
        }
        self.status(&id).map(JobReply::Status)
    }

    /// Keeps the nonce of a state-changing control request, durably, once.
    fn use_nonce(&mut self, c: &JobControl) -> Result<(), JobErrorCode> {
        let seen = self
            .store
            .nonce_used(&c.consumer, &c.nonce)
            .map_err(|_| JobErrorCode::Failed)?;
        if seen {
            return Err(JobErrorCode::Refused);
        }
        let count = self.job_guards.nonces.entry(c.consumer).or_default();
        if *count >= NONCES_PER_CONSUMER {
            return Err(JobErrorCode::RateLimited);
        }
        self.store
            .use_nonce(&c.consumer, &c.nonce, c.issued_at)
            .map_err(|_| JobErrorCode::Failed)?;
        *count += 1;
        Ok(())
    }

    /// Forgets nonces too old to be accepted (called from the sweep now and then).
    pub(super) fn prune_nonces(&mut self) {
        let before = UnixMillis::now().saturating_sub(CONTROL_MAX_AGE + MAX_CLOCK_SKEW);
        match self.store.prune_nonces(before) {
            Ok(kept) => self.job_guards.nonces = kept,
            Err(e) => warn!(error = %e, "cannot prune control nonces"),
        }
    }

    /// A signed report of the usage so far (cumulative), remembered until a receipt
    /// acknowledges it.
    fn usage_report(&mut self, id: &AgreementId) -> Result<Envelope, JobErrorCode> {
        let record = self.jobs.get_mut(id).ok_or(JobErrorCode::UnknownJob)?;
        let meter = &record
            .lifecycle
            .as_ref()
            .ok_or(JobErrorCode::UnknownJob)?
            .meter;
        let now = UnixMillis::now();
        let last = record.issued.back().map_or(0, |r| r.sequence);
        #[cfg(feature = "rogue")]
        let meter = &{
            let mut m = meter.clone();
            m.billable_millis = m.billable_millis.saturating_add(self.rogue.report_extra_ms);
            m
        };
        let report = UsageReport {
            agreement_id: *id,
            provider: self.key.node_id(),
            // Increasing, across restarts too: it follows the clock.
            sequence: (last + 1).max(now.0),
            billable_millis: meter.billable_millis,
            amount_due: meter.due(),
            amount_received: meter.paid,
            issued_at: now,
        };
        let (sequence, billable_millis, amount_due) =
            (report.sequence, report.billable_millis, report.amount_due);
        let signed = Signed::sign(report, self.key.signing_key(), &self.network_name)
            .map_err(|_| JobErrorCode::Failed)?;
        let issued = IssuedReport {
            envelope: signed.envelope().clone(),
            sequence,
            billable_millis,
            amount_due,
        };
        if record.issued.len() >= ISSUED_REPORTS {
            record.issued.pop_front();
        }
        record.issued.push_back(issued);
        Ok(signed.envelope().clone())
    }

    /// Keeps the consumer's receipt when it acknowledges exactly a report this provider
    /// issued, records it in the ledger, and tells the lifecycle.
    async fn keep_receipt(
        &mut self,
        id: &AgreementId,
        receipt: &Receipt,
        envelope: Envelope,
    ) -> Result<(), JobErrorCode> {
        let record = self.jobs.get(id).ok_or(JobErrorCode::UnknownJob)?;
        let issued = matching_report(&record.issued, receipt).ok_or_else(|| {
            debug!(job = %id, sequence = receipt.report_sequence, "receipt for no report issued");
            JobErrorCode::Refused
        })?;
        let booked = self
            .ledger
            .record_receipt(&envelope, &self.network_name, UnixMillis::now());
        if nothing_to_book(receipt, &booked) {
            // Acknowledges nothing before the first payment opened the books: kept as
            // evidence, nothing moves.
            debug!(job = %id, "receipt of nothing before the first payment");
        } else {
            let refused = booked.is_err();
            self.book("receipt", Some(*id), booked);
            if refused {
                return Err(JobErrorCode::Refused);
            }
        }
        if let Some(record) = self.jobs.get_mut(id) {
            record.evidence = Some((issued.envelope.clone(), envelope));
            record.issued.retain(|r| r.sequence > issued.sequence);
        }
        self.apply(*id, Input::Acknowledged(issued.billable_millis))
            .await?;
        let done = self.jobs.get(id).is_some_and(|j| j.state.is_final());
        let everything = self
            .jobs
            .get(id)
            .and_then(|j| j.lifecycle.as_ref())
            .is_some_and(|j| j.meter.unacknowledged_millis() == 0);
        if done && everything && self.closing.ending.contains_key(id) {
            self.close_job(*id);
        }
        Ok(())
    }

    /// A provider job's status for its consumer.
    pub(super) fn status(&self, id: &AgreementId) -> Result<JobStatus, JobErrorCode> {
        let Some(record) = self.jobs.get(id) else {
            // A pruned job answers from its evidence: the consumer may still be waiting
            // to hear of its refunds.
            let kept = self.archived(id).ok_or(JobErrorCode::UnknownJob)?;
            let skip = kept.refunds.len().saturating_sub(MAX_REFUNDS_LISTED);
            return Ok(JobStatus {
                agreement_id: *id,
                state: kept.state,
                exit_code: kept.exit_code,
                reason: kept.reason,
                ports: Vec::new(),
                since: kept.ended_at,
                paid: kept.paid,
                refunds: kept.refunds.into_iter().skip(skip).collect(),
            });
        };
        let skip = record.refunds.len().saturating_sub(MAX_REFUNDS_LISTED);
        Ok(JobStatus {
            agreement_id: *id,
            state: record.state,
            exit_code: record.exit_code,
            reason: record.reason,
            ports: record.ports.clone(),
            since: record.since,
            paid: record.paid,
            refunds: record.refunds.iter().skip(skip).cloned().collect(),
        })
    }
}

impl Service {
    /// The evidence kept of provider job `id`, once its record was pruned.
    fn archived(&self, id: &AgreementId) -> Option<crate::store::Evidence> {
        self.store
            .evidence(id)
            .ok()
            .flatten()
            .filter(|e| e.role == Role::Provider)
    }
}

/// A control request signed no later than the clock allows and no earlier than
/// [`CONTROL_MAX_AGE`].
fn check_freshness(c: &JobControl, now: UnixMillis) -> Result<(), JobErrorCode> {
    let fresh = c.issued_at <= now.saturating_add(MAX_CLOCK_SKEW)
        && now.since(c.issued_at) <= CONTROL_MAX_AGE;
    if fresh {
        Ok(())
    } else {
        Err(JobErrorCode::Refused)
    }
}

/// The issued report `receipt` acknowledges exactly, if any.
fn matching_report(issued: &VecDeque<IssuedReport>, receipt: &Receipt) -> Option<IssuedReport> {
    issued
        .iter()
        .find(|r| {
            r.sequence == receipt.report_sequence
                && r.billable_millis == receipt.billable_millis
                && r.amount_due == receipt.amount
        })
        .cloned()
}

/// Whether a receipt the ledger refused only because the agreement's books are not open yet
/// (no payment has arrived) acknowledges nothing, so there is nothing to book: consumers
/// countersign a report of no usage while the job waits for its first payment.
fn nothing_to_book(
    receipt: &Receipt,
    booked: &Result<qubix_protocol::api::LedgerEntry, qubix_ledger::LedgerError>,
) -> bool {
    receipt.amount == qubix_protocol::Qu::ZERO
        && receipt.billable_millis == 0
        && matches!(
            booked,
            Err(qubix_ledger::LedgerError::UnknownAgreement { .. })
        )
}

#[cfg(test)]
mod receipt_tests {
    use super::*;

    fn receipt(amount: u64, millis: u64) -> Receipt {
        Receipt {
            agreement_id: AgreementId::from_bytes([1; 16]),
            consumer: qubix_protocol::testing::node(2),
            report_sequence: 1,
            billable_millis: millis,
            amount: qubix_protocol::Qu(amount),
            issued_at: UnixMillis(0),
        }
    }

    #[test]
    fn only_a_receipt_of_nothing_before_the_books_open_is_let_through_unbooked() {
        let unknown = Err(qubix_ledger::LedgerError::UnknownAgreement {
            agreement: AgreementId::from_bytes([1; 16]),
        });
        assert!(nothing_to_book(&receipt(0, 0), &unknown));
        assert!(
            !nothing_to_book(&receipt(5, 1_000), &unknown),
            "usage before any payment"
        );
        assert!(!nothing_to_book(&receipt(0, 1_000), &unknown));
        let other = Err(qubix_ledger::LedgerError::ReceiptSigner {
            agreement: AgreementId::from_bytes([1; 16]),
            signer: qubix_protocol::testing::node(3),
            consumer: qubix_protocol::testing::node(2),
        });
        assert!(!nothing_to_book(&receipt(0, 0), &other), "a forged receipt");
    }
}
