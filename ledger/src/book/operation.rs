//! [`Operation`]: one intent to move money, the unit of idempotency.
//!
//! Each operation has a deterministic id derived from what it is about (`in/<tx id>`,
//! `lock/<agreement>`, `pay/<agreement>/<window>`, …). Applying an operation whose id is
//! already recorded with the same content returns the original entry and changes nothing;
//! the same id with different content is refused.

use serde::{Deserialize, Serialize};

use qubix_protocol::job::AgreementTerms;
use qubix_protocol::{AgreementId, NodeId, Qu};

/// Which side of a rental this node is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// This node rents the GPUs and pays.
    Consumer,
    /// This node runs the job and is paid.
    Provider,
}

/// What the ledger keeps about an agreement: the parts of the signed terms money depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgreementInfo {
    /// The agreement.
    pub id: AgreementId,
    /// This node's side.
    pub side: Side,
    /// The consumer node; receipts must be signed by it.
    pub consumer: NodeId,
    /// The provider node.
    pub provider: NodeId,
    /// The whole rental's budget.
    pub budget: Qu,
    /// The cost of one prepaid window.
    pub window_cost: Qu,
    /// The identity the provider is paid at.
    pub pay_to: String,
    /// The identity refunds go to.
    pub refund_to: String,
    /// The identity the consumer pays from (agreements recorded before it was kept have
    /// none).
    #[serde(default)]
    pub pay_from: String,
}

impl AgreementInfo {
    /// The ledger's view of signed terms, for this node's `side`.
    pub fn from_terms(terms: &AgreementTerms, side: Side) -> AgreementInfo {
        AgreementInfo {
            id: terms.agreement_id,
            side,
            consumer: terms.consumer,
            provider: terms.provider,
            budget: terms.budget,
            window_cost: terms.window_cost(),
            pay_to: terms.pay_to.clone(),
            refund_to: terms.refund_to.clone(),
            pay_from: terms.pay_from.clone(),
        }
    }
}

/// One intent to move money. Amounts are whole QU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// A confirmed incoming transfer credited to `available`.
    Deposit {
        /// The Qubic transaction id.
        tx_id: String,
        /// Amount received.
        amount: Qu,
    },
    /// Consumer: lock the rental's budget from `available` into escrow.
    LockEscrow {
        /// The agreement, as signed.
        agreement: AgreementInfo,
    },
    /// Consumer: a prepaid window's transfer to the provider is final (window 0 is the first
    /// window; later windows are the automatic top-ups).
    PayWindow {
        /// The agreement.
        agreement: AgreementId,
        /// Window number, from 0.
        window: u32,
        /// Amount paid.
        amount: Qu,
        /// The final Qubic transaction.
        tx_id: String,
    },
    /// Provider: a verified incoming transfer paying a window of an agreement.
    ReceiveWindow {
        /// The agreement, as signed.
        agreement: AgreementInfo,
        /// Window number, from 0.
        window: u32,
        /// Amount received.
        amount: Qu,
        /// The Qubic transaction.
        tx_id: String,
    },
    /// A countersigned cumulative receipt (both sides record it).
    Receipt {
        /// The agreement.
        agreement: AgreementId,
        /// The report sequence it acknowledges.
        sequence: u64,
        /// Cumulative amount acknowledged as earned.
        amount: Qu,
    },
    /// The rental ended (completed or early): unspent escrow returns to `available`; metered
    /// usage the consumer never signed a receipt for is booked as spent (consumer) or earned
    /// (provider); what was paid beyond it becomes a refund (owed to the consumer).
    EndAgreement {
        /// The agreement.
        agreement: AgreementId,
        /// Usage beyond the last receipt, at most what is prepaid beyond the receipts.
        #[serde(default, skip_serializing_if = "is_zero")]
        unacknowledged: Qu,
    },
    /// Consumer: the provider's refund arrived.
    RefundReceived {
        /// The agreement.
        agreement: AgreementId,
        /// Amount received.
        amount: Qu,
        /// The Qubic transaction.
        tx_id: String,
    },
    /// Provider: a refund transfer to the consumer is final. An agreement can have several
    /// refunds (money that arrives after the first refund is owed back too), numbered from 0.
    RefundPaid {
        /// The agreement.
        agreement: AgreementId,
        /// Amount refunded.
        amount: Qu,
        /// The final Qubic transaction.
        tx_id: String,
        /// Which refund of the agreement, from 0.
        #[serde(default, skip_serializing_if = "is_zero_u32")]
        n: u32,
    },
    /// Start a withdrawal to an external identity (from `available`, then `earned`).
    Withdraw {
        /// Caller-chosen idempotency key.
        withdrawal: String,
        /// Destination identity.
        to: String,
        /// Amount.
        amount: Qu,
    },
    /// The withdrawal's transfer is final.
    WithdrawalFinal {
        /// The withdrawal.
        withdrawal: String,
        /// The final Qubic transaction.
        tx_id: String,
    },
    /// The withdrawal's transfer failed; its QU return to `available`.
    WithdrawalFailed {
        /// The withdrawal.
        withdrawal: String,
        /// Why, for the record.
        reason: String,
    },
}

impl Operation {
    /// The idempotency id of this operation.
    pub fn id(&self) -> String {
        match self {
            Operation::Deposit { tx_id, .. }
            | Operation::ReceiveWindow { tx_id, .. }
            | Operation::RefundReceived { tx_id, .. } => format!("in/{tx_id}"),
            Operation::LockEscrow { agreement } => format!("lock/{}", agreement.id),
            Operation::PayWindow {
                agreement, window, ..
            } => format!("pay/{agreement}/{window}"),
            Operation::Receipt {
                agreement,
                sequence,
                ..
            } => format!("receipt/{agreement}/{sequence}"),
            Operation::EndAgreement { agreement, .. } => format!("end/{agreement}"),
            Operation::RefundPaid {
                agreement, n: 0, ..
            } => format!("refund/{agreement}"),
            Operation::RefundPaid { agreement, n, .. } => format!("refund/{agreement}/{n}"),
            Operation::Withdraw { withdrawal, .. } => format!("withdraw/{withdrawal}"),
            Operation::WithdrawalFinal { withdrawal, .. }
            | Operation::WithdrawalFailed { withdrawal, .. } => {
                format!("withdraw/{withdrawal}/settle")
            }
        }
    }

    /// The entry kind shown in the console and the CSV export.
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::Deposit { .. } => "deposit",
            Operation::LockEscrow { .. } => "lock_escrow",
            Operation::PayWindow { window: 0, .. } => "pay_window",
            Operation::PayWindow { .. } => "top_up",
            Operation::ReceiveWindow { .. } => "receive_window",
            Operation::Receipt { .. } => "receipt",
            Operation::EndAgreement { .. } => "end_agreement",
            Operation::RefundReceived { .. } => "refund_received",
            Operation::RefundPaid { .. } => "refund_paid",
            Operation::Withdraw { .. } => "withdraw",
            Operation::WithdrawalFinal { .. } => "withdrawal_final",
            Operation::WithdrawalFailed { .. } => "withdrawal_failed",
        }
    }

    /// The agreement the operation concerns, if any.
    pub fn agreement(&self) -> Option<AgreementId> {
        match self {
            Operation::LockEscrow { agreement } | Operation::ReceiveWindow { agreement, .. } => {
                Some(agreement.id)
            }
            Operation::PayWindow { agreement, .. }
            | Operation::Receipt { agreement, .. }
            | Operation::EndAgreement { agreement, .. }
            | Operation::RefundReceived { agreement, .. }
            | Operation::RefundPaid { agreement, .. } => Some(*agreement),
            _ => None,
        }
    }
}

fn is_zero(q: &Qu) -> bool {
    *q == Qu::ZERO
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_transfers_share_one_id_space() {
        let a = AgreementId::from_bytes([1; 16]);
        let deposit = Operation::Deposit {
            tx_id: "abc".into(),
            amount: Qu(5),
        };
        let refund = Operation::RefundReceived {
            agreement: a,
            amount: Qu(5),
            tx_id: "abc".into(),
        };
        // One chain transaction can be credited once, whatever it is claimed to be.
        assert_eq!(deposit.id(), refund.id());
        let top_up = Operation::PayWindow {
            agreement: a,
            window: 2,
            amount: Qu(1),
            tx_id: "t".into(),
        };
        assert_eq!(top_up.kind(), "top_up");
        assert_eq!(top_up.agreement(), Some(a));
    }
}
