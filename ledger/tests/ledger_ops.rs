//! Every ledger operation on both sides, its refusals (which change nothing), idempotent
//! replays, and the console's views.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;

use common::{at, incoming, keypair, ledger, receipt, terms};
use qubix_ledger::book::AgreementInfo;
use qubix_ledger::qubic::TxId;
use qubix_ledger::{Account, FinalTransfer, Ledger, LedgerConfig, LedgerError, TransferId};
use qubix_protocol::{Envelope, Qu};

fn fin(n: u8, amount: u64) -> FinalTransfer {
    FinalTransfer {
        id: TransferId(format!("t{n}")),
        tx_id: TxId::from_hash([n; 32]),
        to: keypair('b').identity(),
        amount: Qu(amount),
        tick: 1,
    }
}

fn snapshot(l: &Ledger) -> (BTreeMap<String, i64>, usize) {
    (l.balances().unwrap(), l.entries(10_000, 0).unwrap().len())
}

/// Runs `f`, expects an error, and checks nothing changed.
fn refused<T: std::fmt::Debug>(
    l: &Ledger,
    f: impl FnOnce() -> Result<T, LedgerError>,
) -> LedgerError {
    let before = snapshot(l);
    let err = f().expect_err("refused");
    assert_eq!(
        snapshot(l),
        before,
        "a refused operation changed the ledger: {err}"
    );
    err
}

fn bal(l: &Ledger, a: Account) -> i64 {
    l.balance(&a).unwrap()
}

#[test]
fn deposits_are_idempotent_by_transaction() {
    let l = ledger();
    let first = l.deposit(&incoming(1, 500), at(0)).unwrap();
    let again = l.deposit(&incoming(1, 500), at(5)).unwrap();
    assert_eq!(first, again, "a replay returns the original entry");
    assert_eq!(bal(&l, Account::Available), 500);
    assert_eq!(bal(&l, Account::External), -500);
    let err = refused(&l, || l.deposit(&incoming(1, 501), at(6)));
    assert!(
        matches!(err, LedgerError::ConflictingReplay { .. }),
        "{err}"
    );
    let err = refused(&l, || l.deposit(&incoming(2, 0), at(6)));
    assert!(matches!(err, LedgerError::InvalidAmount { .. }));
}

#[test]
fn the_consumer_locks_pays_spends_and_ends() {
    let l = ledger();
    let t = terms(&keypair('p').identity(), &keypair('c').identity());
    let a = t.agreement_id;
    let err = refused(&l, || l.lock_escrow(&t, at(0)));
    assert!(
        matches!(err, LedgerError::InsufficientFunds { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("deposit more"));
    l.deposit(&incoming(1, 2_000), at(0)).unwrap();
    l.lock_escrow(&t, at(0)).unwrap();
    l.lock_escrow(&t, at(1)).unwrap(); // replay
    assert_eq!(
        (bal(&l, Account::Available), bal(&l, Account::Escrow(a))),
        (800, 1_200)
    );
    let mut changed = t.clone();
    changed.budget = Qu(1_000);
    assert!(matches!(
        refused(&l, || l.lock_escrow(&changed, at(1))),
        LedgerError::ConflictingReplay { .. }
    ));

    let entry = l.pay_window(a, 0, &fin(10, 200), at(1)).unwrap();
    assert_eq!(entry.kind, "pay_window");
    assert!(matches!(
        refused(&l, || l.top_up(a, 0, &fin(11, 200), at(2))),
        LedgerError::InvalidInput { .. }
    ));
    assert_eq!(l.top_up(a, 1, &fin(11, 200), at(2)).unwrap().kind, "top_up");
    assert!(matches!(
        refused(&l, || l.pay_window(a, 2, &fin(12, 900), at(2))),
        LedgerError::InsufficientFunds { .. }
    ));
    let other = qubix_protocol::AgreementId::from_bytes([1; 16]);
    assert!(matches!(
        refused(&l, || l.pay_window(other, 0, &fin(13, 1), at(2))),
        LedgerError::UnknownAgreement { .. }
    ));

    l.record_receipt(
        &receipt(&t, 1, 120),
        &qubix_protocol::testing::network(),
        at(3),
    )
    .unwrap();
    l.record_receipt(
        &receipt(&t, 1, 120),
        &qubix_protocol::testing::network(),
        at(4),
    )
    .unwrap(); // duplicate
    l.record_receipt(
        &receipt(&t, 2, 250),
        &qubix_protocol::testing::network(),
        at(5),
    )
    .unwrap();
    assert_eq!(
        (bal(&l, Account::Prepaid(a)), bal(&l, Account::Spent(a))),
        (150, 250)
    );
    assert!(matches!(
        refused(&l, || l.record_receipt(
            &receipt(&t, 1, 130),
            &qubix_protocol::testing::network(),
            at(6)
        )),
        LedgerError::ConflictingReplay { .. }
    ));
    assert!(matches!(
        refused(&l, || l.record_receipt(
            &receipt(&t, 3, 100),
            &qubix_protocol::testing::network(),
            at(6)
        )),
        LedgerError::ReceiptRegresses { .. }
    ));
    assert!(matches!(
        refused(&l, || l.record_receipt(
            &receipt(&t, 4, 401),
            &qubix_protocol::testing::network(),
            at(6)
        )),
        LedgerError::InsufficientFunds { .. }
    ));
    assert_eq!(l.receipts(&a).unwrap().len(), 2);

    l.end_agreement(a, Qu(0), at(7)).unwrap();
    assert_eq!(bal(&l, Account::Escrow(a)), 0);
    assert_eq!(bal(&l, Account::Available), 1_600);
    assert_eq!(bal(&l, Account::RefundReceivable(a)), 150);
    assert!(matches!(
        refused(&l, || l.pay_window(a, 3, &fin(14, 1), at(8))),
        LedgerError::AgreementEnded { .. }
    ));
    assert!(matches!(
        refused(&l, || l.record_receipt(
            &receipt(&t, 5, 260),
            &qubix_protocol::testing::network(),
            at(8)
        )),
        LedgerError::AgreementEnded { .. }
    ));
    l.refund_received(a, &incoming(20, 150), at(9)).unwrap();
    assert_eq!(
        (
            bal(&l, Account::Available),
            bal(&l, Account::RefundReceivable(a))
        ),
        (1_750, 0)
    );

    let billing = l.billing(Some("DEPOSIT".into())).unwrap();
    assert_eq!(
        (
            billing.available,
            billing.escrow,
            billing.prepaid,
            billing.spent
        ),
        (Qu(1_750), Qu(0), Qu(0), Qu(250))
    );
    let line = l.instance_billing(&a).unwrap().unwrap();
    assert_eq!(
        (line.budget, line.paid, line.spent, line.refunded),
        (Qu(1_200), Qu(400), Qu(250), Qu(150))
    );
    assert!(l.audit().unwrap().is_clean());
}

#[test]
fn receipts_must_verify_and_come_from_the_consumer() {
    let l = ledger();
    let t = terms(&keypair('p').identity(), &keypair('c').identity());
    l.deposit(&incoming(1, 2_000), at(0)).unwrap();
    l.lock_escrow(&t, at(0)).unwrap();
    l.pay_window(t.agreement_id, 0, &fin(10, 200), at(1))
        .unwrap();
    let mut bytes = receipt(&t, 1, 100).as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let forged = Envelope::from_bytes(bytes).unwrap();
    assert!(matches!(
        refused(&l, || l.record_receipt(
            &forged,
            &qubix_protocol::testing::network(),
            at(2)
        )),
        LedgerError::BadReceipt(_)
    ));
    let stranger = qubix_protocol::billing::Receipt {
        agreement_id: t.agreement_id,
        consumer: qubix_protocol::testing::node(3),
        report_sequence: 1,
        billable_millis: 1,
        amount: Qu(100),
        issued_at: at(2),
    };
    let signed = qubix_protocol::Signed::sign(
        stranger,
        &qubix_protocol::testing::key(3),
        &qubix_protocol::testing::network(),
    )
    .unwrap();
    let err = refused(&l, || {
        l.record_receipt(
            signed.envelope(),
            &qubix_protocol::testing::network(),
            at(2),
        )
    });
    assert!(matches!(err, LedgerError::ReceiptSigner { .. }), "{err}");
}

#[test]
fn the_provider_receives_earns_ends_and_refunds() {
    let l = ledger();
    let t = terms(&keypair('p').identity(), &keypair('c').identity());
    let a = t.agreement_id;
    assert!(matches!(
        refused(&l, || l.record_receipt(
            &receipt(&t, 1, 10),
            &qubix_protocol::testing::network(),
            at(0)
        )),
        LedgerError::UnknownAgreement { .. }
    ));
    l.receive_window(&t, 0, &incoming(1, 200), at(0)).unwrap();
    assert!(matches!(
        refused(&l, || l.receive_window(&t, 1, &incoming(1, 200), at(0))),
        LedgerError::ConflictingReplay { .. }
    ));
    l.record_receipt(
        &receipt(&t, 1, 150),
        &qubix_protocol::testing::network(),
        at(1),
    )
    .unwrap();
    assert_eq!(
        (bal(&l, Account::PrepaidHeld(a)), bal(&l, Account::Earned)),
        (50, 150)
    );
    assert!(matches!(
        refused(&l, || l.end_agreement(
            qubix_protocol::AgreementId::from_bytes([0; 16]),
            Qu(0),
            at(1)
        )),
        LedgerError::UnknownAgreement { .. }
    ));
    l.end_agreement(a, Qu(0), at(2)).unwrap();
    assert_eq!(
        (
            bal(&l, Account::PrepaidHeld(a)),
            bal(&l, Account::RefundsDue(a))
        ),
        (0, 50)
    );
    let late = l.receive_window(&t, 1, &incoming(2, 200), at(3)).unwrap();
    assert!(
        late.postings
            .iter()
            .any(|p| p.account == format!("refunds_due/{a}")),
        "a late payment is owed back"
    );
    assert!(matches!(
        refused(&l, || l.refund_paid(a, 0, &fin(3, 251), at(3))),
        LedgerError::InsufficientFunds { .. }
    ));
    l.refund_paid(a, 0, &fin(3, 250), at(3)).unwrap();
    assert_eq!(bal(&l, Account::RefundsDue(a)), 0);
    let earnings = l.earnings().unwrap();
    assert_eq!(
        (earnings.earned, earnings.prepaid_held, earnings.refunds_due),
        (Qu(150), Qu(0), Qu(0))
    );
    assert_eq!(earnings.by_day, vec![("2026-01-01".to_owned(), Qu(150))]);
    assert!(
        l.billing(None).unwrap().instances.is_empty(),
        "provider rentals are not instances"
    );
    assert!(matches!(
        refused(&l, || l.lock_escrow(&t, at(4))),
        LedgerError::WrongSide { .. }
    ));
    assert!(l.audit().unwrap().is_clean());
}

#[test]
fn withdrawals_are_pending_until_final_and_return_when_failed() {
    let l = ledger();
    let to = keypair('w').identity();
    let t = terms(&keypair('p').identity(), &keypair('c').identity());
    l.deposit(&incoming(1, 100), at(0)).unwrap();
    l.receive_window(&t, 0, &incoming(2, 200), at(0)).unwrap();
    l.record_receipt(
        &receipt(&t, 1, 200),
        &qubix_protocol::testing::network(),
        at(0),
    )
    .unwrap();
    assert!(matches!(
        refused(&l, || l.withdraw("w1", &to, Qu(301), at(1))),
        LedgerError::InsufficientFunds { .. }
    ));
    assert!(matches!(
        refused(&l, || l.withdraw("bad id", &to, Qu(1), at(1))),
        LedgerError::InvalidInput { .. }
    ));
    l.withdraw("w1", &to, Qu(250), at(1)).unwrap();
    assert_eq!(
        (bal(&l, Account::Available), bal(&l, Account::Earned)),
        (0, 50)
    );
    assert_eq!(bal(&l, Account::WithdrawalsPending), 250);
    l.withdrawal_final("w1", &fin(5, 250), at(2)).unwrap();
    l.withdrawal_final("w1", &fin(5, 250), at(3)).unwrap(); // replay
    assert!(matches!(
        refused(&l, || l.withdrawal_failed("w1", "late", at(3))),
        LedgerError::ConflictingReplay { .. }
    ));
    assert_eq!(
        (
            bal(&l, Account::WithdrawalsPending),
            bal(&l, Account::External)
        ),
        (0, -50)
    );
    l.withdraw("w2", &to, Qu(50), at(4)).unwrap();
    l.withdrawal_failed("w2", "not included", at(5)).unwrap();
    assert_eq!(
        (bal(&l, Account::Available), bal(&l, Account::Earned)),
        (50, 0)
    );
    assert!(matches!(
        refused(&l, || l.withdrawal_final("nope", &fin(6, 1), at(6))),
        LedgerError::UnknownWithdrawal { .. }
    ));
    let record = l.withdrawal("w2").unwrap().unwrap();
    assert!(matches!(
        record.state,
        qubix_ledger::book::WithdrawalState::Failed { .. }
    ));
    l.withdraw("w3", &to, Qu(20), at(7)).unwrap();
    let listed: Vec<(String, bool)> = l
        .withdrawals()
        .unwrap()
        .into_iter()
        .map(|w| {
            let pending = w.state == qubix_ledger::book::WithdrawalState::Pending;
            (w.id, pending)
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("w1".into(), false),
            ("w2".into(), false),
            ("w3".into(), true)
        ]
    );
    l.withdrawal_failed("w3", "test", at(8)).unwrap();
    let rec = l.reconcile(Qu(60)).unwrap();
    assert_eq!((rec.ledger, rec.difference), (50, 10));
}

#[test]
fn entries_page_newest_first_and_export_as_csv() {
    let l = ledger();
    for n in 1..=5u8 {
        l.deposit(&incoming(n, u64::from(n)), at(u64::from(n)))
            .unwrap();
    }
    let page = l.entries(2, 1).unwrap();
    assert_eq!(page.len(), 2);
    assert!(page[0].at > page[1].at);
    assert_eq!(page[0].postings.iter().map(|p| p.delta).sum::<i64>(), 0);
    let id = page[0].id.clone();
    assert_eq!(l.entry(&id).unwrap().unwrap(), page[0]);
    let mut csv = Vec::new();
    l.export_csv(&mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,at,kind,agreement_id,account,delta");
    assert_eq!(lines.len(), 1 + 5 * 2);
    assert!(
        lines[1].starts_with(&format!("in/{},", TxId::from_hash([1; 32]))),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(",available,1") || lines[2].ends_with(",available,1"));
}

#[test]
fn the_schema_version_is_checked_on_open() {
    let db = common::temp_db();
    Ledger::open(&db, LedgerConfig::default()).unwrap();
    db.open_tree("ledger")
        .unwrap()
        .insert("m/schema", &9u32.to_be_bytes())
        .unwrap();
    let err = Ledger::open(&db, LedgerConfig::default()).unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::SchemaVersion {
                found: 9,
                expected: 1
            }
        ),
        "{err}"
    );
}

#[test]
fn generic_operations_are_planned_the_same_way() {
    let l = ledger();
    let t = terms(&keypair('p').identity(), &keypair('c').identity());
    let info = AgreementInfo::from_terms(&t, qubix_ledger::book::Side::Provider);
    let op = qubix_ledger::book::Operation::LockEscrow { agreement: info };
    assert!(matches!(
        refused(&l, || l.apply(op, at(0))),
        LedgerError::WrongSide { .. }
    ));
}
