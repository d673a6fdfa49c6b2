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
//! job. The provider's refund is what its ledger says is owed once the consumer's final
//! receipt is recorded: paid time the consumer never acknowledged is refunded too, so a
//! consumer is never charged for usage it did not sign for (the provider risks at most one
//! billing interval, the gap between receipts).

use std::time::Duration;

use qubix_ledger::book::WithdrawalState;
use qubix_ledger::book::{Account, Ledger, LedgerError};
use qubix_ledger::qubic::{Identity, TxId};
use qubix_ledger::settle::{
    FinalTransfer, IncomingTransfer, PaymentPurpose, QubicSettlement, Settlement, SettlementError,
};
use qubix_protocol::api::{ErrorCode, Event, LedgerEntry};
use qubix_protocol::control::JobAction;
use qubix_protocol::{AgreementId, Qu, UnixMillis};
use tracing::{info, warn};

use super::{Internal, Service, ServiceError};
use crate::store::Role;

/// How long a provider waits, after a job ends, for the consumer's final receipt before it
/// closes the agreement's books and refunds what the ledger says is owed.
pub(super) const END_GRACE: Duration = Duration::from_secs(30);
/// How long a consumer keeps asking an ended job's provider for its refund transaction.
const REFUND_WAIT: Duration = Duration::from_secs(600);
/// How often it asks.
const REFUND_POLL: Duration = Duration::from_secs(2);

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

    /// Provider: a consumer's payment verified on chain.
    pub(super) fn book_window_received(
        &self,
        id: AgreementId,
        window: u32,
        incoming: &IncomingTransfer,
    ) {
        let Some(Ok(terms)) = self.jobs.get(&id).map(|r| r.terms(&self.network_name)) else {
            return;
        };
        let result =
            self.ledger
                .receive_window(terms.payload(), window, incoming, UnixMillis::now());
        self.book("window received", Some(id), result);
    }

    /// Either side: a countersigned receipt.
    pub(super) fn book_receipt(&self, id: AgreementId, receipt: &qubix_protocol::Envelope) {
        let result = self
            .ledger
            .record_receipt(receipt, &self.network_name, UnixMillis::now());
        self.book("receipt", Some(id), result);
    }

    /// Whether the ledger still has the agreement open.
    fn ledger_open(&self, id: &AgreementId) -> bool {
        matches!(self.ledger.agreement(id), Ok(Some(r)) if r.ended_at.is_none())
    }

    fn balance_of(&self, account: Account) -> Qu {
        Qu(self
            .ledger
            .balance(&account)
            .ok()
            .and_then(|b| u64::try_from(b).ok())
            .unwrap_or(0))
    }

    /// Consumer: the instance ended (its final receipt was asked for). Unspent escrow
    /// returns to available; the unused paid time is owed back, and a watcher waits for the
    /// provider's refund.
    pub(super) fn close_instance(&mut self, id: AgreementId) {
        if self.ledger_open(&id) {
            let result = self.ledger.end_agreement(id, UnixMillis::now());
            self.book("instance ended", Some(id), result);
        }
        self.await_refund(id);
    }

    /// Consumer: asks the provider for its refund transaction until it comes or
    /// [`REFUND_WAIT`] passes, verifies it on chain and reports it as `RefundArrived`.
    pub(super) fn await_refund(&mut self, id: AgreementId) {
        let owed = self.balance_of(Account::RefundReceivable(id));
        let Some(record) = self.jobs.get(&id).filter(|r| r.role == Role::Consumer) else {
            return;
        };
        if owed == Qu::ZERO || record.refund_tx.is_some() {
            return;
        }
        let (Some(settlement), Ok(terms)) =
            (self.settlement.clone(), record.terms(&self.network_name))
        else {
            return;
        };
        let provider = terms.payload().provider.to_peer_id();
        let from: Option<Identity> = terms.payload().pay_to.parse().ok();
        let (net, key, internal) = (self.net.clone(), self.key.clone(), self.internal_tx.clone());
        let network = self.network_name.clone();
        let cancel = self.shutdown.child_token();
        self.spawn(async move {
            let deadline = tokio::time::Instant::now() + REFUND_WAIT;
            let mut poll = tokio::time::interval(REFUND_POLL);
            while tokio::time::Instant::now() < deadline {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = poll.tick() => {}
                }
                let Ok(status) =
                    super::instances::control(&net, &network, &key, provider, id, JobAction::Status)
                        .await
                else {
                    continue;
                };
                let Some(tx) = status
                    .refunds
                    .first()
                    .and_then(|t| t.parse::<TxId>().ok())
                else {
                    continue;
                };
                let me = settlement.identity();
                match settlement
                    .verify_incoming(&tx, &me, from.as_ref(), Qu(1))
                    .await
                {
                    Ok(incoming) => {
                        let _ = internal
                            .send(Internal::RefundArrived { id, incoming })
                            .await;
                        return;
                    }
                    Err(e) => {
                        warn!(instance = %id, error = %e, "the provider's refund does not verify yet")
                    }
                }
            }
            warn!(instance = %id, %owed, "no refund from the provider; it stays recorded as owed");
        });
    }

    /// Consumer: the provider's refund verified on chain.
    pub(super) fn on_refund_arrived(&mut self, id: AgreementId, incoming: IncomingTransfer) {
        let result = self
            .ledger
            .refund_received(id, &incoming, UnixMillis::now());
        self.book("refund received", Some(id), result);
        if let Some(record) = self.jobs.get_mut(&id) {
            record.refund_tx = Some(incoming.tx_id.to_string());
            let record = record.clone();
            let _ = self.store.put_job(&id, &record);
        }
        info!(instance = %id, amount = %incoming.amount, "refund received");
    }

    /// Provider: a job reached a final state; its books close on the consumer's final
    /// receipt or after [`END_GRACE`].
    pub(super) fn job_ended(&mut self, id: AgreementId) {
        if self.ledger_open(&id) {
            self.ending
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
            .ending
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            warn!(job = %id, "no final receipt from the consumer; closing the books on the receipts held");
            self.close_job(id);
        }
    }

    /// Provider: ends the agreement in the ledger and refunds what it says is owed.
    pub(super) fn close_job(&mut self, id: AgreementId) {
        self.ending.remove(&id);
        if self.ledger_open(&id) {
            let result = self.ledger.end_agreement(id, UnixMillis::now());
            self.book("job ended", Some(id), result);
        }
        self.pay_refund(id);
    }

    /// Provider: pays the refund the ledger holds for an ended agreement (idempotent: the
    /// settlement pays a purpose once), and reports it as `RefundPaid` once final.
    fn pay_refund(&self, id: AgreementId) {
        let due = self.balance_of(Account::RefundsDue(id));
        let Some(record) = self.jobs.get(&id).filter(|r| r.role == Role::Provider) else {
            return;
        };
        if due == Qu::ZERO || record.refund_tx.is_some() {
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
        let internal = self.internal_tx.clone();
        self.spawn(async move {
            let result = async {
                let transfer = settlement
                    .pay(&to, due, PaymentPurpose::Refund { agreement: id })
                    .await?;
                info!(job = %id, amount = %due, transfer = %transfer, "refund queued");
                settlement
                    .wait_final(&transfer, Duration::from_secs(600))
                    .await
            }
            .await;
            match result {
                Ok(done) => {
                    let _ = internal
                        .send(Internal::RefundPaid { id, transfer: done })
                        .await;
                }
                Err(e) => {
                    warn!(job = %id, error = %e, "refund not final; it stays owed and is retried at the next start")
                }
            }
        });
    }

    /// Provider: the refund transfer is final.
    pub(super) fn on_refund_paid(&mut self, id: AgreementId, transfer: FinalTransfer) {
        let result = self.ledger.refund_paid(id, &transfer, UnixMillis::now());
        self.book("refund paid", Some(id), result);
        if let Some(record) = self.jobs.get_mut(&id) {
            record.refund_tx = Some(transfer.tx_id.to_string());
            let record = record.clone();
            let _ = self.store.put_job(&id, &record);
        }
        info!(job = %id, amount = %transfer.amount, tx = %transfer.tx_id, "refund paid");
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
