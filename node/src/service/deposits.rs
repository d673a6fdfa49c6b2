//! Deposits: QU that reach this node's wallet from outside its rentals are found by a scan
//! of the incoming transfers of its identity (`getTransactionsForIdentity`) and recorded
//! once each, keyed by transaction id (`in/<tx id>`, the id space every incoming transfer
//! of the ledger shares). A transfer counts once whatever claims it, so the same QU can
//! never be adopted twice.
//!
//! - **Opening.** A ledger that never scanned starts from the wallet's balance and the tick
//!   it is valid for; the scan then resumes after that tick. (A ledger kept before scans
//!   existed adopts, that once, what its books lack of the balance.)
//! - **Held.** Transfers from an identity with an open rental are not adopted: they are a
//!   window's payment (provider) or a refund (consumer) on their way to being recorded
//!   against their agreement. The scan comes back to them until they are recorded, or the
//!   rental is over and they are adopted after all.

use std::collections::HashSet;

use qubix_ledger::book::{Ledger, LedgerError, Operation};
use qubix_ledger::settle::{ChainTransferIn, QubicSettlement, Settlement};
use qubix_protocol::api::ErrorCode;
use qubix_protocol::{Qu, UnixMillis};
use tracing::info;

use super::ServiceError;
use crate::store::Store;

/// Most transfers one scan reads.
const SCAN_MAX: usize = 1_000;

/// What adopting deposits needs.
#[derive(Clone, Debug)]
pub(crate) struct Deposits {
    pub(crate) ledger: Ledger,
    pub(crate) settlement: QubicSettlement,
    pub(crate) store: Store,
}

fn unavailable(e: &dyn std::fmt::Display) -> ServiceError {
    // The RPC's error may name its URL: logged, not shown.
    tracing::warn!(error = %e, "cannot read the wallet's transfers");
    ServiceError::Api(
        ErrorCode::Unavailable,
        "cannot read the wallet's transfers: the Qubic RPC did not answer; retry later (the node's log says why)".into(),
        None,
    )
}

fn internal(e: &dyn std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

impl Deposits {
    /// Records the deposits that arrived since the last scan, except those from `held`
    /// identities; returns how much was adopted.
    pub(crate) async fn adopt(&self, held: &HashSet<String>) -> Result<Qu, ServiceError> {
        // One scan at a time in this process: two would read the same cursor (harmless, the
        // ledger counts a transfer once) and race to move it.
        static SCANNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one = SCANNING.lock().await;
        let (mut adopted, cursor) = match self.store.deposit_cursor().map_err(|e| internal(&e))? {
            Some(cursor) => (Qu::ZERO, cursor),
            None => self.open().await?,
        };
        let scan = self
            .settlement
            .incoming_since(cursor.saturating_add(1), SCAN_MAX)
            .await
            .map_err(|e| unavailable(&e))?;
        let (fresh, resume) = split_held(scan.transfers, held, scan.through_tick, cursor);
        let ledger = self.ledger.clone();
        let recorded = tokio::task::spawn_blocking(move || record(&ledger, &fresh))
            .await
            .map_err(|e| internal(&e))?
            .map_err(|e| internal(&e))?;
        adopted = adopted.checked_add(recorded).unwrap_or(adopted);
        self.store
            .set_deposit_cursor(resume.max(cursor))
            .map_err(|e| internal(&e))?;
        Ok(adopted)
    }

    /// The first scan: the wallet's balance opens the books (all of it for a new ledger;
    /// what the books lack for one kept before scans existed). Returns what was adopted and
    /// the tick the scan goes on after.
    async fn open(&self) -> Result<(Qu, u32), ServiceError> {
        let me = self.settlement.identity();
        let (balance, tick) = self
            .settlement
            .balance_at(&me)
            .await
            .map_err(|e| unavailable(&e))?;
        let ledger = self.ledger.clone();
        let adopted = tokio::task::spawn_blocking(move || opening(&ledger, balance, tick))
            .await
            .map_err(|e| internal(&e))?
            .map_err(|e| internal(&e))?;
        self.store
            .set_deposit_cursor(tick)
            .map_err(|e| internal(&e))?;
        if adopted > Qu::ZERO {
            info!(amount = %adopted, tick, "the wallet's balance opens the books");
        }
        Ok((adopted, tick))
    }
}

/// The transfers to adopt, and the tick the next scan resumes after: the scan's end, or
/// just before the first held transfer, so held transfers are looked at again.
fn split_held(
    transfers: Vec<ChainTransferIn>,
    held: &HashSet<String>,
    through: u32,
    cursor: u32,
) -> (Vec<ChainTransferIn>, u32) {
    let mut resume = through;
    let mut fresh = Vec::with_capacity(transfers.len());
    for t in transfers {
        if held.contains(&t.from.to_string()) {
            resume = resume.min(t.tick.saturating_sub(1));
        } else {
            fresh.push(t);
        }
    }
    (fresh, resume.max(cursor))
}

/// Records each transfer the ledger does not know yet as a deposit; returns the sum.
fn record(ledger: &Ledger, transfers: &[ChainTransferIn]) -> Result<Qu, LedgerError> {
    let mut sum = Qu::ZERO;
    for t in transfers {
        let op = Operation::Deposit {
            tx_id: t.tx_id.to_string(),
            amount: t.amount,
        };
        if ledger.entry(&op.id())?.is_some() {
            continue;
        }
        ledger.apply(op, UnixMillis::now())?;
        info!(tx = %t.tx_id, from = %t.from, amount = %t.amount, "deposit recorded");
        sum = sum.checked_add(t.amount).unwrap_or(sum);
    }
    Ok(sum)
}

/// Opens the books with the wallet's `balance` at `tick`.
fn opening(ledger: &Ledger, balance: Qu, tick: u32) -> Result<Qu, LedgerError> {
    let amount = if ledger.transaction_count()? == 0 {
        balance.0
    } else {
        // Books kept before deposits were scanned: what they lack of the balance, less the
        // refunds on their way in (recorded against their agreements when verified).
        let lacking = ledger.reconcile(balance)?.difference;
        let incoming: i64 = ledger
            .balances()?
            .iter()
            .filter(|(account, _)| account.starts_with("refund_receivable/"))
            .map(|(_, b)| *b)
            .sum();
        u64::try_from(lacking.saturating_sub(incoming)).unwrap_or(0)
    };
    if amount == 0 {
        return Ok(Qu::ZERO);
    }
    let op = Operation::Deposit {
        tx_id: format!("balance@{tick}"),
        amount: Qu(amount),
    };
    ledger.apply(op, UnixMillis::now())?;
    Ok(Qu(amount))
}

#[cfg(test)]
mod tests {
    use super::*;
    use qubix_ledger::qubic::{KeyPair, TxId};

    fn transfer(from: char, tick: u32) -> ChainTransferIn {
        let key = KeyPair::from_seed_str(&from.to_string().repeat(55)).unwrap();
        ChainTransferIn {
            tx_id: TxId::from_hash([tick as u8; 32]),
            from: key.identity(),
            amount: Qu(10),
            tick,
        }
    }

    #[test]
    fn held_transfers_are_skipped_and_scanned_again() {
        let renter = transfer('r', 12).from.to_string();
        let held = HashSet::from([renter]);
        let all = vec![transfer('a', 11), transfer('r', 12), transfer('b', 14)];
        let (fresh, resume) = split_held(all, &held, 20, 10);
        assert_eq!(fresh.len(), 2);
        assert_eq!(
            resume, 11,
            "the next scan starts at the held transfer's tick"
        );
        let (fresh, resume) = split_held(vec![transfer('a', 11)], &held, 20, 10);
        assert_eq!((fresh.len(), resume), (1, 20));
    }
}
