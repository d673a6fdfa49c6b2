//! `Idempotency-Key` on launch and withdraw: a retry returns the first answer and never acts
//! twice, even when the first call outlived the gateway's timeout.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use qubix_gateway::GatewayConfig;
use serde_json::json;

use crate::common::fake::FakeNode;
use crate::common::{Auth, Harness, data};

fn launch_body() -> serde_json::Value {
    json!({ "query": "gpu_name=RTX_3090", "image": "ubuntu:24.04", "gpus": 1, "duration_secs": 600 })
}

#[tokio::test]
async fn a_retried_launch_returns_the_first_instance_and_rents_once() {
    let h = Harness::new();
    let first = h
        .keyed(Method::POST, "/api/v1/instances", launch_body(), "k-1")
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = h
        .keyed(Method::POST, "/api/v1/instances", launch_body(), "k-1")
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body, first.body);
    assert_eq!(h.fake.launches().len(), 1, "a retry rented twice");
    let other_key = h
        .keyed(Method::POST, "/api/v1/instances", launch_body(), "k-2")
        .await;
    assert_ne!(other_key.body["id"], first.body["id"]);
    assert_eq!(h.fake.launches().len(), 2);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_and_changes_nothing() {
    let h = Harness::new();
    h.keyed(Method::POST, "/api/v1/instances", launch_body(), "k")
        .await;
    let mut other = launch_body();
    other["duration_secs"] = json!(1200);
    let refused = h.keyed(Method::POST, "/api/v1/instances", other, "k").await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
    assert_eq!(h.fake.launches().len(), 1);
    let bad = h
        .keyed(
            Method::POST,
            "/api/v1/instances",
            launch_body(),
            "no spaces",
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_value")
    );
    assert_eq!(h.fake.launches().len(), 1);
}

#[tokio::test]
async fn a_launch_that_outlives_the_timeout_finishes_and_its_retry_gets_it() {
    let config = GatewayConfig {
        request_timeout: Duration::from_millis(300),
        ..GatewayConfig::default()
    };
    let h = Harness::with(FakeNode::new(), config);
    h.fake.slow_down_calls(Duration::from_millis(900));
    let first = h
        .keyed(Method::POST, "/api/v1/instances", launch_body(), "slow")
        .await;
    assert_eq!(
        (first.status, first.code()),
        (StatusCode::GATEWAY_TIMEOUT, "timeout")
    );
    // The work goes on after the timeout: the rental is made once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.fake.launches().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the launch was cancelled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let retry = h
        .keyed(Method::POST, "/api/v1/instances", launch_body(), "slow")
        .await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.text);
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    assert_eq!(h.fake.launches().len(), 1);
}

#[tokio::test]
async fn a_retried_withdrawal_sends_once_whichever_way_the_owner_calls() {
    let h = Harness::new();
    let body = json!({ "to": data::IDENTITY, "amount": 25 });
    let first = h
        .keyed(Method::POST, "/api/v1/wallet/withdraw", body.clone(), "w")
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let again = h
        .keyed(Method::POST, "/api/v1/wallet/withdraw", body.clone(), "w")
        .await;
    assert_eq!(again.body, first.body);
    assert_eq!(h.fake.withdrawals().len(), 1, "a retry withdrew twice");
    // A refusal that sent nothing is not kept: the same key tries again.
    let too_much = json!({ "to": data::IDENTITY, "amount": 10_000_000 });
    let refused = h
        .keyed(
            Method::POST,
            "/api/v1/wallet/withdraw",
            too_much.clone(),
            "big",
        )
        .await;
    assert_eq!(refused.code(), "insufficient_funds");
    let refused_again = h
        .keyed(Method::POST, "/api/v1/wallet/withdraw", too_much, "big")
        .await;
    assert_eq!(refused_again.code(), "insufficient_funds");
    assert!(refused_again.headers.get("idempotent-replayed").is_none());
    // The console is the same owner as the token: a session that retries with the key
    // (after logging in again, say) gets the first answer, and nothing is sent twice.
    let (cookie, csrf) = h.login().await;
    let session = h
        .raw_with(
            Method::POST,
            "/api/v1/wallet/withdraw",
            Auth::Session {
                cookie,
                csrf: Some(csrf),
            },
            Some(("application/json", serde_json::to_vec(&body).unwrap())),
            &[("idempotency-key", "w")],
        )
        .await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.text);
    assert_eq!(session.headers["idempotent-replayed"], "true");
    assert_eq!(session.body, first.body);
    assert_eq!(h.fake.withdrawals().len(), 1);
}

#[tokio::test]
async fn a_launch_that_rented_nothing_keeps_no_key() {
    let h = Harness::new();
    let mut nothing = launch_body();
    nothing["query"] = json!("price<=1");
    let refused = h
        .keyed(Method::POST, "/api/v1/instances", nothing.clone(), "n")
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    let again = h
        .keyed(Method::POST, "/api/v1/instances", nothing, "n")
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        again.headers.get("idempotent-replayed").is_none(),
        "it ran anew"
    );
}
