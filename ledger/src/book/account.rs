//! [`Account`]: where a ledger posting lands. Accounts are named by purpose and, where they
//! belong to one rental, by agreement: `available`, `escrow/<agreement>`, …
//!
//! Every account but [`Account::External`] is a bucket of QU and never goes negative.
//! `External` is the rest of the Qubic network: its balance is minus everything that ever
//! came in from outside plus everything that went out, so every transaction can balance.

use std::fmt;
use std::str::FromStr;

use qubix_protocol::AgreementId;

/// One account of the double-entry ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    /// QU in the wallet, free to lock, spend or withdraw.
    Available,
    /// Provider: QU in the wallet earned by receipts and not yet withdrawn.
    Earned,
    /// QU in the wallet on their way out to an external identity (not yet final).
    WithdrawalsPending,
    /// The rest of the network; the counterparty of every transfer in or out.
    External,
    /// Consumer: QU in the wallet locked for one rental's budget.
    Escrow(AgreementId),
    /// Consumer: QU paid to the provider for prepaid windows, not yet acknowledged as used.
    Prepaid(AgreementId),
    /// Consumer: QU acknowledged as used by countersigned receipts.
    Spent(AgreementId),
    /// Consumer: QU the provider owes back (the unused part of a paid window).
    RefundReceivable(AgreementId),
    /// Provider: QU received for prepaid windows and not yet earned.
    PrepaidHeld(AgreementId),
    /// Provider: QU in the wallet owed back to the consumer.
    RefundsDue(AgreementId),
}

impl Account {
    /// Whether the account's QU sit in this node's wallet on chain. The sum of these is
    /// what the wallet's chain balance should be (see `Ledger::reconcile`).
    pub fn in_wallet(&self) -> bool {
        matches!(
            self,
            Account::Available
                | Account::Earned
                | Account::WithdrawalsPending
                | Account::Escrow(_)
                | Account::PrepaidHeld(_)
                | Account::RefundsDue(_)
        )
    }

    /// Whether the balance may go below zero (only [`Account::External`]).
    pub fn may_go_negative(&self) -> bool {
        matches!(self, Account::External)
    }

    /// The agreement an account belongs to, if it is per agreement.
    pub fn agreement(&self) -> Option<AgreementId> {
        match self {
            Account::Escrow(a)
            | Account::Prepaid(a)
            | Account::Spent(a)
            | Account::RefundReceivable(a)
            | Account::PrepaidHeld(a)
            | Account::RefundsDue(a) => Some(*a),
            _ => None,
        }
    }

    /// The purpose part of the name (`escrow` for `escrow/<agreement>`).
    pub fn purpose(&self) -> &'static str {
        match self {
            Account::Available => "available",
            Account::Earned => "earned",
            Account::WithdrawalsPending => "withdrawals_pending",
            Account::External => "external",
            Account::Escrow(_) => "escrow",
            Account::Prepaid(_) => "prepaid",
            Account::Spent(_) => "spent",
            Account::RefundReceivable(_) => "refund_receivable",
            Account::PrepaidHeld(_) => "prepaid_held",
            Account::RefundsDue(_) => "refunds_due",
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.agreement() {
            Some(agreement) => write!(f, "{}/{agreement}", self.purpose()),
            None => f.write_str(self.purpose()),
        }
    }
}

/// A string that is not an account name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a ledger account name (e.g. `available`, `escrow/<32 hex>`)")]
pub struct UnknownAccount(pub String);

impl FromStr for Account {
    type Err = UnknownAccount;

    fn from_str(name: &str) -> Result<Account, UnknownAccount> {
        let unknown = || UnknownAccount(name.chars().take(120).collect());
        let (purpose, agreement) = match name.split_once('/') {
            Some((purpose, id)) => (purpose, Some(id.parse().map_err(|_| unknown())?)),
            None => (name, None),
        };
        let account = match (purpose, agreement) {
            ("available", None) => Account::Available,
            ("earned", None) => Account::Earned,
            ("withdrawals_pending", None) => Account::WithdrawalsPending,
            ("external", None) => Account::External,
            ("escrow", Some(a)) => Account::Escrow(a),
            ("prepaid", Some(a)) => Account::Prepaid(a),
            ("spent", Some(a)) => Account::Spent(a),
            ("refund_receivable", Some(a)) => Account::RefundReceivable(a),
            ("prepaid_held", Some(a)) => Account::PrepaidHeld(a),
            ("refunds_due", Some(a)) => Account::RefundsDue(a),
            _ => return Err(unknown()),
        };
        Ok(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let a = AgreementId::from_bytes([7; 16]);
        let all = [
            Account::Available,
            Account::Earned,
            Account::WithdrawalsPending,
            Account::External,
            Account::Escrow(a),
            Account::Prepaid(a),
            Account::Spent(a),
            Account::RefundReceivable(a),
            Account::PrepaidHeld(a),
            Account::RefundsDue(a),
        ];
        for account in all {
            assert_eq!(account.to_string().parse::<Account>(), Ok(account));
        }
        assert_eq!(
            Account::Escrow(a).to_string(),
            "escrow/07070707070707070707070707070707"
        );
        assert!("escrow".parse::<Account>().is_err());
        assert!("available/0707".parse::<Account>().is_err());
        assert!("nope".parse::<Account>().is_err());
    }
}
