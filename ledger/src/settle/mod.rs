//! Settlement: moving QU on the Qubic network for the ledger.
//!
//! The node depends on the [`Settlement`] trait; [`QubicSettlement`] implements it:
//!
//! ```text
//! pay(to, amount, purpose) ──▶ outbox (sled, flushed) ──▶ driver task ──▶ RpcClient ──▶ Qubic RPC
//!        ▲   cloneable handle,                               │ one transfer in flight
//!        │   bounded command channel                         │ per source identity
//!  transfer_status / wait_final ◀── watch (state changed) ◀──┘ confirm::Confirmation steps
//! ```
//!
//! * [`transfer`]: purposes (idempotency keys), transfer ids, statuses, confirmed transfers.
//! * [`confirm`]: the pure confirmation state machine of SPEC §6.
//! * `outbox`: the sled tree of outgoing transfers; `driver`: the task that owns it and
//!   performs what the machine decides; [`qubic`]: the handle and its configuration.
//! * `incoming`: checks a payment to us by transaction id (`verify_incoming`).
//! * [`scan`]: finds the transfers to us since a tick
//!   ([`QubicSettlement::incoming_since`]), resumable.

pub mod confirm;
mod driver;
mod incoming;
mod outbox;
pub mod qubic;
pub mod scan;
pub mod transfer;

use std::future::Future;
use std::time::Duration;

use qubix_protocol::Qu;

use crate::qubic::{Identity, TxId};
use crate::rpc::{RpcError, TickInfo};

pub use confirm::{ConfirmConfig, FailReason};
pub use outbox::TREE;
pub use qubic::{QubicSettlement, SettlementConfig};
pub use scan::{ChainTransferIn, IncomingScan};
pub use transfer::{
    FinalTransfer, IncomingTransfer, PaymentPurpose, TransferId, TransferState, TransferStatus,
};

/// Moving QU: what the node's payment logic needs from a chain.
pub trait Settlement: Send + Sync + 'static {
    /// The identity this settlement pays from (and is paid at).
    fn identity(&self) -> Identity;

    /// Queues a transfer of `amount` to `to` for `purpose`, serialised behind earlier
    /// transfers from the same identity. Idempotent by purpose: the same purpose returns
    /// the same id; the same purpose with another destination or amount is refused.
    fn pay(
        &self,
        to: &Identity,
        amount: Qu,
        purpose: PaymentPurpose,
    ) -> impl Future<Output = Result<TransferId, SettlementError>> + Send;

    /// Where a transfer stands now.
    fn transfer_status(
        &self,
        id: &TransferId,
    ) -> impl Future<Output = Result<TransferStatus, SettlementError>> + Send;

    /// Waits until the transfer is final (included with money moved); an error when it
    /// failed or `timeout` passed first.
    fn wait_final(
        &self,
        id: &TransferId,
        timeout: Duration,
    ) -> impl Future<Output = Result<FinalTransfer, SettlementError>> + Send;

    /// The chain balance of `identity`.
    fn balance(
        &self,
        identity: &Identity,
    ) -> impl Future<Output = Result<Qu, SettlementError>> + Send;

    /// The network's current tick and epoch.
    fn tick(&self) -> impl Future<Output = Result<TickInfo, SettlementError>> + Send;

    /// Checks a transfer to `expected_to` by its id: included, money moved, from
    /// `expected_from` when given, for at least `min_amount`.
    fn verify_incoming(
        &self,
        tx_id: &TxId,
        expected_to: &Identity,
        expected_from: Option<&Identity>,
        min_amount: Qu,
    ) -> impl Future<Output = Result<IncomingTransfer, SettlementError>> + Send;
}

/// Why a settlement call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettlementError {
    /// The RPC failed (its message says what to do).
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The settlement's database failed.
    #[error(
        "settlement storage failed: {0}; check disk space and permissions of the data directory"
    )]
    Storage(#[from] sled::Error),
    /// A stored record does not decode.
    #[error(
        "settlement record {key} is corrupt ({reason}); restore the data directory from a backup"
    )]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The purpose was already paid with another destination or amount.
    #[error(
        "payment {id} is already queued to {to} for {amount}; a purpose pays once, so use a \
         new purpose for a different payment"
    )]
    ConflictingPayment {
        /// The transfer.
        id: TransferId,
        /// Its destination.
        to: String,
        /// Its amount.
        amount: Qu,
    },
    /// No such transfer.
    #[error("transfer {id} is unknown here")]
    UnknownTransfer {
        /// The transfer.
        id: TransferId,
    },
    /// The payment request itself is not acceptable.
    #[error("payment refused: {0}")]
    InvalidPayment(String),
    /// The transfer will not be paid.
    #[error("transfer {id} failed: {reason}")]
    TransferFailed {
        /// The transfer.
        id: TransferId,
        /// Why.
        reason: String,
    },
    /// The transfer was not final in time.
    #[error(
        "transfer {id} is not final after {waited:?} ({state}); wait longer or check the network"
    )]
    Timeout {
        /// The transfer.
        id: TransferId,
        /// How long was waited.
        waited: Duration,
        /// Where it stands.
        state: String,
    },
    /// The incoming transaction is not (yet) in the archive.
    #[error(
        "transaction {tx_id} is not in the archive yet; it may still be pending: retry after \
         its target tick has been processed"
    )]
    IncomingNotFound {
        /// The transaction.
        tx_id: TxId,
    },
    /// The incoming transaction does not pay what was expected.
    #[error("transaction {tx_id} does not pay as expected: {problem}")]
    IncomingMismatch {
        /// The transaction.
        tx_id: TxId,
        /// What differs.
        problem: String,
    },
    /// A settlement for this identity and RPC already runs in this process.
    #[error(
        "a settlement paying from {identity} through {rpc} is already running in this process; \
         share its handle instead of starting another"
    )]
    AlreadyRunning {
        /// The source identity.
        identity: String,
        /// The RPC base URL.
        rpc: String,
    },
    /// No tokio runtime to run the driver on.
    #[error("QubicSettlement::start must be called inside a tokio runtime")]
    NoRuntime,
    /// The driver task has stopped.
    #[error("the settlement task has stopped; restart the node")]
    Shutdown,
}
