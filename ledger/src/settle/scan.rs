//! Scanning the archive for QU that reached an identity: every plain transfer to it with
//! money moved, from a tick up to the archive's last processed tick, in tick order, with
//! the tick the scan covers through so the next scan resumes right after it.
//!
//! ```text
//! from_tick ─────────────────────────────────────────────▶ getLastProcessedTick
//!   [ window ][ window ][ window … ]    each window: getTransactionsForIdentity
//!                                      (destination = us, tickNumber gte/lte), one page
//! ```
//!
//! The archive lists newest first and pages by offset (at most 1,000 a page, offsets up to
//! 10,000), so the scan never depends on its order: it asks for a tick window whose
//! matches fit one page, halving the window while they do not (a single tick is paged
//! through), then sorts by tick and id itself. Processed ticks do not change, so offsets
//! over a closed window are stable.

use qubix_protocol::Qu;

use super::SettlementError;
use crate::qubic::{Identity, TxId};
use crate::rpc::identity_query::{MAX_OFFSET, MAX_PAGE_SIZE};
use crate::rpc::{ChainTransaction, IdentityQuery, RpcClient, RpcError};

/// One plain transfer that reached us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTransferIn {
    /// The transaction.
    pub tx_id: TxId,
    /// Who paid.
    pub from: Identity,
    /// How much arrived.
    pub amount: Qu,
    /// The tick it was included in.
    pub tick: u32,
}

/// What a scan found and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingScan {
    /// The transfers, by tick then id.
    pub transfers: Vec<ChainTransferIn>,
    /// Every tick up to this one is covered: resume from `through_tick + 1`. Below the
    /// starting tick when the archive has processed nothing new.
    pub through_tick: u32,
}

/// A window's transactions, or too many of them for one page.
enum Window {
    Complete {
        transactions: Vec<ChainTransaction>,
        covered: u32,
    },
    TooMany,
}

/// Transfers to `me` from `from_tick` on, at most `max` of them (see
/// [`QubicSettlement::incoming_since`](super::QubicSettlement::incoming_since)).
pub(crate) async fn incoming_since(
    rpc: &RpcClient,
    me: &Identity,
    from_tick: u32,
    max: usize,
) -> Result<IncomingScan, SettlementError> {
    let last = rpc.last_processed_tick().await?.tick_number;
    let max = max.max(1);
    let mut found = Vec::new();
    let (mut lo, mut hi) = (from_tick, last);
    while lo <= last {
        let (transactions, covered) = match window(rpc, me, lo, hi).await? {
            Window::TooMany => {
                hi = lo + (hi - lo) / 2;
                continue;
            }
            Window::Complete {
                transactions,
                covered,
            } => (transactions, covered),
        };
        found.extend(incoming(rpc, me, transactions, lo..=covered)?);
        if found.len() > max {
            return Ok(cut(found, max));
        }
        if covered < hi || covered >= last {
            // Done, or the archive answered for fewer ticks than it said it had processed.
            return Ok(IncomingScan {
                transfers: found,
                through_tick: covered.max(lo.saturating_sub(1)),
            });
        }
        (lo, hi) = (covered + 1, last);
    }
    // The archive has processed nothing from `from_tick` on yet.
    Ok(IncomingScan {
        transfers: found,
        through_tick: from_tick.saturating_sub(1),
    })
}

/// The transactions to `me` in ticks `lo..=hi`, when they fit one page (or `lo == hi`).
async fn window(rpc: &RpcClient, me: &Identity, lo: u32, hi: u32) -> Result<Window, RpcError> {
    let mut query = IdentityQuery {
        destination: Some(me.clone()),
        from_tick: Some(lo),
        to_tick: Some(hi),
        ..IdentityQuery::new(me.clone())
    };
    let first = rpc.transactions_for_identity(&query).await?;
    let covered = match first.valid_for_tick {
        0 => hi,
        valid => hi.min(valid),
    };
    let total = first.hits.total as usize;
    let mut transactions = first.transactions;
    if !more(total, transactions.len()) {
        return Ok(Window::Complete {
            transactions,
            covered,
        });
    }
    if lo < hi {
        return Ok(Window::TooMany);
    }
    while more(total, transactions.len()) && transactions.len() < MAX_OFFSET as usize {
        query.offset = u32::try_from(transactions.len()).unwrap_or(MAX_OFFSET);
        let page = rpc.transactions_for_identity(&query).await?.transactions;
        if page.is_empty() {
            break;
        }
        transactions.extend(page);
    }
    Ok(Window::Complete {
        transactions,
        covered,
    })
}

/// Whether matches remain beyond the `got` received (without a total, a full page says so).
fn more(total: usize, got: usize) -> bool {
    match total {
        0 => got >= MAX_PAGE_SIZE as usize,
        total => total > got,
    }
}

/// The plain transfers with money moved to `me` within `ticks`, by tick then id, each once.
fn incoming(
    rpc: &RpcClient,
    me: &Identity,
    transactions: Vec<ChainTransaction>,
    ticks: std::ops::RangeInclusive<u32>,
) -> Result<Vec<ChainTransferIn>, RpcError> {
    let mut transfers = Vec::new();
    for tx in transactions {
        let counts = tx.money_flew && tx.input_type == 0 && tx.amount > 0;
        if !counts || tx.destination != me.as_str() || !ticks.contains(&tx.tick_number) {
            continue;
        }
        let undecodable = |what: &str, e: String| RpcError::Decode {
            url: format!("{}/query/v1/getTransactionsForIdentity", rpc.base_url()),
            reason: format!("transaction {:?} has an invalid {what}: {e}", tx.hash),
        };
        transfers.push(ChainTransferIn {
            tx_id: tx
                .hash
                .parse()
                .map_err(|e| undecodable("hash", format!("{e}")))?,
            from: tx
                .source
                .parse()
                .map_err(|e| undecodable("source", format!("{e}")))?,
            amount: Qu(tx.amount),
            tick: tx.tick_number,
        });
    }
    transfers.sort_by(|a, b| (a.tick, a.tx_id.as_str()).cmp(&(b.tick, b.tx_id.as_str())));
    transfers.dedup_by(|a, b| a.tx_id == b.tx_id);
    Ok(transfers)
}

/// Keeps at most `max` of `found` (sorted, more than `max`) without splitting a tick: the
/// scan covers through the tick before the first left out. When one tick alone holds more
/// than `max` (a tick holds at most 1,024 transactions), that whole tick is kept so a
/// caller always moves on.
fn cut(mut found: Vec<ChainTransferIn>, max: usize) -> IncomingScan {
    let first_left_out = found[max].tick;
    let kept = found.partition_point(|t| t.tick < first_left_out);
    if kept > 0 {
        found.truncate(kept);
        return IncomingScan {
            transfers: found,
            through_tick: first_left_out - 1,
        };
    }
    let whole_tick = found.partition_point(|t| t.tick == first_left_out);
    found.truncate(whole_tick);
    IncomingScan {
        transfers: found,
        through_tick: first_left_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(tick: u32, n: u8) -> ChainTransferIn {
        ChainTransferIn {
            tx_id: TxId::from_hash([n; 32]),
            from: crate::qubic::KeyPair::from_seed_str(&"a".repeat(55))
                .unwrap()
                .identity(),
            amount: Qu(1),
            tick,
        }
    }

    #[test]
    fn a_cut_never_splits_a_tick() {
        // (ticks of the found transfers, max) -> (kept, through_tick)
        let cases: &[(&[u32], usize, usize, u32)] = &[
            (&[10, 11, 12], 2, 2, 11),
            (&[10, 11, 11, 12], 2, 1, 10),
            (&[10, 10, 10, 12], 2, 3, 10),
            (&[10, 10, 11], 1, 2, 10),
            (&[10, 12, 15, 15], 3, 2, 14),
        ];
        for (ticks, max, kept, through) in cases {
            let found = ticks
                .iter()
                .enumerate()
                .map(|(i, t)| transfer(*t, i as u8))
                .collect();
            let scan = cut(found, *max);
            assert_eq!(
                (scan.transfers.len(), scan.through_tick),
                (*kept, *through),
                "{ticks:?} max {max}"
            );
        }
    }

    #[test]
    fn more_pages_follow_the_total_or_a_full_page() {
        assert!(more(5, 3));
        assert!(!more(3, 3));
        assert!(!more(0, 999));
        assert!(more(0, 1000));
    }
}
