//! The node's own persistent state in sled (`<data-dir>/node.db`): agreements and the jobs
//! that run under them, from either side, and the nonces of the control requests a provider
//! acted on (so a captured request cannot be replayed after a restart). Records are JSON so
//! they stay readable and can grow new fields. The service task is the only writer.
//!
//! A job's record is pruned some time after its books close ([`Store::archive_job`]); what
//! it proves is kept for good in the `evidence` tree: the countersigned agreement and the
//! last usage report with its receipt.

use std::path::Path;

use qubix_protocol::control::{EndReason, JobState, PublishedPort};
use qubix_protocol::job::{Agreement, AgreementTerms};
use qubix_protocol::topics::Network;
use qubix_protocol::{AgreementId, NodeId, Nonce, OfferId, Qu, Signed, UnixMillis};
use serde::{Deserialize, Serialize};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("node database: {0}; check disk space and that no other node uses this data dir")]
    Db(#[from] sled::Error),
    /// A record did not decode.
    #[error("node database record is corrupt: {0}")]
    Corrupt(String),
    /// The stored agreement does not verify.
    #[error("stored agreement {0} does not verify")]
    BadAgreement(AgreementId),
}

/// Which side of an agreement this node is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// This node runs the job.
    Provider,
    /// This node rents.
    Consumer,
}

/// A job as one side records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The countersigned agreement (the evidence).
    pub agreement: Agreement,
    /// Our side.
    pub role: Role,
    /// The offer it was made on.
    pub offer_id: OfferId,
    /// GPU model, for display.
    pub gpu_model: String,
    /// Whether the GPUs are simulated.
    pub simulated: bool,
    /// GPU UUIDs reserved (provider side).
    pub gpu_uuids: Vec<String>,
    /// Lifecycle state.
    pub state: JobState,
    /// When the state last changed.
    pub since: UnixMillis,
    /// When the agreement was made.
    pub created_at: UnixMillis,
    /// When it first ran.
    pub started_at: Option<UnixMillis>,
    /// Exit code when it exited.
    pub exit_code: Option<i64>,
    /// Why it ended.
    pub reason: Option<EndReason>,
    /// Paid to the provider so far.
    pub paid: Qu,
    /// Earned by the provider so far.
    pub spent: Qu,
    /// Published ports.
    pub ports: Vec<PublishedPort>,
    /// The provider's lifecycle and meter (provider side only).
    #[serde(default)]
    pub lifecycle: Option<crate::jobs::Job>,
    /// Payments of this job's windows: verified and credited (provider side), or final on
    /// chain (consumer side). A window is paid once; a transaction pays one window.
    #[serde(default)]
    pub credits: Vec<WindowPayment>,
    /// Payment notices received and not verified yet (provider side); verified again after
    /// a restart.
    #[serde(default)]
    pub pending_payments: Vec<WindowPayment>,
    /// The latest usage report the provider signed and the consumer's receipt for it: the
    /// evidence both sides keep.
    #[serde(default)]
    pub evidence: Option<(qubix_protocol::Envelope, qubix_protocol::Envelope)>,
    /// The provider's latest signed usage report, receipted or not (consumer side): what it
    /// says was used beyond the receipts is booked as unacknowledged at the end.
    #[serde(default)]
    pub last_report: Option<qubix_protocol::Envelope>,
    /// The final Qubic transactions of the refunds of unused paid time: paid (provider
    /// side) or verified as received and recorded (consumer side), oldest first.
    #[serde(default)]
    pub refunds: Vec<String>,
    /// Usage reports issued and not yet superseded (provider side, in memory only): a
    /// receipt must acknowledge one of them exactly.
    #[serde(skip)]
    pub issued: std::collections::VecDeque<IssuedReport>,
    /// Records written before `credits` kept transaction ids alone, in window order.
    #[serde(default, skip_serializing, rename = "credited")]
    legacy_credited: Vec<String>,
    /// Records written before `refunds` kept one refund.
    #[serde(default, skip_serializing, rename = "refund_tx")]
    legacy_refund_tx: Option<String>,
}

/// A window's payment: which window, by which Qubic transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowPayment {
    /// The window, from 0.
    pub window: u32,
    /// The transaction id.
    pub tx_id: String,
}

/// What a usage report the provider issued said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedReport {
    /// The signed report, kept as evidence with the receipt that acknowledges it.
    pub envelope: qubix_protocol::Envelope,
    /// Its sequence number.
    pub sequence: u64,
    /// Billable milliseconds it reported.
    pub billable_millis: u64,
    /// The amount it reported.
    pub amount_due: Qu,
}

impl JobRecord {
    /// A record of a freshly countersigned agreement, on `role`'s side.
    pub fn new(agreement: Agreement, role: Role, offer_id: OfferId, since: UnixMillis) -> Self {
        Self {
            agreement,
            role,
            offer_id,
            gpu_model: String::new(),
            simulated: false,
            gpu_uuids: Vec::new(),
            state: JobState::Negotiated,
            since,
            created_at: UnixMillis::now(),
            started_at: None,
            exit_code: None,
            reason: None,
            paid: Qu::ZERO,
            spent: Qu::ZERO,
            ports: Vec::new(),
            lifecycle: None,
            credits: Vec::new(),
            pending_payments: Vec::new(),
            evidence: None,
            last_report: None,
            refunds: Vec::new(),
            issued: std::collections::VecDeque::new(),
            legacy_credited: Vec::new(),
            legacy_refund_tx: None,
        }
    }

    /// Moves what records of earlier versions kept into today's fields.
    fn upgrade(&mut self) {
        if self.credits.is_empty() {
            self.credits = std::mem::take(&mut self.legacy_credited)
                .into_iter()
                .zip(0u32..)
                .map(|(tx_id, window)| WindowPayment { window, tx_id })
                .collect();
        }
        if self.refunds.is_empty() {
            self.refunds.extend(self.legacy_refund_tx.take());
        }
    }

    /// The agreement's id.
    pub fn id(&self, network: &Network) -> Result<AgreementId, StoreError> {
        Ok(self.terms(network)?.payload().agreement_id)
    }

    /// The verified terms.
    pub fn terms(&self, network: &Network) -> Result<Signed<AgreementTerms>, StoreError> {
        self.agreement
            .verify(network)
            .map_err(|_| StoreError::Corrupt("agreement does not verify".into()))
    }
}

/// What is kept for good of a job whose record was pruned: the evidence an audit or a
/// reputation needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Our side.
    pub role: Role,
    /// The countersigned agreement.
    pub agreement: Agreement,
    /// The last usage report the provider signed and the consumer's receipt for it.
    pub final_receipt: Option<(qubix_protocol::Envelope, qubix_protocol::Envelope)>,
    /// How the job ended.
    pub state: JobState,
    /// Why it ended.
    pub reason: Option<EndReason>,
    /// Its exit code, when its process exited.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// When it ended.
    pub ended_at: UnixMillis,
    /// What was paid for it.
    #[serde(default)]
    pub paid: Qu,
    /// Its refunds' final transactions, oldest first.
    #[serde(default)]
    pub refunds: Vec<String>,
}

/// The node database.
#[derive(Debug, Clone)]
pub struct Store {
    jobs: sled::Tree,
    nonces: sled::Tree,
    meta: sled::Tree,
    evidence: sled::Tree,
    pulled: sled::Tree,
    db: sled::Db,
    /// Flushes to disk (each an fsync) since the store opened: `qubix_store_flushes_total`.
    flushes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Store {
    /// The database, for other owners of their own trees (the settlement's outbox).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Opens (or creates) `<dir>/node.db`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::open(dir.join("node.db"))?;
        let jobs = db.open_tree("jobs")?;
        let nonces = db.open_tree("control_nonces")?;
        let meta = db.open_tree("meta")?;
        let evidence = db.open_tree("evidence")?;
        let pulled = db.open_tree("pulled_images")?;
        Ok(Self {
            jobs,
            nonces,
            meta,
            evidence,
            pulled,
            db,
            flushes: Default::default(),
        })
    }

    /// Records, durably, that this node pulled `image` for a job (so it removes it once no
    /// job needs it).
    pub fn note_pulled(&self, image: &str) -> Result<(), StoreError> {
        if self.pulled.insert(image.as_bytes(), &[])?.is_none() {
            self.flush()?;
        }
        Ok(())
    }

    /// The images this node pulled and has not removed yet.
    pub fn pulled_images(&self) -> Result<Vec<String>, StoreError> {
        self.pulled
            .iter()
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
            .collect()
    }

    /// Forgets `image` (it was removed).
    pub fn forget_pulled(&self, image: &str) -> Result<(), StoreError> {
        self.pulled.remove(image.as_bytes())?;
        Ok(())
    }

    /// Replaces job `id`'s record with its evidence, in one durable step: the record is
    /// gone only once the evidence is written.
    pub fn archive_job(&self, id: &AgreementId, job: &JobRecord) -> Result<(), StoreError> {
        use sled::Transactional;
        let evidence = Evidence {
            role: job.role,
            agreement: job.agreement.clone(),
            final_receipt: job.evidence.clone(),
            state: job.state,
            reason: job.reason,
            exit_code: job.exit_code,
            ended_at: job.since,
            paid: job.paid,
            refunds: job.refunds.clone(),
        };
        let bytes =
            serde_json::to_vec(&evidence).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        (&self.jobs, &self.evidence)
            .transaction(|(jobs, kept)| {
                jobs.remove(id.as_bytes())?;
                kept.insert(id.as_bytes(), bytes.as_slice())?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Db(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Corrupt("archive aborted".into())
                }
            })?;
        self.flush()?;
        Ok(())
    }

    /// The evidence kept of pruned job `id`.
    pub fn evidence(&self, id: &AgreementId) -> Result<Option<Evidence>, StoreError> {
        self.evidence
            .get(id.as_bytes())?
            .map(|v| serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// How many pruned jobs have evidence kept.
    pub fn evidence_count(&self) -> usize {
        self.evidence.len()
    }

    /// Makes every write so far durable, and counts it.
    fn flush(&self) -> Result<(), StoreError> {
        self.flushes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.db.flush()?;
        Ok(())
    }

    /// Flushes (fsyncs) of this store since it opened.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes a job record durably.
    pub fn put_job(&self, id: &AgreementId, job: &JobRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(job).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.jobs.insert(id.as_bytes(), bytes)?;
        self.flush()?;
        Ok(())
    }

    /// All job records.
    pub fn jobs(&self) -> Result<Vec<(AgreementId, JobRecord)>, StoreError> {
        self.jobs
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let id: [u8; 16] = k
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("job key".into()))?;
                let mut job: JobRecord =
                    serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                job.upgrade();
                Ok((AgreementId::from_bytes(id), job))
            })
            .collect()
    }

    /// The last tick the deposit scan covered, once it has run.
    pub fn deposit_cursor(&self) -> Result<Option<u32>, StoreError> {
        let Some(raw) = self.meta.get(DEPOSIT_CURSOR)? else {
            return Ok(None);
        };
        let bytes: [u8; 4] = raw
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Corrupt("deposit cursor".into()))?;
        Ok(Some(u32::from_be_bytes(bytes)))
    }

    /// Records, durably, that the deposit scan covered every tick up to `tick`.
    pub fn set_deposit_cursor(&self, tick: u32) -> Result<(), StoreError> {
        self.meta.insert(DEPOSIT_CURSOR, &tick.to_be_bytes())?;
        self.flush()?;
        Ok(())
    }

    /// Whether `consumer` already used `nonce` in a control request this node acted on.
    pub fn nonce_used(&self, consumer: &NodeId, nonce: &Nonce) -> Result<bool, StoreError> {
        Ok(self.nonces.contains_key(nonce_key(consumer, nonce))?)
    }

    /// Records, durably, that `consumer` used `nonce` in a request signed at `issued_at`.
    pub fn use_nonce(
        &self,
        consumer: &NodeId,
        nonce: &Nonce,
        issued_at: UnixMillis,
    ) -> Result<(), StoreError> {
        self.nonces
            .insert(nonce_key(consumer, nonce), &issued_at.0.to_be_bytes())?;
        self.flush()?;
        Ok(())
    }

    /// Forgets nonces of requests signed before `before` (too old to be accepted anyway);
    /// returns how many nonces each consumer still has.
    pub fn prune_nonces(
        &self,
        before: UnixMillis,
    ) -> Result<std::collections::HashMap<NodeId, usize>, StoreError> {
        let mut kept = std::collections::HashMap::new();
        for item in self.nonces.iter() {
            let (key, value) = item?;
            let at = <[u8; 8]>::try_from(value.as_ref()).map(u64::from_be_bytes);
            let consumer = key
                .get(..32)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .and_then(|b| NodeId::from_bytes(b).ok());
            match (at, consumer) {
                (Ok(at), Some(consumer)) if at >= before.0 => {
                    *kept.entry(consumer).or_default() += 1;
                }
                _ => {
                    self.nonces.remove(key)?;
                }
            }
        }
        Ok(kept)
    }
}

const DEPOSIT_CURSOR: &[u8] = b"deposit_cursor";

fn nonce_key(consumer: &NodeId, nonce: &Nonce) -> [u8; 48] {
    let mut key = [0u8; 48];
    key[..32].copy_from_slice(consumer.as_bytes());
    key[32..].copy_from_slice(nonce.as_bytes());
    key
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;
    use qubix_protocol::testing;

    fn record() -> (AgreementId, JobRecord) {
        let terms = testing::agreement_terms(2, 1).unwrap();
        let id = terms.agreement_id;
        let signed = Signed::sign(terms, &testing::key(1), &testing::network()).unwrap();
        let agreement =
            Agreement::countersign(&signed, &testing::key(2), &testing::network()).unwrap();
        let mut job = JobRecord::new(
            agreement,
            Role::Provider,
            OfferId::from_bytes([1; 16]),
            UnixMillis(5),
        );
        job.state = JobState::Completed;
        (id, job)
    }

    #[test]
    fn an_archived_job_leaves_its_evidence_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let (id, job) = record();
        {
            let store = Store::open(dir.path()).unwrap();
            store.put_job(&id, &job).unwrap();
            store.archive_job(&id, &job).unwrap();
            assert!(store.jobs().unwrap().is_empty(), "the record is gone");
        }
        // After a restart, the evidence is there and still verifies.
        let store = Store::open(dir.path()).unwrap();
        assert!(store.jobs().unwrap().is_empty());
        let kept = store.evidence(&id).unwrap().unwrap();
        assert_eq!(kept.agreement, job.agreement);
        assert_eq!(kept.state, JobState::Completed);
        assert_eq!(kept.ended_at, UnixMillis(5));
        let terms = kept.agreement.verify(&testing::network()).unwrap();
        assert_eq!(terms.payload().agreement_id, id);
        assert_eq!(store.evidence_count(), 1);
    }

    #[test]
    fn every_durable_write_is_counted_as_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.flushes(), 0);
        store.note_pulled("busybox:latest").unwrap();
        store.note_pulled("busybox:latest").unwrap();
        assert_eq!(store.flushes(), 1, "a pull already noted needs no write");
        let clone = store.clone();
        clone.note_pulled("alpine:3").unwrap();
        assert_eq!(store.flushes(), 2, "clones share the counter");
    }
}
