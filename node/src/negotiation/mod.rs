//! Negotiation (DESIGN §5): a consumer's signed request, the provider's admission and signed
//! terms, the consumer's countersignature. Both sides are pure; the node service does the IO.

pub mod consumer;
pub mod provider;

#[cfg(test)]
mod tests;

pub use consumer::{TermsError, TermsLimits, build_request, check_terms, countersign};
pub use provider::{
    DeskPolicy, Hold, OfferCapacity, ProviderDesk, Reservation, SSH_CAPABILITIES, terms_digest,
};
