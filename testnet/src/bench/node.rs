//! A node's own costs: the negotiation round trip (request → countersigned agreement, both
//! sides persisted) beside the loopback round trip, and a `qubix node` process's resident
//! memory idle and holding a large offer book.

use std::time::{Duration, Instant};

use super::more::{err, one_gpu_sleeper, provider_and_consumer};
use super::{Figure, percentile};
use crate::harness::{TestnetError, wait_until};
use crate::process::{NodeProcess, ProcessSpec, qubix_binary};

/// `rounds` negotiations from a consumer to a provider on loopback, one after the other (each
/// rental terminated before the next, untimed): query, escrow lock, signed request,
/// admission, signed agreement, countersignature, both sides persisted. p50 and p99 beside
/// the loopback TCP round trip.
pub async fn negotiation_round_trip(
    rounds: usize,
    rtt_ms: f64,
) -> Result<Vec<Figure>, TestnetError> {
    let rounds = rounds.max(1);
    let (net, h) = provider_and_consumer("bench-negotiate", "RTX 4090:24:1").await?;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let request = one_gpu_sleeper("qubix/test:latest", Some("gpu_name=RTX_4090"));
        let started = Instant::now();
        // `launch` answers once the agreement is countersigned and persisted on both sides;
        // payment and the container follow asynchronously.
        let id = h.launch(request).await.map_err(|e| err("negotiate", e))?.id;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        // Free the GPU for the next round (not timed).
        h.act(id, qubix_protocol::control::JobAction::Terminate)
            .await
            .map_err(|e| err("terminate", e))?;
    }
    net.shutdown().await;
    Ok(vec![
        Figure {
            name: format!("negotiation round trip p50 ({rounds} rentals)"),
            value: percentile(&mut samples, 50.0),
            unit: "ms".into(),
            baseline_name: "loopback TCP round trip p50".into(),
            baseline: rtt_ms,
        },
        Figure {
            name: format!("negotiation round trip p99 ({rounds} rentals)"),
            value: percentile(&mut samples, 99.0),
            unit: "ms".into(),
            baseline_name: "loopback TCP round trip p50".into(),
            baseline: rtt_ms,
        },
    ])
}

/// A `qubix node` process's resident memory: idle (no peers), and after it synced a book of
/// `offers` offers from a peer; per held offer beside the offer's signed wire size.
pub async fn node_memory(offers: usize) -> Result<Vec<Figure>, TestnetError> {
    let binary = qubix_binary()?;
    let dir = tempfile::tempdir()?;
    let book = super::market::synthetic_offers("bench-memory", offers);
    let wire_bytes =
        book.values().map(|e| e.as_bytes().len()).sum::<usize>() as f64 / book.len().max(1) as f64;
    let (seeder, shutdown) = super::market::start_seeder("bench-memory", book).await?;
    let spec = |name: &str, bootstrap: Vec<String>| ProcessSpec {
        name: name.into(),
        data_dir: dir.path().join(name),
        network: "bench-memory".into(),
        port: 0,
        bootstrap,
        qubic_rpc: "http://127.0.0.1:9".into(),
        wallet_seed: crate::harness::wallet_seed_for("bench-memory", 0, name),
        simulate_gpu: None,
        price: None,
        country: None,
        gateway: Some(([127, 0, 0, 1], 0).into()),
        max_offers_per_sync: Some(offers),
        unsafe_local_jobs: false,
        local_images: Vec::new(),
        env: Vec::new(),
    };
    let idle = NodeProcess::start(&binary, &spec("idle", vec![])).await?;
    let full = NodeProcess::start(&binary, &spec("full", vec![seeder])).await?;
    let client = client_of(&full)?;
    wait_until(
        Duration::from_secs(300),
        "the node process to hold the whole book",
        || {
            let client = client.clone();
            async move {
                (client.offers("", None, Some(1), None).await.ok()?.total == offers).then_some(())
            }
        },
    )
    .await?;
    // The idle node has had the same time to settle.
    let idle_rss = idle.rss_bytes()? as f64;
    let full_rss = full.rss_bytes()? as f64;
    idle.stop().await?;
    full.stop().await?;
    shutdown.cancel();
    const MIB: f64 = 1024.0 * 1024.0;
    Ok(vec![
        Figure {
            name: format!("node RSS holding {offers} offers"),
            value: full_rss / MIB,
            unit: "MiB".into(),
            baseline_name: "idle node RSS (no peers)".into(),
            baseline: idle_rss / MIB,
        },
        Figure {
            name: "node memory per held offer".into(),
            value: (full_rss - idle_rss).max(0.0) / offers.max(1) as f64,
            unit: "B".into(),
            baseline_name: "signed offer on the wire".into(),
            baseline: wire_bytes,
        },
    ])
}

/// An SDK client of a process node's gateway, from the login URL it printed
/// (`http://127.0.0.1:PORT/#token=TOKEN`).
pub(crate) fn client_of(node: &NodeProcess) -> Result<qubix_sdk::Client, TestnetError> {
    node.client()
}
