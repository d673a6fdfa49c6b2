//! The fake node's offer queries: the real query language (`qubix_protocol::query`, the one
//! the node runs) over the sample offers, with its errors and explanations in the shapes the
//! node's API gives them.

use qubix_protocol::api::{ApiError, ErrorCode, Explanation, OfferView};
use qubix_protocol::query::{OfferFacts, Query};

/// Parses `q`, or `invalid_query` on `field` pointing at the offending token, as the node
/// does.
pub fn parse_for(q: &str, field: &str) -> Result<Query, ApiError> {
    Query::parse(q)
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.describe(q)).with_field(field))
}

/// [`parse_for`] the `q` parameter.
pub fn parse(q: &str) -> Result<Query, ApiError> {
    parse_for(q, "q")
}

/// Whether the offer passes every constraint.
pub fn matches(query: &Query, offer: &OfferView) -> bool {
    query.matches(&facts(offer))
}

fn facts(offer: &OfferView) -> OfferFacts<'_> {
    OfferFacts::new(&offer.offer, offer.reliability)
}

/// What each constraint excluded and the near misses, as `POST /offers/explain` answers.
pub fn explain(offers: &[OfferView], q: &str) -> Result<Explanation, ApiError> {
    let query = parse(q)?;
    let found = query.explain(offers.iter().map(facts));
    Ok(Explanation::of(found, |r| {
        offers
            .iter()
            .find(|o| Some(o.offer.provider) == r.provider && o.offer.offer_id == r.offer_id)
            .cloned()
    }))
}
