//! Pay-as-you-go evidence: the provider's signed [`UsageReport`] every billing interval and
//! the consumer's countersigned cumulative [`Receipt`]. Both are kept by both sides; later
//! reputation is computed from them.

use serde::{Deserialize, Serialize};

use crate::amount::Qu;
use crate::codec::WireMessage;
use crate::ids::{AgreementId, NodeId};
use crate::signed::Authored;
use crate::time::UnixMillis;

/// What the provider says was used so far (cumulative, so a lost report loses nothing).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UsageReport {
    /// The agreement.
    pub agreement_id: AgreementId,
    /// The provider; must be the signer.
    pub provider: NodeId,
    /// Increases with every report.
    pub sequence: u64,
    /// Milliseconds the job has been billable, in total.
    pub billable_millis: u64,
    /// What that time costs at the agreed price, in total.
    pub amount_due: Qu,
    /// What the provider has seen confirmed on chain, in total.
    pub amount_received: Qu,
    /// When it was signed.
    pub issued_at: UnixMillis,
}

impl WireMessage for UsageReport {
    const TAG: &'static str = "usage-report/";
    const MAX_SIZE: usize = 256;
}

impl Authored for UsageReport {
    fn author(&self) -> NodeId {
        self.provider
    }
}

/// The consumer's acknowledgement of usage so far (cumulative).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Receipt {
    /// The agreement.
    pub agreement_id: AgreementId,
    /// The consumer; must be the signer.
    pub consumer: NodeId,
    /// The report this acknowledges.
    pub report_sequence: u64,
    /// Billable milliseconds acknowledged in total.
    pub billable_millis: u64,
    /// Amount acknowledged as earned by the provider, in total.
    pub amount: Qu,
    /// When it was signed.
    pub issued_at: UnixMillis,
}

impl WireMessage for Receipt {
    const TAG: &'static str = "receipt/";
    const MAX_SIZE: usize = 256;
}

impl Authored for Receipt {
    fn author(&self) -> NodeId {
        self.consumer
    }
}
