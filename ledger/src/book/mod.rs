//! The double-entry escrow ledger on sled: every movement of QU this node knows about, for
//! both sides of a rental.
//!
//! ```text
//! consumer:  deposit ─▶ available ─lock─▶ escrow/A ─pay window/top-up─▶ prepaid/A ─receipt─▶ spent/A
//!                           ▲                 │ end                          │ end
//!                           └─────────────────┘                              ▼
//!                           ◀──────────── refund received ──────── refund_receivable/A
//! provider:  window received ─▶ prepaid_held/A ─receipt─▶ earned ─withdraw─▶ withdrawals_pending ─▶ external
//!                                      │ end
//!                                      ▼
//!                                refunds_due/A ─refund paid─▶ external
//! ```
//!
//! * [`account`]: account names; every bucket is non-negative, only `external` (the rest of
//!   the network) is not.
//! * [`operation`]: one intent to move money, with a deterministic idempotency id.
//! * `plan` turns an operation into postings against the current balances; `store` checks
//!   the postings sum to zero and no bucket goes negative, then writes postings, balances,
//!   records and the log entry in one atomic sled batch (flushed when durable).
//! * `query`: the console's views (`Billing`, `LedgerEntry`, `Earnings`, CSV); `audit`:
//!   integrity checks and reconciliation with the chain balance.
//!
//! Writes are serialised by a mutex, so each read-plan-commit sees no concurrent change.
//! Calls block on disk (`flush` per operation when durable): from async code, call them in
//! `tokio::task::spawn_blocking`.

pub mod account;
mod audit;
mod error;
pub mod operation;
mod plan;
mod query;
mod store;

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use qubix_protocol::billing::Receipt;
use qubix_protocol::job::AgreementTerms;
use qubix_protocol::{AgreementId, Envelope, UnixMillis};

use crate::qubic::Identity;
use crate::settle::{FinalTransfer, IncomingTransfer};

pub use account::Account;
pub use audit::{Audit, Reconciliation};
pub use error::LedgerError;
pub use operation::{AgreementInfo, Operation, Side};
pub use store::{AgreementRecord, WithdrawalRecord, WithdrawalState};

use qubix_protocol::api::LedgerEntry;
use store::Store;

/// The sled tree the ledger lives in.
pub const TREE: &str = "ledger";

/// How the ledger writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerConfig {
    /// Flush to disk before an operation returns (default). Off only for tests and scratch
    /// ledgers: a crash can then lose the newest operations (never half of one).
    pub durable: bool,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig { durable: true }
    }
}

/// The ledger: a cheap, cloneable handle. Open one per tree.
#[derive(Debug, Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    write: Mutex<()>,
}

impl Ledger {
    /// Opens (or creates) the ledger in the [`TREE`] tree of `db`.
    pub fn open(db: &sled::Db, config: LedgerConfig) -> Result<Ledger, LedgerError> {
        let store = Store::open(db.open_tree(TREE)?, config.durable)?;
        Ok(Ledger {
            inner: Arc::new(Inner {
                store,
                write: Mutex::new(()),
            }),
        })
    }

    /// Opens (or creates) a sled database at `path` and the ledger in it.
    pub fn open_path(path: &Path, config: LedgerConfig) -> Result<Ledger, LedgerError> {
        Ledger::open(&sled::open(path)?, config)
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Key and value sizes of what the newest transaction wrote: its record, its log entry,
    /// the log sequence and one balance per posting.
    pub(crate) fn last_batch_shape(&self) -> Result<Vec<(usize, usize)>, LedgerError> {
        let seq = self.store().last_seq()?;
        let Some(id) = self.store().tree().get(store::log_key(seq))? else {
            return Ok(Vec::new());
        };
        let id = String::from_utf8_lossy(&id).into_owned();
        let key = store::txn_key(&id);
        let record = self.store().tree().get(&key)?.map_or(0, |v| v.len());
        let mut shape = vec![(key.len(), record), (10, id.len()), (5, 8)];
        if let Some(txn) = self.store().txn(&id)? {
            for (account, _) in &txn.postings {
                shape.push((store::balance_key(account).len(), 8));
            }
        }
        Ok(shape)
    }

    /// Applies an operation: a no-op returning the original entry when its id is already
    /// recorded with the same content, an error (and no change) when with different content.
    pub fn apply(&self, op: Operation, at: UnixMillis) -> Result<LedgerEntry, LedgerError> {
        self.apply_with(op, at, None)
    }

    fn apply_with(
        &self,
        op: Operation,
        at: UnixMillis,
        receipt: Option<Vec<u8>>,
    ) -> Result<LedgerEntry, LedgerError> {
        let _guard = self
            .inner
            .write
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let id = op.id();
        if let Some(stored) = self.store().txn(&id)? {
            if stored.op == op {
                return Ok(query::entry_of(&stored));
            }
            return Err(LedgerError::ConflictingReplay { id });
        }
        let plan = plan::plan(self.store(), &op, at, receipt)?;
        let kind = op.kind();
        let stored = self.store().commit(op, at, plan)?;
        tracing::debug!(id = %id, kind, seq = stored.seq, "ledger transaction recorded");
        Ok(query::entry_of(&stored))
    }

    /// Credits a confirmed incoming transfer to `available`.
    pub fn deposit(
        &self,
        transfer: &IncomingTransfer,
        at: UnixMillis,
    ) -> Result<LedgerEntry, LedgerError> {
        let op = Operation::Deposit {
            tx_id: transfer.tx_id.to_string(),
            amount: transfer.amount,
        };
        self.apply(op, at)
    }

    /// Consumer: locks the rental's budget from `available` into `escrow/<agreement>`.
    pub fn lock_escrow(
        &self,
        terms: &AgreementTerms,
        at: UnixMillis,
    ) -> Result<LedgerEntry, LedgerError> {
        let agreement = AgreementInfo::from_terms(terms, Side::Consumer);
        self.apply(Operation::LockEscrow { agreement }, at)
    }

    /// Consumer: records a prepaid window's final transfer (escrow → prepaid). Window 0 is
    /// the first window; windows from 1 are the automatic top-ups (see [`Ledger::top_up`]).
    pub fn pay_window(
        &self,
        agreement: AgreementId,
        window: u32,
        transfer: &FinalTransfer,
        at: UnixMillis,
    ) -> Result<LedgerEntry, LedgerError> {
        let op = Operation::PayWindow {
            agreement,
            window,
            amount: transfer.amount,
            tx_id: transfer.tx_id.to_string(),
        };
        self.apply(op, at)
    }

    /// Consumer: records an automatic top-up, the next window paid from escrow (`window`
    /// counts from 1).
    pub fn top_up(
        &self,
        agreement: AgreementId,
        window: u32,
        transfer: &FinalTransfer,
        at: UnixMillis,
    ) -> Result<LedgerEntry, LedgerError> {
        if window == 0 {
            return Err(LedgerError::InvalidInput {
                what: "top-up window",
                value: "0".into(),
                why: "window 0 is the first window (pay_window); top-ups count from 1",
            });
        }
        self.pay_window(agreement, window, transfer, at)
    }

    /// Provider: records a verified incoming payment of a window (→ `prepaid_held`). The
    /// first payment registers the agreement.
    pub fn receive_window(
        &self,
        terms: &AgreementTerms,
        window: u32,
        transfer: &IncomingTransfer,
        at: UnixMillis,
    ) -> Result<LedgerEntry, LedgerError> {
        let op = Operation::ReceiveWindow {
            agreement: AgreementInfo::from_terms(terms, Side::Provider),
            window,
            amount: transfer.amount,
            tx_id: transfer.tx_id.to_string(),
        };
        self.apply(op, at)
    }

    /// Records a countersigned cumulative receipt, on either side: the consumer moves the
    /// newly acknowledged amount from prepaid to spent, the provider from prepaid held to
    /// earned. The signature must verify and be the agreement's consumer's; the receipt is
    /// kept as evidence. Replaying a recorded receipt changes nothing.
    pub fn record_receipt(
        &self,
        receipt: &Envelope,
        network: &qubix_protocol::topics::Network,
        at: UnixMillis,
    ) -> Result<LedgerEntry, LedgerError> {
        let signed = receipt.open::<Receipt>(network)?;
        let r = signed.payload();
        let record =
            self.store()
                .agreement(&r.agreement_id)?
                .ok_or(LedgerError::UnknownAgreement {
                    agreement: r.agreement_id,
                })?;
        if signed.signer() != record.info.consumer {
            return Err(LedgerError::ReceiptSigner {
                agreement: r.agreement_id,
                signer: signed.signer(),
                consumer: record.info.consumer,
            });
        }
        let op = Operation::Receipt {
            agreement: r.agreement_id,
            sequence: r.report_sequence,
            amount: r.amount,
        };
        self.apply_with(op, at, Some(receipt.as_bytes().to_vec()))
    }

    /// Ends a rental (completed or early). `unacknowledged` is metered usage beyond the
    /// last receipt (at most what is prepaid beyond the receipts): spent on the consumer's
    /// side, earned on the provider's. Consumer: unspent escrow returns to `available`, the
    /// rest of the prepaid part becomes `refund_receivable`. Provider: the rest of the paid
    /// windows becomes `refunds_due`.
    pub fn end_agreement(
        &self,
        agreement: AgreementId,
        unacknowledged: qubix_protocol::Qu,
        at: UnixMillis,
    ) -> Result<LedgerEntry, LedgerError> {
        let op = Operation::EndAgreement {
            agreement,
            unacknowledged,
        };
        self.apply(op, at)
    }

    /// Consumer: the provider's refund arrived (verified incoming transfer).
    pub fn refund_received(
        &self,
        agreement: AgreementId,
        transfer: &IncomingTransfer,
        at: UnixMillis,
    ) -> Result<LedgerEntry, LedgerError> {
        let op = Operation::RefundReceived {
            agreement,
            amount: transfer.amount,
            tx_id: transfer.tx_id.to_string(),
        };
        self.apply(op, at)
    }

    /// Provider: refund `n` (from 0) of the agreement is final.
    pub fn refund_paid(
        &self,
        agreement: AgreementId,
        n: u32,
        transfer: &FinalTransfer,
        at: UnixMillis,
    ) -> Result<LedgerEntry, LedgerError> {
        let op = Operation::RefundPaid {
            agreement,
            amount: transfer.amount,
            tx_id: transfer.tx_id.to_string(),
            n,
        };
        self.apply(op, at)
    }

    /// Starts a withdrawal to `to` (from `available`, then `earned`), pending until
    /// [`Ledger::withdrawal_final`] or [`Ledger::withdrawal_failed`]. `id` is the caller's
    /// idempotency key: 1–64 characters of `A-Z a-z 0-9 . _ : -`.
    pub fn withdraw(
        &self,
        id: &str,
        to: &Identity,
        amount: qubix_protocol::Qu,
        at: UnixMillis,
    ) -> Result<LedgerEntry, LedgerError> {
        check_key(id)?;
        let op = Operation::Withdraw {
            withdrawal: id.to_owned(),
            to: to.to_string(),
            amount,
        };
        self.apply(op, at)
    }

    /// The withdrawal's transfer is final.
    pub fn withdrawal_final(
        &self,
        id: &str,
        transfer: &FinalTransfer,
        at: UnixMillis,
    ) -> Result<LedgerEntry, LedgerError> {
        let op = Operation::WithdrawalFinal {
            withdrawal: id.to_owned(),
            tx_id: transfer.tx_id.to_string(),
        };
        self.apply(op, at)
    }

    /// The withdrawal's transfer failed; its QU return to `available`.
    pub fn withdrawal_failed(
        &self,
        id: &str,
        reason: &str,
        at: UnixMillis,
    ) -> Result<LedgerEntry, LedgerError> {
        let op = Operation::WithdrawalFailed {
            withdrawal: id.to_owned(),
            reason: reason.to_owned(),
        };
        self.apply(op, at)
    }
}

/// Checks a caller-chosen key: short, and safe in ids, keys and CSV.
fn check_key(id: &str) -> Result<(), LedgerError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        return Ok(());
    }
    Err(LedgerError::InvalidInput {
        what: "withdrawal id",
        value: id.chars().take(80).collect(),
        why: "use 1-64 characters of A-Z a-z 0-9 . _ : -",
    })
}
