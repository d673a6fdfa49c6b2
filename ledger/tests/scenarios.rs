//! Payment scenarios end to end: a consumer and a provider, each with its own ledger and
//! `QubicSettlement`, paying through the devnet with the same client code as mainnet.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::{at, devnet, keypair, receipt, terms};
use qubix_ledger::devnet::DevnetHandle;
use qubix_ledger::qubic::KeyPair;
use qubix_ledger::{Account, Ledger, LedgerError, PaymentPurpose, QubicSettlement, Settlement};
use qubix_protocol::job::AgreementTerms;
use qubix_protocol::{Envelope, Qu};

const WAIT: Duration = Duration::from_secs(20);

struct Node {
    key: KeyPair,
    ledger: Ledger,
    settlement: QubicSettlement,
    _db: sled::Db,
}

impl Node {
    fn start(net: &DevnetHandle, key: KeyPair) -> Node {
        let (settlement, db) = common::settlement(net, &key);
        Node {
            key,
            ledger: common::ledger(),
            settlement,
            _db: db,
        }
    }

    fn bal(&self, account: Account) -> i64 {
        self.ledger.balance(&account).unwrap()
    }
}

/// A funded consumer (2,000 QU deposited through a real transfer) and a provider.
async fn market() -> (DevnetHandle, Node, Node, AgreementTerms) {
    let faucet = keypair('f');
    let net = devnet(&[(&faucet, 1_000_000)]).await;
    let consumer = Node::start(&net, keypair('c'));
    let provider = Node::start(&net, keypair('p'));
    let (bank, _db) = common::settlement(&net, &faucet);
    let purpose = PaymentPurpose::Other {
        key: "faucet".into(),
    };
    let id = bank
        .pay(&consumer.key.identity(), Qu(2_000), purpose)
        .await
        .unwrap();
    let paid = bank.wait_final(&id, WAIT).await.unwrap();
    let deposit = consumer
        .settlement
        .verify_incoming(&paid.tx_id, &consumer.key.identity(), None, Qu(2_000))
        .await
        .unwrap();
    consumer.ledger.deposit(&deposit, at(0)).unwrap();
    bank.shutdown().await;
    let t = terms(&provider.key.identity(), &consumer.key.identity());
    (net, consumer, provider, t)
}

/// The consumer pays a window; the provider verifies it by transaction id and records it.
async fn pay_window(consumer: &Node, provider: &Node, t: &AgreementTerms, window: u32) {
    let a = t.agreement_id;
    let purpose = PaymentPurpose::Window {
        agreement: a,
        window,
    };
    let to = provider.key.identity();
    let id = consumer
        .settlement
        .pay(&to, t.window_cost(), purpose)
        .await
        .unwrap();
    let done = consumer.settlement.wait_final(&id, WAIT).await.unwrap();
    consumer
        .ledger
        .pay_window(a, window, &done, at(u64::from(window) * 10))
        .unwrap();
    let from = consumer.key.identity();
    let received = provider
        .settlement
        .verify_incoming(&done.tx_id, &to, Some(&from), t.window_cost())
        .await
        .unwrap();
    provider
        .ledger
        .receive_window(t, window, &received, at(u64::from(window) * 10))
        .unwrap();
}

/// Both sides record a receipt.
fn both_record(consumer: &Node, provider: &Node, r: &Envelope, minute: u64) {
    consumer
        .ledger
        .record_receipt(r, &qubix_protocol::testing::network(), at(minute))
        .unwrap();
    provider
        .ledger
        .record_receipt(r, &qubix_protocol::testing::network(), at(minute))
        .unwrap();
}

async fn reconciled(node: &Node, net: &DevnetHandle) {
    let chain = node.settlement.balance(&node.key.identity()).await.unwrap();
    assert_eq!(chain.0, net.balance(&node.key.identity()));
    let r = node.ledger.reconcile(chain).unwrap();
    assert_eq!(r.difference, 0, "{r:?}");
    assert!(node.ledger.audit().unwrap().is_clean());
}

#[tokio::test]
async fn happy_path_both_ledgers_agree() {
    let (net, consumer, provider, t) = market().await;
    let a = t.agreement_id;
    consumer.ledger.lock_escrow(&t, at(0)).unwrap();
    assert_eq!(consumer.bal(Account::Escrow(a)), 1_200);
    for window in 0..6u32 {
        pay_window(&consumer, &provider, &t, window).await;
        // Ten receipts per window, cumulative; each is sent twice (idempotent).
        for minute in 1..=10u64 {
            let seq = u64::from(window) * 10 + minute;
            let r = receipt(&t, seq, seq * 20);
            both_record(&consumer, &provider, &r, seq);
            both_record(&consumer, &provider, &r, seq);
        }
        assert_eq!(
            provider.bal(Account::PrepaidHeld(a)),
            0,
            "never works unpaid"
        );
    }
    consumer.ledger.end_agreement(a, Qu(0), at(61)).unwrap();
    provider.ledger.end_agreement(a, Qu(0), at(61)).unwrap();
    let line = consumer.ledger.instance_billing(&a).unwrap().unwrap();
    assert_eq!(
        (line.paid, line.spent, line.escrow),
        (Qu(1_200), Qu(1_200), Qu(0))
    );
    assert_eq!(
        provider.ledger.agreement(&a).unwrap().unwrap().paid,
        line.paid
    );
    let earnings = provider.ledger.earnings().unwrap();
    assert_eq!(
        (earnings.earned, earnings.prepaid_held, earnings.refunds_due),
        (Qu(1_200), Qu(0), Qu(0))
    );
    assert_eq!(consumer.bal(Account::Available), 800);
    assert_eq!(
        consumer.ledger.receipts(&a).unwrap(),
        provider.ledger.receipts(&a).unwrap()
    );
    assert_eq!(consumer.ledger.receipts(&a).unwrap().len(), 60);
    reconciled(&consumer, &net).await;
    reconciled(&provider, &net).await;
}

#[tokio::test]
async fn consumer_stops_paying_and_the_provider_is_never_owed_more_than_a_window() {
    let (net, consumer, provider, t) = market().await;
    let a = t.agreement_id;
    consumer.ledger.lock_escrow(&t, at(0)).unwrap();
    pay_window(&consumer, &provider, &t, 0).await;
    for minute in 1..=10u64 {
        both_record(
            &consumer,
            &provider,
            &receipt(&t, minute, minute * 20),
            minute,
        );
    }
    // No top-up arrives: the paid window is used up, nothing is held for more work.
    assert_eq!(provider.bal(Account::PrepaidHeld(a)), 0);
    let more = receipt(&t, 11, 220);
    let err = provider
        .ledger
        .record_receipt(&more, &qubix_protocol::testing::network(), at(11))
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::InsufficientFunds { .. }),
        "{err}"
    );
    provider.ledger.end_agreement(a, Qu(0), at(12)).unwrap();
    consumer.ledger.end_agreement(a, Qu(0), at(12)).unwrap();
    assert_eq!(provider.ledger.earnings().unwrap().earned, Qu(200));
    assert_eq!(provider.bal(Account::RefundsDue(a)), 0);
    assert_eq!(
        consumer.bal(Account::Available),
        1_800,
        "unspent escrow returned"
    );
    assert_eq!(consumer.ledger.billing(None).unwrap().spent, Qu(200));
    reconciled(&consumer, &net).await;
    reconciled(&provider, &net).await;
}

#[tokio::test]
async fn provider_vanishes_mid_window_then_refunds_what_it_owes() {
    let (net, consumer, provider, t) = market().await;
    let a = t.agreement_id;
    consumer.ledger.lock_escrow(&t, at(0)).unwrap();
    pay_window(&consumer, &provider, &t, 0).await;
    for minute in 1..=6u64 {
        both_record(
            &consumer,
            &provider,
            &receipt(&t, minute, minute * 20),
            minute,
        );
    }
    // The provider goes silent after 6 of 10 minutes; the consumer ends the rental.
    consumer.ledger.end_agreement(a, Qu(0), at(20)).unwrap();
    assert_eq!(consumer.bal(Account::Escrow(a)), 0);
    assert_eq!(
        consumer.bal(Account::Available),
        1_800,
        "unspent escrow returned"
    );
    assert_eq!(
        consumer.bal(Account::RefundReceivable(a)),
        80,
        "unused prepaid recorded as owed"
    );
    // The provider comes back, ends its side and refunds the unused part.
    provider.ledger.end_agreement(a, Qu(0), at(30)).unwrap();
    assert_eq!(provider.ledger.earnings().unwrap().refunds_due, Qu(80));
    let refund_to: qubix_ledger::qubic::Identity = t.refund_to.parse().unwrap();
    let id = provider
        .settlement
        .pay(
            &refund_to,
            Qu(80),
            PaymentPurpose::Refund { agreement: a, n: 0 },
        )
        .await
        .unwrap();
    let done = provider.settlement.wait_final(&id, WAIT).await.unwrap();
    provider.ledger.refund_paid(a, 0, &done, at(31)).unwrap();
    let back = consumer
        .settlement
        .verify_incoming(
            &done.tx_id,
            &consumer.key.identity(),
            Some(&provider.key.identity()),
            Qu(80),
        )
        .await
        .unwrap();
    consumer.ledger.refund_received(a, &back, at(32)).unwrap();
    assert_eq!(consumer.bal(Account::RefundReceivable(a)), 0);
    assert_eq!(consumer.bal(Account::Available), 1_880);
    assert_eq!(
        consumer
            .ledger
            .instance_billing(&a)
            .unwrap()
            .unwrap()
            .refunded,
        Qu(80)
    );
    reconciled(&consumer, &net).await;
    reconciled(&provider, &net).await;
}

#[tokio::test]
async fn a_withheld_final_receipt_closes_both_books_on_the_metered_usage() {
    let (net, consumer, provider, t) = market().await;
    let a = t.agreement_id;
    consumer.ledger.lock_escrow(&t, at(0)).unwrap();
    pay_window(&consumer, &provider, &t, 0).await;
    for minute in 1..=3u64 {
        both_record(
            &consumer,
            &provider,
            &receipt(&t, minute, minute * 20),
            minute,
        );
    }
    // The provider metered 70 QU, the last receipt says 60: 10 QU were never signed for.
    // Both book them as such, and the refund is paid minus metered usage.
    provider.ledger.end_agreement(a, Qu(10), at(4)).unwrap();
    consumer.ledger.end_agreement(a, Qu(10), at(4)).unwrap();
    assert_eq!(provider.ledger.earnings().unwrap().earned, Qu(70));
    assert_eq!(provider.bal(Account::RefundsDue(a)), 130);
    assert_eq!(consumer.bal(Account::RefundReceivable(a)), 130);
    assert_eq!(consumer.ledger.billing(None).unwrap().spent, Qu(70));
    // More than is prepaid cannot be booked as unacknowledged.
    let (_net2, c2, p2, t2) = market().await;
    c2.ledger.lock_escrow(&t2, at(0)).unwrap();
    pay_window(&c2, &p2, &t2, 0).await;
    p2.ledger
        .end_agreement(t2.agreement_id, Qu(1_000_000), at(1))
        .unwrap();
    assert_eq!(p2.ledger.earnings().unwrap().earned, Qu(200));
    assert_eq!(p2.bal(Account::RefundsDue(t2.agreement_id)), 0);
    reconciled(&consumer, &net).await;
    reconciled(&provider, &net).await;
}

#[tokio::test]
async fn money_that_arrives_after_a_refund_is_refunded_again() {
    let (net, consumer, provider, t) = market().await;
    let a = t.agreement_id;
    consumer.ledger.lock_escrow(&t, at(0)).unwrap();
    // The consumer pays two windows; the provider has seen only the first when it ends.
    let to = provider.key.identity();
    let mut paid = Vec::new();
    for window in 0..2u32 {
        let purpose = PaymentPurpose::Window {
            agreement: a,
            window,
        };
        let id = consumer
            .settlement
            .pay(&to, t.window_cost(), purpose)
            .await
            .unwrap();
        let done = consumer.settlement.wait_final(&id, WAIT).await.unwrap();
        consumer.ledger.pay_window(a, window, &done, at(1)).unwrap();
        let from = consumer.key.identity();
        paid.push(
            provider
                .settlement
                .verify_incoming(&done.tx_id, &to, Some(&from), t.window_cost())
                .await
                .unwrap(),
        );
    }
    provider
        .ledger
        .receive_window(&t, 0, &paid[0], at(2))
        .unwrap();
    provider.ledger.end_agreement(a, Qu(0), at(3)).unwrap();
    consumer.ledger.end_agreement(a, Qu(0), at(3)).unwrap();
    let refund_to: qubix_ledger::qubic::Identity = t.refund_to.parse().unwrap();
    for n in 0..2u32 {
        if n == 1 {
            // The second window arrives late: it is owed back, as a second refund.
            provider
                .ledger
                .receive_window(&t, 1, &paid[1], at(4))
                .unwrap();
        }
        let due = Qu(u64::try_from(provider.bal(Account::RefundsDue(a))).unwrap());
        assert_eq!(due, Qu(200));
        let id = provider
            .settlement
            .pay(&refund_to, due, PaymentPurpose::Refund { agreement: a, n })
            .await
            .unwrap();
        let done = provider.settlement.wait_final(&id, WAIT).await.unwrap();
        provider.ledger.refund_paid(a, n, &done, at(5)).unwrap();
        let back = consumer
            .settlement
            .verify_incoming(&done.tx_id, &consumer.key.identity(), None, due)
            .await
            .unwrap();
        consumer.ledger.refund_received(a, &back, at(6)).unwrap();
    }
    assert_eq!(provider.bal(Account::RefundsDue(a)), 0);
    assert_eq!(consumer.bal(Account::RefundReceivable(a)), 0);
    reconciled(&consumer, &net).await;
    reconciled(&provider, &net).await;
}

#[tokio::test]
async fn forged_receipts_are_refused_by_both_sides() {
    let (_net, consumer, provider, t) = market().await;
    let a = t.agreement_id;
    consumer.ledger.lock_escrow(&t, at(0)).unwrap();
    pay_window(&consumer, &provider, &t, 0).await;
    let genuine = receipt(&t, 1, 20);
    // Raise the amount inside a genuine receipt: the signature no longer matches.
    let mut bytes = genuine.as_bytes().to_vec();
    let position = bytes.len() - 9;
    bytes[position] ^= 0x40;
    let forged = Envelope::from_bytes(bytes).unwrap();
    for node in [&consumer, &provider] {
        let before = node.ledger.balances().unwrap();
        let err = node
            .ledger
            .record_receipt(&forged, &qubix_protocol::testing::network(), at(1))
            .unwrap_err();
        assert!(matches!(err, LedgerError::BadReceipt(_)), "{err}");
        assert_eq!(node.ledger.balances().unwrap(), before);
        assert!(node.ledger.receipts(&a).unwrap().is_empty());
    }
    both_record(&consumer, &provider, &genuine, 1);
    assert_eq!(provider.bal(Account::Earned), 20);
}
