//! The OpenAPI document matches the router: the same routes and methods, and the bodies the
//! routes return validate against the documented schemas.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Auth, Harness, running_id};
use crate::schema::{response_schema, validate};

fn document() -> Value {
    serde_json::to_value(qubix_gateway::openapi::document()).unwrap()
}

fn documented_operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                ops.push((method.to_owned(), path.clone()));
            }
        }
    }
    ops.sort();
    ops
}

#[test]
fn every_route_is_documented_with_its_method_and_nothing_else_is() {
    let doc = document();
    // The routes the router is built from: served and documented are the same set.
    let mut expected: Vec<(String, String)> =
        qubix_gateway::route_table::<crate::common::fake::FakeNode>()
            .into_iter()
            .map(|r| (r.method.as_str().to_ascii_lowercase(), r.path.to_owned()))
            .collect();
    expected.sort();
    assert_eq!(documented_operations(&doc), expected);
    assert_eq!(
        doc["openapi"].as_str().map(|v| v.starts_with("3.1")),
        Some(true)
    );
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let h = Harness::new();
    for (method, path) in documented_operations(&document()) {
        let concrete = path
            .replace("{id}", &running_id())
            .replace("{action}", "restart");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let reply = h.call(method.clone(), &concrete, Auth::Bearer, None).await;
        let routed = reply.status != StatusCode::METHOD_NOT_ALLOWED
            && !(reply.status == StatusCode::NOT_FOUND && reply.text.contains("no such route"));
        assert!(
            routed,
            "{method} {path} is documented but not served: {} {}",
            reply.status, reply.text
        );
    }
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let h = Harness::new();
    let reply = h.get("/api/v1/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, document());
    let unauthenticated = h
        .call(Method::GET, "/api/v1/openapi.json", Auth::None, None)
        .await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
}

/// (method, documented path, concrete path, body, expected status)
fn exchanges() -> Vec<(&'static str, &'static str, String, Option<Value>, u16)> {
    let id = running_id();
    let offer_id = crate::common::data::offers()[0].offer.offer_id.to_string();
    let launch = json!({ "offer_id": offer_id, "image": "ubuntu:24.04", "gpus": 1, "duration_secs": 3600,
        "ports": [{ "container_port": 22, "purpose": "ssh" }], "env": { "A": "1" } });
    let pricing = json!({ "default_price_per_gpu_hour": 900, "per_model": { "RTX 4090": 1100 },
        "min_rental_secs": 600, "max_rental_secs": 86400 });
    vec![
        ("get", "/api/v1/health", "/api/v1/health".into(), None, 200),
        ("get", "/api/v1/node", "/api/v1/node".into(), None, 200),
        ("get", "/api/v1/peers", "/api/v1/peers".into(), None, 200),
        (
            "get",
            "/api/v1/offers",
            "/api/v1/offers?q=num_gpus%3E%3D1&sort=-reliability&limit=2".into(),
            None,
            200,
        ),
        (
            "get",
            "/api/v1/offers",
            "/api/v1/offers?q=nonsense%3D1".into(),
            None,
            400,
        ),
        (
            "post",
            "/api/v1/offers/explain",
            "/api/v1/offers/explain".into(),
            Some(json!({ "q": "gpu_ram>=48 price<=1000" })),
            200,
        ),
        ("get", "/api/v1/gpus", "/api/v1/gpus".into(), None, 200),
        (
            "post",
            "/api/v1/instances",
            "/api/v1/instances".into(),
            Some(launch),
            201,
        ),
        (
            "get",
            "/api/v1/instances",
            "/api/v1/instances".into(),
            None,
            200,
        ),
        (
            "get",
            "/api/v1/instances/{id}",
            format!("/api/v1/instances/{id}"),
            None,
            200,
        ),
        (
            "get",
            "/api/v1/instances/{id}",
            format!("/api/v1/instances/{}", "0".repeat(32)),
            None,
            404,
        ),
        (
            "post",
            "/api/v1/instances/{id}/{action}",
            format!("/api/v1/instances/{id}/start"),
            None,
            409,
        ),
        (
            "post",
            "/api/v1/instances/{id}/{action}",
            format!("/api/v1/instances/{id}/stop"),
            None,
            200,
        ),
        (
            "get",
            "/api/v1/instances/{id}/logs",
            format!("/api/v1/instances/{id}/logs?tail=5"),
            None,
            200,
        ),
        (
            "get",
            "/api/v1/instances/{id}/metrics",
            format!("/api/v1/instances/{id}/metrics"),
            None,
            200,
        ),
        (
            "delete",
            "/api/v1/instances/{id}",
            format!("/api/v1/instances/{id}"),
            None,
            200,
        ),
        (
            "get",
            "/api/v1/billing",
            "/api/v1/billing".into(),
            None,
            200,
        ),
        (
            "get",
            "/api/v1/ledger/entries",
            "/api/v1/ledger/entries?limit=5".into(),
            None,
            200,
        ),
        (
            "get",
            "/api/v1/ledger/receipts/{id}",
            format!("/api/v1/ledger/receipts/{id}"),
            None,
            200,
        ),
        (
            "get",
            "/api/v1/ledger/receipts/{id}",
            format!("/api/v1/ledger/receipts/{}", "0".repeat(32)),
            None,
            404,
        ),
        ("get", "/api/v1/wallet", "/api/v1/wallet".into(), None, 200),
        (
            "post",
            "/api/v1/wallet/withdraw",
            "/api/v1/wallet/withdraw".into(),
            Some(json!({ "to": crate::common::data::IDENTITY, "amount": 10 })),
            200,
        ),
        (
            "post",
            "/api/v1/wallet/withdraw",
            "/api/v1/wallet/withdraw".into(),
            Some(json!({ "to": crate::common::data::IDENTITY, "amount": 10_000_000 })),
            402,
        ),
        (
            "get",
            "/api/v1/provider/pricing",
            "/api/v1/provider/pricing".into(),
            None,
            200,
        ),
        (
            "put",
            "/api/v1/provider/pricing",
            "/api/v1/provider/pricing".into(),
            Some(pricing),
            200,
        ),
        (
            "get",
            "/api/v1/provider/jobs",
            "/api/v1/provider/jobs".into(),
            None,
            200,
        ),
        (
            "get",
            "/api/v1/provider/earnings",
            "/api/v1/provider/earnings".into(),
            None,
            200,
        ),
        (
            "get",
            "/api/v1/provider/status",
            "/api/v1/provider/status".into(),
            None,
            200,
        ),
        (
            "get",
            "/api/v1/session",
            "/api/v1/session".into(),
            None,
            404,
        ),
    ]
}

#[tokio::test]
async fn response_bodies_validate_against_the_documented_schemas() {
    let h = Harness::new();
    let doc = document();
    for (method, documented, concrete, body, status) in exchanges() {
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let reply = h.call(m, &concrete, Auth::Bearer, body).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{method} {concrete}: {}",
            reply.text
        );
        let schema = response_schema(&doc, method, documented, status);
        if let Err(e) = validate(&doc, schema, &reply.body) {
            panic!(
                "{method} {concrete} → {status} does not match openapi.json: {e}\n{}",
                reply.text
            );
        }
    }
}

#[tokio::test]
async fn login_and_session_bodies_validate_too() {
    let h = Harness::new();
    let doc = document();
    let body = json!({ "token": h.token.expose() });
    let reply = h
        .call(Method::POST, "/api/v1/login", Auth::None, Some(body))
        .await;
    validate(
        &doc,
        response_schema(&doc, "post", "/api/v1/login", 200),
        &reply.body,
    )
    .unwrap();
    let (cookie, csrf) = h.login().await;
    let reply = h
        .call(
            Method::GET,
            "/api/v1/session",
            Auth::Session {
                cookie,
                csrf: Some(csrf),
            },
            None,
        )
        .await;
    validate(
        &doc,
        response_schema(&doc, "get", "/api/v1/session", 200),
        &reply.body,
    )
    .unwrap();
}

#[test]
fn stream_messages_are_documented() {
    let doc = document();
    for name in [
        "Event",
        "LogEvent",
        "MetricsEvent",
        "ApiError",
        "Offer",
        "Instance",
    ] {
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "component {name} missing"
        );
    }
    let event = json!({ "type": "lagged", "missed": 3 });
    validate(
        &doc,
        &json!({ "$ref": "#/components/schemas/Event" }),
        &event,
    )
    .unwrap();
    let sample = serde_json::to_value(qubix_protocol::api::MetricsEvent::Sample(
        crate::common::data::metrics_sample(1),
    ))
    .unwrap();
    validate(
        &doc,
        &json!({ "$ref": "#/components/schemas/MetricsEvent" }),
        &sample,
    )
    .unwrap();
    let offer = serde_json::to_value(qubix_protocol::api::Event::OfferUpdated {
        offer: Box::new(crate::common::data::offers()[1].clone()),
    })
    .unwrap();
    validate(
        &doc,
        &json!({ "$ref": "#/components/schemas/Event" }),
        &offer,
    )
    .unwrap();
}

/// `docs/openapi.json` is the document the gateway serves, for readers without a node:
/// it cannot drift. `QUBIX_BLESS=1` rewrites it after an API change.
#[test]
fn the_published_document_is_the_served_one() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let text = format!("{}\n", serde_json::to_string_pretty(&document()).unwrap());
    if std::env::var("QUBIX_BLESS").is_ok() {
        std::fs::write(&path, &text).unwrap();
    }
    let published = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing; run with QUBIX_BLESS=1", path.display()));
    assert!(
        published == text,
        "docs/openapi.json differs from the served document; run this test with QUBIX_BLESS=1"
    );
}
