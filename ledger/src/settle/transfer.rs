//! The values the [`super::Settlement`] trait speaks in: what a payment is for, its stable
//! id, where it stands, and what a confirmed transfer looks like in either direction.

use std::fmt;

use serde::{Deserialize, Serialize};

use qubix_protocol::api::Transfer;
use qubix_protocol::{AgreementId, Qu};

use crate::qubic::{Identity, TxId};

/// What an outgoing payment is for. It is also its idempotency key: paying the same purpose
/// twice queues one transfer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub enum PaymentPurpose {
    /// A prepaid window of a rental (window 0 first, then the top-ups).
    Window {
        /// The agreement.
        agreement: AgreementId,
        /// The window number.
        window: u32,
    },
    /// A provider's refund of unused paid time; an agreement can have several, from 0.
    Refund {
        /// The agreement.
        agreement: AgreementId,
        /// Which refund of the agreement.
        #[serde(default)]
        n: u32,
    },
    /// A withdrawal to an external identity (the ledger's withdrawal id).
    Withdrawal {
        /// The withdrawal id.
        id: String,
    },
    /// Anything else, named by the caller (1–64 characters of `A-Z a-z 0-9 . _ : -`).
    Other {
        /// The caller's key.
        key: String,
    },
}

impl PaymentPurpose {
    /// The stable id of the transfer paying this purpose.
    pub fn transfer_id(&self) -> TransferId {
        TransferId(match self {
            PaymentPurpose::Window { agreement, window } => format!("window/{agreement}/{window}"),
            PaymentPurpose::Refund { agreement, n: 0 } => format!("refund/{agreement}"),
            PaymentPurpose::Refund { agreement, n } => format!("refund/{agreement}/{n}"),
            PaymentPurpose::Withdrawal { id } => format!("withdraw/{id}"),
            PaymentPurpose::Other { key } => format!("other/{key}"),
        })
    }

    /// Whether caller-chosen parts are short and plain.
    pub(crate) fn is_valid(&self) -> bool {
        let plain = |s: &str| {
            (1..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        };
        match self {
            PaymentPurpose::Withdrawal { id } => plain(id),
            PaymentPurpose::Other { key } => plain(key),
            _ => true,
        }
    }
}

/// The stable id of an outgoing transfer. Unlike a [`TxId`], it survives re-signing: a
/// transfer whose first transaction was not included gets a new transaction, same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TransferId(pub String);

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A transfer into a wallet, as the node's Qubic RPC reports it: included in a tick, money
/// moved, to the right identity, for at least the expected amount. The RPC is trusted for
/// this (the node checks no tick quorum itself): see docs/security.md, "On chain".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingTransfer {
    /// The transaction.
    pub tx_id: TxId,
    /// Who paid.
    pub from: Identity,
    /// Who was paid.
    pub to: Identity,
    /// The amount moved.
    pub amount: Qu,
    /// The tick it executed in.
    pub tick: u32,
}

/// An outgoing transfer that is final: included with `moneyFlew`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalTransfer {
    /// The transfer.
    pub id: TransferId,
    /// The transaction that executed.
    pub tx_id: TxId,
    /// Who was paid.
    pub to: Identity,
    /// The amount moved.
    pub amount: Qu,
    /// The tick it executed in.
    pub tick: u32,
}

/// Where an outgoing transfer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferState {
    /// Waiting for its turn (one transfer in flight per source identity).
    Queued,
    /// Signed and stored; being broadcast.
    Signed,
    /// Broadcast; waiting for the network to pass its target tick.
    Pending {
        /// True while the network's ticks do not advance (e.g. an epoch transition).
        stalled: bool,
    },
    /// Included with money moved.
    Final {
        /// The tick it executed in.
        tick: u32,
    },
    /// It will not be paid by this transfer; the reason says why and what to do.
    Failed {
        /// Why, for a person.
        reason: String,
    },
}

/// An outgoing transfer as the node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferStatus {
    /// Its id.
    pub id: TransferId,
    /// Who is paid.
    pub to: Identity,
    /// How much.
    pub amount: Qu,
    /// Where it stands.
    pub state: TransferState,
    /// The current transaction, once signed.
    pub tx_id: Option<TxId>,
    /// The current transaction's target tick, once signed.
    pub target_tick: Option<u32>,
    /// Transactions signed so far (more than one when earlier ones were not included).
    pub attempts: u32,
}

impl TransferStatus {
    /// Whether the transfer will not change any more.
    pub fn is_settled(&self) -> bool {
        matches!(
            self.state,
            TransferState::Final { .. } | TransferState::Failed { .. }
        )
    }

    /// The API view (`pending`, `confirmed` or `failed`).
    pub fn to_api(&self) -> Transfer {
        let status = match self.state {
            TransferState::Final { .. } => "confirmed",
            TransferState::Failed { .. } => "failed",
            _ => "pending",
        };
        Transfer {
            tx_id: self
                .tx_id
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_default(),
            to: self.to.to_string(),
            amount: self.amount,
            target_tick: self.target_tick.unwrap_or(0),
            status: status.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_name_stable_ids() {
        let a = AgreementId::from_bytes([1; 16]);
        let window = PaymentPurpose::Window {
            agreement: a,
            window: 3,
        };
        assert_eq!(
            window.transfer_id().0,
            "window/01010101010101010101010101010101/3"
        );
        assert!(window.is_valid());
        assert!(!PaymentPurpose::Other { key: "a b".into() }.is_valid());
        assert!(!PaymentPurpose::Withdrawal { id: String::new() }.is_valid());
    }
}
