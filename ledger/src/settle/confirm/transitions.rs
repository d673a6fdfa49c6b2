//! The transitions of [`Confirmation`]: one function per phase, each a small table.

use qubix_protocol::UnixMillis;

use super::{
    Attempt, BroadcastOutcome, ConfirmConfig, Confirmation, Event, FailReason, Lookup, Miss, Next,
    Phase, Step, after, step,
};
use crate::rpc::TickInterval;

impl Confirmation {
    /// A transfer that has not been signed yet.
    pub fn new() -> Confirmation {
        Confirmation {
            phase: Phase::Unsigned,
            attempt: None,
            misses: Vec::new(),
            last_processed: None,
            progress_at: None,
            stalled: false,
            failures: 0,
            target_passed: false,
            target_skipped: false,
        }
    }

    /// Whether the transfer is final or failed.
    pub fn is_settled(&self) -> bool {
        matches!(self.phase, Phase::Final { .. } | Phase::Failed { .. })
    }

    /// Transactions signed so far.
    pub fn attempts(&self) -> u32 {
        let live = u32::from(self.attempt.is_some());
        u32::try_from(self.misses.len())
            .unwrap_or(u32::MAX)
            .saturating_add(live)
    }

    /// Feeds one event; returns whether to persist and what to do next.
    pub fn on(&mut self, event: Event, now: UnixMillis, config: &ConfirmConfig) -> Step {
        if self.is_settled() {
            return step(false, Next::Done);
        }
        match event {
            Event::Start | Event::Wake => step(false, self.resume()),
            Event::SignFailed(message) => self.fail(FailReason::Rejected { message }),
            event => match self.phase {
                Phase::Unsigned => self.on_unsigned(event, now, config),
                Phase::Signed => self.on_signed(event, now, config),
                _ => self.on_pending(event, now, config),
            },
        }
    }

    /// What to do from the current phase, with no new information.
    fn resume(&self) -> Next {
        match (&self.phase, &self.attempt) {
            (Phase::Signed, Some(attempt)) => Next::Broadcast {
                encoded: attempt.encoded.clone(),
            },
            (Phase::Pending, Some(_)) => Next::FetchArchive,
            (Phase::Final { .. } | Phase::Failed { .. }, _) => Next::Done,
            _ => Next::FetchTick,
        }
    }

    fn on_unsigned(&mut self, event: Event, now: UnixMillis, config: &ConfirmConfig) -> Step {
        match event {
            Event::Tick(Ok(tick)) => {
                self.failures = 0;
                let target_tick = tick.saturating_add(config.tick_offset);
                step(false, Next::Sign { target_tick })
            }
            Event::Tick(Err(_)) => self.back_off(now, config),
            Event::Signed(attempt) => self.signed(attempt),
            _ => step(false, self.resume()),
        }
    }

    /// A new transaction: persist it before anything is broadcast.
    fn signed(&mut self, attempt: Attempt) -> Step {
        let encoded = attempt.encoded.clone();
        self.attempt = Some(attempt);
        self.phase = Phase::Signed;
        self.target_passed = false;
        self.target_skipped = false;
        step(true, Next::Broadcast { encoded })
    }

    fn on_signed(&mut self, event: Event, now: UnixMillis, config: &ConfirmConfig) -> Step {
        let Event::Broadcast(outcome) = event else {
            return step(false, self.resume());
        };
        match outcome {
            BroadcastOutcome::Accepted => {
                self.phase = Phase::Pending;
                self.failures = 0;
                step(true, after(now, config.poll))
            }
            // Possibly broadcast before (e.g. before a crash): only the archive can tell.
            BroadcastOutcome::TickPassed | BroadcastOutcome::Unknown(_) => {
                self.phase = Phase::Pending;
                self.failures = 0;
                step(true, Next::FetchArchive)
            }
            BroadcastOutcome::Rejected(message) => self.fail(FailReason::Rejected { message }),
            BroadcastOutcome::Transient(_) => self.back_off(now, config),
        }
    }

    fn on_pending(&mut self, event: Event, now: UnixMillis, config: &ConfirmConfig) -> Step {
        match event {
            Event::Archive(Ok(last)) => self.archive_at(last, now, config),
            Event::Intervals(Ok(intervals)) => self.intervals(&intervals),
            Event::Lookup(Ok(Lookup::Found { tick, money_flew })) => {
                self.failures = 0;
                if money_flew {
                    self.phase = Phase::Final { tick };
                    step(true, Next::Done)
                } else {
                    self.fail(FailReason::NoMoneyFlew { tick })
                }
            }
            Event::Lookup(Ok(Lookup::NotFound)) if self.target_passed => self.not_included(config),
            Event::Archive(Err(_)) | Event::Intervals(Err(_)) | Event::Lookup(Err(_)) => {
                self.back_off(now, config)
            }
            _ => step(false, self.resume()),
        }
    }

    /// The archive's last processed tick: wait, or look the transaction up.
    fn archive_at(&mut self, last: u32, now: UnixMillis, config: &ConfirmConfig) -> Step {
        self.failures = 0;
        let advanced = self.last_processed.is_none_or(|seen| last > seen);
        if advanced {
            self.last_processed = Some(last);
            self.progress_at = Some(now);
            self.stalled = false;
        } else if self
            .progress_at
            .is_some_and(|at| now.since(at) >= config.stall_after)
        {
            self.stalled = true;
        }
        let target = self.attempt.as_ref().map_or(u32::MAX, |a| a.target_tick);
        if last < target {
            let wait = if self.stalled {
                config.stall_poll
            } else {
                config.poll
            };
            return step(false, after(now, wait));
        }
        self.target_passed = true;
        step(false, Next::FetchIntervals)
    }

    /// Classifies the passed target (processed or skipped), then asks the archive.
    fn intervals(&mut self, intervals: &[TickInterval]) -> Step {
        let Some(attempt) = &self.attempt else {
            return step(false, self.resume());
        };
        let target = attempt.target_tick;
        self.target_skipped =
            !intervals.is_empty() && !intervals.iter().any(|i| i.contains(target));
        let tx_id = attempt.tx_id.clone();
        step(false, Next::Lookup { tx_id })
    }

    /// The archive passed the target and does not have the transaction: it can never
    /// execute, so a new one may be signed.
    fn not_included(&mut self, config: &ConfirmConfig) -> Step {
        if let Some(attempt) = self.attempt.take() {
            tracing::info!(
                tx = %attempt.tx_id,
                target_tick = attempt.target_tick,
                skipped = self.target_skipped,
                "transaction was not included; signing a new one"
            );
            self.misses.push(Miss {
                tx_id: attempt.tx_id,
                target_tick: attempt.target_tick,
                skipped: self.target_skipped,
            });
        }
        self.target_passed = false;
        self.target_skipped = false;
        let attempts = self.attempts();
        if attempts >= config.max_attempts {
            return self.fail(FailReason::NeverIncluded { attempts });
        }
        self.phase = Phase::Unsigned;
        step(true, Next::FetchTick)
    }

    fn fail(&mut self, reason: FailReason) -> Step {
        self.phase = Phase::Failed { reason };
        step(true, Next::Done)
    }

    /// Waits longer after each consecutive transient failure, then resumes.
    fn back_off(&mut self, now: UnixMillis, config: &ConfirmConfig) -> Step {
        let exponent = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let wait = config
            .backoff
            .saturating_mul(1u32 << exponent)
            .min(config.max_backoff);
        step(false, after(now, wait))
    }
}
