//! Every failure is `{ "error": { "code", "message", "field"? } }` with the code's status:
//! bad JSON, unknown field, out-of-range value, unknown id, wrong state, insufficient funds,
//! 404 route, 405 method, oversize body, timeout, and whatever the node returns.

use std::time::Duration;

use axum::http::{Method, StatusCode, header};
use qubix_gateway::GatewayConfig;
use qubix_protocol::api::{ApiError, ErrorCode};
use serde_json::json;

use crate::common::fake::FakeNode;
use crate::common::{Auth, Harness, Reply, data, running_id};

fn launch() -> serde_json::Value {
    json!({ "query": "num_gpus>=1", "image": "ubuntu:24.04", "gpus": 1, "duration_secs": 600 })
}

fn expect(reply: &Reply, status: u16, code: &str, field: Option<&str>) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.text);
    assert_eq!(reply.code(), code, "{}", reply.text);
    assert_eq!(reply.field(), field, "{}", reply.text);
    assert!(!reply.body["error"]["message"].as_str().unwrap().is_empty());
    assert!(
        reply.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test]
async fn malformed_json_and_unknown_fields_are_invalid_json() {
    let h = Harness::new();
    let body = Some(("application/json", b"{\"q\": ".to_vec()));
    expect(
        &h.raw(Method::POST, "/api/v1/offers/explain", Auth::Bearer, body)
            .await,
        400,
        "invalid_json",
        None,
    );
    let unknown = h
        .send(
            Method::POST,
            "/api/v1/offers/explain",
            json!({ "q": "", "why": 1 }),
        )
        .await;
    expect(&unknown, 400, "invalid_json", Some("why"));
    let missing = h
        .send(
            Method::POST,
            "/api/v1/instances",
            json!({ "image": "x", "gpus": 1 }),
        )
        .await;
    expect(&missing, 400, "invalid_json", Some("duration_secs"));
    let text = Some(("text/plain", b"{}".to_vec()));
    expect(
        &h.raw(Method::POST, "/api/v1/offers/explain", Auth::Bearer, text)
            .await,
        400,
        "invalid_json",
        None,
    );
}

#[tokio::test]
async fn out_of_range_values_name_their_field() {
    let h = Harness::new();
    let mut body = launch();
    body["gpus"] = json!(-1);
    expect(
        &h.send(Method::POST, "/api/v1/instances", body.clone())
            .await,
        400,
        "invalid_value",
        Some("gpus"),
    );
    body["gpus"] = json!(0);
    expect(
        &h.send(Method::POST, "/api/v1/instances", body.clone())
            .await,
        400,
        "invalid_value",
        Some("gpus"),
    );
    body["gpus"] = json!(1);
    body["duration_secs"] = json!(10);
    expect(
        &h.send(Method::POST, "/api/v1/instances", body).await,
        400,
        "invalid_value",
        Some("duration_secs"),
    );
    let withdraw = json!({ "to": "nobody", "amount": 5 });
    expect(
        &h.send(Method::POST, "/api/v1/wallet/withdraw", withdraw)
            .await,
        400,
        "invalid_value",
        Some("to"),
    );
    let pricing =
        json!({ "default_price_per_gpu_hour": 0, "min_rental_secs": 1, "max_rental_secs": 2 });
    expect(
        &h.send(Method::PUT, "/api/v1/provider/pricing", pricing)
            .await,
        400,
        "invalid_value",
        Some("default_price_per_gpu_hour"),
    );
}

#[tokio::test]
async fn bad_query_parameters_and_ids() {
    let h = Harness::new();
    expect(
        &h.get("/api/v1/offers?limit=many").await,
        400,
        "invalid_value",
        Some("limit"),
    );
    expect(
        &h.get("/api/v1/offers?limit=5000").await,
        400,
        "invalid_value",
        Some("limit"),
    );
    expect(
        &h.get("/api/v1/offers?lmit=5").await,
        400,
        "invalid_value",
        Some("lmit"),
    );
    expect(
        &h.get("/api/v1/ledger/entries?offset=-1").await,
        400,
        "invalid_value",
        Some("offset"),
    );
    expect(
        &h.get("/api/v1/instances/xyz").await,
        400,
        "invalid_value",
        Some("id"),
    );
}

#[tokio::test]
async fn invalid_queries_point_at_the_token() {
    let h = Harness::new();
    let reply = h
        .get("/api/v1/offers?q=price%3C%3D100%20colour%3Dred")
        .await;
    expect(&reply, 400, "invalid_query", Some("q"));
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`")
            && reply.text.contains("(at character 12)"),
        "{}",
        reply.text
    );
    let explain = h
        .send(
            Method::POST,
            "/api/v1/offers/explain",
            json!({ "q": "price<=abc" }),
        )
        .await;
    expect(&explain, 400, "invalid_query", Some("q"));
    let mut body = launch();
    body["query"] = json!("bogus>1");
    expect(
        &h.send(Method::POST, "/api/v1/instances", body).await,
        400,
        "invalid_query",
        Some("query"),
    );
}

#[tokio::test]
async fn unknown_ids_actions_and_routes_are_not_found() {
    let h = Harness::new();
    let unknown = "0".repeat(32);
    expect(
        &h.get(&format!("/api/v1/instances/{unknown}")).await,
        404,
        "not_found",
        None,
    );
    let bad_action = h
        .call(
            Method::POST,
            &format!("/api/v1/instances/{}/explode", running_id()),
            Auth::Bearer,
            None,
        )
        .await;
    expect(&bad_action, 404, "not_found", Some("action"));
    expect(&h.get("/api/v1/nothing-here").await, 404, "not_found", None);
    expect(
        &h.call(Method::GET, "/nothing", Auth::None, None).await,
        404,
        "not_found",
        None,
    );
    let mut body = launch();
    body["query"] = serde_json::Value::Null;
    body["offer_id"] = json!("ff".repeat(16));
    expect(
        &h.send(Method::POST, "/api/v1/instances", body).await,
        404,
        "not_found",
        Some("offer_id"),
    );
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let h = Harness::new();
    let reply = h
        .call(Method::PUT, "/api/v1/node", Auth::Bearer, None)
        .await;
    expect(&reply, 405, "method_not_allowed", None);
    assert!(
        reply.headers[header::ALLOW]
            .to_str()
            .unwrap()
            .contains("GET")
    );
    let reply = h
        .call(
            Method::GET,
            &format!("/api/v1/instances/{}/stop", running_id()),
            Auth::Bearer,
            None,
        )
        .await;
    expect(&reply, 405, "method_not_allowed", None);
}

#[tokio::test]
async fn wrong_state_funds_and_refusals() {
    let h = Harness::new();
    let start = h
        .call(
            Method::POST,
            &format!("/api/v1/instances/{}/start", running_id()),
            Auth::Bearer,
            None,
        )
        .await;
    expect(&start, 409, "wrong_state", None);
    let withdraw = json!({ "to": data::IDENTITY, "amount": 1_000_000 });
    expect(
        &h.send(Method::POST, "/api/v1/wallet/withdraw", withdraw)
            .await,
        402,
        "insufficient_funds",
        Some("amount"),
    );
    let mut costly = launch();
    costly["query"] = json!("gpu_name=H100");
    costly["gpus"] = json!(4);
    costly["duration_secs"] = json!(86_400);
    expect(
        &h.send(Method::POST, "/api/v1/instances", costly).await,
        402,
        "insufficient_funds",
        None,
    );
    let mut none = launch();
    none["query"] = json!("price<=1");
    expect(
        &h.send(Method::POST, "/api/v1/instances", none).await,
        422,
        "no_match",
        None,
    );
    let mut big = launch();
    big["query"] = json!("gpu_name=RTX_3090");
    big["gpus"] = json!(3);
    expect(
        &h.send(Method::POST, "/api/v1/instances", big).await,
        422,
        "provider_refused",
        None,
    );
}

#[tokio::test]
async fn provider_routes_on_a_consumer_are_not_enabled() {
    let h = Harness::with(FakeNode::with_provider(false), GatewayConfig::default());
    expect(
        &h.get("/api/v1/provider/pricing").await,
        404,
        "not_enabled",
        None,
    );
    expect(
        &h.get("/api/v1/provider/earnings").await,
        404,
        "not_enabled",
        None,
    );
    assert_eq!(
        h.get("/api/v1/provider/status").await.body["provider"],
        false
    );
}

#[tokio::test]
async fn oversize_bodies_are_refused_with_and_without_a_length() {
    let h = Harness::new();
    let big = json!({ "q": "x".repeat(70 * 1024) })
        .to_string()
        .into_bytes();
    let reply = h
        .raw(
            Method::POST,
            "/api/v1/offers/explain",
            Auth::Bearer,
            Some(("application/json", big.clone())),
        )
        .await;
    expect(&reply, 413, "payload_too_large", None);
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/offers/explain")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", h.token.expose()),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, big.len())
        .body(axum::body::Body::from(big))
        .unwrap();
    let response = tower::ServiceExt::oneshot(h.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let error: ApiError = serde_json::from_slice(&body).unwrap();
    assert_eq!(error.error.code, ErrorCode::PayloadTooLarge);
    let long_query = json!({ "q": "x".repeat(5000) });
    expect(
        &h.send(Method::POST, "/api/v1/offers/explain", long_query)
            .await,
        400,
        "invalid_value",
        Some("q"),
    );
}

#[tokio::test]
async fn a_node_that_does_not_answer_times_out() {
    let config = GatewayConfig {
        request_timeout: Duration::from_millis(50),
        ..GatewayConfig::default()
    };
    let h = Harness::with(FakeNode::new(), config);
    h.fake.stall_node_info();
    expect(&h.get("/api/v1/node").await, 504, "timeout", None);
}

#[tokio::test]
async fn every_code_the_node_returns_is_served_with_its_status() {
    let h = Harness::new();
    let codes = [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidValue,
        ErrorCode::InvalidQuery,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::WrongState,
        ErrorCode::InsufficientFunds,
        ErrorCode::PayloadTooLarge,
        ErrorCode::NoMatch,
        ErrorCode::ProviderRefused,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
        ErrorCode::NotEnabled,
        ErrorCode::Internal,
        ErrorCode::MethodNotAllowed,
    ];
    for code in codes {
        h.fake
            .fail_billing_with(ApiError::new(code, "from the node").with_field("f"));
        let reply = h.get("/api/v1/billing").await;
        expect(&reply, code.http_status(), code.as_str(), Some("f"));
    }
}

#[tokio::test]
async fn explanations_beyond_the_cap_are_refused_at_once() {
    let config = qubix_gateway::GatewayConfig {
        max_expensive: 1,
        ..qubix_gateway::GatewayConfig::default()
    };
    let h = Harness::with(crate::common::fake::FakeNode::new(), config);
    h.fake
        .slow_down_calls(std::time::Duration::from_millis(500));
    let body = json!({ "q": "gpu_name=RTX_4090" });
    let first = h.send(Method::POST, "/api/v1/offers/explain", body.clone());
    let second = async {
        // Once the first is inside the node, it holds the only permit.
        while h.fake.slowed_now() == 0 {
            tokio::task::yield_now().await;
        }
        h.send(Method::POST, "/api/v1/offers/explain", body.clone())
            .await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(
        (second.status, second.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    let after = h.send(Method::POST, "/api/v1/offers/explain", body).await;
    assert_eq!(after.status, StatusCode::OK, "the permit came back");
}
