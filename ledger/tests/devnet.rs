//! The devnet speaks the real RPC's shapes and errors, verifies signatures, schedules by
//! target tick and executes with `moneyFlew` semantics; its faults behave as documented.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "devnet/faucet.rs"]
mod faucet;
#[path = "devnet/https.rs"]
mod https;
#[path = "devnet/identity_transactions.rs"]
mod identity_transactions;

use common::{devnet_with, keypair, rpc_config};
use qubix_ledger::qubic::build_transfer;
use qubix_ledger::rpc::{RpcClient, RpcError};
use serde_json::{Value, json};

async fn post(url: String, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn get(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn transfers_execute_at_their_target_tick_with_money_flew_semantics() {
    let (a, b) = (keypair('a'), keypair('b'));
    let net = devnet_with(&[(&a, 100)], None).await;
    let rpc = RpcClient::new(rpc_config(net.url())).unwrap();
    let tick = rpc.tick_info().await.unwrap().tick;
    let paid = build_transfer(&a, b.public_key(), 60, tick + 2).unwrap();
    let broke = build_transfer(&a, b.public_key(), 60, tick + 3).unwrap();
    let zero = build_transfer(&a, b.public_key(), 0, tick + 3).unwrap();
    for tx in [&paid, &broke, &zero, &paid] {
        let done = rpc.broadcast(tx).await.unwrap();
        assert_eq!(done.transaction_id, tx.id().to_string());
    }
    assert_eq!(
        rpc.transaction(&paid.id()).await.unwrap(),
        None,
        "not before its tick"
    );
    net.advance_by(3);
    let last = rpc.last_processed_tick().await.unwrap().tick_number;
    assert_eq!(last, tick + 2);
    assert!(
        rpc.transaction(&paid.id())
            .await
            .unwrap()
            .unwrap()
            .money_flew
    );
    assert_eq!(
        net.balance(&b.identity()),
        60,
        "identical bytes execute once"
    );
    net.advance();
    let broke_tx = rpc
        .transaction(&broke.id())
        .await
        .unwrap()
        .expect("included anyway");
    assert!(!broke_tx.money_flew && broke_tx.tick_number == tick + 3);
    assert!(
        !rpc.transaction(&zero.id())
            .await
            .unwrap()
            .unwrap()
            .money_flew
    );
    assert_eq!(
        (net.balance(&a.identity()), net.balance(&b.identity())),
        (40, 60)
    );
    let balance = rpc.balance(&b.identity()).await.unwrap();
    assert_eq!(
        (balance.balance, balance.number_of_incoming_transfers),
        (60, 1)
    );
    net.shutdown();
}

#[tokio::test]
async fn json_shapes_match_the_real_service() {
    let (a, b) = (keypair('a'), keypair('b'));
    let net = devnet_with(&[(&a, 100)], None).await;
    let tick = net.tick();
    let tx = build_transfer(&a, b.public_key(), 7, tick + 1).unwrap();
    let url = |path: &str| format!("{}{path}", net.url());
    let (status, body) = post(
        url("/live/v1/broadcast-transaction"),
        json!({"encodedTransaction": tx.to_base64()}),
    )
    .await;
    assert_eq!((status, body["peersBroadcasted"].as_i64()), (200, Some(3)));
    net.advance_by(2);
    let (status, body) = post(
        url("/query/v1/getTransactionByHash"),
        json!({"hash": tx.id().to_string()}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["amount"].clone(), body["moneyFlew"].clone()),
        (json!("7"), json!(true))
    );
    assert!(body["tickNumber"].is_u64() && body["timestamp"].is_string());
    let balance = get(url(&format!("/live/v1/balances/{}", b.identity()))).await;
    assert_eq!(balance["balance"]["balance"], json!("7"));
    let info = get(url("/live/v1/tick-info")).await;
    assert_eq!(info["tickInfo"]["tick"], json!(tick + 2));
    let last = get(url("/query/v1/getLastProcessedTick")).await;
    assert_eq!(last["tickNumber"], json!(tick + 1));
    let intervals = get(url("/query/v1/getProcessedTickIntervals")).await;
    assert_eq!(
        intervals["processedTickIntervals"][0]["lastTick"],
        json!(tick + 1)
    );
    let (status, body) = post(
        url("/query/v1/getTransactionByHash"),
        json!({"hash": "nope"}),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str(), body["code"].as_i64()),
        (404, Some("transaction not found"), Some(5))
    );
    net.shutdown();
}

#[tokio::test]
async fn broadcasts_are_checked_like_the_real_rpc() {
    let (a, b) = (keypair('a'), keypair('b'));
    let net = devnet_with(&[(&a, 100)], None).await;
    let rpc = RpcClient::new(rpc_config(net.url())).unwrap();
    let bad64 = rpc.broadcast_base64("not base64!").await.unwrap_err();
    assert!(
        matches!(bad64, RpcError::Rejected { status: 400, .. }),
        "{bad64:?}"
    );
    let tx = build_transfer(&a, b.public_key(), 5, net.tick() + 5).unwrap();
    let mut bytes = tx.to_bytes();
    bytes[64] ^= 1; // change the amount under the signature
    let forged = base64_of(&bytes);
    let err = rpc.broadcast_base64(&forged).await.unwrap_err();
    assert!(
        matches!(err, RpcError::Rejected { status: 400, .. })
            && err.to_string().contains("signature"),
        "{err:?}"
    );
    let late = build_transfer(&a, b.public_key(), 5, net.tick()).unwrap();
    let err = rpc.broadcast(&late).await.unwrap_err();
    let RpcError::TargetTickPassed { message } = &err else {
        panic!("{err:?}")
    };
    let want = format!(
        "Target tick: {0} for the transaction should be greater than max tick: {0}",
        net.tick()
    );
    assert_eq!(message, &want);
    net.shutdown();
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn faults_drop_skip_stall_and_fail() {
    let (a, b) = (keypair('a'), keypair('b'));
    let net = devnet_with(&[(&a, 100)], None).await;
    let rpc = RpcClient::new(rpc_config(net.url())).unwrap();
    // Failed broadcasts: the client's retries absorb two, not three.
    net.fail_next_broadcasts(2);
    let tx = build_transfer(&a, b.public_key(), 1, net.tick() + 2).unwrap();
    rpc.broadcast(&tx).await.unwrap();
    net.fail_next_broadcasts(3);
    let err = rpc.broadcast(&tx).await.unwrap_err();
    assert!(
        matches!(err, RpcError::Server { status: 500, .. })
            && err.to_string().contains("wasn't broadcast"),
        "{err:?}"
    );
    // Dropped: accepted, never included.
    net.drop_next(1);
    let dropped = build_transfer(&a, b.public_key(), 2, net.tick() + 1).unwrap();
    rpc.broadcast(&dropped).await.unwrap();
    net.advance_by(3);
    assert_eq!(rpc.transaction(&dropped.id()).await.unwrap(), None);
    // Stalled: ticks do not move.
    net.set_stalled(true);
    let before = net.tick();
    assert_eq!(net.advance_by(5), before);
    net.set_stalled(false);
    // Skipped: what targets the skipped ticks never executes; intervals show the gap.
    let skipped = build_transfer(&a, b.public_key(), 3, net.tick() + 2).unwrap();
    rpc.broadcast(&skipped).await.unwrap();
    let resumed = net.skip_ticks(10);
    net.advance_by(12);
    assert_eq!(rpc.transaction(&skipped.id()).await.unwrap(), None);
    let intervals = rpc.processed_tick_intervals().await.unwrap();
    assert_eq!(intervals.len(), 2);
    assert_eq!(intervals[1].first_tick, resumed);
    assert!(!intervals.iter().any(|i| i.contains(skipped.body().tick())));
    assert!(rpc.transaction(&tx.id()).await.unwrap().unwrap().money_flew);
    assert!(
        net.wait_for_tick(resumed + 12, std::time::Duration::from_secs(1))
            .await
            .is_ok()
    );
    let stuck = net
        .wait_for_tick(u32::MAX, std::time::Duration::from_millis(20))
        .await;
    assert!(
        stuck
            .unwrap_err()
            .to_string()
            .contains("did not reach tick")
    );
    net.shutdown();
}

#[tokio::test]
async fn ticks_advance_on_their_own_when_a_period_is_set() {
    let net = devnet_with(&[], Some(std::time::Duration::from_millis(5))).await;
    let start = net.tick();
    net.wait_for_tick(start + 5, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    net.shutdown();
}

#[tokio::test]
async fn a_saved_devnet_restarts_with_its_balances_ticks_and_history() {
    use qubix_ledger::devnet::{Devnet, DevnetConfig};
    let (a, b) = (keypair('a'), keypair('b'));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("devnet.json");
    let config = DevnetConfig {
        tick_period: None,
        funded: vec![(a.identity(), 100)],
        state: Some(state.clone()),
        ..DevnetConfig::default()
    };
    let first = Devnet::start(config.clone()).await.unwrap();
    assert!(!first.restored());
    let rpc = RpcClient::new(rpc_config(first.url())).unwrap();
    let tick = rpc.tick_info().await.unwrap().tick;
    let paid = build_transfer(&a, b.public_key(), 30, tick + 1).unwrap();
    rpc.broadcast(&paid).await.unwrap();
    // Scheduled after the save point: not kept, as if dropped.
    let pending = build_transfer(&a, b.public_key(), 5, tick + 10).unwrap();
    first.advance_by(2);
    rpc.broadcast(&pending).await.unwrap();
    first.save().unwrap();
    let saved_tick = first.tick();
    first.shutdown();

    let second = Devnet::start(config).await.unwrap();
    assert!(second.restored(), "the saved chain is used");
    assert_eq!(second.tick(), saved_tick, "ticks carry on");
    assert_eq!(
        (second.balance(&a.identity()), second.balance(&b.identity())),
        (70, 30),
        "balances kept, funding not applied twice"
    );
    let rpc = RpcClient::new(rpc_config(second.url())).unwrap();
    let found = rpc.transaction(&paid.id()).await.unwrap().unwrap();
    assert!(found.money_flew, "history kept");
    second.advance_by(10);
    assert_eq!(rpc.transaction(&pending.id()).await.unwrap(), None);
    assert_eq!(
        second.balance(&b.identity()),
        30,
        "the unsaved pending transfer never executes"
    );
    // A broken file is refused with a clear error, nothing overwritten.
    std::fs::write(&state, b"{ not json").unwrap();
    let broken = DevnetConfig {
        state: Some(state.clone()),
        ..DevnetConfig::default()
    };
    let e = Devnet::start(broken).await.unwrap_err().to_string();
    assert!(
        e.contains("devnet.json") && e.contains("delete the file"),
        "{e}"
    );
    assert_eq!(std::fs::read(&state).unwrap(), b"{ not json");
}
