//! The consumer's side of a rental's money and time, as a pure value: what it paid, how long
//! it saw the job run, what it acknowledged. It decides when the next window is due and
//! whether a provider's usage report may be countersigned. Nothing here does IO; the
//! instance driver feeds it what the provider says, with the time.
//!
//! A report is countersigned only when its figures are the agreed price times its time, it
//! does not go backwards, it bills no more than was paid (billing that rests on what the
//! provider reports is capped by the prepaid window), and no more than this node saw
//! running plus a small allowance for polling. Time this node could not watch (it was down)
//! counts as possibly running, still capped by what was paid.

use std::time::Duration;

use qubix_protocol::billing::UsageReport;
use qubix_protocol::control::JobState;
use qubix_protocol::job::AgreementTerms;
use qubix_protocol::{AgreementId, Qu, UnixMillis};

/// How far a report may run ahead of what this node saw: polls are a second apart and the
/// provider's clock is not ours.
pub const REPORT_ALLOWANCE: Duration = Duration::from_secs(30);

/// Why a usage report is not countersigned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportRefused {
    /// It is about another agreement.
    #[error("the report is for another agreement")]
    OtherAgreement,
    /// Its amount is not the agreed price times its time.
    #[error("it bills {billed} for {millis} ms; the agreed price makes that {expected}")]
    WrongAmount {
        /// The amount billed.
        billed: Qu,
        /// Its time.
        millis: u64,
        /// What the terms make of that time.
        expected: Qu,
    },
    /// It bills less time than already acknowledged.
    #[error("it bills {millis} ms, less than the {acknowledged} ms already acknowledged")]
    GoesBack {
        /// Its time.
        millis: u64,
        /// Acknowledged before.
        acknowledged: u64,
    },
    /// It bills more than was paid.
    #[error("it bills {millis} ms; only {paid} ms are paid")]
    BeyondPayment {
        /// Its time.
        millis: u64,
        /// Paid time.
        paid: u64,
    },
    /// It bills more than this node saw running.
    #[error("it bills {millis} ms; this node saw at most {seen} ms of running")]
    BeyondSeen {
        /// Its time.
        millis: u64,
        /// Time seen running (with the allowance).
        seen: u64,
    },
}

/// The consumer's meter of one rental.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMeter {
    id: AgreementId,
    price: Qu,
    gpus: u32,
    budget: Qu,
    window: Qu,
    interval_ms: u64,
    /// Paid to the provider so far.
    pub paid: Qu,
    /// Time this node saw (or could not rule out) the job running, in milliseconds.
    pub seen_ms: u64,
    /// Billable time acknowledged in the latest receipt.
    pub acknowledged_ms: u64,
    /// The amount of the latest receipt.
    pub acknowledged: Qu,
    last_state: Option<(JobState, UnixMillis)>,
}

impl ConsumerMeter {
    /// A fresh meter for `terms`.
    pub fn new(terms: &AgreementTerms) -> Self {
        Self {
            id: terms.agreement_id,
            price: terms.price_per_gpu_hour,
            gpus: terms.gpus,
            budget: terms.budget,
            window: terms.window_cost(),
            interval_ms: terms.payment.billing_interval_secs.saturating_mul(1000),
            paid: Qu::ZERO,
            seen_ms: 0,
            acknowledged_ms: 0,
            acknowledged: Qu::ZERO,
            last_state: None,
        }
    }

    /// The meter of a rental this node restarts with: `paid` from the ledger, the latest
    /// receipt's time and amount, and the state last seen `since`. Time since then counts as
    /// running when the job was running: this node could not watch it.
    pub fn restored(
        terms: &AgreementTerms,
        paid: Qu,
        receipt: Option<(u64, Qu)>,
        last: (JobState, UnixMillis),
    ) -> Self {
        let mut m = Self::new(terms);
        m.paid = paid;
        if let Some((ms, amount)) = receipt {
            m.acknowledged_ms = ms;
            m.acknowledged = amount;
            m.seen_ms = ms;
        }
        m.last_state = Some(last);
        m
    }

    /// Milliseconds `amount` pays for at the agreed price.
    fn millis_for(&self, amount: Qu) -> u64 {
        let per_hour = u128::from(self.price.0) * u128::from(self.gpus);
        (u128::from(amount.0) * 3_600_000)
            .checked_div(per_hour)
            .map_or(u64::MAX, |ms| u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// Milliseconds the payments so far cover.
    pub fn paid_ms(&self) -> u64 {
        self.millis_for(self.paid)
    }

    /// A status read at `now`: time since the previous one counts as seen running when the
    /// job was running then.
    pub fn observe(&mut self, state: JobState, now: UnixMillis) {
        if let Some((previous, at)) = self.last_state
            && previous.is_billable()
        {
            let elapsed = u64::try_from(now.since(at).as_millis()).unwrap_or(u64::MAX);
            self.seen_ms = self.seen_ms.saturating_add(elapsed);
        }
        self.last_state = Some((state, now));
    }

    /// The next window to pay, `(window number, amount)`, when less than half a window of
    /// paid time is left and the budget is not spent.
    pub fn top_up_due(&self) -> Option<(u32, Qu)> {
        if self.paid >= self.budget || self.window == Qu::ZERO {
            return None;
        }
        let left = self.paid_ms().saturating_sub(self.seen_ms);
        if self.paid > Qu::ZERO && left > self.millis_for(self.window) / 2 {
            return None;
        }
        let window = u32::try_from(self.paid.0 / self.window.0).unwrap_or(u32::MAX);
        Some((
            window,
            self.window.min(self.budget.saturating_sub(self.paid)),
        ))
    }

    /// A payment of `amount` is final.
    pub fn paid(&mut self, amount: Qu) {
        self.paid = self.paid.checked_add(amount).unwrap_or(self.paid);
    }

    /// Whether `report` may be countersigned.
    pub fn judge(&self, report: &UsageReport) -> Result<(), ReportRefused> {
        if report.agreement_id != self.id {
            return Err(ReportRefused::OtherAgreement);
        }
        let millis = report.billable_millis;
        let expected = self
            .price
            .cost_for(self.gpus, millis)
            .unwrap_or(Qu(u64::MAX));
        if report.amount_due != expected {
            return Err(ReportRefused::WrongAmount {
                billed: report.amount_due,
                millis,
                expected,
            });
        }
        if millis < self.acknowledged_ms {
            return Err(ReportRefused::GoesBack {
                millis,
                acknowledged: self.acknowledged_ms,
            });
        }
        let paid = self.paid_ms();
        if millis > paid {
            return Err(ReportRefused::BeyondPayment { millis, paid });
        }
        let seen = self
            .seen_ms
            .saturating_add(u64::try_from(REPORT_ALLOWANCE.as_millis()).unwrap_or(u64::MAX));
        if millis > seen {
            return Err(ReportRefused::BeyondSeen { millis, seen });
        }
        Ok(())
    }

    /// `report` was countersigned and the provider took the receipt.
    pub fn acknowledge(&mut self, report: &UsageReport) {
        self.acknowledged_ms = self.acknowledged_ms.max(report.billable_millis);
        self.acknowledged = self.acknowledged.max(report.amount_due);
    }

    /// How often to ask for a report and countersign it: every 5 seconds, and at least
    /// three times per billing interval, so an honest consumer's receipts trail by less
    /// than an interval and never reach the provider's limits (more than two intervals, or
    /// more than one with no receipt for an interval).
    pub fn settle_every(&self) -> Duration {
        Duration::from_millis((self.interval_ms / 3).clamp(1_000, 5_000))
    }

    /// At the end, what the provider's `last` report billed beyond the latest receipt,
    /// booked as unacknowledged usage: at most one billing interval and what is prepaid
    /// beyond the receipts.
    pub fn unacknowledged(&self, last: Option<&UsageReport>) -> Qu {
        let Some(r) = last.filter(|r| r.agreement_id == self.id) else {
            return Qu::ZERO;
        };
        let one_interval = self
            .price
            .cost_for(self.gpus, self.interval_ms)
            .unwrap_or(Qu::ZERO);
        r.amount_due
            .saturating_sub(self.acknowledged)
            .min(one_interval)
            .min(self.paid.saturating_sub(self.acknowledged))
    }
}

#[cfg(test)]
#[path = "usage_tests.rs"]
mod tests;
