//! The RPC client against a scripted server on 127.0.0.1: both body shapes, amounts as
//! strings or numbers, retries of transient failures, and a typed error for each refusal.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[path = "rpc_client/body_limit.rs"]
mod body_limit;
mod common;
#[path = "rpc_client/identity_transactions.rs"]
mod identity_transactions;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

use common::{keypair, rpc_config};
use qubix_ledger::qubic::{TxId, build_transfer};
use qubix_ledger::rpc::{RpcClient, RpcConfig, RpcError};

/// Serves `router` on a free port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn client(url: &str) -> RpcClient {
    RpcClient::new(rpc_config(url)).unwrap()
}

fn grpc_error(status: StatusCode, code: i32, message: &str) -> (StatusCode, axum::Json<Value>) {
    let body = json!({"code": code, "message": message, "details": []});
    (status, axum::Json(body))
}

fn tx_json(amount: Value) -> Value {
    json!({
        "hash": TxId::from_hash([3; 32]).to_string(), "amount": amount,
        "source": keypair('a').identity().to_string(),
        "destination": keypair('b').identity().to_string(),
        "tickNumber": 20000123, "timestamp": "1767225600000", "inputType": 0, "inputSize": 0,
        "inputData": "", "signature": "", "moneyFlew": true
    })
}

#[tokio::test]
async fn reads_every_endpoint_in_the_real_shapes() {
    let router = Router::new()
        .route("/live/v1/tick-info", get(|| async {
            axum::Json(json!({"tickInfo": {"tick": 20000200, "duration": 1, "epoch": 150, "initialTick": 20000000}}))
        }))
        .route("/live/v1/balances/{id}", get(|| async {
            axum::Json(json!({"balance": {"id": "X", "balance": "1000", "validForTick": 5,
                "incomingAmount": "1500", "outgoingAmount": 500,
                "numberOfIncomingTransfers": 2, "numberOfOutgoingTransfers": 1}}))
        }))
        .route("/query/v1/getLastProcessedTick", get(|| async {
            axum::Json(json!({"tickNumber": 20000190, "epoch": 150, "intervalInitialTick": 20000000, "lastProcessedLogTick": 20000190}))
        }))
        .route("/query/v1/getProcessedTickIntervals", get(|| async {
            axum::Json(json!([{"epoch": 149, "firstTick": "1", "lastTick": 10}, {"epoch": 150, "firstTick": 20, "lastTick": 30}]))
        }))
        .route("/query/v1/getTransactionByHash", post(|| async { axum::Json(tx_json(json!("250"))) }));
    let rpc = client(&serve(router).await);
    let tick = rpc.tick_info().await.unwrap();
    assert_eq!(
        (tick.tick, tick.epoch, tick.initial_tick),
        (20_000_200, 150, 20_000_000)
    );
    let balance = rpc.balance(&keypair('a').identity()).await.unwrap();
    assert_eq!(
        (
            balance.balance,
            balance.incoming_amount,
            balance.outgoing_amount
        ),
        (1000, 1500, 500)
    );
    assert_eq!(
        rpc.last_processed_tick().await.unwrap().tick_number,
        20_000_190
    );
    let intervals = rpc.processed_tick_intervals().await.unwrap();
    assert_eq!(intervals.len(), 2);
    assert!(!intervals.iter().any(|i| i.contains(15)));
    let tx = rpc
        .transaction(&TxId::from_hash([3; 32]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (tx.amount, tx.tick_number, tx.money_flew),
        (250, 20_000_123, true)
    );
}

#[tokio::test]
async fn accepts_the_wrapped_transaction_body_numeric_amounts_and_a_live_v1_base() {
    let router = Router::new()
        .route("/query/v1/getTransactionByHash", post(|| async {
            axum::Json(json!({"transaction": tx_json(json!(77))}))
        }))
        .route("/query/v1/getProcessedTickIntervals", get(|| async {
            axum::Json(json!({"processedTickIntervals": [{"epoch": 1, "firstTick": 1, "lastTick": 2}]}))
        }));
    let base = serve(router).await;
    let rpc = client(&format!("{base}/live/v1/"));
    assert_eq!(rpc.base_url(), base);
    let tx = rpc
        .transaction(&TxId::from_hash([3; 32]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tx.amount, 77);
    assert_eq!(rpc.processed_tick_intervals().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_missing_transaction_is_none() {
    let router = Router::new().route(
        "/query/v1/getTransactionByHash",
        post(|| async { grpc_error(StatusCode::NOT_FOUND, 5, "transaction not found") }),
    );
    let rpc = client(&serve(router).await);
    assert_eq!(
        rpc.transaction(&TxId::from_hash([3; 32])).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn broadcast_refusals_are_typed() {
    let router = Router::new().route(
        "/live/v1/broadcast-transaction",
        post(|axum::Json(body): axum::Json<Value>| async move {
            match body["encodedTransaction"].as_str() {
                Some("late") => grpc_error(
                    StatusCode::BAD_REQUEST,
                    3,
                    "Target tick: 10 for the transaction should be greater than max tick: 12",
                ),
                _ => grpc_error(StatusCode::BAD_REQUEST, 3, "invalid signature"),
            }
        }),
    );
    let rpc = client(&serve(router).await);
    let late = rpc.broadcast_base64("late").await.unwrap_err();
    assert!(
        matches!(late, RpcError::TargetTickPassed { .. }),
        "{late:?}"
    );
    assert!(late.to_string().contains("max tick: 12"));
    let bad = rpc.broadcast_base64("bad").await.unwrap_err();
    assert!(
        matches!(bad, RpcError::Rejected { status: 400, .. }),
        "{bad:?}"
    );
    assert!(!bad.is_transient());
}

#[tokio::test]
async fn transient_failures_are_retried_until_success() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let router = Router::new().route("/live/v1/broadcast-transaction", post(move || {
        let counter = counter.clone();
        async move {
            if counter.fetch_add(1, Ordering::SeqCst) < 2 {
                return grpc_error(StatusCode::INTERNAL_SERVER_ERROR, 13, "tx wasn't broadcast to any peers, please retry");
            }
            (StatusCode::OK, axum::Json(json!({"peersBroadcasted": 3, "encodedTransaction": "x", "transactionId": "y"})))
        }
    }));
    let rpc = client(&serve(router).await);
    let payer = keypair('a');
    let tx = build_transfer(&payer, keypair('b').public_key(), 5, 100).unwrap();
    let done = rpc.broadcast(&tx).await.unwrap();
    assert_eq!(done.peers_broadcasted, 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn persistent_server_errors_give_up_after_the_retries() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let router = Router::new().route(
        "/live/v1/tick-info",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { grpc_error(StatusCode::SERVICE_UNAVAILABLE, 14, "overloaded") }
        }),
    );
    let rpc = client(&serve(router).await);
    let err = rpc.tick_info().await.unwrap_err();
    assert!(
        matches!(
            err,
            RpcError::Server {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("retry later"));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn unreachable_slow_and_strange_services_are_reported() {
    // A port with nothing listening.
    let free = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let err = client(&dead).tick_info().await.unwrap_err();
    assert!(
        matches!(err, RpcError::Unreachable { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("check the network"));

    let router = Router::new()
        .route("/live/v1/tick-info", get(std::future::pending::<String>))
        .route(
            "/query/v1/getLastProcessedTick",
            get(|| async { "<html>not json</html>" }),
        );
    let base = serve(router).await;
    let slow = RpcClient::new(RpcConfig {
        timeout: Duration::from_millis(100),
        retries: 1,
        ..rpc_config(&base)
    })
    .unwrap();
    let err = slow.tick_info().await.unwrap_err();
    assert!(
        matches!(err, RpcError::Timeout { attempts: 2, .. }),
        "{err:?}"
    );
    let err = slow.last_processed_tick().await.unwrap_err();
    assert!(matches!(err, RpcError::Decode { .. }), "{err:?}");
    let err = slow.balance(&keypair('a').identity()).await.unwrap_err();
    assert!(matches!(err, RpcError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("check the RPC base URL"));
}
