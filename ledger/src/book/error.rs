//! [`LedgerError`]: why an operation was refused. A refused operation changes nothing.

use qubix_protocol::signed::EnvelopeError;
use qubix_protocol::{AgreementId, NodeId};

use super::operation::Side;

/// Why a ledger operation or query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// A bucket would go below zero.
    #[error(
        "not enough QU in `{account}`: it holds {balance} QU and {needed} QU are needed; \
         deposit more, or lower the amount"
    )]
    InsufficientFunds {
        /// The account that would go negative.
        account: String,
        /// What it holds.
        balance: i64,
        /// What the operation takes from it.
        needed: i64,
    },
    /// No agreement with this id is recorded.
    #[error(
        "agreement {agreement} is unknown to this ledger; lock escrow (consumer) or record its \
         first payment (provider) first"
    )]
    UnknownAgreement {
        /// The agreement.
        agreement: AgreementId,
    },
    /// The operation is for the other side of the agreement.
    #[error(
        "agreement {agreement} is recorded as {side:?} side here; this operation is for the other side"
    )]
    WrongSide {
        /// The agreement.
        agreement: AgreementId,
        /// The side recorded.
        side: Side,
    },
    /// The agreement has ended; only refunds can still be recorded.
    #[error("agreement {agreement} has ended; only its refund can still be recorded")]
    AgreementEnded {
        /// The agreement.
        agreement: AgreementId,
    },
    /// The id was recorded before with different content.
    #[error(
        "ledger transaction {id} was already recorded with different content; an id names one \
         movement of money, so use a new id for a different one"
    )]
    ConflictingReplay {
        /// The id.
        id: String,
    },
    /// A receipt older than the newest one recorded.
    #[error(
        "receipt {sequence} for agreement {agreement} is older than receipt {last} already \
         recorded; receipts are cumulative, so the newer one already covers it"
    )]
    StaleReceipt {
        /// The agreement.
        agreement: AgreementId,
        /// The receipt's report sequence.
        sequence: u64,
        /// The newest sequence recorded.
        last: u64,
    },
    /// A receipt acknowledging less than an earlier one.
    #[error(
        "receipt for agreement {agreement} acknowledges less than an earlier receipt; receipts only grow"
    )]
    ReceiptRegresses {
        /// The agreement.
        agreement: AgreementId,
    },
    /// The receipt's signature or encoding does not verify.
    #[error("receipt refused: {0}")]
    BadReceipt(#[from] EnvelopeError),
    /// The receipt is signed by someone other than the agreement's consumer.
    #[error(
        "receipt for agreement {agreement} is signed by {signer}, not by its consumer {consumer}"
    )]
    ReceiptSigner {
        /// The agreement.
        agreement: AgreementId,
        /// Who signed it.
        signer: NodeId,
        /// Who should have.
        consumer: NodeId,
    },
    /// No withdrawal with this id.
    #[error("withdrawal {id} is unknown to this ledger")]
    UnknownWithdrawal {
        /// The withdrawal id.
        id: String,
    },
    /// The withdrawal is already final or failed.
    #[error("withdrawal {id} is already settled")]
    WithdrawalSettled {
        /// The withdrawal id.
        id: String,
    },
    /// Zero, or above what one Qubic transfer can carry.
    #[error("amount {amount} QU is not allowed here: {why}")]
    InvalidAmount {
        /// The amount.
        amount: u64,
        /// Why.
        why: &'static str,
    },
    /// A caller-chosen id or identity that is not acceptable.
    #[error("{what} {value:?} is not valid: {why}")]
    InvalidInput {
        /// What the value is.
        what: &'static str,
        /// The value (public data only).
        value: String,
        /// What a valid one looks like.
        why: &'static str,
    },
    /// A balance left the range of an i64 (a bug or corrupted data).
    #[error("ledger arithmetic overflowed on `{account}`; the ledger is left unchanged")]
    Overflow {
        /// The account.
        account: String,
    },
    /// A transaction whose postings do not sum to zero (a bug; nothing was written).
    #[error("ledger transaction {id} does not balance (sum {sum}); nothing was written")]
    Unbalanced {
        /// The transaction.
        id: String,
        /// The sum of its postings.
        sum: i64,
    },
    /// The data on disk was written by another schema version.
    #[error(
        "the ledger on disk has schema version {found}, this build reads version {expected}; \
         run the qubix version that wrote it, or restore a backup"
    )]
    SchemaVersion {
        /// Version found.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// A stored value does not decode.
    #[error("ledger record {key} is corrupt ({reason}); restore the data directory from a backup")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The database failed.
    #[error("ledger storage failed: {0}; check disk space and permissions of the data directory")]
    Storage(#[from] sled::Error),
    /// Writing the CSV export failed.
    #[error("writing the ledger export failed: {0}")]
    Export(#[source] std::io::Error),
}
