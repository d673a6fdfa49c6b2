//! Integrity checks and reconciliation.
//!
//! [`Ledger::audit`] recomputes every balance from the log and checks what must always
//! hold: each transaction sums to zero, the stored balances equal the recomputed ones, no
//! bucket is negative, the log has no gap, and no escrow exceeds its locked budget. Tests
//! run it after every random sequence and after every crash; operators can too.
//! [`Ledger::reconcile`] compares what the wallet should hold with its chain balance.

use std::collections::BTreeMap;

use qubix_protocol::Qu;

use super::Ledger;
use super::account::Account;
use super::error::LedgerError;
use super::operation::Side;
use super::store::log_key;

/// What [`Ledger::audit`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// Transactions in the log.
    pub transactions: u64,
    /// Accounts with a non-zero balance.
    pub accounts: usize,
    /// Every broken invariant, in words; empty when the ledger is sound.
    pub problems: Vec<String>,
}

impl Audit {
    /// Whether every invariant holds.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The wallet's chain balance against what the ledger says the wallet holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconciliation {
    /// The balance the chain reports for the wallet.
    pub chain: Qu,
    /// The sum of the ledger's in-wallet accounts.
    pub ledger: i64,
    /// `chain - ledger`: positive when QU arrived that the ledger has not recorded (an
    /// unrecorded deposit), negative when QU left that it has not (a transfer not yet
    /// final here, or a payment made outside Qubix).
    pub difference: i64,
}

impl Ledger {
    /// Recomputes every balance from the log and reports each broken invariant.
    pub fn audit(&self) -> Result<Audit, LedgerError> {
        let mut problems = Vec::new();
        let mut recomputed: BTreeMap<String, i64> = BTreeMap::new();
        let last = self.store().last_seq()?;
        let mut seen = 0u64;
        for txn in self.log_rev() {
            let txn = txn?;
            seen += 1;
            let sum: i64 = txn.postings.iter().map(|(_, d)| d).sum();
            if sum != 0 {
                problems.push(format!("transaction {} sums to {sum}", txn.op.id()));
            }
            for (account, delta) in &txn.postings {
                *recomputed.entry(account.clone()).or_default() += delta;
            }
        }
        if seen != last {
            problems.push(format!(
                "log holds {seen} transactions, sequence says {last}"
            ));
        }
        for seq in 1..=last {
            if !self.store().tree().contains_key(log_key(seq))? {
                problems.push(format!("log entry {seq} is missing"));
            }
        }
        recomputed.retain(|_, b| *b != 0);
        let stored = self.balances()?;
        if stored != recomputed {
            problems.push(format!(
                "stored balances {stored:?} differ from the log's {recomputed:?}"
            ));
        }
        self.check_buckets(&stored, &mut problems)?;
        Ok(Audit {
            transactions: seen,
            accounts: stored.len(),
            problems,
        })
    }

    /// No bucket below zero; no escrow above its budget.
    fn check_buckets(
        &self,
        balances: &BTreeMap<String, i64>,
        problems: &mut Vec<String>,
    ) -> Result<(), LedgerError> {
        for (name, balance) in balances {
            let negative_ok = name.parse::<Account>().is_ok_and(|a| a.may_go_negative());
            if *balance < 0 && !negative_ok {
                problems.push(format!("{name} is negative: {balance}"));
            }
        }
        for record in self.agreements()? {
            if record.info.side != Side::Consumer {
                continue;
            }
            let escrow = self.balance(&Account::Escrow(record.info.id))?;
            if u64::try_from(escrow).unwrap_or(0) > record.info.budget.0 {
                problems.push(format!(
                    "escrow/{} holds {escrow}, above its budget {}",
                    record.info.id, record.info.budget.0
                ));
            }
        }
        Ok(())
    }

    /// Compares the wallet's chain balance with the sum of the in-wallet accounts.
    pub fn reconcile(&self, chain: Qu) -> Result<Reconciliation, LedgerError> {
        let mut ledger = 0i64;
        for (name, balance) in self.balances()? {
            if name.parse::<Account>().is_ok_and(|a| a.in_wallet()) {
                ledger = ledger.saturating_add(balance);
            }
        }
        let chain_i = i64::try_from(chain.0).unwrap_or(i64::MAX);
        let reconciliation = Reconciliation {
            chain,
            ledger,
            difference: chain_i.saturating_sub(ledger),
        };
        if reconciliation.difference != 0 {
            tracing::info!(
                chain = chain.0,
                ledger,
                difference = reconciliation.difference,
                "wallet balance differs from the ledger"
            );
        }
        Ok(reconciliation)
    }
}
