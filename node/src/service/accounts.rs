//! The service's bookkeeping: every movement of QU this node makes or sees, recorded in the
//! double-entry ledger (`qubix_ledger::book`) as it happens, on both sides of a rental.
//!
//! ```text
//! consumer: launch ─lock─▶ escrow ─window paid (final on chain)─▶ prepaid ─receipt─▶ spent
//!           end: escrow back to available, unused prepaid owed back ─refund verified─▶ available
//! provider: window received (confirmed by the RPC) ─▶ prepaid held ─receipt─▶ earned
//!           end (after the consumer's final receipt, or END_GRACE) ─▶ refunds due ─refund final─▶ out
//! ```
//!
//! The ledger follows the chain and the signed evidence; a refusal is logged and never stops a
//! job. How rentals end and refunds move is in `refunds`.

use std::collections::HashSet;
use std::time::Duration;

use qubix_ledger::book::WithdrawalState;
use qubix_ledger::book::{Account, Ledger, LedgerError, Side};
use qubix_ledger::settle::{
    FinalTransfer, PaymentPurpose, QubicSettlement, Settlement, SettlementError,
};
use qubix_protocol::api::{ErrorCode, Event, LedgerEntry};
use qubix_protocol::{AgreementId, Qu, UnixMillis};
use tracing::{info, warn};

use super::deposits::Deposits;
use super::{Service, ServiceError};
use crate::store::Role;

/// Follows withdrawal `id` until its transfer is final or failed and records the outcome,
/// however long the chain takes (a slow transfer is not a failed one, nor is a store that
/// cannot be read for a moment: only a transfer the settlement gave up on fails). A withdrawal whose
/// transfer was never queued (the node stopped between booking and paying) fails with its QU
/// back in `available`: nothing left the wallet. Returns early, recording nothing, when the
/// settlement stops; the next start picks the withdrawal up again.
pub(crate) async fn follow_withdrawal(ledger: Ledger, settlement: QubicSettlement, id: String) {
    let transfer = PaymentPurpose::Withdrawal { id: id.clone() }.transfer_id();
    let outcome = loop {
        match settlement
            .wait_final(&transfer, Duration::from_secs(600))
            .await
        {
            Ok(done) => break Ok(done),
            Err(SettlementError::Timeout { state, .. }) => {
                info!(withdrawal = %id, state, "withdrawal not final yet; still waiting");
            }
            Err(SettlementError::UnknownTransfer { .. }) => {
                break Err(
                    "the node stopped before the transfer was queued; no QU left the \
                           wallet"
                        .to_owned(),
                );
            }
            Err(SettlementError::Shutdown) => return,
            Err(e @ SettlementError::TransferFailed { .. }) => break Err(e.to_string()),
            // The settlement's own store could not be read: the transfer may still go out,
            // so its QU must not return to `available`. Ask again shortly.
            Err(e) => {
                warn!(withdrawal = %id, error = %e, "cannot read the withdrawal's transfer; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    let booked = tokio::task::spawn_blocking(move || {
        let at = UnixMillis::now();
        let booked = match &outcome {
            Ok(done) => ledger.withdrawal_final(&id, done, at),
            Err(reason) => ledger.withdrawal_failed(&id, reason, at),
        };
        (id, booked)
    })
    .await;
    match booked {
        Ok((id, Ok(entry))) => info!(withdrawal = %id, outcome = entry.kind, "withdrawal settled"),
        Ok((id, Err(e))) => {
            warn!(withdrawal = %id, error = %e, "ledger refused the withdrawal's outcome");
        }
        Err(e) => warn!(error = %e, "recording a withdrawal's outcome panicked"),
    }
}

/// Makes sure `needed` QU are available, adopting deposits first when they are not (except
/// transfers from the `held` identities); a clear `insufficient_funds` otherwise.
pub(crate) async fn ensure_available(
    ledger: &Ledger,
    deposits: Option<&Deposits>,
    held: &HashSet<String>,
    needed: Qu,
) -> Result<(), ServiceError> {
    let available = || -> Result<Qu, ServiceError> {
        let b = ledger
            .balance(&Account::Available)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(Qu(u64::try_from(b).unwrap_or(0)))
    };
    if available()? >= needed {
        return Ok(());
    }
    let Some(deposits) = deposits else {
        return Err(ServiceError::Api(
            ErrorCode::Unavailable,
            "this node has no wallet connection to pay with".into(),
            None,
        ));
    };
    deposits.adopt(held).await?;
    let have = available()?;
    if have >= needed {
        return Ok(());
    }
    Err(ServiceError::Api(
        ErrorCode::InsufficientFunds,
        format!(
            "{needed} needed but only {have} available; deposit QU to {}",
            deposits.settlement.identity()
        ),
        Some("budget".into()),
    ))
}

impl Service {
    /// Applies one ledger operation and tells the console; a refusal is logged.
    pub(super) fn book(
        &self,
        what: &str,
        id: Option<AgreementId>,
        result: Result<LedgerEntry, LedgerError>,
    ) {
        match result {
            Ok(entry) => {
                tracing::debug!(entry = %entry.id, what, "ledger");
                if let Ok(billing) = self.ledger.billing(Some(self.wallet_identity.clone())) {
                    let _ = self.events.send(Event::Billing { billing });
                }
            }
            Err(e) => {
                warn!(what, agreement = ?id.map(|a| a.to_string()), error = %e, "ledger refused an operation");
            }
        }
    }

    /// Consumer: a window's transfer to the provider is final.
    pub(super) fn book_window_paid(&self, id: AgreementId, window: u32, transfer: &FinalTransfer) {
        let result = self
            .ledger
            .pay_window(id, window, transfer, UnixMillis::now());
        self.book("window paid", Some(id), result);
    }

    /// Either side: a countersigned receipt.
    pub(super) fn book_receipt(&self, id: AgreementId, receipt: &qubix_protocol::Envelope) {
        let result = self
            .ledger
            .record_receipt(receipt, &self.network_name, UnixMillis::now());
        self.book("receipt", Some(id), result);
    }

    /// Whether the ledger still has the agreement open.
    pub(super) fn ledger_open(&self, id: &AgreementId) -> bool {
        matches!(self.ledger.agreement(id), Ok(Some(r)) if r.ended_at.is_none())
    }

    pub(super) fn balance_of(&self, account: Account) -> Qu {
        Qu(self
            .ledger
            .balance(&account)
            .ok()
            .and_then(|b| u64::try_from(b).ok())
            .unwrap_or(0))
    }

    /// What adopting deposits needs, on a node with a wallet connection.
    pub(super) fn deposits(&self) -> Option<Deposits> {
        Some(Deposits {
            ledger: self.ledger.clone(),
            settlement: self.settlement.clone()?,
            store: self.store.clone(),
        })
    }

    /// The identities whose transfers to this wallet belong to a rental, not to deposits:
    /// the payers of this provider's live jobs and agreements, and the providers of this
    /// consumer's live instances and of agreements whose refund is still owed.
    pub(super) fn held_sources(&self) -> HashSet<String> {
        let mut held = HashSet::new();
        for (id, job) in &self.jobs {
            let live = !job.state.is_final() || self.ledger_open(id);
            let owed = self.balance_of(Account::RefundReceivable(*id)) > Qu::ZERO;
            let Ok(terms) = job.terms(&self.network_name) else {
                continue;
            };
            let t = terms.payload();
            match job.role {
                Role::Provider if live => held.insert(t.pay_from.clone()),
                Role::Consumer if live || owed => held.insert(t.pay_to.clone()),
                _ => false,
            };
        }
        held
    }

    /// Adopts the deposits that arrived, in a task; the answer goes to `reply`.
    pub(super) fn refresh_deposits(
        &self,
        reply: tokio::sync::oneshot::Sender<Result<Qu, ServiceError>>,
    ) {
        let Some(deposits) = self.deposits() else {
            let none = ServiceError::Api(
                ErrorCode::Unavailable,
                "this node has no wallet connection".into(),
                None,
            );
            let _ = reply.send(Err(none));
            return;
        };
        let held = self.held_sources();
        self.spawn(async move {
            let _ = reply.send(deposits.adopt(&held).await);
        });
    }

    /// At start: the deposits that arrived while the node was down (the opening balance of
    /// a new ledger), and the books of rentals that ended meanwhile.
    pub(super) fn resume_accounts(&mut self) {
        if let Some(deposits) = self.deposits() {
            let held = self.held_sources();
            let cancel = self.shutdown.child_token();
            self.spawn(async move {
                // Until the RPC answers, backing off to a try a minute; a launch or a
                // withdrawal scans again anyway.
                let mut pause = Duration::from_secs(2);
                for _ in 0..20 {
                    match deposits.adopt(&held).await {
                        Ok(_) => return,
                        Err(e) => tracing::debug!(error = %e, "deposits not scanned yet"),
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(60));
                }
            });
        }
        if let Some(settlement) = self.settlement.clone() {
            match self.ledger.withdrawals() {
                Ok(all) => {
                    for w in all
                        .into_iter()
                        .filter(|w| w.state == WithdrawalState::Pending)
                    {
                        info!(withdrawal = %w.id, amount = %w.amount, "following a pending withdrawal");
                        self.spawn(follow_withdrawal(
                            self.ledger.clone(),
                            settlement.clone(),
                            w.id,
                        ));
                    }
                }
                Err(e) => warn!(error = %e, "cannot list pending withdrawals"),
            }
        }
        let ended: Vec<(AgreementId, Role)> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.state.is_final())
            .map(|(id, j)| (*id, j.role))
            .collect();
        for (id, role) in ended {
            match role {
                Role::Provider => self.job_ended(id),
                Role::Consumer => self.close_instance(id),
            }
        }
        self.reconcile_orphans();
    }

    /// Consumer: agreements whose budget was locked in escrow but which never became an
    /// instance (the node stopped between locking and recording the countersigned
    /// agreement). Each is closed: its escrow returns to `available`; when a window's
    /// payment had been queued, it is followed until final and recorded first (its QU then
    /// stay recorded as owed by the provider).
    fn reconcile_orphans(&mut self) {
        let orphans: Vec<AgreementId> = match self.ledger.agreements() {
            Ok(all) => all
                .into_iter()
                .filter(|a| a.info.side == Side::Consumer && a.ended_at.is_none())
                .map(|a| a.info.id)
                .filter(|id| !self.jobs.contains_key(id))
                .collect(),
            Err(e) => return warn!(error = %e, "cannot list the ledger's agreements"),
        };
        for id in orphans {
            warn!(agreement = %id, "escrow locked for an agreement without an instance; releasing it");
            self.spawn(close_orphan(
                self.ledger.clone(),
                self.settlement.clone(),
                id,
            ));
        }
    }
}

/// Closes an orphaned agreement: the first window's transfer, if one was queued, is
/// followed until final and recorded; then the agreement ends.
async fn close_orphan(ledger: Ledger, settlement: Option<QubicSettlement>, id: AgreementId) {
    let window = PaymentPurpose::Window {
        agreement: id,
        window: 0,
    }
    .transfer_id();
    let paid = match &settlement {
        Some(s) => match s.wait_final(&window, Duration::from_secs(600)).await {
            Ok(done) => Some(done),
            // Never queued, or given up on: no QU left the wallet.
            Err(
                SettlementError::UnknownTransfer { .. } | SettlementError::TransferFailed { .. },
            ) => None,
            Err(e) => {
                // Still pending, or unreadable: the next start tries again.
                return warn!(agreement = %id, error = %e, "an orphaned agreement's payment is not settled yet");
            }
        },
        None => None,
    };
    let closed = tokio::task::spawn_blocking(move || {
        let at = UnixMillis::now();
        if let Some(done) = &paid {
            ledger.pay_window(id, 0, done, at)?;
        }
        ledger.end_agreement(id, Qu::ZERO, at)
    })
    .await;
    match closed {
        Ok(Ok(_)) => {
            info!(agreement = %id, "orphaned agreement closed; its escrow is available again")
        }
        Ok(Err(e)) => warn!(agreement = %id, error = %e, "cannot close an orphaned agreement"),
        Err(e) => warn!(agreement = %id, error = %e, "closing an orphaned agreement panicked"),
    }
}
