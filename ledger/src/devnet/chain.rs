//! The devnet's chain: balances, ticks, transactions scheduled by target tick and executed
//! with Qubic's semantics (SPEC §5), fundings from the faucet, processed intervals, and
//! injectable faults. Pure state; the server and the handle lock it briefly.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use qubix_protocol::UnixMillis;
use serde::{Deserialize, Serialize};

use super::{archive, faucet};
use crate::qubic::{KeyPair, PublicKey, SignedTransaction, TxError, TxId};
use crate::rpc::identity_query::{IdentityTransactions, IdentityTransactionsRequest};
use crate::rpc::{Balance, Broadcast, ChainTransaction, LastProcessedTick, TickInfo, TickInterval};

/// The message the real RPC gives when no peer took a transaction.
pub(crate) const NOT_BROADCAST: &str = "tx wasn't broadcast to any peers, please retry";

/// Why a broadcast was refused: HTTP status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// Faults to inject.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    /// Accept the next N new transactions but never include them.
    pub(crate) drop_next: u32,
    /// Never include these transaction ids.
    pub(crate) drop_ids: HashSet<String>,
    /// Refuse the next N broadcasts with 500.
    pub(crate) fail_broadcasts: u32,
    /// Take the next N transactions but answer 500 (the client cannot know it went out).
    pub(crate) lose_responses: u32,
    /// Ticks do not advance (an epoch transition).
    pub(crate) stalled: bool,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Entity {
    incoming: u64,
    outgoing: u64,
    incoming_count: u32,
    outgoing_count: u32,
    last_incoming_tick: u32,
    last_outgoing_tick: u32,
}

/// What of a chain outlives its devnet (a saved testnet): ticks, balances, included
/// transactions. Transactions scheduled but not yet included are not kept; to their senders
/// they look dropped, which a sender handles by signing again for a later tick.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    tick: u32,
    epoch: u32,
    initial_tick: u32,
    /// By identity.
    entities: BTreeMap<String, Entity>,
    included: Vec<ChainTransaction>,
    intervals: Vec<TickInterval>,
}

/// The chain.
#[derive(Debug)]
pub(crate) struct Chain {
    tick: u32,
    epoch: u32,
    initial_tick: u32,
    entities: HashMap<PublicKey, Entity>,
    scheduled: BTreeMap<u32, Vec<SignedTransaction>>,
    seen: HashSet<String>,
    included: HashMap<String, ChainTransaction>,
    intervals: Vec<TickInterval>,
    faucet: KeyPair,
    pub(crate) faults: Faults,
}

impl Chain {
    /// A chain whose current tick is `initial_tick`, with the faucet's genesis balance.
    pub(crate) fn new(initial_tick: u32, epoch: u32) -> Chain {
        let faucet = faucet::key_pair();
        let genesis = Entity {
            incoming: faucet::GENESIS,
            ..Entity::default()
        };
        Chain {
            tick: initial_tick,
            epoch,
            initial_tick,
            entities: HashMap::from([(faucet.public_key(), genesis)]),
            scheduled: BTreeMap::new(),
            seen: HashSet::new(),
            included: HashMap::new(),
            intervals: vec![TickInterval {
                epoch,
                first_tick: initial_tick,
                last_tick: initial_tick.saturating_sub(1),
            }],
            faucet,
            faults: Faults::default(),
        }
    }

    /// What a restarted devnet needs to carry on.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            tick: self.tick,
            epoch: self.epoch,
            initial_tick: self.initial_tick,
            entities: self
                .entities
                .iter()
                .map(|(key, e)| (key.identity().to_string(), *e))
                .collect(),
            included: self.included.values().cloned().collect(),
            intervals: self.intervals.clone(),
        }
    }

    /// The chain a snapshot describes; an error names what does not decode.
    pub(crate) fn restore(snapshot: Snapshot) -> Result<Chain, String> {
        let mut chain = Chain::new(snapshot.initial_tick, snapshot.epoch);
        chain.tick = snapshot.tick;
        chain.intervals = snapshot.intervals;
        for (identity, entity) in snapshot.entities {
            let key = PublicKey::from_identity(&identity)
                .map_err(|e| format!("identity {identity}: {e}"))?;
            chain.entities.insert(key, entity);
        }
        for tx in snapshot.included {
            chain.seen.insert(tx.hash.clone());
            chain.included.insert(tx.hash.clone(), tx);
        }
        Ok(chain)
    }

    /// The current tick (the network's "max tick": broadcasts must target a later one).
    pub(crate) fn tick(&self) -> u32 {
        self.tick
    }

    pub(crate) fn tick_info(&self) -> TickInfo {
        TickInfo {
            tick: self.tick,
            duration: 1,
            epoch: self.epoch,
            initial_tick: self.initial_tick,
        }
    }

    pub(crate) fn last_processed(&self) -> LastProcessedTick {
        let last = self.tick.saturating_sub(1);
        LastProcessedTick {
            tick_number: last,
            epoch: self.epoch,
            interval_initial_tick: self.initial_tick,
            last_processed_log_tick: last,
        }
    }

    /// Processed intervals, oldest first (an interval with no processed tick yet is left
    /// out).
    pub(crate) fn intervals(&self) -> Vec<TickInterval> {
        self.intervals
            .iter()
            .filter(|i| i.last_tick >= i.first_tick)
            .copied()
            .collect()
    }

    /// The faucet's public key.
    pub(crate) fn faucet(&self) -> PublicKey {
        self.faucet.public_key()
    }

    /// Sends `amount` from the faucet to `key`: signed transfers (several above the
    /// per-transaction maximum) for the current tick, included with money moved when it is
    /// processed, like any transfer. So a balance and the archive agree: a balance valid
    /// for tick V holds every transfer of ticks up to V and none after, and a scan from V + 1
    /// misses nothing and counts nothing twice. Fault injection does not drop fundings.
    /// Returns the last transfer's id; `None` for 0 QU.
    pub(crate) fn fund(&mut self, key: PublicKey, amount: u64) -> Result<Option<TxId>, TxError> {
        let tick = self.tick;
        let mut last = None;
        for part in faucet::parts(amount) {
            let tx = faucet::transfer(&self.faucet, key, part, tick, |id| self.seen.contains(id))?;
            self.seen.insert(tx.id().to_string());
            last = Some(tx.id());
            self.scheduled.entry(tick).or_default().push(tx);
        }
        Ok(last)
    }

    /// Funds `key` before anything else happens on a fresh chain: the faucet's transfers
    /// are included, money moved, in the tick before the first one, which counts as
    /// processed, so the very first balance already holds them.
    pub(crate) fn fund_genesis(
        &mut self,
        key: PublicKey,
        amount: u64,
    ) -> Result<Option<TxId>, TxError> {
        let tick = self.last_processed().tick_number;
        let mut last = None;
        for part in faucet::parts(amount) {
            let tx = faucet::transfer(&self.faucet, key, part, tick, |id| self.seen.contains(id))?;
            self.seen.insert(tx.id().to_string());
            self.move_money(self.faucet.public_key(), key, part, tick);
            self.record(&tx, tick, true);
            last = Some(tx.id());
        }
        Ok(last)
    }

    pub(crate) fn balance_of(&self, key: &PublicKey) -> u64 {
        let e = self.entities.get(key).copied().unwrap_or_default();
        e.incoming.saturating_sub(e.outgoing)
    }

    pub(crate) fn balance(&self, key: &PublicKey, id: &str) -> Balance {
        let e = self.entities.get(key).copied().unwrap_or_default();
        Balance {
            id: id.to_owned(),
            balance: i64::try_from(self.balance_of(key)).unwrap_or(i64::MAX),
            // Everything of the processed ticks, and nothing of the current one.
            valid_for_tick: self.last_processed().tick_number,
            latest_incoming_transfer_tick: e.last_incoming_tick,
            latest_outgoing_transfer_tick: e.last_outgoing_tick,
            incoming_amount: i64::try_from(e.incoming).unwrap_or(i64::MAX),
            outgoing_amount: i64::try_from(e.outgoing).unwrap_or(i64::MAX),
            number_of_incoming_transfers: e.incoming_count,
            number_of_outgoing_transfers: e.outgoing_count,
        }
    }

    pub(crate) fn transaction(&self, id: &str) -> Option<ChainTransaction> {
        self.included.get(id).cloned()
    }

    /// `POST /getTransactionsForIdentity` over processed ticks.
    pub(crate) fn transactions_for_identity(
        &self,
        request: &IdentityTransactionsRequest,
    ) -> Result<IdentityTransactions, Refusal> {
        let last = self.last_processed().tick_number;
        archive::transactions_for_identity(self.included.values(), request, last)
    }

    /// `POST /broadcast-transaction`, in the real service's order of checks.
    pub(crate) fn broadcast(&mut self, encoded: &str) -> Result<Broadcast, Refusal> {
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|e| refuse(400, e.to_string()))?;
        let tx = SignedTransaction::parse(&bytes).map_err(|e| match e {
            TxError::InvalidSignature(why) => refuse(400, format!("invalid signature: {why}")),
            other => refuse(400, format!("unmarshalling transaction: {other}")),
        })?;
        let target = tx.body().tick();
        if target <= self.tick {
            return Err(refuse(
                400,
                format!(
                    "Target tick: {target} for the transaction should be greater than max tick: {}",
                    self.tick
                ),
            ));
        }
        if self.faults.fail_broadcasts > 0 {
            self.faults.fail_broadcasts -= 1;
            return Err(refuse(500, NOT_BROADCAST));
        }
        let id = tx.id().to_string();
        self.schedule(tx, &id);
        if self.faults.lose_responses > 0 {
            self.faults.lose_responses -= 1;
            return Err(refuse(500, NOT_BROADCAST));
        }
        Ok(Broadcast {
            peers_broadcasted: 3,
            encoded_transaction: encoded.to_owned(),
            transaction_id: id,
        })
    }

    /// Schedules a transaction once (identical bytes are the same transaction).
    fn schedule(&mut self, tx: SignedTransaction, id: &str) {
        if !self.seen.insert(id.to_owned()) {
            return;
        }
        if self.faults.drop_next > 0 {
            self.faults.drop_next -= 1;
            self.faults.drop_ids.insert(id.to_owned());
        }
        if self.faults.drop_ids.contains(id) {
            return;
        }
        self.scheduled.entry(tx.body().tick()).or_default().push(tx);
    }

    /// Processes the current tick (executing what targets it) and moves to the next;
    /// nothing happens while stalled. Returns the current tick.
    pub(crate) fn advance(&mut self) -> u32 {
        if self.faults.stalled {
            return self.tick;
        }
        let tick = self.tick;
        for tx in self.scheduled.remove(&tick).unwrap_or_default() {
            self.execute(&tx, tick);
        }
        if let Some(current) = self.intervals.last_mut() {
            current.last_tick = tick;
        }
        self.tick = tick.saturating_add(1);
        self.tick
    }

    /// Skips `n` ticks as after an epoch transition: what targets them never executes, and
    /// a new epoch and processed interval begin after them.
    pub(crate) fn skip(&mut self, n: u32) -> u32 {
        let next = self.tick.saturating_add(n);
        let skipped: Vec<u32> = self
            .scheduled
            .range(self.tick..next)
            .map(|(t, _)| *t)
            .collect();
        for t in skipped {
            self.scheduled.remove(&t);
        }
        self.epoch = self.epoch.saturating_add(1);
        self.initial_tick = next;
        self.tick = next;
        self.intervals.push(TickInterval {
            epoch: self.epoch,
            first_tick: next,
            last_tick: next.saturating_sub(1),
        });
        self.tick
    }

    /// A plain transfer: included; QU move only when the source can cover the amount.
    fn execute(&mut self, tx: &SignedTransaction, tick: u32) {
        let body = tx.body();
        let amount = body.amount();
        let money_flew = amount > 0 && self.balance_of(&body.source()) >= amount;
        if money_flew {
            self.move_money(body.source(), body.destination(), amount, tick);
        }
        self.record(tx, tick, money_flew);
    }

    fn move_money(&mut self, from: PublicKey, to: PublicKey, amount: u64, tick: u32) {
        let src = self.entities.entry(from).or_default();
        src.outgoing = src.outgoing.saturating_add(amount);
        src.outgoing_count = src.outgoing_count.saturating_add(1);
        src.last_outgoing_tick = tick;
        let dst = self.entities.entry(to).or_default();
        dst.incoming = dst.incoming.saturating_add(amount);
        dst.incoming_count = dst.incoming_count.saturating_add(1);
        dst.last_incoming_tick = tick;
    }

    /// Adds `tx` to the archive as included in `tick`.
    fn record(&mut self, tx: &SignedTransaction, tick: u32, money_flew: bool) {
        let body = tx.body();
        let id = tx.id().to_string();
        let record = ChainTransaction {
            hash: id.clone(),
            amount: body.amount(),
            source: body.source().identity().to_string(),
            destination: body.destination().identity().to_string(),
            tick_number: tick,
            timestamp: UnixMillis::now().0,
            input_type: u32::from(body.input_type()),
            input_size: u32::try_from(body.input().len()).unwrap_or(0),
            input_data: STANDARD.encode(body.input()),
            signature: STANDARD.encode(tx.signature().as_bytes()),
            money_flew,
        };
        tracing::debug!(tx = %id, tick, amount = body.amount(), money_flew, "devnet included a transaction");
        self.included.insert(id, record);
    }
}
