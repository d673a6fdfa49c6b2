//! `QubicSettlement` against the devnet, through the same RPC client as mainnet: every
//! confirmation branch, and crashes around the broadcast.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "settlement/incoming_scan.rs"]
mod incoming_scan;

use std::time::Duration;

use common::{devnet, devnet_with, eventually, keypair, settlement, settlement_config};
use qubix_ledger::qubic::TxId;
use qubix_ledger::{
    PaymentPurpose, QubicSettlement, Settlement, SettlementError, TransferState, TransferStatus,
};
use qubix_protocol::{AgreementId, Qu};

const WAIT: Duration = Duration::from_secs(20);

fn purpose(n: u32) -> PaymentPurpose {
    PaymentPurpose::Window {
        agreement: AgreementId::from_bytes([7; 16]),
        window: n,
    }
}

async fn status(s: &QubicSettlement, p: &PaymentPurpose) -> TransferStatus {
    s.transfer_status(&p.transfer_id()).await.expect("status")
}

#[tokio::test]
async fn a_payment_is_final_once_included_with_money_moved() {
    let (payer, payee) = (keypair('a'), keypair('b'));
    let net = devnet(&[(&payer, 1_000)]).await;
    let (s, _db) = settlement(&net, &payer);
    let id = s.pay(&payee.identity(), Qu(300), purpose(0)).await.unwrap();
    let done = s.wait_final(&id, WAIT).await.unwrap();
    assert_eq!((done.amount, done.to.clone()), (Qu(300), payee.identity()));
    assert_eq!(net.balance(&payee.identity()), 300);
    assert_eq!(net.balance(&payer.identity()), 700);
    let tx = net.transaction(&done.tx_id).expect("included");
    assert!(tx.money_flew && tx.tick_number == done.tick);
    assert_eq!(status(&s, &purpose(0)).await.attempts, 1);
    assert_eq!(s.balance(&payee.identity()).await.unwrap(), Qu(300));
    assert!(s.tick().await.unwrap().tick >= done.tick);
    s.shutdown().await;
}

#[tokio::test]
async fn paying_a_purpose_twice_is_one_transfer_and_a_changed_one_is_refused() {
    let (payer, payee) = (keypair('a'), keypair('b'));
    let net = devnet(&[(&payer, 1_000)]).await;
    let (s, _db) = settlement(&net, &payer);
    let first = s.pay(&payee.identity(), Qu(100), purpose(0)).await.unwrap();
    let again = s.pay(&payee.identity(), Qu(100), purpose(0)).await.unwrap();
    assert_eq!(first, again);
    let changed = s.pay(&payee.identity(), Qu(101), purpose(0)).await;
    assert!(matches!(
        changed,
        Err(SettlementError::ConflictingPayment { .. })
    ));
    s.wait_final(&first, WAIT).await.unwrap();
    assert_eq!(net.balance(&payee.identity()), 100);
    for bad in [Qu(0), Qu(2_000_000_000_000_000)] {
        let refused = s.pay(&payee.identity(), bad, purpose(9)).await;
        assert!(matches!(refused, Err(SettlementError::InvalidPayment(_))));
    }
    let to_self = s.pay(&payer.identity(), Qu(1), purpose(9)).await;
    assert!(matches!(to_self, Err(SettlementError::InvalidPayment(_))));
    s.shutdown().await;
}

#[tokio::test]
async fn one_transfer_in_flight_per_source() {
    let (payer, payee) = (keypair('a'), keypair('b'));
    let net = devnet_with(&[(&payer, 1_000)], None).await;
    let (s, _db) = settlement(&net, &payer);
    let first = s.pay(&payee.identity(), Qu(10), purpose(0)).await.unwrap();
    let second = s.pay(&payee.identity(), Qu(20), purpose(1)).await.unwrap();
    let mut seen_pending = false;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !status(&s, &purpose(0)).await.is_settled() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first transfer did not settle"
        );
        let (a, b) = (status(&s, &purpose(0)).await, status(&s, &purpose(1)).await);
        seen_pending |= matches!(a.state, TransferState::Pending { .. });
        assert_eq!(
            b.state,
            TransferState::Queued,
            "second signed while first {a:?}"
        );
        assert!(b.tx_id.is_none());
        net.advance();
        tokio::task::yield_now().await;
    }
    assert!(seen_pending);
    let net2 = net.clone();
    let ticker = tokio::spawn(async move {
        loop {
            net2.advance();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    s.wait_final(&second, WAIT).await.unwrap();
    ticker.abort();
    assert_eq!(net.balance(&payee.identity()), 30);
    assert_eq!(s.transfers().await.unwrap().len(), 2);
    let _ = first;
    s.shutdown().await;
}

#[tokio::test]
async fn a_dropped_transaction_is_re_signed_after_its_tick_passes() {
    let (payer, payee) = (keypair('a'), keypair('b'));
    let net = devnet(&[(&payer, 1_000)]).await;
    net.drop_next(1);
    let (s, _db) = settlement(&net, &payer);
    let id = s.pay(&payee.identity(), Qu(250), purpose(0)).await.unwrap();
    let done = s.wait_final(&id, WAIT).await.unwrap();
    let st = status(&s, &purpose(0)).await;
    assert_eq!(st.attempts, 2, "exactly one re-sign");
    assert_eq!(net.balance(&payee.identity()), 250, "paid once");
    assert_eq!(net.balance(&payer.identity()), 750);
    assert_eq!(st.tx_id.as_ref(), Some(&done.tx_id));
    s.shutdown().await;
}

#[tokio::test]
async fn a_target_tick_in_a_skipped_interval_is_re_signed() {
    let (payer, payee) = (keypair('a'), keypair('b'));
    let net = devnet_with(&[(&payer, 1_000)], None).await;
    let (s, _db) = settlement(&net, &payer);
    let id = s.pay(&payee.identity(), Qu(40), purpose(0)).await.unwrap();
    eventually("the first transaction being broadcast", WAIT, || async {
        matches!(
            status(&s, &purpose(0)).await.state,
            TransferState::Pending { .. }
        )
    })
    .await;
    let first = status(&s, &purpose(0)).await;
    net.skip_ticks(50);
    let net2 = net.clone();
    let ticker = tokio::spawn(async move {
        loop {
            net2.advance();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let done = s.wait_final(&id, WAIT).await.unwrap();
    ticker.abort();
    assert_ne!(Some(&done.tx_id), first.tx_id.as_ref());
    assert_eq!(status(&s, &purpose(0)).await.attempts, 2);
    assert_eq!(net.balance(&payee.identity()), 40);
    let old: TxId = first.tx_id.expect("signed");
    assert!(
        net.transaction(&old).is_none(),
        "the skipped one never executed"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn an_epoch_stall_waits_without_re_signing() {
    let (payer, payee) = (keypair('a'), keypair('b'));
    let net = devnet(&[(&payer, 1_000)]).await;
    let (s, _db) = settlement(&net, &payer);
    net.set_stalled(true);
    let id = s.pay(&payee.identity(), Qu(60), purpose(0)).await.unwrap();
    eventually("the transfer being marked stalled", WAIT, || async {
        status(&s, &purpose(0)).await.state == TransferState::Pending { stalled: true }
    })
    .await;
    let timeout = s.wait_final(&id, Duration::from_millis(200)).await;
    let Err(SettlementError::Timeout { state, .. }) = timeout else {
        panic!("expected a timeout, got {timeout:?}");
    };
    assert!(state.contains("not advancing"), "{state}");
    assert_eq!(status(&s, &purpose(0)).await.attempts, 1, "never re-signed");
    net.set_stalled(false);
    s.wait_final(&id, WAIT).await.unwrap();
    assert_eq!(status(&s, &purpose(0)).await.attempts, 1);
    assert_eq!(net.balance(&payee.identity()), 60);
    s.shutdown().await;
}

#[tokio::test]
async fn an_unfunded_payment_fails_without_a_blind_retry() {
    let (payer, payee) = (keypair('a'), keypair('b'));
    let net = devnet(&[(&payer, 10)]).await;
    let (s, _db) = settlement(&net, &payer);
    let id = s.pay(&payee.identity(), Qu(11), purpose(0)).await.unwrap();
    let err = s.wait_final(&id, WAIT).await.unwrap_err().to_string();
    assert!(err.contains("no QU moved"), "{err}");
    assert_eq!(status(&s, &purpose(0)).await.attempts, 1);
    assert_eq!(net.balance(&payer.identity()), 10);
    s.shutdown().await;
}

#[tokio::test]
async fn broadcast_failures_are_retried_with_the_same_bytes() {
    let (payer, payee) = (keypair('a'), keypair('b'));
    let net = devnet(&[(&payer, 1_000)]).await;
    // More failures than one RPC call retries: the machine's backoff takes over.
    net.fail_next_broadcasts(7);
    let (s, _db) = settlement(&net, &payer);
    let id = s.pay(&payee.identity(), Qu(5), purpose(0)).await.unwrap();
    s.wait_final(&id, WAIT).await.unwrap();
    assert_eq!(net.balance(&payee.identity()), 5);
    s.shutdown().await;
}

#[tokio::test]
async fn a_crash_between_persist_and_broadcast_rebroadcasts_the_same_transaction() {
    let (payer, payee) = (keypair('a'), keypair('b'));
    let net = devnet(&[(&payer, 1_000)]).await;
    net.fail_next_broadcasts(u32::MAX);
    let db = common::temp_db();
    let first = QubicSettlement::start(settlement_config(net.url()), payer.clone(), &db).unwrap();
    let id = first
        .pay(&payee.identity(), Qu(77), purpose(0))
        .await
        .unwrap();
    eventually(
        "the transaction being signed and persisted",
        WAIT,
        || async { status(&first, &purpose(0)).await.state == TransferState::Signed },
    )
    .await;
    let signed = status(&first, &purpose(0)).await.tx_id.expect("signed");
    first.shutdown().await; // the "crash": nothing was broadcast
    net.fail_next_broadcasts(0);
    let restarted =
        QubicSettlement::start(settlement_config(net.url()), payer.clone(), &db).unwrap();
    let done = restarted.wait_final(&id, WAIT).await.unwrap();
    assert_eq!(done.tx_id, signed, "the persisted bytes were rebroadcast");
    assert_eq!(status(&restarted, &purpose(0)).await.attempts, 1);
    assert_eq!(net.balance(&payee.identity()), 77, "paid exactly once");
    assert_eq!(net.balance(&payer.identity()), 923);
    restarted.shutdown().await;
}

#[tokio::test]
async fn a_crash_after_an_unacknowledged_broadcast_never_pays_twice() {
    let (payer, payee) = (keypair('a'), keypair('b'));
    let net = devnet_with(&[(&payer, 1_000)], None).await;
    // The network takes the transaction but the answer is lost, again and again.
    net.lose_next_broadcast_responses(u32::MAX);
    let db = common::temp_db();
    let first = QubicSettlement::start(settlement_config(net.url()), payer.clone(), &db).unwrap();
    let id = first
        .pay(&payee.identity(), Qu(90), purpose(0))
        .await
        .unwrap();
    eventually(
        "the transaction being signed and persisted",
        WAIT,
        || async { status(&first, &purpose(0)).await.state == TransferState::Signed },
    )
    .await;
    let st = status(&first, &purpose(0)).await;
    first.shutdown().await;
    // While the node is down, the target tick executes the transaction.
    net.lose_next_broadcast_responses(0);
    let target = st.target_tick.expect("signed");
    while net.tick() <= target + 1 {
        net.advance();
    }
    assert_eq!(net.balance(&payee.identity()), 90);
    let restarted =
        QubicSettlement::start(settlement_config(net.url()), payer.clone(), &db).unwrap();
    let net2 = net.clone();
    let ticker = tokio::spawn(async move {
        loop {
            net2.advance();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let done = restarted.wait_final(&id, WAIT).await.unwrap();
    ticker.abort();
    assert_eq!(
        Some(done.tx_id),
        st.tx_id,
        "recognised the executed transaction"
    );
    assert_eq!(
        status(&restarted, &purpose(0)).await.attempts,
        1,
        "never re-signed"
    );
    assert_eq!(net.balance(&payee.identity()), 90, "paid exactly once");
    restarted.shutdown().await;
}

#[tokio::test]
async fn incoming_payments_are_verified_by_transaction_id() {
    let (payer, payee, other) = (keypair('a'), keypair('b'), keypair('c'));
    let net = devnet(&[(&payer, 1_000)]).await;
    let (s, _db) = settlement(&net, &payer);
    let id = s.pay(&payee.identity(), Qu(200), purpose(0)).await.unwrap();
    let done = s.wait_final(&id, WAIT).await.unwrap();
    let (p, _db2) = settlement(&net, &payee);
    let got = p
        .verify_incoming(
            &done.tx_id,
            &payee.identity(),
            Some(&payer.identity()),
            Qu(200),
        )
        .await
        .unwrap();
    assert_eq!(
        (got.amount, got.from.clone(), got.tick),
        (Qu(200), payer.identity(), done.tick)
    );
    let wrong_to = p
        .verify_incoming(&done.tx_id, &other.identity(), None, Qu(1))
        .await;
    let too_much = p
        .verify_incoming(&done.tx_id, &payee.identity(), None, Qu(201))
        .await;
    let wrong_from = p
        .verify_incoming(
            &done.tx_id,
            &payee.identity(),
            Some(&other.identity()),
            Qu(1),
        )
        .await;
    for bad in [wrong_to, too_much, wrong_from] {
        assert!(
            matches!(bad, Err(SettlementError::IncomingMismatch { .. })),
            "{bad:?}"
        );
    }
    let unknown = TxId::from_hash([1; 32]);
    let missing = p
        .verify_incoming(&unknown, &payee.identity(), None, Qu(1))
        .await;
    assert!(matches!(
        missing,
        Err(SettlementError::IncomingNotFound { .. })
    ));
    s.shutdown().await;
    p.shutdown().await;
}

#[tokio::test]
async fn a_transfer_never_included_fails_after_its_attempts() {
    let (payer, payee) = (keypair('a'), keypair('b'));
    let net = devnet(&[(&payer, 1_000)]).await;
    net.drop_next(u32::MAX);
    let mut config = settlement_config(net.url());
    config.confirm.max_attempts = 3;
    let db = common::temp_db();
    let s = QubicSettlement::start(config, payer.clone(), &db).unwrap();
    let id = s.pay(&payee.identity(), Qu(5), purpose(0)).await.unwrap();
    let err = s.wait_final(&id, WAIT).await.unwrap_err();
    assert!(
        matches!(err, SettlementError::TransferFailed { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("3 transactions in a row were not included"),
        "{err}"
    );
    assert_eq!(status(&s, &purpose(0)).await.attempts, 3);
    assert_eq!(net.balance(&payer.identity()), 1_000, "nothing was paid");
    s.shutdown().await;
}

#[tokio::test]
async fn a_transaction_the_rpc_refuses_fails_and_tick_errors_are_retried() {
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use serde_json::json;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let router = Router::new()
        .route(
            "/live/v1/tick-info",
            get(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    // The first call fails beyond the client's retries; the machine backs off.
                    if n < 3 {
                        let body = json!({"code": 13, "message": "node down", "details": []});
                        return (StatusCode::BAD_GATEWAY, axum::Json(body));
                    }
                    let info = json!({"tickInfo": {"tick": 100, "duration": 1, "epoch": 1, "initialTick": 1}});
                    (StatusCode::OK, axum::Json(info))
                }
            }),
        )
        .route(
            "/live/v1/broadcast-transaction",
            post(|| async {
                let body = json!({"code": 3, "message": "invalid signature", "details": []});
                (StatusCode::BAD_REQUEST, axum::Json(body))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let db = common::temp_db();
    let s = QubicSettlement::start(settlement_config(&url), keypair('a'), &db).unwrap();
    let id = s
        .pay(&keypair('b').identity(), Qu(5), purpose(0))
        .await
        .unwrap();
    let err = s.wait_final(&id, WAIT).await.unwrap_err().to_string();
    assert!(
        err.contains("refused the transaction") && err.contains("invalid signature"),
        "{err}"
    );
    assert!(calls.load(Ordering::SeqCst) >= 4, "tick-info was retried");
    let api = status(&s, &purpose(0)).await.to_api();
    assert_eq!((api.status.as_str(), api.target_tick), ("failed", 103));
    s.shutdown().await;
}
