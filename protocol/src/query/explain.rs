//! Explain: how many offers each constraint excluded, how many it alone kept out, and the
//! offers that came closest, so a user learns why nothing matched before paying anything.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::amount::Qu;
use crate::ids::{NodeId, OfferId};

use super::Query;
use super::constraint::Failure;
use super::facts::OfferFacts;

/// The most near misses an explanation lists.
pub const MAX_NEAR_MISSES: usize = 5;

/// What a query did to a set of offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Offers considered.
    pub total: usize,
    /// Offers that passed every constraint.
    pub matched: usize,
    /// One report per constraint, in query order.
    pub constraints: Vec<ConstraintReport>,
    /// Up to [`MAX_NEAR_MISSES`] offers that failed the fewest constraints, cheapest first.
    pub near_misses: Vec<NearMiss>,
}

/// What one constraint did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConstraintReport {
    /// The constraint, in canonical text: `price<=1500`.
    pub constraint: String,
    /// Offers that fail it.
    pub excluded: usize,
    /// Offers that fail it and no other constraint: dropping it would let them match.
    pub only_blocker: usize,
}

/// An offer that failed some constraints, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NearMiss {
    /// The offer.
    pub offer_id: OfferId,
    /// Its provider.
    pub provider: NodeId,
    /// Its GPU model.
    pub gpu_model: String,
    /// Its price in QU per GPU-hour.
    pub price: Qu,
    /// The constraints it failed, in query order, with its values.
    pub failed: Vec<Failure>,
}

/// Runs `query`'s constraints over `candidates` and reports what each one excluded.
/// Sorting and paging play no part.
pub fn explain<'a>(
    query: &Query,
    candidates: impl IntoIterator<Item = OfferFacts<'a>>,
) -> Explanation {
    let constraints = &query.constraints;
    let mut excluded = vec![0usize; constraints.len()];
    let mut only_blocker = vec![0usize; constraints.len()];
    let mut closest: Vec<(usize, OfferFacts<'a>)> = Vec::with_capacity(MAX_NEAR_MISSES + 1);
    let (mut total, mut matched) = (0, 0);
    for facts in candidates {
        total += 1;
        let (mut failed, mut last_failed) = (0, 0);
        for (i, (constraint, count)) in constraints.iter().zip(excluded.iter_mut()).enumerate() {
            if !constraint.check(&facts) {
                *count += 1;
                failed += 1;
                last_failed = i;
            }
        }
        match failed {
            0 => matched += 1,
            1 => only_blocker
                .get_mut(last_failed)
                .into_iter()
                .for_each(|n| *n += 1),
            _ => {}
        }
        if failed > 0 {
            keep_closest(&mut closest, failed, facts);
        }
    }
    let constraints = constraints
        .iter()
        .zip(excluded.into_iter().zip(only_blocker))
        .map(|(c, (excluded, only_blocker))| ConstraintReport {
            constraint: c.to_string(),
            excluded,
            only_blocker,
        })
        .collect();
    let near_misses = closest
        .into_iter()
        .map(|(_, facts)| near_miss(query, &facts))
        .collect();
    Explanation {
        total,
        matched,
        constraints,
        near_misses,
    }
}

/// Inserts `facts` into `closest`, kept sorted by (constraints failed, price, provider,
/// offer id) and at most [`MAX_NEAR_MISSES`] long.
fn keep_closest<'a>(
    closest: &mut Vec<(usize, OfferFacts<'a>)>,
    failed: usize,
    facts: OfferFacts<'a>,
) {
    let rank = |(n, f): &(usize, OfferFacts<'_>)| {
        (
            *n,
            f.offer.price_per_gpu_hour,
            f.offer.provider,
            f.offer.offer_id,
        )
    };
    let new = (failed, facts);
    let at = closest.partition_point(|held| rank(held).cmp(&rank(&new)) != Ordering::Greater);
    if at < MAX_NEAR_MISSES {
        closest.insert(at, new);
        closest.truncate(MAX_NEAR_MISSES);
    }
}

fn near_miss(query: &Query, facts: &OfferFacts<'_>) -> NearMiss {
    let offer = facts.offer;
    NearMiss {
        offer_id: offer.offer_id,
        provider: offer.provider,
        gpu_model: offer.gpu.model.clone(),
        price: offer.price_per_gpu_hour,
        failed: query
            .constraints
            .iter()
            .filter_map(|c| c.failure(facts))
            .collect(),
    }
}

impl Query {
    /// [`explain`] with this query.
    pub fn explain<'a>(&self, candidates: impl IntoIterator<Item = OfferFacts<'a>>) -> Explanation {
        explain(self, candidates)
    }
}

impl Explanation {
    /// One sentence for a person, e.g. "No offer matched: price<=1500 excluded 12 of 14
    /// offers; 2 offers missed only on cuda>=12.2".
    pub fn summary(&self) -> String {
        let total = offers(self.total);
        if self.total == 0 {
            return "No offers to search: the offer book is empty".to_owned();
        }
        // `rev`, so that on a tie the constraint written first is named.
        let most = |key: fn(&ConstraintReport) -> usize| {
            self.constraints
                .iter()
                .rev()
                .max_by_key(|c| key(c))
                .filter(|c| key(c) > 0)
        };
        let widest = most(|c| c.excluded);
        if self.matched > 0 && self.constraints.is_empty() {
            return format!("All {total} matched: the query has no constraints");
        }
        if self.matched > 0 {
            let head = format!("{} of {total} matched", self.matched);
            return match widest {
                Some(w) => format!(
                    "{head}; {} excluded the most ({})",
                    w.constraint, w.excluded
                ),
                None => head,
            };
        }
        let head = match widest {
            Some(w) => format!(
                "No offer matched: {} excluded {} of {total}",
                w.constraint, w.excluded
            ),
            None => format!("No offer matched among {total}"),
        };
        match most(|c| c.only_blocker) {
            Some(b) => format!(
                "{head}; {} missed only on {}",
                offers(b.only_blocker),
                b.constraint
            ),
            None => format!("{head}; every offer failed more than one constraint"),
        }
    }
}

/// `1 offer`, `2 offers`.
fn offers(n: usize) -> String {
    if n == 1 {
        "1 offer".to_owned()
    } else {
        format!("{n} offers")
    }
}
