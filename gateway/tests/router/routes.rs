//! Every route's success path against the in-memory node.

use axum::http::{Method, StatusCode, header};
use qubix_protocol::api::SignedReceipt;
use qubix_protocol::billing::Receipt;
use qubix_protocol::{AgreementId, Envelope};
use serde_json::json;

use crate::common::{Auth, Harness, data, running_id};

#[tokio::test]
async fn health_is_public() {
    let h = Harness::new();
    let reply = h
        .call(Method::GET, "/api/v1/health", Auth::None, None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["status"], "ok");
}

#[tokio::test]
async fn node_peers_and_gpus() {
    let h = Harness::new();
    assert_eq!(
        h.get("/api/v1/node").await.body["node_id"],
        data::me().to_string()
    );
    assert_eq!(
        h.get("/api/v1/peers").await.body.as_array().unwrap().len(),
        4
    );
    let gpus = h.get("/api/v1/gpus").await;
    assert_eq!(gpus.body["probe"], "simulated");
    assert_eq!(gpus.body["gpus"][0]["simulated"], true);
}

#[tokio::test]
async fn offers_pass_query_sort_and_paging_to_the_node() {
    let h = Harness::new();
    let page = h
        .get("/api/v1/offers?q=gpu_ram%3E%3D48&sort=-price&limit=1&offset=1")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(
        (
            page.body["total"].as_u64(),
            page.body["limit"].as_u64(),
            page.body["offset"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(
        page.body["offers"][0]["offer"]["gpu"]["model"],
        "NVIDIA A100-SXM4-80GB"
    );
    assert_eq!(page.body["offers"][0]["offer"]["simulated"], true);
    let all = h.get("/api/v1/offers").await;
    assert_eq!(all.body["total"], 4);
}

#[tokio::test]
async fn explain_reports_each_constraint() {
    let h = Harness::new();
    let reply = h
        .send(
            Method::POST,
            "/api/v1/offers/explain",
            json!({ "q": "gpu_ram>=48 price<=1000" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["matched"], 0);
    assert_eq!(reply.body["constraints"][0]["constraint"], "gpu_ram>=48");
    assert_eq!(reply.body["constraints"][0]["excluded"], 2);
    assert!(reply.body["summary"].as_str().unwrap().contains("excluded"));
}

#[tokio::test]
async fn launch_then_follow_the_lifecycle() {
    let h = Harness::new();
    let launch = json!({ "query": "gpu_name=RTX_3090", "image": "ubuntu:24.04", "gpus": 1, "duration_secs": 600 });
    let created = h.send(Method::POST, "/api/v1/instances", launch).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["gpu_model"], "NVIDIA GeForce RTX 3090");
    assert_eq!(
        created.body["budget"], 117,
        "700 QU/GPU-h × 1 GPU × 10 min, rounded up"
    );
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(h.fake.launches().len(), 1);
    let list = h.get("/api/v1/instances").await;
    assert_eq!(list.body[0]["id"], id.as_str());
    assert_eq!(
        h.get(&format!("/api/v1/instances/{id}")).await.body["image"],
        "ubuntu:24.04"
    );
}

#[tokio::test]
async fn stop_start_restart_and_terminate() {
    let h = Harness::new();
    let id = running_id();
    let act = |a: &'static str| format!("/api/v1/instances/{id}/{a}");
    for (action, state) in [
        ("stop", "stopped"),
        ("start", "running"),
        ("restart", "running"),
    ] {
        let reply = h.call(Method::POST, &act(action), Auth::Bearer, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{action}: {}", reply.text);
        assert_eq!(reply.body["state"], state);
    }
    let reply = h
        .call(
            Method::DELETE,
            &format!("/api/v1/instances/{id}"),
            Auth::Bearer,
            None,
        )
        .await;
    assert_eq!(
        (reply.status, reply.body["state"].as_str()),
        (StatusCode::OK, Some("terminated"))
    );
    assert_eq!(reply.body["reason"], "consumer_terminated");
}

#[tokio::test]
async fn logs_and_metrics_tails_are_json_without_an_upgrade() {
    let h = Harness::new();
    let id = running_id();
    let logs = h.get(&format!("/api/v1/instances/{id}/logs?tail=3")).await;
    assert_eq!(logs.body.as_array().unwrap().len(), 3);
    assert_eq!(logs.body[2]["line"], "epoch 19: loss 0.100");
    let default_tail = h.get(&format!("/api/v1/instances/{id}/logs")).await;
    assert_eq!(
        default_tail.body.as_array().unwrap().len(),
        20,
        "default tail 200 > 20 lines held"
    );
    let metrics = h
        .get(&format!("/api/v1/instances/{id}/metrics?history=10"))
        .await;
    assert_eq!(metrics.body.as_array().unwrap().len(), 10);
    assert_eq!(metrics.body[0]["simulated"], true);
}

#[tokio::test]
async fn money_routes() {
    let h = Harness::new();
    assert_eq!(
        h.get("/api/v1/billing").await.body["deposit_identity"],
        data::IDENTITY
    );
    let entries = h.get("/api/v1/ledger/entries?limit=10&offset=5").await;
    assert_eq!(entries.body.as_array().unwrap().len(), 10);
    assert_eq!(entries.body[0]["id"], "tx-0034", "newest first, 5 skipped");
    assert_eq!(
        h.get("/api/v1/ledger/entries")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        39
    );
    let receipts = h
        .get(&format!("/api/v1/ledger/receipts/{}", running_id()))
        .await;
    assert_eq!(receipts.status, StatusCode::OK);
    let receipts: Vec<SignedReceipt> = serde_json::from_value(receipts.body).unwrap();
    assert_eq!(
        receipts
            .iter()
            .map(|r| r.report_sequence)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for r in &receipts {
        // The envelope is the evidence: it opens, with the consumer's signature, to the
        // same figures the JSON shows.
        let envelope = Envelope::from_bytes(hex::decode(&r.envelope).unwrap()).unwrap();
        let network = qubix_protocol::topics::Network::new("testnet").unwrap();
        let signed = envelope.open::<Receipt>(&network).unwrap();
        assert_eq!(signed.signer(), r.consumer);
        assert_eq!(signed.payload().amount, r.amount);
    }
    let unknown = AgreementId::from_bytes([0x42; 16]);
    let missing = h.get(&format!("/api/v1/ledger/receipts/{unknown}")).await;
    assert_eq!(
        (missing.status, missing.body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(h.get("/api/v1/wallet").await.body["balance"], 100_000);
    let sent = h
        .send(
            Method::POST,
            "/api/v1/wallet/withdraw",
            json!({ "to": data::IDENTITY, "amount": 25 }),
        )
        .await;
    assert_eq!(
        (sent.status, sent.body["status"].as_str()),
        (StatusCode::OK, Some("pending"))
    );
}

#[tokio::test]
async fn provider_routes() {
    let h = Harness::new();
    assert_eq!(
        h.get("/api/v1/provider/pricing").await.body["default_price_per_gpu_hour"],
        1000
    );
    let pricing = json!({ "default_price_per_gpu_hour": 800, "min_rental_secs": 60, "max_rental_secs": 3600 });
    let saved = h
        .send(Method::PUT, "/api/v1/provider/pricing", pricing)
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    assert_eq!(
        h.get("/api/v1/provider/pricing").await.body["default_price_per_gpu_hour"],
        800
    );
    assert_eq!(h.get("/api/v1/provider/jobs").await.body[0]["earned"], 840);
    assert_eq!(
        h.get("/api/v1/provider/earnings").await.body["by_day"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    let status = h.get("/api/v1/provider/status").await;
    assert_eq!(status.body["checks"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn prometheus_text_has_gateway_and_node_figures() {
    let h = Harness::new();
    h.get("/api/v1/node").await;
    let reply = h.get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        reply.text.contains(
            "qubix_gateway_requests_total{method=\"GET\",route=\"/api/v1/node\",status=\"200\"} 1"
        ),
        "{}",
        reply.text
    );
    assert!(reply.text.contains("qubix_node_peers 4"));
}

#[tokio::test]
async fn made_up_methods_are_counted_as_other_not_as_new_labels() {
    let h = Harness::new();
    for i in 0..50 {
        let method = Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let reply = h.call(method, "/api/v1/node", Auth::None, None).await;
        assert!(reply.status.is_client_error(), "{}", reply.text);
    }
    let text = h.get("/metrics").await.text;
    assert!(!text.contains("BREW"), "{text}");
    let other: u64 = text
        .lines()
        .filter(|l| l.starts_with("qubix_gateway_requests_total{method=\"other\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(other, 50, "{text}");
}

#[tokio::test]
async fn console_is_served_with_a_strict_policy() {
    let h = Harness::new();
    let page = h.call(Method::GET, "/", Auth::None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("<title>Qubix"),
        "{}",
        &page.text[..page.text.len().min(200)]
    );
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let js = h
        .call(Method::GET, "/assets/js/app.js", Auth::None, None)
        .await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(
        js.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let missing = h
        .call(Method::GET, "/assets/nope.js", Auth::None, None)
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}
