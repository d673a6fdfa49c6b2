//! The provider's side of payments: a consumer's notice names the window it pays and the
//! Qubic transaction; the transaction is checked on chain in a task (from the request's
//! paying identity, to this provider, for at least that window's cost), then recorded in
//! the ledger, and only what the ledger takes reaches the job's lifecycle.
//!
//! What a cheating consumer can try, and what stops it:
//! - **One transfer for many jobs, or someone else's transfer.** A transaction counts only
//!   from the agreement's paying identity, and the ledger credits a transaction id once,
//!   node-wide (`in/<tx id>`): a second claim on it is refused.
//! - **Short payments.** The amount must be at least the window's cost (the last window's
//!   is what is left of the budget).
//! - **Verification floods.** Notices are deduplicated by transaction id, at most
//!   [`MAX_VERIFYING`] checks run at once, a job keeps at most [`MAX_PENDING`] unverified
//!   notices, and refused transactions are remembered so they cost no second look.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use qubix_ledger::qubic::{Identity, TxId};
use qubix_ledger::settle::{IncomingTransfer, Settlement, SettlementError};
use qubix_protocol::control::JobErrorCode;
use qubix_protocol::{AgreementId, UnixMillis};
use tracing::{info, warn};

use super::{Internal, Service};
use crate::jobs::Input;
use crate::store::{Role, WindowPayment};

/// Most payment checks in flight at once.
pub(super) const MAX_VERIFYING: usize = 64;
/// Most unverified notices one job keeps.
pub(super) const MAX_PENDING: usize = 4;
/// Refused transactions remembered.
const MAX_REFUSED: usize = 4_096;
/// How long a payment may take to appear on chain before its notice is dropped (the
/// consumer sends it again until the job's status shows the credit).
const APPEAR_WITHIN: Duration = Duration::from_secs(60);

/// Payment checks in flight and transactions already refused.
#[derive(Debug, Default)]
pub(crate) struct PaymentChecks {
    verifying: HashSet<String>,
    refused: HashSet<String>,
    refused_order: VecDeque<String>,
}

impl PaymentChecks {
    fn refuse(&mut self, tx_id: &str) {
        if self.refused.insert(tx_id.to_owned()) {
            self.refused_order.push_back(tx_id.to_owned());
        }
        while self.refused_order.len() > MAX_REFUSED {
            if let Some(old) = self.refused_order.pop_front() {
                self.refused.remove(&old);
            }
        }
    }
}

impl Service {
    /// A consumer says it paid `window` of job `id` with `tx_id`: checked in a task unless
    /// already credited, being checked, or refused before.
    pub(super) fn payment_notice(
        &mut self,
        id: AgreementId,
        window: u32,
        tx_id: &str,
    ) -> Result<(), JobErrorCode> {
        let record = self.jobs.get(&id).ok_or(JobErrorCode::UnknownJob)?;
        if record.credits.iter().any(|c| c.tx_id == tx_id) {
            return Ok(());
        }
        if self.payments.refused.contains(tx_id) {
            return Err(JobErrorCode::Refused);
        }
        if self.payments.verifying.contains(tx_id) {
            return Ok(());
        }
        let terms = record
            .terms(&self.network_name)
            .map_err(|_| JobErrorCode::UnknownJob)?;
        terms
            .payload()
            .window_due(window)
            .ok_or(JobErrorCode::Refused)?;
        // Not kept when it cannot name a transaction at all.
        tx_id.parse::<TxId>().map_err(|_| JobErrorCode::Refused)?;
        if record.credits.iter().any(|c| c.window == window) {
            return Err(JobErrorCode::Refused);
        }
        let notice = WindowPayment {
            window,
            tx_id: tx_id.to_owned(),
        };
        if !record.pending_payments.contains(&notice) {
            if record.pending_payments.len() >= MAX_PENDING {
                return Err(JobErrorCode::RateLimited);
            }
            let record = self.jobs.get_mut(&id).ok_or(JobErrorCode::UnknownJob)?;
            record.pending_payments.push(notice.clone());
            let record = record.clone();
            self.store
                .put_job(&id, &record)
                .map_err(|_| JobErrorCode::Failed)?;
        }
        self.verify_payment(id, notice)
    }

    /// Checks a noticed payment on chain in a task; the result returns as `Internal::Paid`
    /// or `Internal::PaymentRefused`.
    fn verify_payment(
        &mut self,
        id: AgreementId,
        notice: WindowPayment,
    ) -> Result<(), JobErrorCode> {
        if self.payments.verifying.len() >= MAX_VERIFYING {
            return Err(JobErrorCode::RateLimited);
        }
        let settlement = self.settlement.clone().ok_or(JobErrorCode::Failed)?;
        let record = self.jobs.get(&id).ok_or(JobErrorCode::UnknownJob)?;
        let terms = record
            .terms(&self.network_name)
            .map_err(|_| JobErrorCode::UnknownJob)?;
        let due = terms
            .payload()
            .window_due(notice.window)
            .ok_or(JobErrorCode::Refused)?;
        let tx: TxId = notice.tx_id.parse().map_err(|_| JobErrorCode::Refused)?;
        let from: Identity = terms
            .payload()
            .pay_from
            .parse()
            .map_err(|_| JobErrorCode::Refused)?;
        self.payments.verifying.insert(notice.tx_id.clone());
        let me = settlement.identity();
        let internal = self.internal_tx.clone();
        self.spawn(async move {
            let deadline = tokio::time::Instant::now() + APPEAR_WITHIN;
            let outcome = loop {
                match settlement.verify_incoming(&tx, &me, Some(&from), due).await {
                    Ok(incoming) => break Ok(incoming),
                    Err(SettlementError::IncomingNotFound { .. })
                        if tokio::time::Instant::now() < deadline =>
                    {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(e) => break Err(e),
                }
            };
            let message = match outcome {
                Ok(incoming) => Internal::Paid {
                    id,
                    window: notice.window,
                    incoming,
                },
                Err(e) => Internal::PaymentRefused {
                    id,
                    notice,
                    reason: e.to_string(),
                    retry: matches!(
                        e,
                        SettlementError::IncomingNotFound { .. } | SettlementError::Rpc(_)
                    ),
                },
            };
            let _ = internal.send(message).await;
        });
        Ok(())
    }

    /// A payment checked on chain: credited when the ledger takes it, then the lifecycle
    /// hears of it. Money for a job that already ended is owed back.
    pub(super) async fn credit(
        &mut self,
        id: AgreementId,
        window: u32,
        incoming: IncomingTransfer,
    ) {
        let tx_id = incoming.tx_id.to_string();
        self.payments.verifying.remove(&tx_id);
        let Some(record) = self.jobs.get(&id) else {
            return;
        };
        if record.credits.iter().any(|c| c.tx_id == tx_id) {
            return;
        }
        let window_taken = record.credits.iter().any(|c| c.window == window);
        let Ok(terms) = record.terms(&self.network_name) else {
            return;
        };
        let booked = if window_taken {
            Err(qubix_ledger::LedgerError::InvalidInput {
                what: "window",
                value: window.to_string(),
                why: "that window is already paid by another transaction",
            })
        } else {
            self.ledger
                .receive_window(terms.payload(), window, &incoming, UnixMillis::now())
        };
        let refused = booked.is_err();
        self.book("window received", Some(id), booked);
        let Some(record) = self.jobs.get_mut(&id) else {
            return;
        };
        record.pending_payments.retain(|p| p.tx_id != tx_id);
        if refused {
            warn!(job = %id, tx = %tx_id, window, "payment refused: not credited");
            self.payments.refuse(&tx_id);
            let record = record.clone();
            let _ = self.store.put_job(&id, &record);
            return;
        }
        record.credits.push(WindowPayment {
            window,
            tx_id: tx_id.clone(),
        });
        info!(job = %id, amount = %incoming.amount, tx = %tx_id, window, "payment confirmed");
        let ended = record.state.is_final();
        let _ = self.apply(id, Input::Paid(incoming.amount)).await;
        if ended {
            self.job_ended(id);
        }
    }

    /// A payment that did not check out: refused for good, or dropped to be noticed again.
    pub(super) fn payment_refused(
        &mut self,
        id: AgreementId,
        notice: WindowPayment,
        reason: &str,
        retry: bool,
    ) {
        self.payments.verifying.remove(&notice.tx_id);
        warn!(job = %id, tx = %notice.tx_id, window = notice.window, reason, "payment not credited");
        if retry {
            // Not on chain yet, or the RPC failed: the notice stays pending and is checked
            // again when the consumer repeats it or the node restarts.
            return;
        }
        self.payments.refuse(&notice.tx_id);
        if let Some(record) = self.jobs.get_mut(&id) {
            record.pending_payments.retain(|p| *p != notice);
            let record = record.clone();
            let _ = self.store.put_job(&id, &record);
        }
    }

    /// After a restart: payments noticed and not yet checked are checked again.
    pub(super) fn resume_payments(&mut self) {
        let pending: Vec<(AgreementId, WindowPayment)> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.role == Role::Provider)
            .flat_map(|(id, j)| j.pending_payments.iter().map(|p| (*id, p.clone())))
            .collect();
        for (id, notice) in pending {
            info!(job = %id, tx = %notice.tx_id, "checking a payment noticed before the restart");
            if let Err(code) = self.verify_payment(id, notice) {
                warn!(job = %id, ?code, "cannot check a pending payment");
            }
        }
    }
}
