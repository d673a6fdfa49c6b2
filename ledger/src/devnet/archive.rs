//! The devnet's `getTransactionsForIdentity`: the included transactions an identity sent or
//! received, in processed ticks only, narrowed by filters (exact values) and ranges
//! (bounds), newest tick first (then by id, so pages are stable), a page at a time. Limits
//! as the real service: `size` at most 1,000 (larger is capped, 0 means 10), `offset` at
//! most 10,000, `hits.total` capped at 10,000. A filter or range on a field the service
//! does not know is a 400, as there.

use super::chain::Refusal;
use crate::qubic::Identity;
use crate::rpc::ChainTransaction;
use crate::rpc::identity_query::{
    Hits, IdentityTransactions, IdentityTransactionsRequest, MAX_OFFSET, MAX_PAGE_SIZE, Range,
};

/// The page size when the request names none.
const DEFAULT_PAGE_SIZE: u32 = 10;

fn bad(message: impl Into<String>) -> Refusal {
    Refusal {
        status: 400,
        message: message.into(),
    }
}

/// A numeric field by its JSON name, `None` for a field that is not numeric.
fn numeric(tx: &ChainTransaction, field: &str) -> Option<u64> {
    match field {
        "amount" => Some(tx.amount),
        "tickNumber" => Some(u64::from(tx.tick_number)),
        "inputType" => Some(u64::from(tx.input_type)),
        "timestamp" => Some(tx.timestamp),
        _ => None,
    }
}

/// One exact-value filter.
enum Filter {
    Source(String),
    Destination(String),
    Number(String, u64),
}

impl Filter {
    fn parse(field: &str, value: &str) -> Result<Filter, Refusal> {
        let identity = || {
            value
                .parse::<Identity>()
                .map(|i| i.to_string())
                .map_err(|_| {
                    bad(format!(
                        "invalid {field} filter: {value:?} is not an identity"
                    ))
                })
        };
        match field {
            "source" => Ok(Filter::Source(identity()?)),
            "destination" => Ok(Filter::Destination(identity()?)),
            "amount" | "inputType" | "tickNumber" => {
                let number = value
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("invalid {field} filter: {value:?}")))?;
                Ok(Filter::Number(field.to_owned(), number))
            }
            other => Err(bad(format!(
                "unsupported filter {other:?}; allowed: source, destination, amount, inputType, \
                 tickNumber"
            ))),
        }
    }

    fn matches(&self, tx: &ChainTransaction) -> bool {
        match self {
            Filter::Source(id) => tx.source == *id,
            Filter::Destination(id) => tx.destination == *id,
            Filter::Number(field, value) => numeric(tx, field) == Some(*value),
        }
    }
}

/// The checked request.
struct Query {
    identity: String,
    filters: Vec<Filter>,
    ranges: Vec<(String, Range)>,
    offset: u32,
    size: u32,
}

impl Query {
    fn parse(request: &IdentityTransactionsRequest) -> Result<Query, Refusal> {
        let identity = request
            .identity
            .parse::<Identity>()
            .map_err(|_| bad("invalid identity: it must be 60 uppercase letters"))?;
        let filters = request
            .filters
            .iter()
            .map(|(field, value)| Filter::parse(field, value))
            .collect::<Result<_, _>>()?;
        let probe = ChainTransaction::default();
        let mut ranges = Vec::new();
        for (field, range) in &request.ranges {
            if numeric(&probe, field).is_none() {
                return Err(bad(format!(
                    "unsupported range {field:?}; allowed: amount, tickNumber, inputType, timestamp"
                )));
            }
            let two_lower = range.gt.is_some() && range.gte.is_some();
            let two_upper = range.lt.is_some() && range.lte.is_some();
            if two_lower || two_upper {
                return Err(bad(format!(
                    "range {field:?}: give at most one lower bound (gt or gte) and one upper \
                     bound (lt or lte)"
                )));
            }
            ranges.push((field.clone(), *range));
        }
        let pagination = request.pagination.unwrap_or_default();
        if pagination.offset > MAX_OFFSET {
            return Err(bad(format!(
                "offset {} exceeds the maximum of {MAX_OFFSET}",
                pagination.offset
            )));
        }
        let size = match pagination.size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        Ok(Query {
            identity: identity.to_string(),
            filters,
            ranges,
            offset: pagination.offset,
            size,
        })
    }

    fn matches(&self, tx: &ChainTransaction) -> bool {
        (tx.source == self.identity || tx.destination == self.identity)
            && self.filters.iter().all(|f| f.matches(tx))
            && self
                .ranges
                .iter()
                .all(|(field, range)| numeric(tx, field).is_some_and(|v| range.contains(v)))
    }
}

/// Answers `request` from `included`, as of `last_processed` (later ticks are not shown).
pub(crate) fn transactions_for_identity<'a>(
    included: impl Iterator<Item = &'a ChainTransaction>,
    request: &IdentityTransactionsRequest,
    last_processed: u32,
) -> Result<IdentityTransactions, Refusal> {
    let query = Query::parse(request)?;
    let mut found: Vec<&ChainTransaction> = included
        .filter(|tx| tx.tick_number <= last_processed && query.matches(tx))
        .collect();
    found.sort_by(|a, b| {
        b.tick_number
            .cmp(&a.tick_number)
            .then_with(|| a.hash.cmp(&b.hash))
    });
    let total = u32::try_from(found.len())
        .unwrap_or(u32::MAX)
        .min(MAX_OFFSET);
    let transactions = found
        .into_iter()
        .skip(query.offset as usize)
        .take(query.size as usize)
        .cloned()
        .collect();
    Ok(IdentityTransactions {
        valid_for_tick: last_processed,
        hits: Hits {
            total,
            from: query.offset,
            size: query.size,
        },
        transactions,
    })
}
