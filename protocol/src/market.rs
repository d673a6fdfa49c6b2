//! Market messages: what travels on the offers topic and on `offer-sync/1`.

use serde::{Deserialize, Serialize};

use crate::codec::WireMessage;
use crate::ids::{NodeId, OfferId};
use crate::signed::Envelope;

/// A message on `/qubix/<network>/offers/1`: a signed offer or a signed withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipMessage {
    /// A signed [`crate::offer::Offer`].
    Offer(Envelope),
    /// A signed [`crate::offer::OfferWithdrawal`].
    Withdrawal(Envelope),
}

impl WireMessage for GossipMessage {
    const TAG: &'static str = "gossip/";
    const MAX_SIZE: usize = 4 * 1024;
}

/// The most offers in one `offer-sync` page.
pub const SYNC_PAGE_MAX: u16 = 512;

/// A request for a page of a peer's offer book, in `(provider, offer id)` order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferSyncRequest {
    /// Start after this key; `None` starts at the beginning.
    pub after: Option<(NodeId, OfferId)>,
    /// Page size, at most [`SYNC_PAGE_MAX`].
    pub limit: u16,
}

impl WireMessage for OfferSyncRequest {
    const TAG: &'static str = "offer-sync-request/";
    const MAX_SIZE: usize = 128;
}

/// A page of signed offers. The receiver verifies each one as if it came by gossip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferSyncResponse {
    /// Signed offers.
    pub offers: Vec<Envelope>,
    /// The key to continue after, when there is more.
    pub next: Option<(NodeId, OfferId)>,
}

impl WireMessage for OfferSyncResponse {
    const TAG: &'static str = "offer-sync-response/";
    const MAX_SIZE: usize = SYNC_PAGE_MAX as usize * 2300 + 256;
}
