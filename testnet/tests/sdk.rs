//! The SDK against real nodes with gateways on a devnet testnet and real Docker containers:
//! every `Client` call and stream is made once over HTTP and WebSocket, and every error class
//! the SDK can report is provoked (`Api` with its codes, `Transport`, `Config`). `Decode` is
//! not provoked: a real node always answers in shape, and faking one is not the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use futures::StreamExt;
use qubix_protocol::AgreementId;
use qubix_protocol::Qu;
use qubix_protocol::api::{
    ErrorCode, Event, InstanceAction, LaunchRequest, LogEvent, MetricsEvent, WithdrawRequest,
};
use qubix_protocol::control::JobState;
use qubix_sdk::{Client, SdkError};
use qubix_testnet::{NodeSpec, Testnet, wait_until};

const WAIT: Duration = Duration::from_secs(60);
const NETWORK: &str = "sdk-test";

fn with_gateway(mut spec: NodeSpec) -> NodeSpec {
    spec.gateway = Some(([127, 0, 0, 1], 0).into());
    spec
}

fn client_of(net: &Testnet, i: usize) -> Client {
    let gw = net.nodes[i].gateway().expect("the node serves a gateway");
    Client::new(format!("http://{}", gw.addr), gw.token.clone()).unwrap()
}

/// The API error code and field of a failed call, or a panic naming what came instead.
fn api_error<T: std::fmt::Debug>(r: Result<T, SdkError>) -> (u16, ErrorCode, Option<String>) {
    match r {
        Err(SdkError::Api {
            status,
            code,
            field,
            ..
        }) => (status, code, field),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn launch_request() -> LaunchRequest {
    LaunchRequest {
        offer_id: None,
        query: Some("gpu_name=RTX_4090".into()),
        image: "qubix/test:latest".into(),
        command: vec![
            "sh".into(),
            "-c".into(),
            "echo hello-sdk; i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done".into(),
        ],
        env: Default::default(),
        ports: vec![],
        gpus: 1,
        duration_secs: 3600,
        max_price_per_gpu_hour: None,
        cpu_cores: Some(1),
        ram_mib: Some(256),
        disk_gib: Some(1),
        capabilities: Vec::new(),
    }
}

/// Node, peers and market reads: two providers at different prices make sort, limit and
/// offset observable.
async fn market_reads(c: &Client) {
    assert_eq!(c.health().await.unwrap().status, "ok");
    let info = c.node().await.unwrap();
    assert_eq!(info.network, NETWORK);
    assert!(!info.provider, "the consumer offers no GPUs");
    assert!(
        !c.peers().await.unwrap().is_empty(),
        "the consumer has peers"
    );
    let cheapest = c.offers("", Some("price"), Some(1), Some(0)).await.unwrap();
    assert_eq!((cheapest.total, cheapest.offers.len()), (2, 1));
    assert_eq!(cheapest.offers[0].offer.price_per_gpu_hour, Qu(1_800));
    let second = c.offers("", Some("price"), Some(1), Some(1)).await.unwrap();
    assert_eq!(second.offers[0].offer.price_per_gpu_hour, Qu(3_600));
    let dearest = c.offers("", Some("-price"), Some(5), None).await.unwrap();
    assert_eq!(dearest.offers[0].offer.price_per_gpu_hour, Qu(3_600));
    let filtered = c
        .offers("gpu_name=RTX_4090", None, None, None)
        .await
        .unwrap();
    assert_eq!(filtered.total, 1);
    let why = c.explain("gpu_name=RTX_4090 price<=100").await.unwrap();
    assert_eq!(why.matched, 0);
    assert!(!why.constraints.is_empty() && !why.summary.is_empty());
    let gpus = c.gpus().await.unwrap();
    assert!(gpus.gpus.is_empty(), "a consumer has no GPUs: {gpus:?}");
}

/// Provider routes: `not_enabled` on a consumer (except the status checklist).
async fn provider_routes_on_a_consumer(c: &Client) {
    assert_eq!(api_error(c.pricing().await).1, ErrorCode::NotEnabled);
    let pricing = qubix_protocol::api::ProviderPricing {
        default_price_per_gpu_hour: Qu(1),
        per_model: Default::default(),
        min_rental_secs: 60,
        max_rental_secs: 3600,
    };
    assert_eq!(
        api_error(c.set_pricing(&pricing).await).1,
        ErrorCode::NotEnabled
    );
    assert_eq!(api_error(c.provider_jobs().await).1, ErrorCode::NotEnabled);
    assert_eq!(api_error(c.earnings().await).1, ErrorCode::NotEnabled);
    assert!(!c.provider_status().await.unwrap().provider);
}

/// The first item of a stream that `pick` accepts, within [`WAIT`].
async fn first<T, S, R>(stream: S, what: &str, mut pick: impl FnMut(T) -> Option<R>) -> R
where
    S: futures::Stream<Item = Result<T, SdkError>>,
{
    let mut stream = Box::pin(stream);
    let found = tokio::time::timeout(WAIT, async {
        while let Some(item) = stream.next().await {
            if let Some(r) = pick(item.unwrap()) {
                return Some(r);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(r)) => r,
        Ok(None) => panic!("the stream ended before {what}"),
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Logs, metrics and their live streams.
async fn observe(c: &Client, id: AgreementId) {
    wait_until(WAIT, "hello-sdk in the instance's logs", || async move {
        let lines = c.logs(id, 50).await.ok()?;
        lines.iter().any(|l| l.line == "hello-sdk").then_some(())
    })
    .await
    .unwrap();
    wait_until(WAIT, "a metrics sample", || async move {
        c.metrics(id, 5).await.ok()?.last().map(|s| s.simulated)
    })
    .await
    .unwrap();
    let line = first(
        c.log_stream(id, 10),
        "a log line on the log stream",
        |e| match e {
            LogEvent::Line(l) => Some(l),
            LogEvent::Lagged { .. } => None,
        },
    )
    .await;
    assert!(!line.line.is_empty());
    let sample = first(
        c.metrics_stream(id, 1),
        "a sample on the metrics stream",
        |e| match e {
            MetricsEvent::Sample(s) => Some(s),
            MetricsEvent::Lagged { .. } => None,
        },
    )
    .await;
    assert!(sample.simulated && !sample.gpus.is_empty());
}

/// Money: billing, ledger, wallet, and a withdrawal that lands on chain.
async fn money(net: &Testnet, c: &Client, consumer: usize, id: AgreementId) {
    let billing = c.billing().await.unwrap();
    assert!(billing.instances.iter().any(|i| i.id == id && i.paid.0 > 0));
    let entries = c.ledger_entries(50, 0).await.unwrap();
    assert!(!entries.is_empty(), "the paid window shows in the ledger");
    assert!(c.ledger_entries(50, 10_000).await.unwrap().is_empty());
    // The receipts behind the spend, each a signed envelope that checks out on its own.
    let receipts = wait_until(WAIT, "a countersigned receipt in the ledger", || {
        let c = c.clone();
        async move { Some(c.receipts(id).await.ok()?).filter(|r| !r.is_empty()) }
    })
    .await
    .unwrap();
    let consumer_node = c.node().await.unwrap().node_id;
    for r in &receipts {
        let envelope =
            qubix_protocol::Envelope::from_bytes(hex::decode(&r.envelope).unwrap()).unwrap();
        let network = qubix_protocol::topics::Network::new(NETWORK).unwrap();
        let signed = envelope
            .open::<qubix_protocol::billing::Receipt>(&network)
            .unwrap();
        assert_eq!(
            (signed.signer(), signed.payload().amount, r.consumer),
            (consumer_node, r.amount, consumer_node)
        );
    }
    let unknown = AgreementId::from_bytes([0x5b; 16]);
    assert_eq!(
        api_error(c.receipts(unknown).await),
        (404, ErrorCode::NotFound, None)
    );
    let wallet = c.wallet().await.unwrap();
    let me = qubix_testnet::harness::wallet_for(NETWORK, consumer, "consumer").identity();
    assert_eq!(wallet.identity, Some(me.to_string()));
    assert!(wallet.balance.is_some_and(|b| b.0 > 0), "{wallet:?}");
    let payee = qubix_testnet::harness::wallet_for(NETWORK, 99, "payee").identity();
    let request = WithdrawRequest {
        to: payee.to_string(),
        amount: Qu(7),
    };
    let key = qubix_sdk::new_idempotency_key();
    let sent = c.withdraw_with_key(&request, &key).await.unwrap();
    let retried = c.withdraw_with_key(&request, &key).await.unwrap();
    assert_eq!(retried.tx_id, sent.tx_id, "a retry made a second transfer");
    assert_eq!(
        (sent.to.as_str(), sent.amount),
        (payee.to_string().as_str(), Qu(7))
    );
    let devnet = net.devnet().unwrap();
    wait_until(WAIT, "the withdrawal to reach the payee on chain", || {
        let got = devnet.balance(&payee);
        async move { (got == 7).then_some(()) }
    })
    .await
    .unwrap();
}

/// Provider routes on the provider's own gateway.
async fn provider_routes(p: &Client, id: AgreementId) {
    let status = p.provider_status().await.unwrap();
    assert!(status.provider && !status.checks.is_empty());
    let gpus = p.gpus().await.unwrap();
    assert_eq!(gpus.gpus.len(), 1);
    assert!(gpus.gpus[0].simulated);
    assert_eq!(gpus.gpus[0].allocated_to, Some(id));
    let jobs = p.provider_jobs().await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);
    let earnings = p.earnings().await.unwrap();
    assert!(
        earnings.earned.0 + earnings.prepaid_held.0 > 0,
        "{earnings:?}"
    );
    let mut pricing = p.pricing().await.unwrap();
    assert_eq!(pricing.default_price_per_gpu_hour, Qu(3_600));
    pricing.default_price_per_gpu_hour = Qu(4_000);
    let set = p.set_pricing(&pricing).await.unwrap();
    assert_eq!(set, pricing);
    assert_eq!(p.pricing().await.unwrap(), pricing);
}

/// The API error codes a client meets, each with its HTTP status and field.
async fn api_errors(c: &Client, url: &str, id: AgreementId) {
    let unknown = AgreementId::from_bytes([0x5a; 16]);
    assert_eq!(
        api_error(c.instance(unknown).await),
        (404, ErrorCode::NotFound, None)
    );
    let (status, code, field) = api_error(c.offers("price<<", None, None, None).await);
    assert_eq!(
        (status, code, field.as_deref()),
        (400, ErrorCode::InvalidQuery, Some("q"))
    );
    let bad_to = WithdrawRequest {
        to: "not-an-identity".into(),
        amount: Qu(1),
    };
    let (status, code, field) = api_error(c.withdraw(&bad_to).await);
    assert_eq!(
        (status, code, field.as_deref()),
        (400, ErrorCode::InvalidValue, Some("to"))
    );
    // Within the gateway's 64 KiB body limit but over the 32 KiB a signed job request may
    // be on the wire: a 400 that names the limit, not a 500.
    let mut big = launch_request();
    big.env = (0..12)
        .map(|i| (format!("BLOB_{i}"), "x".repeat(4000)))
        .collect();
    let (status, code, _) = api_error(c.launch(&big).await);
    assert_eq!((status, code), (400, ErrorCode::InvalidValue));
    let (status, code, _) = api_error(c.act(id, InstanceAction::Start).await);
    assert_eq!(
        (status, code),
        (409, ErrorCode::WrongState),
        "start after terminate"
    );
    let wrong = Client::new(url, "not-the-token").unwrap();
    let e = wrong.node().await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Unauthorized));
    assert!(
        e.to_string().contains("QUBIX_TOKEN"),
        "the hint says what to do: {e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sdk_call_and_stream_against_real_nodes() {
    qubix_testnet::init_test_logging();
    if !qubix_testnet::docker_available() {
        eprintln!("skipping: no Docker daemon (set CI=true to make this a failure)");
        return;
    }
    let mut net = Testnet::with_devnet(NETWORK, Duration::from_millis(200))
        .await
        .unwrap();
    let provider = net
        .add(with_gateway(NodeSpec::provider(
            "provider",
            "RTX 4090:24:1",
            3_600,
            "DE",
        )))
        .await
        .unwrap();
    net.add(NodeSpec::provider("cheap", "RTX 3090:24:1", 1_800, "FR"))
        .await
        .unwrap();
    let consumer = net
        .add(with_gateway(NodeSpec::consumer("consumer")))
        .await
        .unwrap();
    let c = client_of(&net, consumer);
    let p = client_of(&net, provider);
    wait_until(WAIT, "both offers to reach the consumer's API", || {
        let c = c.clone();
        async move { (c.offers("", None, None, None).await.ok()?.total == 2).then_some(()) }
    })
    .await
    .unwrap();
    market_reads(&c).await;
    provider_routes_on_a_consumer(&c).await;

    let events = c.events();
    let key = qubix_sdk::new_idempotency_key();
    let instance = c.launch_with_key(&launch_request(), &key).await.unwrap();
    let id = instance.id;
    let retried = c.launch_with_key(&launch_request(), &key).await.unwrap();
    assert_eq!(retried.id, id, "a retry rented twice");
    let mut seen = Vec::new();
    let running = c
        .wait_until_running(id, WAIT, |i| seen.push(i.state))
        .await
        .unwrap();
    assert_eq!(running.state, JobState::Running);
    assert_eq!(
        seen.last(),
        Some(&JobState::Running),
        "progress saw {seen:?}"
    );
    assert!(c.instances().await.unwrap().iter().any(|i| i.id == id));
    assert_eq!(c.instance(id).await.unwrap().image, "qubix/test:latest");
    observe(&c, id).await;

    let stopped = c.act(id, InstanceAction::Stop).await.unwrap();
    assert_eq!(stopped.state, JobState::Stopped);
    first(
        events,
        "an instance_state event of the instance",
        |e| match e {
            Event::InstanceState { id: got, state } if got == id => Some(state),
            _ => None,
        },
    )
    .await;
    assert_eq!(
        c.act(id, InstanceAction::Start).await.unwrap().state,
        JobState::Running
    );
    assert_eq!(
        c.act(id, InstanceAction::Restart).await.unwrap().state,
        JobState::Running
    );
    money(&net, &c, consumer, id).await;
    provider_routes(&p, id).await;

    assert_eq!(c.terminate(id).await.unwrap().state, JobState::Terminated);
    assert_eq!(
        c.terminate(id).await.unwrap().state,
        JobState::Terminated,
        "terminate is idempotent"
    );
    api_errors(&c, c.url(), id).await;
    net.shutdown().await;
}

#[tokio::test]
async fn transport_and_config_errors_are_told_apart() {
    let nowhere = Client::builder("http://127.0.0.1:9", "token")
        .retries(0)
        .build()
        .unwrap();
    let e = nowhere.health().await.unwrap_err();
    assert!(matches!(e, SdkError::Transport { .. }), "{e:?}");
    assert!(e.is_transient());
    assert!(e.to_string().contains("QUBIX_API"), "{e}");
    let e = Client::new("ftp://127.0.0.1:8080", "token").unwrap_err();
    assert!(matches!(e, SdkError::Config(_)), "{e:?}");
    let e = Client::new("http://127.0.0.1:8080", "  ").unwrap_err();
    assert!(
        matches!(&e, SdkError::Config(m) if m.contains("QUBIX_TOKEN")),
        "{e:?}"
    );
}
