//! The service's bookkeeping: every movement of QU this node makes or sees, recorded in the
//! double-entry ledger (`qubix_ledger::book`) as it happens, on both sides of a rental.
//!
//! ```text
//! consumer: launch ─lock─▶ escrow ─window paid (final on chain)─▶ prepaid ─receipt─▶ spent
//!           end: escrow back to available, unused prepaid owed back ─refund verified─▶ available
//! provider: window received (verified on chain) ─▶ prepaid held ─receipt─▶ earned
//!           end (after the consumer's final receipt, or END_GRACE) ─▶ refunds due ─refund final─▶ out
//! ```
//!
//! The ledger follows the chain and the signed evidence; a refusal is logged and never stops a
//! job. How rentals end and refunds move is in `refunds`.

use std::time::Duration;

use qubix_ledger::book::WithdrawalState;
use qubix_ledger::book::{Account, Ledger, LedgerError};
use qubix_ledger::settle::{
    FinalTransfer, PaymentPurpose, QubicSettlement, Settlement, SettlementError,
};
use qubix_protocol::api::{ErrorCode, Event, LedgerEntry};
use qubix_protocol::{AgreementId, Qu, UnixMillis};
use tracing::{info, warn};

use super::{Service, ServiceError};
use crate::store::Role;

/// QU in the wallet the ledger has not recorded, adopted as a deposit: the wallet's chain
/// balance minus what the ledger says the wallet holds and minus refunds still on their way
/// in (those are recorded against their agreement when verified). Returns the amount
/// adopted (zero when there was nothing new).
pub(crate) async fn adopt_deposits(
    ledger: &Ledger,
    settlement: &QubicSettlement,
) -> Result<Qu, ServiceError> {
    let unavailable = |e: &dyn std::fmt::Display| {
        ServiceError::Api(
            ErrorCode::Unavailable,
            format!("cannot read the wallet's balance: {e}"),
            None,
        )
    };
    let chain = settlement
        .balance(&settlement.identity())
        .await
        .map_err(|e| unavailable(&e))?;
    let tick = settlement.tick().await.map_err(|e| unavailable(&e))?;
    let ledger = ledger.clone();
    tokio::task::spawn_blocking(move || -> Result<Qu, LedgerError> {
        // Reconcile and record as one step, or two callers would both adopt the same QU.
        static ADOPTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = ADOPTING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let reconciliation = ledger.reconcile(chain)?;
        let incoming: i64 = ledger
            .balances()?
            .iter()
            .filter(|(account, _)| account.starts_with("refund_receivable/"))
            .map(|(_, b)| *b)
            .sum();
        let excess = reconciliation.difference.saturating_sub(incoming);
        let Ok(amount) = u64::try_from(excess) else {
            return Ok(Qu::ZERO);
        };
        if amount == 0 {
            return Ok(Qu::ZERO);
        }
        let op = qubix_ledger::book::Operation::Deposit {
            tx_id: format!("balance@{}", tick.tick),
            amount: Qu(amount),
        };
        ledger.apply(op, UnixMillis::now())?;
        info!(
            amount,
            tick = tick.tick,
            "wallet QU not yet in the ledger recorded as a deposit"
        );
        Ok(Qu(amount))
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?
    .map_err(|e| ServiceError::Internal(e.to_string()))
}

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

/// Makes sure `needed` QU are available, adopting unrecorded wallet QU first when they are
/// not; a clear `insufficient_funds` otherwise.
pub(crate) async fn ensure_available(
    ledger: &Ledger,
    settlement: Option<&QubicSettlement>,
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
    let Some(settlement) = settlement else {
        return Err(ServiceError::Api(
            ErrorCode::Unavailable,
            "this node has no wallet connection to pay with".into(),
            None,
        ));
    };
    adopt_deposits(ledger, settlement).await?;
    let have = available()?;
    if have >= needed {
        return Ok(());
    }
    Err(ServiceError::Api(
        ErrorCode::InsufficientFunds,
        format!(
            "{needed} needed but only {have} available; deposit QU to {}",
            settlement.identity()
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

    /// At start: the opening balance of a new ledger, and the books of rentals that ended
    /// while the node was down.
    pub(super) fn resume_accounts(&mut self) {
        if let (Some(settlement), Ok(0)) =
            (self.settlement.clone(), self.ledger.transaction_count())
        {
            let ledger = self.ledger.clone();
            let cancel = self.shutdown.child_token();
            self.spawn(async move {
                // Until the RPC answers, backing off to a try a minute; a launch or a
                // withdrawal reads the balance again anyway.
                let mut pause = Duration::from_secs(2);
                for _ in 0..20 {
                    match adopt_deposits(&ledger, &settlement).await {
                        Ok(_) => return,
                        Err(e) => tracing::debug!(error = %e, "opening balance not read yet"),
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
    }
}
