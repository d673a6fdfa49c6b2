//! The settlement's sled tree: every outgoing transfer and its confirmation state, written
//! (and flushed) before the driver acts on it. Only the driver task touches it.
//!
//! | key | value |
//! |---|---|
//! | `m/schema` | schema version, u32 BE |
//! | `m/seq` | last transfer sequence, u64 BE |
//! | `t/<transfer id>` | [`TransferRecord`] (JSON) |
//! | `o/<seq u64 BE>` | transfer id, while not settled (FIFO of the source's queue) |

use serde::{Deserialize, Serialize};

use qubix_protocol::{Qu, UnixMillis};

use super::SettlementError;
use super::confirm::{Confirmation, Phase};
use super::transfer::{PaymentPurpose, TransferId, TransferState, TransferStatus};
use crate::qubic::{Identity, TxId};

/// The sled tree of outgoing transfers.
pub const TREE: &str = "settlement";
const SCHEMA_KEY: &[u8] = b"m/schema";
const SCHEMA_VERSION: u32 = 1;
const SEQ_KEY: &[u8] = b"m/seq";

/// One outgoing transfer as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TransferRecord {
    pub(crate) id: TransferId,
    pub(crate) seq: u64,
    pub(crate) purpose: PaymentPurpose,
    pub(crate) to: String,
    pub(crate) amount: Qu,
    pub(crate) created_at: UnixMillis,
    pub(crate) confirmation: Confirmation,
}

impl TransferRecord {
    /// The status the node and API see.
    pub(crate) fn status(&self) -> Result<TransferStatus, SettlementError> {
        let c = &self.confirmation;
        let state = match &c.phase {
            Phase::Unsigned => TransferState::Queued,
            Phase::Signed => TransferState::Signed,
            Phase::Pending => TransferState::Pending { stalled: c.stalled },
            Phase::Final { tick } => TransferState::Final { tick: *tick },
            Phase::Failed { reason } => TransferState::Failed {
                reason: reason.to_string(),
            },
        };
        let tx_id = match &c.attempt {
            Some(a) => Some(a.tx_id.parse::<TxId>().map_err(|e| self.corrupt(&e))?),
            None => None,
        };
        Ok(TransferStatus {
            id: self.id.clone(),
            to: self.to.parse::<Identity>().map_err(|e| self.corrupt(&e))?,
            amount: self.amount,
            state,
            tx_id,
            target_tick: c.attempt.as_ref().map(|a| a.target_tick),
            attempts: c.attempts(),
        })
    }

    fn corrupt(&self, e: &dyn std::fmt::Display) -> SettlementError {
        SettlementError::Corrupt {
            key: format!("t/{}", self.id),
            reason: e.to_string(),
        }
    }
}

/// The store of outgoing transfers.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    tree: sled::Tree,
}

fn transfer_key(id: &TransferId) -> Vec<u8> {
    [b"t/".as_slice(), id.0.as_bytes()].concat()
}

fn open_key(seq: u64) -> Vec<u8> {
    [b"o/".as_slice(), &seq.to_be_bytes()].concat()
}

impl Outbox {
    /// Opens the [`TREE`] tree of `db`, refusing another schema version.
    pub(crate) fn open(db: &sled::Db) -> Result<Outbox, SettlementError> {
        let tree = db.open_tree(TREE)?;
        match tree.get(SCHEMA_KEY)? {
            Some(raw) if raw.as_ref() != SCHEMA_VERSION.to_be_bytes() => {
                return Err(SettlementError::Corrupt {
                    key: "m/schema".into(),
                    reason: format!("schema {raw:?} is not version {SCHEMA_VERSION}"),
                });
            }
            Some(_) => {}
            None => {
                tree.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
                tree.flush()?;
            }
        }
        Ok(Outbox { tree })
    }

    /// Queues a transfer, or returns the one already queued for this purpose. The same
    /// purpose with another destination or amount is refused.
    pub(crate) fn create(
        &self,
        purpose: &PaymentPurpose,
        to: &Identity,
        amount: Qu,
        now: UnixMillis,
    ) -> Result<(TransferRecord, bool), SettlementError> {
        let id = purpose.transfer_id();
        if let Some(existing) = self.get(&id)? {
            if existing.to == to.as_str() && existing.amount == amount {
                return Ok((existing, false));
            }
            return Err(SettlementError::ConflictingPayment {
                id,
                to: existing.to,
                amount: existing.amount,
            });
        }
        let seq = self.last_seq()? + 1;
        let record = TransferRecord {
            id,
            seq,
            purpose: purpose.clone(),
            to: to.to_string(),
            amount,
            created_at: now,
            confirmation: Confirmation::new(),
        };
        let mut batch = sled::Batch::default();
        batch.insert(SEQ_KEY, &seq.to_be_bytes());
        batch.insert(open_key(seq), record.id.0.as_bytes());
        batch.insert(transfer_key(&record.id), encode(&record)?);
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        Ok((record, true))
    }

    /// The transfer, if any.
    pub(crate) fn get(&self, id: &TransferId) -> Result<Option<TransferRecord>, SettlementError> {
        let key = transfer_key(id);
        self.tree
            .get(&key)?
            .map(|raw| decode(&key, &raw))
            .transpose()
    }

    /// Writes the transfer's state durably; a settled transfer leaves the queue.
    pub(crate) fn save(&self, record: &TransferRecord) -> Result<(), SettlementError> {
        let mut batch = sled::Batch::default();
        batch.insert(transfer_key(&record.id), encode(record)?);
        if record.confirmation.is_settled() {
            batch.remove(open_key(record.seq));
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        Ok(())
    }

    /// The oldest transfer not yet settled.
    pub(crate) fn next_open(&self) -> Result<Option<TransferRecord>, SettlementError> {
        let Some(item) = self.tree.scan_prefix(b"o/").next() else {
            return Ok(None);
        };
        let (key, id) = item?;
        let id = TransferId(String::from_utf8_lossy(&id).into_owned());
        self.get(&id)?.map(Some).ok_or(SettlementError::Corrupt {
            key: String::from_utf8_lossy(&key).into_owned(),
            reason: format!("queue names transfer {id}, which is missing"),
        })
    }

    /// Every transfer, in id order.
    pub(crate) fn all(&self) -> Result<Vec<TransferRecord>, SettlementError> {
        self.tree
            .scan_prefix(b"t/")
            .map(|item| {
                let (key, raw) = item?;
                decode(&key, &raw)
            })
            .collect()
    }

    fn last_seq(&self) -> Result<u64, SettlementError> {
        match self.tree.get(SEQ_KEY)? {
            Some(raw) => {
                let bytes: [u8; 8] =
                    raw.as_ref()
                        .try_into()
                        .map_err(|_| SettlementError::Corrupt {
                            key: "m/seq".into(),
                            reason: "not 8 bytes".into(),
                        })?;
                Ok(u64::from_be_bytes(bytes))
            }
            None => Ok(0),
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, SettlementError> {
    serde_json::to_vec(value).map_err(|e| SettlementError::Corrupt {
        key: "(new record)".into(),
        reason: e.to_string(),
    })
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], raw: &[u8]) -> Result<T, SettlementError> {
    serde_json::from_slice(raw).map_err(|e| SettlementError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}
