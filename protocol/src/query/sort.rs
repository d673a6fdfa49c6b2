//! Ordering and paging: the query's sort keys, then price ascending and reliability
//! descending, then `(provider, offer_id)`, so the order is total and pages are stable.

use std::cmp::Ordering;
use std::fmt;

use super::facts::{Actual, OfferFacts, actual};
use super::field::Field;
use super::{DEFAULT_LIMIT, MAX_LIMIT, Query};

/// One sort key: `price` (ascending) or `-reliability` (descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SortKey {
    /// The field sorted on; the parser accepts only [`Field::is_sortable`] ones.
    pub field: Field,
    /// Largest first.
    pub descending: bool,
}

impl SortKey {
    /// Smallest first.
    pub const fn ascending(field: Field) -> Self {
        Self {
            field,
            descending: false,
        }
    }

    /// Largest first.
    pub const fn descending(field: Field) -> Self {
        Self {
            field,
            descending: true,
        }
    }

    /// Orders two offers by this key. Unknown values (no reliability record) sort last in
    /// either direction.
    pub fn compare(&self, a: &OfferFacts<'_>, b: &OfferFacts<'_>) -> Ordering {
        match (actual(self.field, a), actual(self.field, b)) {
            (Actual::Unknown, Actual::Unknown) => Ordering::Equal,
            (Actual::Unknown, _) => Ordering::Greater,
            (_, Actual::Unknown) => Ordering::Less,
            (x, y) if self.descending => y.cmp_known(&x),
            (x, y) => x.cmp_known(&y),
        }
    }
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.descending { "-" } else { "" };
        write!(f, "{sign}{}", self.field)
    }
}

/// The order used after the query's own keys (and alone when it has none).
pub const DEFAULT_SORT: [SortKey; 2] = [
    SortKey::ascending(Field::Price),
    SortKey::descending(Field::Reliability),
];

/// One page of matching offers, in the query's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<'a> {
    /// How many offers matched, on all pages.
    pub total_matched: usize,
    /// How many matching offers come before this page.
    pub offset: u32,
    /// The most offers a page holds.
    pub limit: u32,
    /// The offers on this page.
    pub items: Vec<OfferFacts<'a>>,
}

impl Query {
    /// Orders two offers: the query's sort keys, then [`DEFAULT_SORT`] keys on fields the
    /// query did not sort on, then provider and offer id, so distinct offers never tie.
    pub fn compare(&self, a: &OfferFacts<'_>, b: &OfferFacts<'_>) -> Ordering {
        let defaults = DEFAULT_SORT
            .iter()
            .filter(|d| !self.sort.iter().any(|k| k.field == d.field));
        self.sort
            .iter()
            .chain(defaults)
            .map(|key| key.compare(a, b))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| {
                (a.offer.provider, a.offer.offer_id).cmp(&(b.offer.provider, b.offer.offer_id))
            })
    }

    /// The page size: `limit`, or [`DEFAULT_LIMIT`], never above [`MAX_LIMIT`].
    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT)
    }

    /// The matching offers, sorted, after `offset`, at most [`Query::page_size`] of them,
    /// with the count of all matches. Sorts only the offers up to the end of the page.
    pub fn page<'a>(&self, candidates: impl IntoIterator<Item = OfferFacts<'a>>) -> Page<'a> {
        let mut matched: Vec<OfferFacts<'a>> = candidates
            .into_iter()
            .filter(|facts| self.matches(facts))
            .collect();
        let total_matched = matched.len();
        let limit = self.page_size();
        let end = (self.offset as usize).saturating_add(limit as usize);
        if end < matched.len() {
            if let Some(last) = end.checked_sub(1) {
                matched.select_nth_unstable_by(last, |a, b| self.compare(a, b));
            }
            matched.truncate(end);
        }
        matched.sort_unstable_by(|a, b| self.compare(a, b));
        let items = matched.into_iter().skip(self.offset as usize).collect();
        Page {
            total_matched,
            offset: self.offset,
            limit,
            items,
        }
    }
}
