//! Every branch of the confirmation machine, driven by hand with a fake clock.

use std::time::Duration;

use super::*;

const T0: UnixMillis = UnixMillis(1_000_000);

fn cfg() -> ConfirmConfig {
    ConfirmConfig::default()
}

fn attempt(number: u32, target_tick: u32) -> Attempt {
    Attempt {
        number,
        target_tick,
        tx_id: format!("tx{number}"),
        encoded: format!("bytes{number}"),
    }
}

fn interval(first_tick: u32, last_tick: u32) -> TickInterval {
    TickInterval {
        epoch: 1,
        first_tick,
        last_tick,
    }
}

/// Feeds `event` and checks the step.
fn expect(c: &mut Confirmation, event: Event, now: UnixMillis, persist: bool, next: Next) {
    let got = c.on(event.clone(), now, &cfg());
    assert_eq!(got, Step { persist, next }, "after {event:?}");
}

/// A transfer signed for tick 115 and accepted by the RPC.
fn broadcast_one() -> Confirmation {
    let mut c = Confirmation::new();
    expect(&mut c, Event::Start, T0, false, Next::FetchTick);
    expect(
        &mut c,
        Event::Tick(Ok(100)),
        T0,
        false,
        Next::Sign { target_tick: 115 },
    );
    let bytes = Next::Broadcast {
        encoded: "bytes1".into(),
    };
    expect(&mut c, Event::Signed(attempt(1, 115)), T0, true, bytes);
    let poll = Next::WaitUntil(T0.saturating_add(cfg().poll));
    expect(
        &mut c,
        Event::Broadcast(BroadcastOutcome::Accepted),
        T0,
        true,
        poll,
    );
    assert_eq!(c.phase, Phase::Pending);
    c
}

/// Drives a pending transfer to the lookup of its transaction.
fn to_lookup(c: &mut Confirmation, intervals: Vec<TickInterval>) {
    let tx_id = c
        .attempt
        .as_ref()
        .map(|a| a.tx_id.clone())
        .unwrap_or_default();
    expect(c, Event::Wake, T0, false, Next::FetchArchive);
    let target = c.attempt.as_ref().map_or(0, |a| a.target_tick);
    expect(
        c,
        Event::Archive(Ok(target)),
        T0,
        false,
        Next::FetchIntervals,
    );
    expect(
        c,
        Event::Intervals(Ok(intervals)),
        T0,
        false,
        Next::Lookup { tx_id },
    );
}

#[test]
fn happy_path_is_final_when_included_with_money_flew() {
    let mut c = broadcast_one();
    expect(&mut c, Event::Wake, T0, false, Next::FetchArchive);
    let poll = Next::WaitUntil(T0.saturating_add(cfg().poll));
    expect(&mut c, Event::Archive(Ok(110)), T0, false, poll);
    to_lookup(&mut c, vec![interval(1, 200)]);
    let found = Lookup::Found {
        tick: 115,
        money_flew: true,
    };
    expect(&mut c, Event::Lookup(Ok(found)), T0, true, Next::Done);
    assert_eq!(c.phase, Phase::Final { tick: 115 });
    assert_eq!(c.attempts(), 1);
    // Settled transfers ignore everything.
    expect(&mut c, Event::Tick(Ok(500)), T0, false, Next::Done);
}

#[test]
fn not_included_after_target_passed_re_signs_for_a_fresh_tick() {
    let mut c = broadcast_one();
    to_lookup(&mut c, vec![interval(1, 200)]);
    expect(
        &mut c,
        Event::Lookup(Ok(Lookup::NotFound)),
        T0,
        true,
        Next::FetchTick,
    );
    assert_eq!(c.phase, Phase::Unsigned);
    assert_eq!(c.misses.len(), 1);
    assert!(!c.misses[0].skipped);
    expect(
        &mut c,
        Event::Tick(Ok(130)),
        T0,
        false,
        Next::Sign { target_tick: 145 },
    );
    let bytes = Next::Broadcast {
        encoded: "bytes2".into(),
    };
    expect(&mut c, Event::Signed(attempt(2, 145)), T0, true, bytes);
    assert_eq!(c.attempts(), 2);
}

#[test]
fn never_re_signs_while_the_target_tick_is_pending() {
    let mut c = broadcast_one();
    expect(&mut c, Event::Wake, T0, false, Next::FetchArchive);
    let poll = Next::WaitUntil(T0.saturating_add(cfg().poll));
    expect(&mut c, Event::Archive(Ok(114)), T0, false, poll);
    // A 404 before the archive reached the target proves nothing.
    expect(
        &mut c,
        Event::Lookup(Ok(Lookup::NotFound)),
        T0,
        false,
        Next::FetchArchive,
    );
    assert_eq!(c.phase, Phase::Pending);
    assert_eq!(c.attempts(), 1);
    assert!(c.misses.is_empty());
}

#[test]
fn included_without_money_flew_fails_without_retrying() {
    let mut c = broadcast_one();
    to_lookup(&mut c, vec![interval(1, 200)]);
    let found = Lookup::Found {
        tick: 115,
        money_flew: false,
    };
    expect(&mut c, Event::Lookup(Ok(found)), T0, true, Next::Done);
    assert_eq!(
        c.phase,
        Phase::Failed {
            reason: FailReason::NoMoneyFlew { tick: 115 }
        }
    );
    assert_eq!(c.attempts(), 1);
}

#[test]
fn a_target_inside_a_skipped_interval_is_not_included() {
    let mut c = broadcast_one();
    to_lookup(&mut c, vec![interval(1, 110), interval(120, 300)]);
    assert!(c.target_skipped);
    expect(
        &mut c,
        Event::Lookup(Ok(Lookup::NotFound)),
        T0,
        true,
        Next::FetchTick,
    );
    assert!(c.misses[0].skipped);
}

#[test]
fn an_epoch_stall_keeps_waiting_slower_and_never_re_signs() {
    let mut c = broadcast_one();
    let poll = |t: UnixMillis| Next::WaitUntil(t.saturating_add(cfg().poll));
    expect(&mut c, Event::Archive(Ok(110)), T0, false, poll(T0));
    let mut now = T0;
    for _ in 0..100 {
        now = now.saturating_add(Duration::from_secs(10));
        let step = c.on(Event::Archive(Ok(110)), now, &cfg());
        assert!(matches!(step.next, Next::WaitUntil(_)), "{step:?}");
        assert!(!step.persist);
    }
    assert!(c.stalled);
    let slow = Next::WaitUntil(now.saturating_add(cfg().stall_poll));
    expect(&mut c, Event::Archive(Ok(110)), now, false, slow);
    assert_eq!(c.attempts(), 1);
    // Ticks move again: back to normal polling, same transaction.
    expect(&mut c, Event::Archive(Ok(111)), now, false, poll(now));
    assert!(!c.stalled);
    expect(
        &mut c,
        Event::Archive(Ok(115)),
        now,
        false,
        Next::FetchIntervals,
    );
}

#[test]
fn a_restart_between_persist_and_broadcast_rebroadcasts_the_same_bytes() {
    let mut c = Confirmation::new();
    c.on(Event::Tick(Ok(100)), T0, &cfg());
    let s = c.on(Event::Signed(attempt(1, 115)), T0, &cfg());
    assert!(
        s.persist,
        "the signed bytes must be persisted before broadcast"
    );
    let stored = serde_json::to_string(&c).unwrap();
    let mut reopened: Confirmation = serde_json::from_str(&stored).unwrap();
    let again = Next::Broadcast {
        encoded: "bytes1".into(),
    };
    expect(&mut reopened, Event::Start, T0, false, again);
}

#[test]
fn a_passed_target_or_garbled_answer_counts_as_broadcast() {
    for outcome in [
        BroadcastOutcome::TickPassed,
        BroadcastOutcome::Unknown("garbled".into()),
    ] {
        let mut c = Confirmation::new();
        c.on(Event::Tick(Ok(100)), T0, &cfg());
        c.on(Event::Signed(attempt(1, 115)), T0, &cfg());
        expect(
            &mut c,
            Event::Broadcast(outcome),
            T0,
            true,
            Next::FetchArchive,
        );
        assert_eq!(c.phase, Phase::Pending);
    }
}

#[test]
fn transient_broadcast_failures_back_off_and_retry_the_same_bytes() {
    let mut c = Confirmation::new();
    c.on(Event::Tick(Ok(100)), T0, &cfg());
    c.on(Event::Signed(attempt(1, 115)), T0, &cfg());
    let mut waits = Vec::new();
    for _ in 0..10 {
        let s = c.on(
            Event::Broadcast(BroadcastOutcome::Transient("500".into())),
            T0,
            &cfg(),
        );
        let Next::WaitUntil(at) = s.next else {
            panic!("{s:?}")
        };
        waits.push(at.since(T0));
        let bytes = Next::Broadcast {
            encoded: "bytes1".into(),
        };
        expect(&mut c, Event::Wake, at, false, bytes);
    }
    assert_eq!(waits[0], cfg().backoff);
    assert_eq!(waits[1], cfg().backoff * 2);
    assert_eq!(waits[9], cfg().max_backoff);
    assert_eq!(c.attempts(), 1);
}

#[test]
fn transient_archive_failures_back_off_without_re_signing() {
    let mut c = broadcast_one();
    for event in [
        Event::Archive(Err("down".into())),
        Event::Intervals(Err("down".into())),
        Event::Lookup(Err("down".into())),
    ] {
        let s = c.on(event, T0, &cfg());
        assert!(matches!(s.next, Next::WaitUntil(_)) && !s.persist, "{s:?}");
    }
    assert_eq!(c.attempts(), 1);
    assert_eq!(c.phase, Phase::Pending);
    let s = c.on(Event::Tick(Err("down".into())), T0, &cfg());
    assert_eq!(
        s.next,
        Next::FetchArchive,
        "a stray event resumes the phase"
    );
}

#[test]
fn refused_transactions_and_signing_errors_fail() {
    let mut c = Confirmation::new();
    c.on(Event::Tick(Ok(100)), T0, &cfg());
    c.on(Event::Signed(attempt(1, 115)), T0, &cfg());
    let refused = Event::Broadcast(BroadcastOutcome::Rejected("bad signature".into()));
    expect(&mut c, refused, T0, true, Next::Done);
    assert!(matches!(c.phase, Phase::Failed { .. }));
    let mut c = Confirmation::new();
    expect(
        &mut c,
        Event::SignFailed("too much".into()),
        T0,
        true,
        Next::Done,
    );
}

#[test]
fn too_many_misses_fail_the_transfer() {
    let mut c = Confirmation::new();
    let config = ConfirmConfig {
        max_attempts: 3,
        ..cfg()
    };
    for n in 1..=3 {
        c.on(Event::Tick(Ok(100 * n)), T0, &config);
        c.on(Event::Signed(attempt(n, 100 * n + 15)), T0, &config);
        c.on(Event::Broadcast(BroadcastOutcome::Accepted), T0, &config);
        c.on(Event::Archive(Ok(100 * n + 15)), T0, &config);
        c.on(Event::Intervals(Ok(vec![])), T0, &config);
        c.on(Event::Lookup(Ok(Lookup::NotFound)), T0, &config);
    }
    assert_eq!(
        c.phase,
        Phase::Failed {
            reason: FailReason::NeverIncluded { attempts: 3 }
        }
    );
    assert_eq!(c.misses.len(), 3);
}

#[test]
fn tick_errors_back_off_before_signing() {
    let mut c = Confirmation::new();
    let s = c.on(Event::Tick(Err("down".into())), T0, &cfg());
    assert_eq!(s.next, Next::WaitUntil(T0.saturating_add(cfg().backoff)));
    expect(&mut c, Event::Wake, T0, false, Next::FetchTick);
}
