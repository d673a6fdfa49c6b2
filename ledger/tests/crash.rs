//! Crash safety: a child process (this test binary, re-executed) applies a script of ledger
//! operations to a durable sled ledger and is killed with SIGKILL at random points, 30
//! times. After every kill the reopened ledger passes its audit, holds every operation the
//! child acknowledged, and holds exactly a prefix of the script, each operation whole, with
//! the balances that prefix gives on a fresh ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{at, keypair, receipt, terms};
use qubix_ledger::book::{AgreementInfo, Operation, Side};
use qubix_ledger::qubic::TxId;
use qubix_ledger::{Ledger, LedgerConfig, LedgerError};
use qubix_protocol::api::LedgerEntry;
use qubix_protocol::{Envelope, Qu};

const CHILD_ENV: &str = "QUBIX_LEDGER_CRASH_DIR";
const KILLS: u64 = 30;

enum Step {
    Op(Operation),
    Receipt(Envelope),
}

impl Step {
    fn id(&self) -> String {
        match self {
            Step::Op(op) => op.id(),
            Step::Receipt(e) => {
                let r = qubix_protocol::Signed::<qubix_protocol::billing::Receipt>::open(
                    e.as_bytes().to_vec(),
                    &qubix_protocol::testing::network(),
                )
                .expect("valid receipt");
                format!(
                    "receipt/{}/{}",
                    r.payload().agreement_id,
                    r.payload().report_sequence
                )
            }
        }
    }

    fn apply(&self, ledger: &Ledger, minute: u64) -> Result<LedgerEntry, LedgerError> {
        match self {
            Step::Op(op) => ledger.apply(op.clone(), at(minute)),
            Step::Receipt(e) => {
                ledger.record_receipt(e, &qubix_protocol::testing::network(), at(minute))
            }
        }
    }
}

fn tx(n: u64) -> String {
    TxId::from_hash([(n % 251) as u8 + 1; 32]).to_string()
}

/// A valid script on both sides: deposits, rentals with windows and receipts, ends,
/// refunds and withdrawals.
fn script() -> Vec<Step> {
    let base = terms(&keypair('p').identity(), &keypair('c').identity());
    let mut steps = vec![Step::Op(Operation::Deposit {
        tx_id: tx(0),
        amount: Qu(10_000),
    })];
    for rental in 0..8u8 {
        let mut t = base.clone();
        t.agreement_id = qubix_protocol::AgreementId::from_bytes([rental + 1; 16]);
        let a = t.agreement_id;
        let info = AgreementInfo::from_terms(&t, Side::Consumer);
        steps.push(Step::Op(Operation::LockEscrow { agreement: info }));
        for w in 0..3u32 {
            let n = u64::from(rental) * 10 + u64::from(w) + 1;
            steps.push(Step::Op(Operation::PayWindow {
                agreement: a,
                window: w,
                amount: Qu(200),
                tx_id: tx(n),
            }));
            steps.push(Step::Receipt(receipt(
                &t,
                u64::from(w) + 1,
                150 * (u64::from(w) + 1),
            )));
        }
        steps.push(Step::Op(Operation::EndAgreement {
            agreement: a,
            unacknowledged: Qu(0),
        }));
        steps.push(Step::Op(Operation::RefundReceived {
            agreement: a,
            amount: Qu(150),
            tx_id: tx(100 + u64::from(rental)),
        }));
        let w = format!("w{rental}");
        let to = keypair('w').identity().to_string();
        steps.push(Step::Op(Operation::Withdraw {
            withdrawal: w.clone(),
            to,
            amount: Qu(100),
        }));
        let settle = if rental % 2 == 0 {
            Operation::WithdrawalFinal {
                withdrawal: w,
                tx_id: tx(120 + u64::from(rental)),
            }
        } else {
            Operation::WithdrawalFailed {
                withdrawal: w,
                reason: "not included".into(),
            }
        };
        steps.push(Step::Op(settle));
    }
    steps
}

/// The child: applies the whole script (earlier runs' operations replay as no-ops),
/// acknowledging each durable operation on stdout.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let ledger = Ledger::open_path(Path::new(&dir), LedgerConfig { durable: true }).expect("open");
    let mut out = std::io::stdout().lock();
    for (i, step) in script().iter().enumerate() {
        step.apply(&ledger, i as u64).expect("script step applies");
        writeln!(out, "done {i}")
            .and_then(|()| out.flush())
            .expect("stdout");
    }
    writeln!(out, "complete")
        .and_then(|()| out.flush())
        .expect("stdout");
}

/// A small deterministic generator for kill points.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Runs the child; kills it after `acks` acknowledgements plus `delay`. Returns the
/// acknowledged count and whether it completed.
fn run_child(dir: &Path, kill_after: Option<(usize, Duration)>) -> (usize, bool) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("piped stdout");
    let (mut acked, mut complete) = (0, false);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child output");
        if line.starts_with("done ") {
            acked += 1;
        }
        complete |= line == "complete";
        if let Some((_, delay)) = kill_after.filter(|(after, _)| acked >= *after) {
            std::thread::sleep(delay); // a random point inside the next operation
            child.kill().expect("SIGKILL"); // std sends SIGKILL on unix
            break;
        }
    }
    let _ = child.wait();
    (acked, complete)
}

/// A fresh ledger that has applied the first `applied` steps of the script.
struct Model {
    ledger: Ledger,
    applied: usize,
}

impl Model {
    fn advance_to(&mut self, steps: &[Step], prefix: usize) {
        for (i, step) in steps.iter().enumerate().take(prefix).skip(self.applied) {
            step.apply(&self.ledger, i as u64).expect("model applies");
        }
        self.applied = prefix;
    }
}

/// Reopens the ledger and checks it holds a whole prefix of the script, with the balances
/// that prefix gives on a fresh ledger.
fn check(dir: &Path, steps: &[Step], acked: usize, model: &mut Model) -> usize {
    let ledger = Ledger::open_path(dir, LedgerConfig::default()).expect("reopen after kill");
    let audit = ledger.audit().expect("audit");
    assert!(audit.is_clean(), "after a kill: {:?}", audit.problems);
    let present: Vec<bool> = steps
        .iter()
        .map(|s| ledger.entry(&s.id()).expect("read").is_some())
        .collect();
    let prefix = present.iter().take_while(|p| **p).count();
    assert!(
        present[prefix..].iter().all(|p| !p),
        "not a prefix: {present:?}"
    );
    assert!(
        prefix >= acked,
        "acknowledged {acked} but only {prefix} survived"
    );
    assert_eq!(audit.transactions, prefix as u64);
    model.advance_to(steps, prefix);
    assert_eq!(ledger.balances().unwrap(), model.ledger.balances().unwrap());
    prefix
}

#[test]
fn killed_at_random_points_the_ledger_is_whole() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let steps = script();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut model = Model {
        ledger: common::ledger(),
        applied: 0,
    };
    let mut progress = vec![0];
    for _ in 0..KILLS {
        // Replays of the surviving prefix acknowledge at once; kill among the new ones.
        let after = progress[progress.len() - 1] + (next(&mut seed) % 2) as usize;
        let delay = Duration::from_micros(next(&mut seed) % 1_500);
        let (acked, _) = run_child(dir.path(), Some((after, delay)));
        progress.push(check(dir.path(), &steps, acked, &mut model));
    }
    let (_, complete) = run_child(dir.path(), None);
    assert!(complete, "the last run did not finish the script");
    assert_eq!(
        check(dir.path(), &steps, steps.len(), &mut model),
        steps.len()
    );
    eprintln!("ledger prefix after each kill: {progress:?}");
}
