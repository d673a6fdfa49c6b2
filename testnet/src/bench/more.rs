//! The other benchmarks: durable ledger operations and signatures (from the ledger crate),
//! container start through our runtime and through the node (launch → running) beside a
//! plain `docker run`, and marketplace queries over HTTP beside the same query in-process.

use std::time::{Duration, Instant};

use qubix_protocol::api::LaunchRequest;
use qubix_protocol::control::JobState;
use qubix_protocol::query::{OfferFacts, Query};

use super::{Figure, percentile};
use crate::harness::{NodeSpec, Testnet, TestnetError, wait_until};

pub(super) fn err(what: &str, e: impl std::fmt::Display) -> TestnetError {
    TestnetError::Node {
        name: what.into(),
        message: e.to_string(),
    }
}

/// Ledger operations per second beside raw sled, and signatures per second.
pub fn ledger(quick: bool) -> Result<Vec<Figure>, TestnetError> {
    let dir = tempfile::tempdir()?;
    let scale = if quick { 1 } else { 4 };
    let config = qubix_ledger::bench::BenchConfig {
        durable_ops: 500 * scale,
        buffered_ops: 5_000 * scale,
        signatures: 500 * scale,
    };
    let figures =
        qubix_ledger::bench::run(dir.path(), &config).map_err(|e| err("ledger bench", e))?;
    Ok(figures
        .into_iter()
        .map(|f| Figure {
            name: f.name,
            value: f.per_second,
            unit: "op/s".into(),
            baseline_name: f.baseline.unwrap_or_else(|| "—".into()),
            baseline: f.baseline_per_second.unwrap_or(f64::NAN),
        })
        .collect())
}

/// Create-to-running of the test image through our runtime beside `docker run -d`.
pub async fn container_start(image: &str, runs: usize) -> Result<Figure, TestnetError> {
    let network = qubix_protocol::topics::Network::new("testnet").map_err(|e| err("runtime", e))?;
    let runtime = qubix_node::runtime::connect(
        &network,
        &qubix_node::runtime::RuntimeOptions {
            local_images: vec![image.to_owned()],
            ..Default::default()
        },
    )
    .await
    .map_err(|e| err("runtime", e))?;
    let latency = qubix_node::runtime::bench::bench_start_latency(runtime.as_ref(), image, runs)
        .await
        .map_err(|e| err("runtime", e))?;
    Ok(Figure {
        name: "container create → running (runtime)".into(),
        value: latency.ours_median_ms(),
        unit: "ms".into(),
        baseline_name: "docker run -d, same image".into(),
        baseline: latency.docker_run_median_ms(),
    })
}

/// A devnet testnet with one provider of `gpus` at 3,600 QU/GPU-hour and a consumer that
/// already sees its offer; returns the network and the consumer's handle.
pub(super) async fn provider_and_consumer(
    name: &str,
    gpus: &str,
) -> Result<(Testnet, qubix_node::service::NodeHandle), TestnetError> {
    let mut net = Testnet::with_devnet(name, Duration::from_millis(200)).await?;
    net.add(NodeSpec::provider("provider", gpus, 3_600, "DE"))
        .await?;
    let c = net.add(NodeSpec::consumer("consumer")).await?;
    let h = net.nodes[c].handle().clone();
    wait_until(Duration::from_secs(30), "the offer", || {
        let h = h.clone();
        async move { (h.offers(String::new(), None, None, None).await.ok()?.total == 1).then_some(()) }
    })
    .await?;
    Ok((net, h))
}

/// One GPU running `sleep 600` in `image` for ten minutes, on 1 core, 128 MiB and 1 GiB.
pub(super) fn one_gpu_sleeper(image: &str, query: Option<&str>) -> LaunchRequest {
    LaunchRequest {
        offer_id: None,
        query: query.map(str::to_owned),
        image: image.into(),
        command: vec!["sleep".into(), "600".into()],
        env: Default::default(),
        ports: vec![],
        gpus: 1,
        duration_secs: 600,
        max_price_per_gpu_hour: None,
        cpu_cores: Some(1),
        ram_mib: Some(128),
        disk_gib: Some(1),
        capabilities: Vec::new(),
    }
}

/// Launch → running through a whole testnet: negotiation, an on-chain payment on the devnet
/// (ticks every 200 ms), provider verification, pull and start.
pub async fn launch_to_running(image: &str, docker_run_ms: f64) -> Result<Figure, TestnetError> {
    let (net, h) = provider_and_consumer("bench-launch", "RTX 4090:24:4").await?;
    let mut samples = Vec::new();
    for _ in 0..3 {
        let launch = one_gpu_sleeper(image, None);
        let started = Instant::now();
        let id = h.launch(launch).await.map_err(|e| err("launch", e))?.id;
        wait_until(Duration::from_secs(60), "the instance to run", || {
            let h = h.clone();
            async move { (h.instance(id).await.ok()?.state == JobState::Running).then_some(()) }
        })
        .await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        let _ = h
            .act(id, qubix_protocol::control::JobAction::Terminate)
            .await;
    }
    net.shutdown().await;
    Ok(Figure {
        name: "launch → running (negotiate, pay on chain, start)".into(),
        value: percentile(&mut samples, 50.0),
        unit: "ms".into(),
        baseline_name: "docker run -d, same image".into(),
        baseline: docker_run_ms,
    })
}

/// A marketplace query (filter + sort + page) over `count` offers: p50, p99 and requests
/// per second over HTTP, beside the same query evaluated in-process.
pub async fn http_query(count: usize) -> Result<Vec<Figure>, TestnetError> {
    let book = super::market::synthetic_offers("bench-http", count);
    let (seeder, shutdown) = super::market::start_seeder("bench-http", book.clone()).await?;
    let mut net = Testnet::new("bench-http")?;
    net.set_bootstrap(vec![seeder]);
    net.set_max_offers_per_sync(count);
    let mut spec = NodeSpec::consumer("consumer");
    spec.gateway = Some(([127, 0, 0, 1], 0).into());
    let i = net.add(spec).await?;
    let h = net.nodes[i].handle().clone();
    wait_until(
        Duration::from_secs(300),
        "the node to hold the whole book",
        || {
            let h = h.clone();
            async move {
                (h.offers(String::new(), None, Some(1), None)
                    .await
                    .ok()?
                    .total
                    == count)
                    .then_some(())
            }
        },
    )
    .await?;
    let gw = net.nodes[i]
        .gateway()
        .cloned()
        .ok_or_else(|| err("gateway", "none"))?;
    let q = "num_gpus>=2 gpu_ram>=16 price<=1800 location in [DE,FR] sort=-price limit=50";
    let client = qubix_sdk::Client::new(format!("http://{}", gw.addr), gw.token.clone())
        .map_err(|e| err("sdk", e))?;
    let rounds = 200;
    let mut http = Vec::with_capacity(rounds);
    let t0 = Instant::now();
    for _ in 0..rounds {
        let t = Instant::now();
        client
            .offers(q, None, None, None)
            .await
            .map_err(|e| err("query", e))?;
        http.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let rps = rounds as f64 / t0.elapsed().as_secs_f64();
    let network =
        qubix_protocol::topics::Network::new("bench-http").map_err(|e| err("network", e))?;
    let offers: Vec<qubix_protocol::offer::Offer> = book
        .values()
        .filter_map(|e| e.open::<qubix_protocol::offer::Offer>(&network).ok())
        .map(|s| s.into_payload())
        .collect();
    let query = Query::parse(q).map_err(|e| err("query", e))?;
    let mut local = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let page = query.page(offers.iter().map(|o| OfferFacts::new(o, None)));
        std::hint::black_box(page.total_matched);
        local.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    net.shutdown().await;
    shutdown.cancel();
    let local_p50 = percentile(&mut local, 50.0);
    Ok(vec![
        Figure {
            name: format!("marketplace query over HTTP p50, {count} offers"),
            value: percentile(&mut http, 50.0),
            unit: "ms".into(),
            baseline_name: "same query in-process p50".into(),
            baseline: local_p50,
        },
        Figure {
            name: format!("marketplace query over HTTP p99, {count} offers"),
            value: percentile(&mut http, 99.0),
            unit: "ms".into(),
            baseline_name: "same query in-process p50".into(),
            baseline: local_p50,
        },
        Figure {
            name: format!("marketplace queries per second, {count} offers"),
            value: rps,
            unit: "req/s".into(),
            baseline_name: "in-process queries per second".into(),
            baseline: 1000.0 / local_p50.max(f64::EPSILON),
        },
    ])
}
