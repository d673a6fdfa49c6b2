//! How a rental's books close and unused paid time goes back, on both sides.
//!
//! - **Consumer.** When an instance ends, unspent escrow returns to `available`; what the
//!   provider's last signed report billed beyond the last receipt is booked as
//!   unacknowledged usage (at most one billing interval); the rest of what was paid is owed
//!   back. A watcher asks the provider for its refund transactions, checks each through
//!   its Qubic RPC and records what the ledger takes (each transaction once).
//! - **Provider.** When a job ends, the books close on the consumer's final receipt, or
//!   [`END_GRACE`] later without it. The refund is what was paid minus the metered usage:
//!   usage the consumer never signed for stays earned. The lifecycle stops a job whose
//!   receipts trail by more than two intervals, or by more than one with no receipt for a
//!   whole interval, so that is at most about two intervals, all of it prepaid; the
//!   consumer books at most one as unacknowledged, so the two books of a rental that ends
//!   with receipts trailing may differ by up to one interval (docs/security.md, row 3).
//!   Money that arrives after a refund is owed back too, as a further refund.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use qubix_ledger::book::Account;
use qubix_ledger::qubic::{Identity, TxId};
use qubix_ledger::settle::{FinalTransfer, IncomingTransfer, PaymentPurpose, Settlement};
use qubix_protocol::billing::{Receipt, UsageReport};
use qubix_protocol::control::JobAction;
use qubix_protocol::{AgreementId, Qu, UnixMillis};
use tracing::{info, warn};

use super::{Internal, Service};
use crate::jobs::usage::ConsumerMeter;
use crate::store::Role;

/// How long a provider waits, after a job ends, for the consumer's final receipt before it
/// closes the agreement's books and refunds what the ledger says is owed.
pub(super) const END_GRACE: Duration = Duration::from_secs(30);
/// How long a consumer keeps asking an ended job's provider for its refunds.
const REFUND_WAIT: Duration = Duration::from_secs(600);
/// How often it asks.
const REFUND_POLL: Duration = Duration::from_secs(2);

/// Provider jobs whose books are about to close, and refunds on their way out.
#[derive(Debug, Default)]
pub(crate) struct Closing {
    /// Ended jobs waiting for the consumer's final receipt, with the moment their books
    /// close without it.
    pub(super) ending: HashMap<AgreementId, tokio::time::Instant>,
    /// Agreements with a refund transfer in flight.
    refunding: HashSet<AgreementId>,
}

impl Closing {
    /// Whether agreement `id`'s books are closing or its refund is on its way out.
    pub(super) fn busy(&self, id: &AgreementId) -> bool {
        self.ending.contains_key(id) || self.refunding.contains(id)
    }
}

impl Service {
    /// Consumer: the instance ended. Its books close, and a watcher waits for the refund.
    pub(super) fn close_instance(&mut self, id: AgreementId) {
        if self.ledger_open(&id) {
            let unacknowledged = self.consumer_unacknowledged(&id);
            let result = self
                .ledger
                .end_agreement(id, unacknowledged, UnixMillis::now());
            self.book("instance ended", Some(id), result);
        }
        self.await_refund(id);
    }

    /// Consumer: what the provider's last report billed beyond the last receipt, at most
    /// one billing interval and what is prepaid beyond the receipts.
    fn consumer_unacknowledged(&self, id: &AgreementId) -> Qu {
        let net = &self.network_name;
        let (Some(record), Ok(Some(books))) = (self.jobs.get(id), self.ledger.agreement(id)) else {
            return Qu::ZERO;
        };
        let Ok(terms) = record.terms(net) else {
            return Qu::ZERO;
        };
        let receipt = record
            .evidence
            .as_ref()
            .and_then(|(_, r)| r.open::<Receipt>(net).ok())
            .map(|r| (r.payload().billable_millis, books.receipt_amount));
        let last = record
            .last_report
            .as_ref()
            .and_then(|r| r.open::<UsageReport>(net).ok())
            .filter(|r| r.signer() == terms.payload().provider);
        let meter = ConsumerMeter::restored(
            terms.payload(),
            books.paid,
            receipt,
            (record.state, UnixMillis::now()),
        );
        meter.unacknowledged(last.as_ref().map(|r| r.payload()))
    }

    /// Consumer: asks the provider for its refunds until nothing is owed or [`REFUND_WAIT`]
    /// passes, checks each through the Qubic RPC and reports it as `RefundArrived`.
    pub(super) fn await_refund(&mut self, id: AgreementId) {
        let owed = self.balance_of(Account::RefundReceivable(id));
        let Some(record) = self.jobs.get(&id).filter(|r| r.role == Role::Consumer) else {
            return;
        };
        if owed == Qu::ZERO {
            return;
        }
        let (Some(settlement), Ok(terms)) =
            (self.settlement.clone(), record.terms(&self.network_name))
        else {
            return;
        };
        let provider = terms.payload().provider.to_peer_id();
        let from: Option<Identity> = terms.payload().pay_to.parse().ok();
        let mut checked: HashSet<String> = record.refunds.iter().cloned().collect();
        let (net, key, internal) = (self.net.clone(), self.key.clone(), self.internal_tx.clone());
        let (network, ledger) = (self.network_name.clone(), self.ledger.clone());
        let cancel = self.shutdown.child_token();
        self.spawn(async move {
            let deadline = tokio::time::Instant::now() + REFUND_WAIT;
            let mut poll = tokio::time::interval(REFUND_POLL);
            let owed = || ledger.balance(&Account::RefundReceivable(id)).unwrap_or(0) > 0;
            while tokio::time::Instant::now() < deadline && owed() {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = poll.tick() => {}
                }
                let status = super::driver::control(
                    &net,
                    &network,
                    &key,
                    provider,
                    id,
                    JobAction::Status,
                )
                .await;
                let Ok(status) = status else { continue };
                for tx in status.refunds {
                    let Ok(tx_id) = tx.parse::<TxId>() else {
                        continue;
                    };
                    if checked.contains(&tx) {
                        continue;
                    }
                    let me = settlement.identity();
                    match settlement
                        .verify_incoming(&tx_id, &me, from.as_ref(), Qu(1))
                        .await
                    {
                        Ok(incoming) => {
                            checked.insert(tx);
                            let _ = internal
                                .send(Internal::RefundArrived { id, incoming })
                                .await;
                        }
                        Err(e) => {
                            warn!(instance = %id, error = %e, "a refund does not verify yet");
                        }
                    }
                }
            }
            if owed() {
                warn!(instance = %id, "no (full) refund from the provider; the rest stays recorded as owed");
            }
        });
    }

    /// Consumer: a refund checked on chain; recorded only if the ledger takes it.
    pub(super) fn on_refund_arrived(&mut self, id: AgreementId, incoming: IncomingTransfer) {
        let result = self
            .ledger
            .refund_received(id, &incoming, UnixMillis::now());
        let taken = result.is_ok();
        self.book("refund received", Some(id), result);
        if !taken {
            return;
        }
        let tx = incoming.tx_id.to_string();
        if let Some(record) = self.jobs.get_mut(&id)
            && !record.refunds.contains(&tx)
        {
            record.refunds.push(tx);
            let record = record.clone();
            let _ = self.store.put_job(&id, &record);
        }
        info!(instance = %id, amount = %incoming.amount, "refund received");
    }

    /// Provider: a job reached a final state (or money arrived for one that had); its books
    /// close on the consumer's final receipt or after [`END_GRACE`].
    pub(super) fn job_ended(&mut self, id: AgreementId) {
        if self.ledger_open(&id) {
            self.closing
                .ending
                .entry(id)
                .or_insert_with(|| tokio::time::Instant::now() + END_GRACE);
        } else {
            self.pay_refund(id);
        }
    }

    /// Provider: closes the books of ended jobs whose grace has passed.
    pub(super) fn close_overdue(&mut self) {
        let now = tokio::time::Instant::now();
        let due: Vec<AgreementId> = self
            .closing
            .ending
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            warn!(job = %id, "no final receipt from the consumer; closing the books on the usage metered");
            self.close_job(id);
        }
    }

    /// Provider: ends the agreement in the ledger (metered usage the consumer did not sign
    /// for stays earned) and refunds the rest of what was paid.
    pub(super) fn close_job(&mut self, id: AgreementId) {
        self.closing.ending.remove(&id);
        if self.ledger_open(&id) {
            let metered = self
                .jobs
                .get(&id)
                .and_then(|j| j.lifecycle.as_ref())
                .map_or(Qu::ZERO, |j| j.meter.due());
            let receipted = self
                .ledger
                .agreement(&id)
                .ok()
                .flatten()
                .map_or(Qu::ZERO, |a| a.receipt_amount);
            let unacknowledged = metered.saturating_sub(receipted);
            let result = self
                .ledger
                .end_agreement(id, unacknowledged, UnixMillis::now());
            self.book("job ended", Some(id), result);
        }
        self.pay_refund(id);
    }

    /// Provider: pays the next refund of what the ledger holds as owed for an ended
    /// agreement (one transfer at a time; each refund its own purpose, so a transfer is
    /// never paid twice), reported as `RefundPaid` once final.
    fn pay_refund(&mut self, id: AgreementId) {
        let due = self.balance_of(Account::RefundsDue(id));
        let Some(record) = self.jobs.get(&id).filter(|r| r.role == Role::Provider) else {
            return;
        };
        if due == Qu::ZERO || self.closing.refunding.contains(&id) {
            return;
        }
        let (Some(settlement), Ok(terms)) =
            (self.settlement.clone(), record.terms(&self.network_name))
        else {
            return;
        };
        let Ok(to) = terms.payload().refund_to.parse::<Identity>() else {
            warn!(job = %id, "the consumer's refund identity does not parse; the refund stays owed");
            return;
        };
        let n = u32::try_from(record.refunds.len()).unwrap_or(u32::MAX);
        self.closing.refunding.insert(id);
        let internal = self.internal_tx.clone();
        self.spawn(async move {
            let result = async {
                let purpose = PaymentPurpose::Refund { agreement: id, n };
                let transfer = settlement.pay(&to, due, purpose).await?;
                info!(job = %id, amount = %due, refund = n, transfer = %transfer, "refund queued");
                settlement
                    .wait_final(&transfer, Duration::from_secs(600))
                    .await
            }
            .await;
            let message = match result {
                Ok(transfer) => Internal::RefundPaid { id, n, transfer },
                Err(e) => {
                    warn!(job = %id, error = %e, "refund not final; it stays owed and is retried at the next start");
                    Internal::RefundStalled { id }
                }
            };
            let _ = internal.send(message).await;
        });
    }

    /// Provider: refund `n` is final; a further refund follows if more is owed.
    pub(super) fn on_refund_paid(&mut self, id: AgreementId, n: u32, transfer: FinalTransfer) {
        self.closing.refunding.remove(&id);
        let result = self.ledger.refund_paid(id, n, &transfer, UnixMillis::now());
        let taken = result.is_ok();
        self.book("refund paid", Some(id), result);
        let tx = transfer.tx_id.to_string();
        if let Some(record) = self.jobs.get_mut(&id)
            && taken
            && !record.refunds.contains(&tx)
        {
            record.refunds.push(tx.clone());
            let record = record.clone();
            let _ = self.store.put_job(&id, &record);
        }
        info!(job = %id, amount = %transfer.amount, refund = n, tx = %tx, "refund paid");
        if taken {
            self.pay_refund(id);
        }
    }

    /// Provider: a refund did not go through now; the next start tries again.
    pub(super) fn on_refund_stalled(&mut self, id: AgreementId) {
        self.closing.refunding.remove(&id);
    }
}
