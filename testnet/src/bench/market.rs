//! Market benchmarks: how fast an offer change reaches every node of a loopback network, and
//! how fast a joining node holds a 10,000-offer book through offer sync.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use qubix_node::keys::NodeKey;
use qubix_node::network::{self, NetworkEvent, NetworkSettings};
use qubix_protocol::api::{Event, ProviderPricing};
use qubix_protocol::market::{OfferSyncResponse, SYNC_PAGE_MAX};
use qubix_protocol::offer::Offer;
use qubix_protocol::topics::Network;
use qubix_protocol::{Envelope, NodeId, OfferId, Qu, Signed, UnixMillis};
use tokio_util::sync::CancellationToken;

use super::{Figure, percentile};
use crate::harness::{NodeSpec, Testnet, TestnetError, wait_until};

/// Offer propagation over `nodes` nodes: p50 and p99 in ms of `updates` price changes.
pub async fn offer_propagation(
    nodes: usize,
    updates: usize,
    rtt_ms: f64,
) -> Result<Vec<Figure>, TestnetError> {
    let mut net = Testnet::new("bench-propagation")?;
    net.add(NodeSpec::provider("provider", "RTX 4090:24:2", 1_000, "DE"))
        .await?;
    for i in 1..nodes {
        net.add(NodeSpec::consumer(&format!("n{i}"))).await?;
    }
    wait_everyone_has(&net, 1).await?;
    let mut samples = Vec::new();
    for u in 0..updates {
        let price = Qu(2_000 + u as u64);
        let mut subs: Vec<_> = net.nodes[1..]
            .iter()
            .map(|n| n.handle().subscribe())
            .collect();
        let started = Instant::now();
        let pricing = ProviderPricing {
            default_price_per_gpu_hour: price,
            per_model: Default::default(),
            min_rental_secs: 60,
            max_rental_secs: 604_800,
        };
        net.nodes[0]
            .handle()
            .set_pricing(pricing)
            .await
            .map_err(|e| TestnetError::Node {
                name: "provider".into(),
                message: e.to_string(),
            })?;
        for sub in &mut subs {
            let at = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    match sub.recv().await {
                        Ok(Event::OfferUpdated { offer })
                            if offer.offer.price_per_gpu_hour == price =>
                        {
                            return Some(started.elapsed());
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            continue;
                        }
                        Err(_) => return None,
                    }
                }
            })
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                TestnetError::Timeout(
                    Duration::from_secs(20),
                    "a price update to reach a node".into(),
                )
            })?;
            samples.push(at.as_secs_f64() * 1000.0);
        }
    }
    net.shutdown().await;
    let p50 = percentile(&mut samples, 50.0);
    let p99 = percentile(&mut samples, 99.0);
    Ok(vec![
        Figure {
            name: format!("offer propagation p50, {nodes} nodes"),
            value: p50,
            unit: "ms".into(),
            baseline_name: "loopback TCP round trip p50".into(),
            baseline: rtt_ms,
        },
        Figure {
            name: format!("offer propagation p99, {nodes} nodes"),
            value: p99,
            unit: "ms".into(),
            baseline_name: "loopback TCP round trip p50".into(),
            baseline: rtt_ms,
        },
    ])
}

async fn wait_everyone_has(net: &Testnet, n: usize) -> Result<(), TestnetError> {
    for node in &net.nodes {
        let h = node.handle().clone();
        wait_until(
            Duration::from_secs(30),
            "every node to hold the offers",
            || {
                let h = h.clone();
                async move {
                    (h.offers(String::new(), None, Some(1), None)
                        .await
                        .ok()?
                        .total
                        == n)
                        .then_some(())
                }
            },
        )
        .await?;
    }
    Ok(())
}

/// `count` valid offers signed on network `network_name` by `count / 50` synthetic providers.
pub fn synthetic_offers(network_name: &str, count: usize) -> BTreeMap<(NodeId, OfferId), Envelope> {
    let Ok(network) = Network::new(network_name) else {
        return BTreeMap::new();
    };
    let now = UnixMillis::now();
    let mut book = BTreeMap::new();
    for p in 0..count.div_ceil(50) {
        let mut secret = [0u8; 32];
        secret[..8].copy_from_slice(&(p as u64 + 1).to_le_bytes());
        let key = NodeKey::from_secret(secret);
        for i in 0..50.min(count - p * 50) {
            let mut offer: Offer = qubix_protocol::testing::offer(1);
            offer.provider = key.node_id();
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(p as u64).to_le_bytes());
            id[8..].copy_from_slice(&(i as u64).to_le_bytes());
            offer.offer_id = OfferId::from_bytes(id);
            offer.price_per_gpu_hour = Qu(500 + (p * 50 + i) as u64 % 2000);
            offer.issued_at = now;
            offer.expires_at = now.saturating_add(Duration::from_secs(1800));
            if let Ok(signed) = Signed::sign(offer, key.signing_key(), &network) {
                book.insert(
                    (signed.payload().provider, signed.payload().offer_id),
                    signed.envelope().clone(),
                );
            }
        }
    }
    book
}

/// Serves offer-sync pages from a fixed book, as a peer holding `book` would.
async fn serve_sync(
    handle: network::NetworkHandle,
    mut events: tokio::sync::mpsc::Receiver<NetworkEvent>,
    book: BTreeMap<(NodeId, OfferId), Envelope>,
) {
    while let Some(event) = events.recv().await {
        if let NetworkEvent::OfferSync {
            request, channel, ..
        } = event
        {
            let limit = usize::from(request.limit.clamp(1, SYNC_PAGE_MAX));
            let range: Vec<_> = match request.after {
                Some(after) => book
                    .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                    .take(limit + 1)
                    .collect(),
                None => book.iter().take(limit + 1).collect(),
            };
            let more = range.len() > limit;
            let page: Vec<_> = range.into_iter().take(limit).collect();
            let next = if more {
                page.last().map(|(k, _)| **k)
            } else {
                None
            };
            let response = OfferSyncResponse {
                offers: page.into_iter().map(|(_, e)| e.clone()).collect(),
                next,
            };
            let _ = handle.respond_sync(channel, response).await;
        }
    }
}

/// Starts a bare peer that serves `book` over offer sync; returns its address and a token
/// that stops it.
pub async fn start_seeder(
    network_name: &str,
    book: BTreeMap<(NodeId, OfferId), Envelope>,
) -> Result<(String, CancellationToken), TestnetError> {
    let shutdown = CancellationToken::new();
    let fail = |message: String| TestnetError::Node {
        name: "seeder".into(),
        message,
    };
    let network = Network::new(network_name).map_err(|e| fail(e.to_string()))?;
    let mut settings = NetworkSettings::new(network);
    settings.mdns = false;
    let key = NodeKey::from_secret([42; 32]);
    let listen = vec![
        "/ip4/127.0.0.1/tcp/0"
            .parse()
            .map_err(|_| fail("bad address".into()))?,
    ];
    let (seeder, events) = network::start(
        key.libp2p_keypair(),
        settings,
        listen,
        vec![],
        shutdown.clone(),
    )
    .await
    .map_err(|e| fail(e.to_string()))?;
    let addr = wait_until(Duration::from_secs(10), "the seeder to listen", || {
        let s = seeder.clone();
        async move { s.listen_addrs().await.ok()?.into_iter().next() }
    })
    .await?;
    tokio::spawn(serve_sync(seeder.clone(), events, book));
    Ok((
        addr.with(libp2p::multiaddr::Protocol::P2p(seeder.local_peer_id()))
            .to_string(),
        shutdown,
    ))
}

/// Time from a node's start to holding every one of `count` offers held by its first peer.
pub async fn join_to_full_book(count: usize, rtt_ms: f64) -> Result<Figure, TestnetError> {
    let (seeder, shutdown) =
        start_seeder("bench-join", synthetic_offers("bench-join", count)).await?;
    let mut net = Testnet::new("bench-join")?;
    net.set_bootstrap(vec![seeder]);
    net.set_max_offers_per_sync(count);
    let started = Instant::now();
    let i = net.add(NodeSpec::consumer("joiner")).await?;
    let h = net.nodes[i].handle().clone();
    wait_until(
        Duration::from_secs(120),
        "the joiner to hold the full book",
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
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    net.shutdown().await;
    shutdown.cancel();
    Ok(Figure {
        name: format!("join to full book, {count} offers"),
        value: elapsed,
        unit: "ms".into(),
        baseline_name: "loopback TCP round trip p50".into(),
        baseline: rtt_ms,
    })
}
