//! The node's own persistent state in sled (`<data-dir>/node.db`): agreements and the jobs
//! that run under them, from either side. Records are JSON so they stay readable and can grow
//! new fields. The service task is the only writer.

use std::path::Path;

use qubix_protocol::control::{EndReason, JobState, PublishedPort};
use qubix_protocol::job::{Agreement, AgreementTerms};
use qubix_protocol::topics::Network;
use qubix_protocol::{AgreementId, OfferId, Qu, Signed, UnixMillis};
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
    /// Qubic transactions credited to this job (each counts once).
    #[serde(default)]
    pub credited: Vec<String>,
    /// The latest usage report the provider signed and the consumer's receipt for it: the
    /// evidence both sides keep.
    #[serde(default)]
    pub evidence: Option<(qubix_protocol::Envelope, qubix_protocol::Envelope)>,
    /// The final Qubic transaction of the refund of the unused paid time: paid (provider
    /// side) or verified as received (consumer side).
    #[serde(default)]
    pub refund_tx: Option<String>,
}

impl JobRecord {
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

/// The node database.
#[derive(Debug, Clone)]
pub struct Store {
    jobs: sled::Tree,
    db: sled::Db,
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
        Ok(Self { jobs, db })
    }

    /// Writes a job record durably.
    pub fn put_job(&self, id: &AgreementId, job: &JobRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(job).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.jobs.insert(id.as_bytes(), bytes)?;
        self.db.flush()?;
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
                let job: JobRecord =
                    serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok((AgreementId::from_bytes(id), job))
            })
            .collect()
    }
}
