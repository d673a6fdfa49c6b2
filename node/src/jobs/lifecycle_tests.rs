use super::*;

const T0: UnixMillis = UnixMillis(1_000_000);

fn at(secs: u64) -> UnixMillis {
    T0.saturating_add(Duration::from_secs(secs))
}

fn job() -> Job {
    // 3,600 QU per GPU-hour × 1 GPU = 1 QU per second; 10-minute windows; 1 hour rental.
    let terms = PaymentTerms {
        window_secs: 600,
        billing_interval_secs: 60,
        stop_grace_secs: 30,
        terminate_grace_secs: 120,
    };
    Job::new(Meter::new(Qu(3_600), 1, 3_600, terms), T0)
}

fn running() -> Job {
    let mut j = job();
    assert_eq!(
        j.step(Input::Paid(Qu(600)), T0).unwrap(),
        vec![Effect::Pull]
    );
    assert_eq!(j.step(Input::Pulled, T0).unwrap(), vec![Effect::Run]);
    j.step(Input::Started, T0).unwrap();
    assert_eq!(j.state, JobState::Running);
    j
}

/// A tick at `t` after the consumer acknowledged everything metered up to `t`: the tests
/// of payment and time are not about receipts.
fn tick_acked(j: &mut Job, t: UnixMillis) -> Vec<Effect> {
    let mut effects = j.step(Input::Acknowledged(u64::MAX), t).unwrap();
    effects.extend(j.step(Input::Tick, t).unwrap());
    effects
}

#[test]
fn nothing_runs_before_payment() {
    let mut j = job();
    assert_eq!(j.step(Input::Tick, at(5)).unwrap(), vec![]);
    assert_eq!(j.state, JobState::Negotiated);
    assert_eq!(
        j.step(Input::Control(JobAction::Start), at(5)),
        Err(JobErrorCode::WrongState)
    );
}

#[test]
fn a_lapsed_reservation_ends_the_unpaid_job_and_nothing_else() {
    let mut j = job();
    assert_eq!(
        j.step(Input::Lapsed, at(240)).unwrap(),
        vec![Effect::Release]
    );
    assert_eq!(
        (j.state, j.reason),
        (JobState::Terminated, Some(EndReason::Unpaid))
    );
    // A funded job is not ended by a stale lapse.
    let mut r = running();
    assert_eq!(r.step(Input::Lapsed, at(240)).unwrap(), vec![]);
    assert_eq!(r.state, JobState::Running);
}

#[test]
fn billable_time_accrues_only_while_running() {
    let mut j = running();
    tick_acked(&mut j, at(100));
    assert_eq!(j.meter.billable_millis, 100_000);
    j.step(Input::Control(JobAction::Stop), at(100)).unwrap();
    tick_acked(&mut j, at(300));
    assert_eq!(
        j.meter.billable_millis, 100_000,
        "a stopped job is not billed"
    );
    assert_eq!(j.meter.due(), Qu(100));
}

#[test]
fn unpaid_job_stops_after_grace_keeps_data_then_terminates() {
    let mut j = running();
    assert_eq!(
        tick_acked(&mut j, at(600)),
        vec![],
        "paid time just ran out: grace starts"
    );
    assert_eq!(tick_acked(&mut j, at(629)), vec![]);
    assert_eq!(tick_acked(&mut j, at(630)), vec![Effect::Stop]);
    assert_eq!(
        (j.state, j.reason),
        (JobState::Stopped, Some(EndReason::Unpaid))
    );
    // The provider never works more than the grace period beyond payment.
    assert!(j.meter.billable_millis <= j.meter.paid_millis() + 30_000);
    let effects = tick_acked(&mut j, at(750));
    assert_eq!(effects[..2], [Effect::Remove, Effect::Release]);
    assert_eq!(
        (j.state, j.reason),
        (JobState::Terminated, Some(EndReason::Unpaid))
    );
}

#[test]
fn a_late_top_up_resumes_a_job_stopped_for_payment() {
    let mut j = running();
    tick_acked(&mut j, at(600));
    tick_acked(&mut j, at(630));
    assert_eq!(
        j.step(Input::Paid(Qu(600)), at(640)).unwrap(),
        vec![Effect::Resume]
    );
    j.step(Input::Started, at(641)).unwrap();
    assert_eq!(j.state, JobState::Running);
}

#[test]
fn early_termination_refunds_the_unused_part() {
    let mut j = running();
    let effects = j
        .step(Input::Control(JobAction::Terminate), at(200))
        .unwrap();
    assert_eq!(
        effects,
        vec![Effect::Remove, Effect::Release, Effect::Refund(Qu(400))]
    );
    assert_eq!(j.state, JobState::Terminated);
    assert_eq!(
        j.step(Input::Control(JobAction::Start), at(201)),
        Err(JobErrorCode::WrongState)
    );
    assert_eq!(
        j.step(Input::Control(JobAction::Terminate), at(202))
            .unwrap(),
        vec![],
        "a second terminate is answered, idempotently, with nothing more to do"
    );
    assert_eq!(j.state, JobState::Terminated);
}

#[test]
fn exits_end_the_job_with_the_right_state() {
    let mut ok = running();
    ok.step(
        Input::Exited {
            code: 0,
            oom: false,
        },
        at(10),
    )
    .unwrap();
    assert_eq!(ok.state, JobState::Completed);
    let mut bad = running();
    bad.step(
        Input::Exited {
            code: 3,
            oom: false,
        },
        at(10),
    )
    .unwrap();
    assert_eq!(
        (bad.state, bad.reason, bad.exit_code),
        (JobState::Failed, Some(EndReason::NonZeroExit), Some(3))
    );
    let mut oom = running();
    oom.step(
        Input::Exited {
            code: 137,
            oom: true,
        },
        at(10),
    )
    .unwrap();
    assert_eq!(oom.reason, Some(EndReason::OutOfMemory));
    let mut lost = running();
    lost.step(Input::Lost, at(10)).unwrap();
    assert_eq!(lost.reason, Some(EndReason::ContainerLost));
}

#[test]
fn a_failed_pull_ends_the_job_and_refunds_everything() {
    let mut j = job();
    j.step(Input::Paid(Qu(600)), T0).unwrap();
    let effects = j.step(Input::PullFailed, at(3)).unwrap();
    assert_eq!(j.reason, Some(EndReason::ImagePullFailed));
    // Pulling is the provider's own cost: nothing of it is billed.
    assert!(effects.contains(&Effect::Refund(Qu(600))), "{effects:?}");
}

#[test]
fn the_rental_ends_when_its_duration_is_used() {
    let mut j = running();
    j.step(Input::Paid(Qu(3_000)), at(1)).unwrap();
    j.step(Input::Tick, at(3_600)).unwrap();
    assert_eq!(
        (j.state, j.reason),
        (JobState::Terminated, Some(EndReason::DurationElapsed))
    );
    assert_eq!(j.meter.refund(), Qu(0));
}

#[test]
fn stop_start_restart_follow_the_state() {
    let mut j = running();
    assert_eq!(
        j.step(Input::Control(JobAction::Restart), at(1)).unwrap(),
        vec![Effect::Restart]
    );
    assert_eq!(
        j.step(Input::Control(JobAction::Start), at(1)),
        Err(JobErrorCode::WrongState)
    );
    assert_eq!(
        j.step(Input::Control(JobAction::Stop), at(2)).unwrap(),
        vec![Effect::Stop]
    );
    // The process exits because we stopped it: still just stopped.
    assert_eq!(
        j.step(
            Input::Exited {
                code: 137,
                oom: false
            },
            at(2)
        )
        .unwrap(),
        vec![]
    );
    assert_eq!(j.state, JobState::Stopped);
    assert_eq!(
        j.step(Input::Control(JobAction::Start), at(3)).unwrap(),
        vec![Effect::Resume]
    );
}

#[test]
fn the_idle_policy_terminates_a_job_stopped_too_long() {
    let mut j = running().with_idle_limit(Some(300));
    j.step(Input::Control(JobAction::Stop), at(10)).unwrap();
    assert_eq!(j.step(Input::Tick, at(309)).unwrap(), vec![]);
    let effects = j.step(Input::Tick, at(310)).unwrap();
    assert_eq!(effects[..2], [Effect::Remove, Effect::Release]);
    assert_eq!(
        (j.state, j.reason),
        (JobState::Terminated, Some(EndReason::IdleTimeout))
    );
    // Without a policy a stopped job waits for its consumer.
    let mut k = running();
    k.step(Input::Control(JobAction::Stop), at(10)).unwrap();
    assert_eq!(k.step(Input::Tick, at(100_000)).unwrap(), vec![]);
    assert_eq!(k.state, JobState::Stopped);
}

#[test]
fn receipts_more_than_an_interval_behind_stop_the_job_at_once() {
    let mut j = running();
    // 60 s of usage unacknowledged is one interval: still fine.
    assert_eq!(j.step(Input::Tick, at(60)).unwrap(), vec![]);
    assert_eq!(j.state, JobState::Running);
    // A second more is past the interval: stopped, data kept.
    assert_eq!(j.step(Input::Tick, at(61)).unwrap(), vec![Effect::Stop]);
    assert_eq!(
        (j.state, j.reason),
        (JobState::Stopped, Some(EndReason::Unacknowledged))
    );
    assert_eq!(j.meter.billable_millis, 61_000);
    // No more time is billed while it waits.
    j.step(Input::Tick, at(80)).unwrap();
    assert_eq!(j.meter.billable_millis, 61_000);
}

#[test]
fn a_receipt_that_catches_up_within_the_grace_resumes_the_job() {
    let mut j = running();
    j.step(Input::Tick, at(61)).unwrap();
    // A receipt that leaves more than an interval unacknowledged does not resume it.
    assert_eq!(j.step(Input::Acknowledged(500), at(70)).unwrap(), vec![]);
    assert_eq!(
        j.step(Input::Acknowledged(61_000), at(75)).unwrap(),
        vec![Effect::Resume]
    );
    j.step(Input::Started, at(76)).unwrap();
    assert_eq!((j.state, j.reason), (JobState::Running, None));
    // A receipt can never acknowledge more than was metered.
    j.step(Input::Acknowledged(u64::MAX), at(80)).unwrap();
    assert_eq!(j.meter.acknowledged_millis, j.meter.billable_millis);
}

#[test]
fn receipts_that_never_come_end_the_job_after_the_stop_grace() {
    let mut j = running();
    j.step(Input::Tick, at(61)).unwrap();
    assert_eq!(j.step(Input::Tick, at(90)).unwrap(), vec![]);
    let effects = j.step(Input::Tick, at(91)).unwrap();
    assert_eq!(effects[..2], [Effect::Remove, Effect::Release]);
    assert_eq!(
        (j.state, j.reason),
        (JobState::Terminated, Some(EndReason::Unacknowledged))
    );
    // What the consumer paid and did not use is refunded; what it used without signing
    // for is at most one interval (61 s here) and is not.
    assert_eq!(effects[2], Effect::Refund(Qu(600 - 61)));
    assert!(j.meter.unacknowledged_millis() <= 61_000);
}

#[test]
fn the_final_receipt_after_the_end_still_counts() {
    let mut j = running();
    j.step(Input::Tick, at(30)).unwrap();
    j.step(Input::Control(JobAction::Terminate), at(30))
        .unwrap();
    assert_eq!(j.meter.unacknowledged_millis(), 30_000);
    assert_eq!(j.step(Input::Acknowledged(30_000), at(31)).unwrap(), vec![]);
    assert_eq!(j.meter.unacknowledged_millis(), 0);
    assert_eq!(j.state, JobState::Terminated);
}

#[test]
fn a_consumer_that_keeps_acknowledging_gets_its_interval_but_never_more_than_two() {
    let mut j = running();
    // Receipts that keep coming keep the clock fresh: 90 s behind is tolerated…
    for t in (100..=200).step_by(10) {
        j.step(Input::Acknowledged((t - 90) * 1000), at(t)).unwrap();
        assert_eq!(j.step(Input::Tick, at(t)).unwrap(), vec![], "at {t} s");
    }
    // …but receipts that creep forward while the lag grows stop it past two intervals.
    let mut stopped_at = None;
    for (n, t) in (210..=260).step_by(10).enumerate() {
        j.step(Input::Acknowledged((111 + n as u64) * 1000), at(t))
            .unwrap();
        if j.step(Input::Tick, at(t)).unwrap() == vec![Effect::Stop] {
            stopped_at = Some(t);
            break;
        }
    }
    assert_eq!(stopped_at, Some(240), "126 s behind is over two intervals");
    assert_eq!(j.reason, Some(EndReason::Unacknowledged));
}

#[test]
fn a_restarted_provider_gives_its_consumer_a_fresh_interval() {
    let mut j = running();
    j.step(Input::Acknowledged(40_000), at(40)).unwrap();
    // The provider is down from 40 s to 100 s; the container ran on, billed when it is back.
    let json = serde_json::to_string(&j).unwrap();
    let mut back: Job = serde_json::from_str(&json).unwrap();
    assert_eq!(back.step(Input::Tick, at(100)).unwrap(), vec![]);
    assert_eq!(back.meter.unacknowledged_millis(), 60_000);
    // The consumer catches up within the interval: nothing stops.
    back.step(Input::Acknowledged(100_000), at(105)).unwrap();
    assert_eq!(back.step(Input::Tick, at(160)).unwrap(), vec![]);
    assert_eq!(back.state, JobState::Running);
}

#[test]
fn a_job_over_its_disk_stops_keeping_its_data_and_may_start_again() {
    let mut j = running();
    assert_eq!(
        j.step(Input::DiskExceeded, at(10)).unwrap(),
        vec![Effect::Stop]
    );
    assert_eq!(j.state, JobState::Stopped);
    // Stopped time is not billed, and a second report changes nothing.
    assert_eq!(j.step(Input::DiskExceeded, at(20)).unwrap(), vec![]);
    assert_eq!(
        j.step(Input::Control(JobAction::Start), at(30)).unwrap(),
        vec![Effect::Resume]
    );
    assert_eq!(j.state, JobState::Running);
}

#[test]
fn a_tick_that_only_accrues_changes_nothing_worth_a_write_and_a_restart_loses_no_time() {
    let mut j = running();
    tick_acked(&mut j, at(10));
    let stored = j.clone();
    j.step(Input::Tick, at(11)).unwrap();
    assert!(!j.changed_beyond_accrual(&stored), "a plain tick");
    assert!(j.meter.billable_millis > stored.meter.billable_millis);
    // A node restarted from the older record bills the same time at its next step.
    let mut restarted = stored.clone();
    restarted.step(Input::Tick, at(12)).unwrap();
    j.step(Input::Tick, at(12)).unwrap();
    assert_eq!(restarted.meter.billable_millis, j.meter.billable_millis);
    // A payment, a receipt or a state change is worth a write.
    let before = j.clone();
    j.step(Input::Paid(Qu(1)), at(13)).unwrap();
    assert!(j.changed_beyond_accrual(&before));
    let before = j.clone();
    j.step(Input::Control(JobAction::Stop), at(14)).unwrap();
    assert!(j.changed_beyond_accrual(&before));
}
