//! The confirmation of one outgoing transfer as a pure state machine (SPEC §6, "Confirmation
//! algorithm"): `(state, event, now) → (new state, persist?, next action)`. The driver
//! performs the action and feeds its result back; nothing here does IO or reads a clock.
//!
//! ```text
//! Unsigned ──tick──▶ sign(tick + offset) ──▶ Signed ══persist══▶ broadcast
//!    ▲                                          │ accepted / target tick passed / unknown
//!    │                                          ▼
//!    └── not found, archive past target ◀── Pending ──poll archive until last ≥ target──▶ lookup
//!                                               │ found & moneyFlew → Final
//!                                               │ found & !moneyFlew → Failed (no blind retry)
//! ```
//!
//! The rules that keep money safe:
//! * the signed bytes are persisted before the first broadcast, and a restart in `Signed`
//!   rebroadcasts the same bytes (same transaction id, so at most one can execute);
//! * a new transaction is signed only after the archive has processed the old target tick
//!   and does not have the old transaction: never while the old target is pending;
//! * when ticks stop advancing (an epoch transition) the transfer keeps waiting, polling
//!   less often, and never re-signs;
//! * a broadcast whose outcome is unknown (target tick already passed, garbled answer)
//!   counts as broadcast: the archive decides.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use qubix_protocol::UnixMillis;

use crate::rpc::TickInterval;

/// Timing and limits of confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmConfig {
    /// Target tick = current tick + this (SPEC: 10–20).
    pub tick_offset: u32,
    /// How often to poll the archive while waiting.
    pub poll: Duration,
    /// After this long without the archive advancing, the network counts as stalled.
    pub stall_after: Duration,
    /// How often to poll while stalled.
    pub stall_poll: Duration,
    /// First delay after a transient RPC failure; doubles per consecutive failure.
    pub backoff: Duration,
    /// The longest such delay.
    pub max_backoff: Duration,
    /// Transactions signed for one transfer before it is declared failed.
    pub max_attempts: u32,
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        ConfirmConfig {
            tick_offset: 15,
            poll: Duration::from_millis(1_500),
            stall_after: Duration::from_secs(30),
            stall_poll: Duration::from_secs(10),
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_attempts: 10,
        }
    }
}

/// One signed transaction of a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first transaction, then 2, …
    pub number: u32,
    /// The tick it targets.
    pub target_tick: u32,
    /// Its id (60 lowercase letters).
    pub tx_id: String,
    /// Its wire bytes, base64: exactly what is (re)broadcast.
    pub encoded: String,
}

/// An attempt the archive proved was not included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Miss {
    /// The transaction id.
    pub tx_id: String,
    /// Its target tick.
    pub target_tick: u32,
    /// Whether the target tick was skipped by the network (not in any processed interval).
    pub skipped: bool,
}

/// Why a transfer failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum FailReason {
    /// Included, but the wallet could not cover it: nothing moved.
    #[error(
        "included in tick {tick} but no QU moved: the wallet's balance was below the amount; \
         fund the wallet and pay again under a new purpose"
    )]
    NoMoneyFlew {
        /// The tick it executed in.
        tick: u32,
    },
    /// The RPC refused the transaction itself (signature, encoding).
    #[error("the RPC refused the transaction: {message}")]
    Rejected {
        /// The RPC's message.
        message: String,
    },
    /// Several transactions in a row were not included.
    #[error(
        "{attempts} transactions in a row were not included; nothing was paid. Check the RPC \
         and the network status, then pay again under a new purpose"
    )]
    NeverIncluded {
        /// How many were signed.
        attempts: u32,
    },
}

/// Where confirmation stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// No live transaction: sign one for a fresh tick.
    Unsigned,
    /// Signed and persisted; broadcast (again after a restart).
    Signed,
    /// Broadcast, or possibly broadcast: wait for the archive.
    Pending,
    /// Included with money moved.
    Final {
        /// The tick it executed in.
        tick: u32,
    },
    /// Done without payment.
    Failed {
        /// Why.
        reason: FailReason,
    },
}

/// What a broadcast call came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BroadcastOutcome {
    /// The RPC accepted it.
    Accepted,
    /// 400 "target tick … should be greater than max tick": too late now, but an earlier
    /// broadcast of the same bytes may have made it.
    TickPassed,
    /// The RPC answered something unreadable: it may or may not have gone out.
    Unknown(String),
    /// The RPC refused the transaction itself.
    Rejected(String),
    /// Unreachable or failing; try the same bytes again later.
    Transient(String),
}

/// What the archive said about the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Included in `tick`.
    Found {
        /// The tick.
        tick: u32,
        /// Whether QU moved.
        money_flew: bool,
    },
    /// 404.
    NotFound,
}

/// An input to the machine: a result of the previous action, or a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// (Re)start from the persisted state.
    Start,
    /// A wait is over.
    Wake,
    /// The current tick (`tick-info`), or why it could not be read.
    Tick(Result<u32, String>),
    /// The driver signed the requested transaction.
    Signed(Attempt),
    /// Signing was impossible (e.g. amount out of range).
    SignFailed(String),
    /// The broadcast's outcome.
    Broadcast(BroadcastOutcome),
    /// The archive's last processed tick.
    Archive(Result<u32, String>),
    /// The archive's processed intervals.
    Intervals(Result<Vec<TickInterval>, String>),
    /// The archive's answer for the transaction id.
    Lookup(Result<Lookup, String>),
}

/// The action the driver performs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Read the current tick.
    FetchTick,
    /// Sign a new transaction for this tick and feed back [`Event::Signed`].
    Sign {
        /// The target tick.
        target_tick: u32,
    },
    /// Broadcast these exact bytes.
    Broadcast {
        /// Base64 wire bytes.
        encoded: String,
    },
    /// Read the archive's last processed tick.
    FetchArchive,
    /// Read the archive's processed intervals.
    FetchIntervals,
    /// Look the transaction up in the archive.
    Lookup {
        /// The transaction id.
        tx_id: String,
    },
    /// Feed [`Event::Wake`] at this time.
    WaitUntil(UnixMillis),
    /// Final or failed: nothing more to do.
    Done,
}

/// One transition's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Persist the state durably before performing `next`.
    pub persist: bool,
    /// What to do next.
    pub next: Next,
}

/// The persisted confirmation state of one transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// Where it stands.
    pub phase: Phase,
    /// The live transaction, once signed.
    pub attempt: Option<Attempt>,
    /// Earlier transactions proven not included.
    pub misses: Vec<Miss>,
    /// The archive's last processed tick as last seen.
    pub last_processed: Option<u32>,
    /// When the archive was last seen to advance.
    pub progress_at: Option<UnixMillis>,
    /// Whether the network looks stalled.
    pub stalled: bool,
    /// Consecutive transient failures (for backoff).
    pub failures: u32,
    /// The archive has processed the live attempt's target tick.
    pub target_passed: bool,
    /// The live attempt's target tick lies outside every processed interval.
    pub target_skipped: bool,
}

impl Default for Confirmation {
    fn default() -> Self {
        Confirmation::new()
    }
}

fn step(persist: bool, next: Next) -> Step {
    Step { persist, next }
}

fn after(now: UnixMillis, wait: Duration) -> Next {
    Next::WaitUntil(now.saturating_add(wait))
}

mod transitions;

#[cfg(test)]
mod tests;
