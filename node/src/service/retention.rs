//! Ended jobs' records are pruned once their books are closed and the retention period
//! (`record_retention_secs`, at most an hour for a job that was never paid) has passed; the
//! signed agreement and the last report with its receipt stay in the store for good
//! ([`crate::store::Evidence`]). An ended job's runner, with its log and exited container,
//! goes with its record.
//!
//! What could a peer do with this? A stranger's unfunded reservation that lapsed leaves a
//! record; throw-away keys making many of them would otherwise fill the provider's disk for
//! ever. Once pruned, such a record costs only its evidence (about 2 KiB). A record whose
//! money is still moving (a refund owed or on its way out, escrow not released, a payment
//! notice not yet checked) is never pruned: its books decide, not its age.

use std::time::Duration;

use qubix_ledger::Account;
use qubix_protocol::{AgreementId, Qu, UnixMillis};

use crate::jobs::Effect;
use tracing::{info, warn};

use super::Service;

/// The longest wait between two pruning passes.
const PASS_EVERY: Duration = Duration::from_secs(60);
/// The longest a record of a job that was never paid is kept (when the retention period is
/// longer): such records are what a stranger cycling reservations leaves behind.
const UNFUNDED_RETENTION: Duration = Duration::from_secs(3600);

impl Service {
    /// Runs a pruning pass when one is due.
    pub(super) async fn prune_records_if_due(&mut self, now: UnixMillis) {
        let every = self.record_retention.min(PASS_EVERY);
        if now.since(self.records_pruned_at) >= every {
            self.records_pruned_at = now;
            self.prune_records(now).await;
        }
    }

    /// Archives every ended job whose books are closed and that ended more than the
    /// retention period ago.
    async fn prune_records(&mut self, now: UnixMillis) {
        let cutoff = now.saturating_sub(self.record_retention);
        let unfunded_cutoff = now.saturating_sub(self.record_retention.min(UNFUNDED_RETENTION));
        let due: Vec<AgreementId> = self
            .jobs
            .iter()
            .filter(|(id, r)| {
                let unfunded = r.credits.is_empty() && r.paid == Qu::ZERO;
                r.state.is_final()
                    && r.since < if unfunded { unfunded_cutoff } else { cutoff }
                    && r.pending_payments.is_empty()
                    && !self.closing.busy(id)
            })
            .map(|(id, _)| *id)
            .filter(|id| self.books_closed(id))
            .collect();
        let mut pruned = 0usize;
        for id in due {
            let Some(record) = self.jobs.get(&id) else {
                continue;
            };
            match self.store.archive_job(&id, record) {
                Ok(()) => {
                    // An ended job's runner only kept its log and its exited container
                    // for the consumer; both go with the record.
                    if let Some(runner) = self.runners.remove(&id) {
                        runner.perform(Effect::Remove).await;
                    }
                    self.jobs.remove(&id);
                    self.feeds.remove(&id);
                    self.progress.remove(&id);
                    pruned += 1;
                }
                Err(e) => warn!(job = %id, error = %e, "could not prune the job's record"),
            }
        }
        if pruned > 0 {
            info!(
                pruned,
                "ended job records pruned; their agreements and receipts are kept"
            );
            // Their containers are going: their images may be unused now.
            self.collect_images_if_due(now, true);
        }
    }

    /// Whether nothing of agreement `id` is still open in the ledger: never funded, or
    /// ended with no escrow, prepaid balance or refund left on either side.
    fn books_closed(&self, id: &AgreementId) -> bool {
        match self.ledger.agreement(id) {
            Ok(None) => true,
            Ok(Some(a)) if a.ended_at.is_some() => [
                Account::Escrow(*id),
                Account::Prepaid(*id),
                Account::RefundReceivable(*id),
                Account::PrepaidHeld(*id),
                Account::RefundsDue(*id),
            ]
            .iter()
            .all(|account| self.ledger.balance(account).is_ok_and(|b| b == 0)),
            _ => false,
        }
    }
}
