//! Qubix protocol: everything two nodes, or a node and a client, agree on.
//!
//! - [`ids`], [`amount`], [`time`]: node ids (ed25519 keys = libp2p PeerIds), offer and
//!   agreement ids, QU amounts with checked arithmetic, unix-millisecond time.
//! - [`codec`]: the only place bincode is called; byte limits on every decode.
//! - [`signed`]: `Envelope` (exact signed bytes) and `Signed<T>` (verified payload), with
//!   domain-separated, strictly verified ed25519 signatures.
//! - Wire types: [`offer`], [`market`] (gossip and offer sync), [`job`] (negotiation),
//!   [`billing`] (usage reports and receipts), [`control`] (job lifecycle and control).
//! - [`query`]: the offer query language used by the CLI, the API and the console, with
//!   explain.
//! - [`api`]: the JSON types of the gateway's REST and WebSocket API, shared with the SDK.
//! - [`topics`]: topic and protocol ids, which carry the network name.
//!
//! Data flows one way: bytes from a peer → [`signed::Envelope::from_bytes`] (size) →
//! [`signed::Envelope::open`] (signature, bounded decode, author) → `validate(now)` →
//! the node's logic. Nothing here does IO.

pub mod amount;
pub mod api;
pub mod billing;
pub mod codec;
pub mod control;
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod job;
pub mod market;
pub mod offer;
pub mod query;
pub mod secret_file;
pub mod signed;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod topics;
pub mod validate;

pub use amount::Qu;
pub use ids::{AgreementId, NodeId, Nonce, OfferId, OfferRef};
pub use signed::{Envelope, Signed};
pub use time::UnixMillis;
