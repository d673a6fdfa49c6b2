//! `POST /query/v1/getTransactionsForIdentity` (SPEC §6): the query a caller builds
//! ([`IdentityQuery`]), the JSON request it becomes ([`IdentityTransactionsRequest`], which
//! the devnet parses), and the page that comes back ([`IdentityTransactions`]).
//!
//! The archive returns the transactions an identity sent or received, newest tick first,
//! `size` of them from `offset`; filters narrow by exact value, ranges by bounds. 64-bit
//! values travel as JSON strings. The real service caps `size` at [`MAX_PAGE_SIZE`],
//! `offset` at [`MAX_OFFSET`] and `hits.total` at [`MAX_OFFSET`].

use std::collections::BTreeMap;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize, Serializer};

use super::types::{ChainTransaction, flex};
use crate::qubic::Identity;

/// The largest page the archive returns.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The largest offset the archive accepts, and the cap of `hits.total`.
pub const MAX_OFFSET: u32 = 10_000;

/// Which of an identity's transactions to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityQuery {
    /// Whose transactions (as source or destination).
    pub identity: Identity,
    /// Only those sent by this identity.
    pub source: Option<Identity>,
    /// Only those received by this identity.
    pub destination: Option<Identity>,
    /// Only those in this tick or later.
    pub from_tick: Option<u32>,
    /// Only those in this tick or earlier.
    pub to_tick: Option<u32>,
    /// How many matching transactions to skip.
    pub offset: u32,
    /// How many to return, at most [`MAX_PAGE_SIZE`].
    pub size: u32,
}

impl IdentityQuery {
    /// All of `identity`'s transactions, the first [`MAX_PAGE_SIZE`].
    pub fn new(identity: Identity) -> IdentityQuery {
        IdentityQuery {
            identity,
            source: None,
            destination: None,
            from_tick: None,
            to_tick: None,
            offset: 0,
            size: MAX_PAGE_SIZE,
        }
    }

    /// The JSON request body.
    pub fn request(&self) -> IdentityTransactionsRequest {
        let mut filters = BTreeMap::new();
        if let Some(source) = &self.source {
            filters.insert("source".to_owned(), source.to_string());
        }
        if let Some(destination) = &self.destination {
            filters.insert("destination".to_owned(), destination.to_string());
        }
        let mut ranges = BTreeMap::new();
        if self.from_tick.is_some() || self.to_tick.is_some() {
            let ticks = Range {
                gte: self.from_tick.map(u64::from),
                lte: self.to_tick.map(u64::from),
                ..Range::default()
            };
            ranges.insert("tickNumber".to_owned(), ticks);
        }
        IdentityTransactionsRequest {
            identity: self.identity.to_string(),
            filters,
            ranges,
            pagination: Some(Pagination {
                offset: self.offset,
                size: self.size,
            }),
        }
    }
}

/// The request body of `getTransactionsForIdentity`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IdentityTransactionsRequest {
    /// The identity, 60 uppercase letters.
    pub identity: String,
    /// Exact values by field (`source`, `destination`, `amount`, `inputType`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub filters: BTreeMap<String, String>,
    /// Bounds by field (`tickNumber`, `amount`, `inputType`, `timestamp`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ranges: BTreeMap<String, Range>,
    /// Which page; the service's default is offset 0, size 10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
}

/// Bounds of one field; at most one lower and one upper bound. Values are 64-bit, sent as
/// strings, read as strings or numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Range {
    /// Greater than.
    #[serde(skip_serializing_if = "Option::is_none", with = "optional")]
    pub gt: Option<u64>,
    /// Greater than or equal to.
    #[serde(skip_serializing_if = "Option::is_none", with = "optional")]
    pub gte: Option<u64>,
    /// Less than.
    #[serde(skip_serializing_if = "Option::is_none", with = "optional")]
    pub lt: Option<u64>,
    /// Less than or equal to.
    #[serde(skip_serializing_if = "Option::is_none", with = "optional")]
    pub lte: Option<u64>,
}

impl Range {
    /// Whether `value` lies within every bound given.
    pub fn contains(&self, value: u64) -> bool {
        self.gt.is_none_or(|b| value > b)
            && self.gte.is_none_or(|b| value >= b)
            && self.lt.is_none_or(|b| value < b)
            && self.lte.is_none_or(|b| value <= b)
    }
}

/// Which page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pagination {
    /// Matching transactions to skip.
    #[serde(deserialize_with = "flex")]
    pub offset: u32,
    /// Transactions to return.
    #[serde(deserialize_with = "flex")]
    pub size: u32,
}

/// One page of `getTransactionsForIdentity`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IdentityTransactions {
    /// The newest tick the answer covers.
    #[serde(deserialize_with = "flex")]
    pub valid_for_tick: u32,
    /// How many match, and which of them this page holds.
    pub hits: Hits,
    /// The page, newest tick first (a `null` reads as empty).
    #[serde(deserialize_with = "null_as_empty")]
    pub transactions: Vec<ChainTransaction>,
}

/// The `hits` of a page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hits {
    /// Matching transactions in all (capped at [`MAX_OFFSET`] by the real service).
    #[serde(deserialize_with = "flex")]
    pub total: u32,
    /// The requested offset.
    #[serde(deserialize_with = "flex")]
    pub from: u32,
    /// The requested size.
    #[serde(deserialize_with = "flex")]
    pub size: u32,
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// An optional 64-bit bound: written as a string, read as a string, a number or `null`.
mod optional {
    use super::*;

    pub(super) fn serialize<S: Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        struct Flex(#[serde(deserialize_with = "flex")] u64);
        Ok(Option::<Flex>::deserialize(d)?.map(|Flex(v)| v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity(letter: char) -> Identity {
        crate::qubic::KeyPair::from_seed_str(&letter.to_string().repeat(55))
            .unwrap()
            .identity()
    }

    #[test]
    fn a_query_becomes_the_documented_request() {
        let me = identity('a');
        let query = IdentityQuery {
            destination: Some(me.clone()),
            from_tick: Some(25_563_000),
            to_tick: Some(28_300_000),
            offset: 20,
            size: 10,
            ..IdentityQuery::new(me.clone())
        };
        let json = serde_json::to_value(query.request()).unwrap();
        assert_eq!(
            json,
            json!({
                "identity": me.to_string(),
                "filters": {"destination": me.to_string()},
                "ranges": {"tickNumber": {"gte": "25563000", "lte": "28300000"}},
                "pagination": {"offset": 20, "size": 10},
            })
        );
        let bare = serde_json::to_value(IdentityQuery::new(me.clone()).request()).unwrap();
        assert!(bare.get("filters").is_none() && bare.get("ranges").is_none());
    }

    #[test]
    fn pages_and_ranges_parse_tolerantly() {
        let page: IdentityTransactions = serde_json::from_value(json!({
            "validForTick": "28316138",
            "hits": {"total": "29", "from": 0, "size": 3},
            "transactions": [{"hash": "h", "amount": "5", "tickNumber": 7, "moneyFlew": true}]
        }))
        .unwrap();
        assert_eq!(page.valid_for_tick, 28_316_138);
        assert_eq!((page.hits.total, page.hits.size), (29, 3));
        assert_eq!(page.transactions[0].amount, 5);
        let empty: IdentityTransactions =
            serde_json::from_value(json!({"validForTick": 1, "transactions": null})).unwrap();
        assert!(empty.transactions.is_empty());
        let range: Range = serde_json::from_value(json!({"gt": 3, "lte": "9"})).unwrap();
        assert!(!range.contains(3) && range.contains(4) && range.contains(9));
        assert!(!range.contains(10));
        assert!(serde_json::from_value::<Range>(json!({"gte": "x"})).is_err());
    }
}
