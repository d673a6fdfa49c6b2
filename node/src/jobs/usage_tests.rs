use qubix_protocol::testing::{NOW, agreement_terms, node};

use super::*;

/// 3,600 QU per GPU-hour × 1 GPU: 1 QU per second; 600 s windows, 60 s interval; a budget
/// of one hour.
fn terms() -> AgreementTerms {
    let mut t = agreement_terms(2, 1).unwrap();
    t.price_per_gpu_hour = Qu(3_600);
    t.budget = Qu(3_600);
    t
}

fn at(secs: u64) -> UnixMillis {
    NOW.saturating_add(Duration::from_secs(secs))
}

fn report(millis: u64) -> UsageReport {
    UsageReport {
        agreement_id: terms().agreement_id,
        provider: node(1),
        sequence: 1,
        billable_millis: millis,
        amount_due: Qu(millis / 1000),
        amount_received: Qu(600),
        issued_at: NOW,
    }
}

fn running_for(secs: u64) -> ConsumerMeter {
    let mut m = ConsumerMeter::new(&terms());
    m.paid(Qu(600));
    m.observe(JobState::Running, at(0));
    m.observe(JobState::Running, at(secs));
    m
}

#[test]
fn windows_come_due_when_half_of_the_paid_time_is_left() {
    let mut m = ConsumerMeter::new(&terms());
    assert_eq!(m.top_up_due(), Some((0, Qu(600))), "the first window");
    m.paid(Qu(600));
    m.observe(JobState::Running, at(0));
    m.observe(JobState::Running, at(299));
    assert_eq!(m.top_up_due(), None);
    m.observe(JobState::Running, at(300));
    assert_eq!(m.top_up_due(), Some((1, Qu(600))));
    // The last window is what is left of the budget.
    m.paid(Qu(2_700));
    m.observe(JobState::Running, at(3_400));
    assert_eq!(m.top_up_due(), Some((5, Qu(300))));
    m.paid(Qu(300));
    assert_eq!(m.top_up_due(), None, "the budget is spent");
}

#[test]
fn a_report_of_what_ran_is_countersigned() {
    let m = running_for(120);
    m.judge(&report(120_000)).unwrap();
    m.judge(&report(0)).unwrap();
}

#[test]
fn dishonest_reports_are_refused_with_the_reason() {
    let mut m = running_for(120);
    let mut other = report(1_000);
    other.agreement_id = AgreementId::from_bytes([9; 16]);
    assert_eq!(m.judge(&other), Err(ReportRefused::OtherAgreement));
    let mut greedy = report(60_000);
    greedy.amount_due = Qu(61);
    assert!(matches!(
        m.judge(&greedy),
        Err(ReportRefused::WrongAmount { .. })
    ));
    // More than was seen running (plus the polling allowance).
    assert!(matches!(
        m.judge(&report(151_000)),
        Err(ReportRefused::BeyondSeen { .. })
    ));
    m.acknowledge(&report(100_000));
    assert!(matches!(
        m.judge(&report(99_000)),
        Err(ReportRefused::GoesBack { .. })
    ));
}

#[test]
fn billing_is_capped_by_the_paid_window_whatever_the_provider_says_ran() {
    // The provider said "running" for an hour, but only 600 QU (600 s) were paid.
    let m = running_for(3_600);
    assert!(matches!(
        m.judge(&report(601_000)),
        Err(ReportRefused::BeyondPayment { paid: 600_000, .. })
    ));
    m.judge(&report(600_000)).unwrap();
}

#[test]
fn stopped_time_is_not_seen_as_running() {
    let mut m = ConsumerMeter::new(&terms());
    m.paid(Qu(600));
    m.observe(JobState::Running, at(0));
    m.observe(JobState::Stopped, at(60));
    m.observe(JobState::Stopped, at(500));
    m.observe(JobState::Running, at(501));
    assert_eq!(m.seen_ms, 60_000);
}

#[test]
fn a_restarted_consumer_keeps_its_receipts_and_counts_its_downtime() {
    // The node went down 200 s after its last receipt (120 s acknowledged), with the job
    // running; it comes back at 320 s.
    let mut m = ConsumerMeter::restored(
        &terms(),
        Qu(600),
        Some((120_000, Qu(120))),
        (JobState::Running, at(200)),
    );
    assert_eq!((m.acknowledged_ms, m.acknowledged), (120_000, Qu(120)));
    m.observe(JobState::Running, at(320));
    // What ran while it was down can be acknowledged (up to what was paid)…
    m.judge(&report(240_000)).unwrap();
    // …and the receipts never go back.
    assert!(m.judge(&report(100_000)).is_err());
    assert_eq!(m.paid_ms(), 600_000);
}

#[test]
fn unacknowledged_usage_at_the_end_is_at_most_one_interval() {
    let mut m = running_for(300);
    m.acknowledge(&report(200_000));
    assert_eq!(m.unacknowledged(Some(&report(230_000))), Qu(30));
    // A provider claiming far more gets one interval's worth booked, no more.
    assert_eq!(m.unacknowledged(Some(&report(590_000))), Qu(60));
    assert_eq!(m.unacknowledged(None), Qu(0));
    assert_eq!(m.settle_every(), Duration::from_secs(5));
}
