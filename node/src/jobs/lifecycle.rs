//! The provider's job lifecycle as a pure state machine: the job, an input and `now` in; the
//! new state and the effects to perform out. Billing is part of it: billable time accrues
//! only while `Running`; the provider never works more than one paid window ahead of
//! payment: when billable time reaches what was paid, the job stops (data kept) after the
//! grace period, and is terminated after the longer one. Nor does it work far ahead of the
//! consumer's receipts: when acknowledged usage trails metered usage by more than a billing
//! interval and no receipt has come for an interval (or by more than two intervals, receipts
//! or not), the job stops at once, resumes when receipts catch up within the stop grace,
//! and is terminated after it. The interval without a receipt gives a consumer room after a
//! pause it could not help (the provider's own restart, a slow payment).
//!
//! `Negotiated → Funded → Pulling → Running ⇄ Stopped → Terminated | Completed | Failed`.

use std::time::Duration;

use qubix_protocol::control::{EndReason, JobAction, JobErrorCode, JobState};
use qubix_protocol::job::PaymentTerms;
use qubix_protocol::{Qu, UnixMillis};
use serde::{Deserialize, Serialize};

/// Money and time of one job, as the provider keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meter {
    /// Price per GPU-hour.
    pub price: Qu,
    /// GPUs rented.
    pub gpus: u32,
    /// Rental length in seconds.
    pub duration_secs: u64,
    /// Payment terms.
    pub terms: PaymentTerms,
    /// Confirmed payments, in total.
    pub paid: Qu,
    /// Billable milliseconds so far.
    pub billable_millis: u64,
    /// Until when billable time has been counted.
    pub accrued_until: Option<UnixMillis>,
    /// When paid time ran out (unpaid since), if it has.
    pub unpaid_since: Option<UnixMillis>,
    /// When the job was stopped, if it is.
    pub stopped_at: Option<UnixMillis>,
    /// Billable milliseconds the consumer has acknowledged with a receipt.
    #[serde(default)]
    pub acknowledged_millis: u64,
    /// When a receipt last acknowledged more, or when this node began watching (kept in
    /// memory: a restarted provider gives its consumers a fresh interval).
    #[serde(skip)]
    pub receipt_clock: Option<UnixMillis>,
}

impl Meter {
    /// A meter for an agreement.
    pub fn new(price: Qu, gpus: u32, duration_secs: u64, terms: PaymentTerms) -> Self {
        Self {
            price,
            gpus,
            duration_secs,
            terms,
            paid: Qu::ZERO,
            billable_millis: 0,
            accrued_until: None,
            unpaid_since: None,
            stopped_at: None,
            acknowledged_millis: 0,
            receipt_clock: None,
        }
    }

    /// Metered usage the consumer has not acknowledged yet, in milliseconds.
    pub fn unacknowledged_millis(&self) -> u64 {
        self.billable_millis
            .saturating_sub(self.acknowledged_millis)
    }

    /// Whether the receipts are behind at `now`: more than an interval of usage
    /// unacknowledged and no receipt for an interval, or more than two intervals.
    fn receipts_behind(&self, now: UnixMillis) -> bool {
        let interval = self.terms.billing_interval_secs.saturating_mul(1000);
        let lag = self.unacknowledged_millis();
        let quiet = self
            .receipt_clock
            .is_some_and(|at| now.since(at).as_millis() > u128::from(interval));
        lag > interval.saturating_mul(2) || (lag > interval && quiet)
    }

    /// Whether no more than one interval of usage is unacknowledged.
    fn receipts_caught_up(&self) -> bool {
        self.unacknowledged_millis() <= self.terms.billing_interval_secs.saturating_mul(1000)
    }

    /// What the billable time so far costs.
    pub fn due(&self) -> Qu {
        self.price
            .cost_for(self.gpus, self.billable_millis)
            .unwrap_or(Qu(u64::MAX))
    }

    /// Milliseconds the payments so far cover.
    pub fn paid_millis(&self) -> u64 {
        let per_hour = u128::from(self.price.0) * u128::from(self.gpus);
        if per_hour == 0 {
            return u64::MAX;
        }
        u64::try_from(u128::from(self.paid.0) * 3_600_000 / per_hour).unwrap_or(u64::MAX)
    }

    /// The unused part of what was paid: refunded when the job ends early.
    pub fn refund(&self) -> Qu {
        self.paid.saturating_sub(self.due())
    }

    fn rental_millis(&self) -> u64 {
        self.duration_secs.saturating_mul(1000)
    }
}

/// A provider's job: state and meter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Lifecycle state.
    pub state: JobState,
    /// When the state last changed.
    pub since: UnixMillis,
    /// Why it ended.
    pub reason: Option<EndReason>,
    /// Exit code when it exited.
    pub exit_code: Option<i64>,
    /// Money and time.
    pub meter: Meter,
    /// The provider's idle policy: a job stopped by its consumer for this long is
    /// terminated (its data removed, the unused payment refunded).
    #[serde(default)]
    pub max_idle_secs: Option<u64>,
}

/// What happened to a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A payment was confirmed on chain.
    Paid(Qu),
    /// The image is present.
    Pulled,
    /// The image could not be pulled.
    PullFailed,
    /// The container runs.
    Started,
    /// The container could not be created or started.
    StartFailed,
    /// The container exited.
    Exited {
        /// Exit code.
        code: i64,
        /// Killed for memory.
        oom: bool,
    },
    /// The container vanished outside our control.
    Lost,
    /// The consumer asked for something.
    Control(JobAction),
    /// The reservation lapsed: the first window was not paid by `fund_by`.
    Lapsed,
    /// The consumer's receipt acknowledged this many billable milliseconds in total.
    Acknowledged(u64),
    /// Time passed.
    Tick,
    /// The job's writable layer and workspace hold more than its disk allows: it stops,
    /// keeping its data (it may start again once under).
    DiskExceeded,
}

/// What the node must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Pull the image, then report `Pulled` or `PullFailed`.
    Pull,
    /// Create and start the container, then report `Started` or `StartFailed`.
    Run,
    /// Stop the container, keeping its data.
    Stop,
    /// Start the stopped container.
    Resume,
    /// Restart the container.
    Restart,
    /// Remove the container and its workspace.
    Remove,
    /// Free the GPUs and republish offers.
    Release,
    /// Send this refund to the consumer.
    Refund(Qu),
}

/// One of the time checks a tick runs, in order; the first that decides wins.
type Check = fn(&mut Job, UnixMillis) -> Option<Vec<Effect>>;

impl Job {
    /// A job whose agreement was just countersigned.
    pub fn new(meter: Meter, now: UnixMillis) -> Self {
        Self {
            state: JobState::Negotiated,
            since: now,
            reason: None,
            exit_code: None,
            meter,
            max_idle_secs: None,
        }
    }

    /// Whether this job differs from `before` in more than the meter's accrual (billable
    /// time and the instant it was accrued to). Accrual needs no write: billing follows
    /// `accrued_until`, so a node restarted from an older record accrues the gap at its next
    /// step. Everything else (state, timers, payments, receipts) does.
    pub fn changed_beyond_accrual(&self, before: &Job) -> bool {
        let mut now = self.clone();
        now.meter.billable_millis = before.meter.billable_millis;
        now.meter.accrued_until = before.meter.accrued_until;
        now != *before
    }

    /// The same job under the provider's idle policy.
    pub fn with_idle_limit(mut self, max_idle_secs: Option<u64>) -> Self {
        self.max_idle_secs = max_idle_secs;
        self
    }

    fn to(&mut self, state: JobState, now: UnixMillis) {
        self.state = state;
        self.since = now;
    }

    /// Adds billable time up to `now`.
    fn accrue(&mut self, now: UnixMillis) {
        if self.state.is_billable() {
            if let Some(from) = self.meter.accrued_until {
                let add = now.since(from).as_millis();
                let total = u128::from(self.meter.billable_millis) + add;
                self.meter.billable_millis = u64::try_from(total)
                    .unwrap_or(u64::MAX)
                    .min(self.meter.rental_millis());
            }
        }
        self.meter.accrued_until = Some(now);
    }

    fn end(
        &mut self,
        state: JobState,
        reason: Option<EndReason>,
        now: UnixMillis,
        container: bool,
    ) -> Vec<Effect> {
        self.to(state, now);
        self.reason = reason;
        let mut effects = Vec::new();
        if container {
            effects.push(Effect::Remove);
        }
        effects.push(Effect::Release);
        let refund = self.meter.refund();
        if refund > Qu::ZERO {
            effects.push(Effect::Refund(refund));
        }
        effects
    }

    /// Applies an input at `now`.
    pub fn step(&mut self, input: Input, now: UnixMillis) -> Result<Vec<Effect>, JobErrorCode> {
        self.accrue(now);
        self.meter.receipt_clock.get_or_insert(now);
        if self.state.is_final() {
            return match input {
                // The final receipt comes after the end: it still counts.
                Input::Acknowledged(ms) => Ok(self.on_acknowledged(ms, now)),
                Input::Control(JobAction::Status | JobAction::Heartbeat | JobAction::Terminate)
                | Input::Tick
                | Input::Lapsed
                | Input::DiskExceeded
                | Input::Paid(_) => Ok(vec![]),
                _ => Err(JobErrorCode::WrongState),
            };
        }
        match input {
            Input::Paid(amount) => Ok(self.on_paid(amount, now)),
            Input::Pulled if self.state == JobState::Pulling => Ok(vec![Effect::Run]),
            Input::PullFailed => Ok(self.end(
                JobState::Failed,
                Some(EndReason::ImagePullFailed),
                now,
                false,
            )),
            Input::Started => {
                if self.state == JobState::Pulling || self.state == JobState::Stopped {
                    self.to(JobState::Running, now);
                }
                Ok(vec![])
            }
            Input::StartFailed => {
                Ok(self.end(JobState::Failed, Some(EndReason::StartFailed), now, true))
            }
            Input::Exited { code, oom } => Ok(self.on_exit(code, oom, now)),
            Input::Lost => {
                Ok(self.end(JobState::Failed, Some(EndReason::ContainerLost), now, false))
            }
            Input::Control(action) => self.on_control(action, now),
            Input::Lapsed if self.state == JobState::Negotiated => {
                Ok(self.end(JobState::Terminated, Some(EndReason::Unpaid), now, false))
            }
            Input::Lapsed => Ok(vec![]),
            Input::Acknowledged(ms) => Ok(self.on_acknowledged(ms, now)),
            Input::Tick => Ok(self.on_tick(now)),
            Input::DiskExceeded if self.state == JobState::Running => {
                self.to(JobState::Stopped, now);
                self.meter.stopped_at = Some(now);
                Ok(vec![Effect::Stop])
            }
            Input::DiskExceeded => Ok(vec![]),
            Input::Pulled => Ok(vec![]),
        }
    }

    fn on_paid(&mut self, amount: Qu, now: UnixMillis) -> Vec<Effect> {
        self.meter.paid = self.meter.paid.checked_add(amount).unwrap_or(Qu(u64::MAX));
        if self.meter.paid_millis() > self.meter.billable_millis {
            self.meter.unpaid_since = None;
        }
        match self.state {
            JobState::Negotiated => {
                self.to(JobState::Pulling, now);
                vec![Effect::Pull]
            }
            JobState::Stopped if self.reason == Some(EndReason::Unpaid) => {
                self.reason = None;
                self.meter.stopped_at = None;
                vec![Effect::Resume]
            }
            _ => vec![],
        }
    }

    fn on_acknowledged(&mut self, ms: u64, now: UnixMillis) -> Vec<Effect> {
        let m = &mut self.meter;
        let acknowledged = ms.min(m.billable_millis);
        if acknowledged > m.acknowledged_millis {
            m.acknowledged_millis = acknowledged;
            m.receipt_clock = Some(now);
        }
        let caught_up = m.receipts_caught_up();
        let paid = m.paid_millis() > m.billable_millis;
        if self.state == JobState::Stopped
            && self.reason == Some(EndReason::Unacknowledged)
            && caught_up
            && paid
        {
            // Like a late top-up: the container starts again, and `Started` makes the job
            // run (and bill) again.
            self.reason = None;
            self.meter.stopped_at = None;
            self.since = now;
            return vec![Effect::Resume];
        }
        vec![]
    }

    fn on_exit(&mut self, code: i64, oom: bool, now: UnixMillis) -> Vec<Effect> {
        self.exit_code = Some(code);
        match (self.state, code, oom) {
            // A stop we asked for exits the process; the job is stopped, not over.
            (JobState::Stopped, _, _) => vec![],
            (_, _, true) => self.end(JobState::Failed, Some(EndReason::OutOfMemory), now, false),
            (_, 0, _) => self.end(JobState::Completed, None, now, false),
            _ => self.end(JobState::Failed, Some(EndReason::NonZeroExit), now, false),
        }
    }

    fn on_control(
        &mut self,
        action: JobAction,
        now: UnixMillis,
    ) -> Result<Vec<Effect>, JobErrorCode> {
        match (action, self.state) {
            (JobAction::Status | JobAction::Heartbeat, _) => Ok(vec![]),
            (JobAction::Terminate, s) => {
                let had_container =
                    matches!(s, JobState::Running | JobState::Stopped | JobState::Pulling);
                Ok(self.end(
                    JobState::Terminated,
                    Some(EndReason::ConsumerTerminated),
                    now,
                    had_container,
                ))
            }
            (JobAction::Stop, JobState::Running) => {
                self.to(JobState::Stopped, now);
                self.meter.stopped_at = Some(now);
                Ok(vec![Effect::Stop])
            }
            (JobAction::Start, JobState::Stopped)
                if self.meter.paid_millis() > self.meter.billable_millis =>
            {
                self.to(JobState::Running, now);
                self.meter.stopped_at = None;
                self.reason = None;
                Ok(vec![Effect::Resume])
            }
            (JobAction::Restart, JobState::Running) => Ok(vec![Effect::Restart]),
            _ => Err(JobErrorCode::WrongState),
        }
    }

    fn on_tick(&mut self, now: UnixMillis) -> Vec<Effect> {
        let checks: [Check; 4] = [
            Self::idle_check,
            Self::duration_check,
            Self::receipts_check,
            Self::payment_check,
        ];
        checks
            .into_iter()
            .find_map(|check| check(self, now))
            .unwrap_or_default()
    }

    /// A job its consumer left stopped past the provider's idle limit ends.
    fn idle_check(&mut self, now: UnixMillis) -> Option<Vec<Effect>> {
        let (limit, stopped) = (self.max_idle_secs?, self.meter.stopped_at?);
        let idle = self.state == JobState::Stopped
            && self.reason.is_none()
            && now.since(stopped) >= Duration::from_secs(limit);
        idle.then(|| {
            self.end(
                JobState::Terminated,
                Some(EndReason::IdleTimeout),
                now,
                true,
            )
        })
    }

    /// The rental ends when its duration is used.
    fn duration_check(&mut self, now: UnixMillis) -> Option<Vec<Effect>> {
        let m = &self.meter;
        let used = self.state.is_billable() && m.billable_millis >= m.rental_millis();
        used.then(|| {
            self.end(
                JobState::Terminated,
                Some(EndReason::DurationElapsed),
                now,
                true,
            )
        })
    }

    /// Receipts more than an interval behind stop the job at once; the stop grace later
    /// ends it.
    fn receipts_check(&mut self, now: UnixMillis) -> Option<Vec<Effect>> {
        if self.state == JobState::Running && self.meter.receipts_behind(now) {
            return Some(self.stop_for(EndReason::Unacknowledged, now));
        }
        let grace = Duration::from_secs(self.meter.terms.stop_grace_secs);
        self.stopped_for(EndReason::Unacknowledged, grace, now)
    }

    /// Paid time used up stops the job after the stop grace; the terminate grace later ends
    /// it.
    fn payment_check(&mut self, now: UnixMillis) -> Option<Vec<Effect>> {
        let m = &self.meter;
        if self.state == JobState::Running && m.billable_millis >= m.paid_millis() {
            let since = *self.meter.unpaid_since.get_or_insert(now);
            let grace = Duration::from_secs(self.meter.terms.stop_grace_secs);
            return (now.since(since) >= grace).then(|| self.stop_for(EndReason::Unpaid, now));
        }
        let grace = Duration::from_secs(self.meter.terms.terminate_grace_secs);
        self.stopped_for(EndReason::Unpaid, grace, now)
    }

    fn stop_for(&mut self, reason: EndReason, now: UnixMillis) -> Vec<Effect> {
        self.to(JobState::Stopped, now);
        self.reason = Some(reason);
        self.meter.stopped_at = Some(now);
        vec![Effect::Stop]
    }

    /// Ends a job stopped for `reason` once it has been stopped for `grace`.
    fn stopped_for(
        &mut self,
        reason: EndReason,
        grace: Duration,
        now: UnixMillis,
    ) -> Option<Vec<Effect>> {
        let stopped = self.meter.stopped_at.unwrap_or(now);
        let over = self.state == JobState::Stopped
            && self.reason == Some(reason)
            && now.since(stopped) >= grace;
        over.then(|| self.end(JobState::Terminated, Some(reason), now, true))
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
