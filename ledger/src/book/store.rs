//! The sled layout of the ledger and the one write path, [`Store::commit`].
//!
//! One tree, prefixed keys (so a whole transaction is one atomic `apply_batch`):
//!
//! | key | value |
//! |---|---|
//! | `m/schema` | schema version, u32 BE |
//! | `m/seq` | last log sequence, u64 BE |
//! | `t/<id>` | [`StoredTxn`] (JSON) |
//! | `l/<seq u64 BE>` | transaction id |
//! | `b/<account>` | balance, i64 BE |
//! | `a/<agreement>` | [`AgreementRecord`] (JSON) |
//! | `r/<agreement>/<seq u64 BE>` | receipt envelope bytes |
//! | `w/<withdrawal>` | [`WithdrawalRecord`] (JSON) |

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use qubix_protocol::{AgreementId, Qu, UnixMillis};

use super::account::Account;
use super::error::LedgerError;
use super::operation::{AgreementInfo, Operation};

/// The schema this build reads and writes.
pub(crate) const SCHEMA_VERSION: u32 = 1;
const SCHEMA_KEY: &[u8] = b"m/schema";
const SEQ_KEY: &[u8] = b"m/seq";

/// What the ledger keeps about one agreement besides its balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgreementRecord {
    /// The agreement as signed.
    pub info: AgreementInfo,
    /// When it was first recorded.
    pub opened_at: UnixMillis,
    /// Consumer: paid to the provider; provider: received, in total.
    pub paid: Qu,
    /// The newest receipt's report sequence.
    pub receipt_sequence: Option<u64>,
    /// The newest receipt's cumulative amount.
    pub receipt_amount: Qu,
    /// Refund received (consumer) or paid (provider).
    pub refunded: Qu,
    /// When it ended, once it has.
    pub ended_at: Option<UnixMillis>,
}

/// Where a withdrawal stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WithdrawalState {
    /// The transfer is not final yet.
    Pending,
    /// The transfer is final.
    Final {
        /// The Qubic transaction.
        tx_id: String,
    },
    /// The transfer failed; the QU returned to `available`.
    Failed {
        /// Why.
        reason: String,
    },
}

/// A withdrawal to an external identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalRecord {
    /// The caller's idempotency key.
    pub id: String,
    /// Destination identity.
    pub to: String,
    /// Amount.
    pub amount: Qu,
    /// Part taken from `available`.
    pub from_available: Qu,
    /// Part taken from `earned`.
    pub from_earned: Qu,
    /// Where it stands.
    pub state: WithdrawalState,
}

/// A recorded transaction: the operation, and the postings it was planned into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredTxn {
    pub(crate) seq: u64,
    pub(crate) at: UnixMillis,
    pub(crate) op: Operation,
    pub(crate) postings: Vec<(String, i64)>,
}

/// What an operation will write: postings plus the records it creates or updates.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) postings: Vec<(Account, i64)>,
    pub(crate) agreement: Option<AgreementRecord>,
    pub(crate) withdrawal: Option<WithdrawalRecord>,
    pub(crate) receipt: Option<(AgreementId, u64, Vec<u8>)>,
}

/// The ledger's tree. The caller serialises writes (see `Ledger`), so a read-plan-commit
/// sequence sees no concurrent change.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    tree: sled::Tree,
    durable: bool,
}

pub(crate) fn txn_key(id: &str) -> Vec<u8> {
    [b"t/".as_slice(), id.as_bytes()].concat()
}

pub(crate) fn log_key(seq: u64) -> Vec<u8> {
    [b"l/".as_slice(), &seq.to_be_bytes()].concat()
}

pub(crate) fn balance_key(account: &str) -> Vec<u8> {
    [b"b/".as_slice(), account.as_bytes()].concat()
}

pub(crate) fn agreement_key(id: &AgreementId) -> Vec<u8> {
    [b"a/".as_slice(), id.to_string().as_bytes()].concat()
}

pub(crate) fn receipt_prefix(id: &AgreementId) -> Vec<u8> {
    [b"r/".as_slice(), id.to_string().as_bytes(), b"/"].concat()
}

pub(crate) fn withdrawal_key(id: &str) -> Vec<u8> {
    [b"w/".as_slice(), id.as_bytes()].concat()
}

impl Store {
    /// Opens the tree, writing the schema version into an empty one and refusing another.
    pub(crate) fn open(tree: sled::Tree, durable: bool) -> Result<Store, LedgerError> {
        match tree.get(SCHEMA_KEY)? {
            Some(raw) => {
                let found = u32::from_be_bytes(fixed(&raw, SCHEMA_KEY)?);
                if found != SCHEMA_VERSION {
                    return Err(LedgerError::SchemaVersion {
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
            None => {
                tree.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
                tree.flush()?;
            }
        }
        Ok(Store { tree, durable })
    }

    /// The underlying tree (for scans).
    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    pub(crate) fn get_json<T: DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, LedgerError> {
        self.tree.get(key)?.map(|raw| decode(key, &raw)).transpose()
    }

    pub(crate) fn balance(&self, account: &Account) -> Result<i64, LedgerError> {
        let key = balance_key(&account.to_string());
        match self.tree.get(&key)? {
            Some(raw) => Ok(i64::from_be_bytes(fixed(&raw, &key)?)),
            None => Ok(0),
        }
    }

    pub(crate) fn agreement(
        &self,
        id: &AgreementId,
    ) -> Result<Option<AgreementRecord>, LedgerError> {
        self.get_json(&agreement_key(id))
    }

    pub(crate) fn withdrawal(&self, id: &str) -> Result<Option<WithdrawalRecord>, LedgerError> {
        self.get_json(&withdrawal_key(id))
    }

    pub(crate) fn txn(&self, id: &str) -> Result<Option<StoredTxn>, LedgerError> {
        self.get_json(&txn_key(id))
    }

    /// Checks the plan (balanced, no bucket below zero, no overflow) and writes it with the
    /// transaction record in one atomic batch. On any error nothing is written.
    pub(crate) fn commit(
        &self,
        op: Operation,
        at: UnixMillis,
        plan: Plan,
    ) -> Result<StoredTxn, LedgerError> {
        let id = op.id();
        let postings = merge(plan.postings);
        let sum = postings
            .iter()
            .try_fold(0i64, |acc, (_, d)| acc.checked_add(*d));
        if sum != Some(0) {
            let sum = sum.unwrap_or(i64::MAX);
            return Err(LedgerError::Unbalanced { id, sum });
        }
        let mut batch = sled::Batch::default();
        for (account, delta) in &postings {
            let balance = self.balance(account)?;
            let name = account.to_string();
            let next = balance
                .checked_add(*delta)
                .ok_or_else(|| LedgerError::Overflow {
                    account: name.clone(),
                })?;
            if next < 0 && !account.may_go_negative() {
                return Err(LedgerError::InsufficientFunds {
                    account: name,
                    balance,
                    needed: -delta,
                });
            }
            batch.insert(balance_key(&name), &next.to_be_bytes());
        }
        let seq = self.last_seq()? + 1;
        let txn = StoredTxn {
            seq,
            at,
            op,
            postings: postings.iter().map(|(a, d)| (a.to_string(), *d)).collect(),
        };
        batch.insert(txn_key(&id), encode(&txn)?);
        batch.insert(log_key(seq), id.as_bytes());
        batch.insert(SEQ_KEY, &seq.to_be_bytes());
        if let Some(record) = &plan.agreement {
            batch.insert(agreement_key(&record.info.id), encode(record)?);
        }
        if let Some(record) = &plan.withdrawal {
            batch.insert(withdrawal_key(&record.id), encode(record)?);
        }
        if let Some((agreement, sequence, bytes)) = plan.receipt {
            let key = [receipt_prefix(&agreement), sequence.to_be_bytes().to_vec()].concat();
            batch.insert(key, bytes);
        }
        self.tree.apply_batch(batch)?;
        if self.durable {
            self.tree.flush()?;
        }
        Ok(txn)
    }

    /// The sequence number of the newest transaction (0 when empty).
    pub(crate) fn last_seq(&self) -> Result<u64, LedgerError> {
        match self.tree.get(SEQ_KEY)? {
            Some(raw) => Ok(u64::from_be_bytes(fixed(&raw, SEQ_KEY)?)),
            None => Ok(0),
        }
    }
}

/// Sums postings per account, drops zeros, and orders them by account name.
fn merge(postings: Vec<(Account, i64)>) -> Vec<(Account, i64)> {
    let mut by_account: BTreeMap<String, (Account, i64)> = BTreeMap::new();
    for (account, delta) in postings {
        let slot = by_account
            .entry(account.to_string())
            .or_insert((account, 0));
        slot.1 = slot.1.saturating_add(delta);
    }
    by_account.into_values().filter(|(_, d)| *d != 0).collect()
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, LedgerError> {
    serde_json::to_vec(value).map_err(|e| LedgerError::Corrupt {
        key: "(new record)".into(),
        reason: e.to_string(),
    })
}

pub(crate) fn decode<T: DeserializeOwned>(key: &[u8], raw: &[u8]) -> Result<T, LedgerError> {
    serde_json::from_slice(raw).map_err(|e| LedgerError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn fixed<const N: usize>(raw: &[u8], key: &[u8]) -> Result<[u8; N], LedgerError> {
    raw.try_into().map_err(|_| LedgerError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: format!("expected {N} bytes, found {}", raw.len()),
    })
}
