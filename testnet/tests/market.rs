//! The market on a real libp2p network on loopback: offers reach every node, updates
//! replace them, withdrawn and expired offers vanish, late joiners sync the whole book, and a
//! rogue's forgeries are rejected while honest nodes keep working.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use qubix_protocol::Qu;
use qubix_protocol::api::ProviderPricing;
use qubix_protocol::codec;
use qubix_protocol::market::GossipMessage;
use qubix_protocol::offer::Offer;
use qubix_protocol::{NodeId, Signed, UnixMillis};
use qubix_testnet::{NodeSpec, Testnet, TestnetError, wait_until};

const WAIT: Duration = Duration::from_secs(20);

/// Waits until node `i` sees exactly the offers `pred` accepts, `n` of them.
async fn wait_offers(
    net: &Testnet,
    i: usize,
    n: usize,
    what: &str,
    pred: impl Fn(&Offer) -> bool + Clone,
) -> Result<(), TestnetError> {
    let handle = net.nodes[i].handle().clone();
    wait_until(WAIT, &format!("node {i}: {what}"), || {
        let handle = handle.clone();
        let pred = pred.clone();
        async move {
            let page = handle
                .offers(String::new(), None, Some(1000), None)
                .await
                .ok()?;
            let ok = page.offers.iter().filter(|v| pred(&v.offer)).count() == n && page.total == n;
            ok.then_some(())
        }
    })
    .await
}

async fn ten_node_market() -> Testnet {
    let mut net = Testnet::new("market-test").unwrap();
    net.add(NodeSpec::provider("provider", "RTX 4090:24:2", 1_200, "DE"))
        .await
        .unwrap();
    for i in 1..10 {
        net.add(NodeSpec::consumer(&format!("n{i}"))).await.unwrap();
    }
    net
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_reach_every_node_and_a_price_update_replaces_them_everywhere() {
    let net = ten_node_market().await;
    for i in 0..10 {
        wait_offers(&net, i, 1, "the provider's offer", |o| {
            o.price_per_gpu_hour == Qu(1_200) && o.simulated
        })
        .await
        .unwrap();
    }
    let pricing = ProviderPricing {
        default_price_per_gpu_hour: Qu(900),
        per_model: Default::default(),
        min_rental_secs: 60,
        max_rental_secs: 86_400,
    };
    net.nodes[0].handle().set_pricing(pricing).await.unwrap();
    for i in 0..10 {
        wait_offers(&net, i, 1, "the updated price", |o| {
            o.price_per_gpu_hour == Qu(900)
        })
        .await
        .unwrap();
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_gets_the_full_book_by_sync_not_by_republish() {
    let mut net = Testnet::new("sync-test").unwrap();
    for (i, (gpus, country)) in [
        ("RTX 4090:24:1", "DE"),
        ("A100:80:2", "FR"),
        ("RTX 3090:24:4", "US"),
    ]
    .iter()
    .enumerate()
    {
        net.add(NodeSpec::provider(
            &format!("p{i}"),
            gpus,
            1_000 + i as u64,
            country,
        ))
        .await
        .unwrap();
    }
    net.add(NodeSpec::consumer("early")).await.unwrap();
    wait_offers(&net, 3, 3, "all three offers", |_| true)
        .await
        .unwrap();
    // Offers live 120 s and are republished every 40 s: a joiner that has them within
    // seconds got them by offer sync.
    let started = std::time::Instant::now();
    let late = net.add(NodeSpec::consumer("late")).await.unwrap();
    wait_offers(&net, late, 3, "the full book on the late joiner", |_| true)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "sync took {:?}",
        started.elapsed()
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_provider_withdraws_and_a_killed_one_expires() {
    let mut net = Testnet::new("vanish-test").unwrap();
    net.set_offer_ttl(6);
    net.add(NodeSpec::provider("graceful", "RTX 4090:24:1", 1_000, "DE"))
        .await
        .unwrap();
    net.add(NodeSpec::provider("crashy", "A100:80:1", 2_000, "FR"))
        .await
        .unwrap();
    let watcher = net.add(NodeSpec::consumer("watcher")).await.unwrap();
    wait_offers(&net, watcher, 2, "both offers", |_| true)
        .await
        .unwrap();
    net.stop(0).await;
    wait_offers(&net, watcher, 1, "the withdrawn offer gone", |o| {
        o.gpu.model == "A100"
    })
    .await
    .unwrap();
    net.kill(1).await;
    // No withdrawal comes from a killed node: the offer disappears at its expiry (6 s).
    wait_offers(&net, watcher, 0, "the expired offer gone", |_| true)
        .await
        .unwrap();
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rogue_is_rejected_and_loses_score_while_honest_nodes_keep_working() {
    qubix_testnet::init_test_logging();
    let mut net = Testnet::new("rogue-test").unwrap();
    net.add(NodeSpec::provider("honest", "RTX 4090:24:1", 1_000, "DE"))
        .await
        .unwrap();
    net.add(NodeSpec::consumer("c1")).await.unwrap();
    net.add(NodeSpec::consumer("c2")).await.unwrap();
    wait_offers(&net, 2, 1, "the honest offer", |_| true)
        .await
        .unwrap();
    // The rogue holds one connection, to c1: whatever it sends reaches c1 first, and the
    // others only if c1 forwarded it.
    let rogue = net.add_rogue_to(66, 1).await.unwrap();
    let rogue_peer = rogue.net.local_peer_id();
    let victim_id = net.nodes[0].handle().node_id();
    let first_hop = net.nodes[1].handle().net().local_peer_id();
    wait_until(WAIT, "the rogue to connect to c1", || {
        let net = rogue.net.clone();
        async move {
            let peers = net.peers().await.ok()?;
            (peers.len() == 1 && peers[0].peer == first_hop).then_some(())
        }
    })
    .await
    .unwrap();

    let now = UnixMillis::now();
    let mut template = qubix_protocol::testing::offer(66);
    template.provider = NodeId::from_verifying_key(&rogue.key.signing_key().verifying_key());
    template.issued_at = now;
    template.expires_at = now.saturating_add(Duration::from_secs(60));
    let network = net.network();
    let gossip = |o: Offer| {
        codec::encode(&GossipMessage::Offer(
            Signed::sign(o, rogue.key.signing_key(), &network)
                .unwrap()
                .envelope()
                .clone(),
        ))
        .unwrap()
    };
    // 1. An offer claiming to be the honest provider's, signed by the rogue.
    let mut impersonation = template.clone();
    impersonation.provider = victim_id;
    let bytes = codec::encode(&GossipMessage::Offer(
        qubix_protocol::Envelope::from_bytes({
            let body = codec::encode(&impersonation).unwrap();
            let sig = qubix_protocol::signed::sign_bytes::<Offer>(
                rogue.key.signing_key(),
                &network,
                &body,
            );
            let mut b = victim_id.as_bytes().to_vec();
            b.extend_from_slice(&sig);
            b.extend_from_slice(&body);
            b
        })
        .unwrap(),
    ))
    .unwrap();
    // 2. A forged signature on its own offer; 3. an offer signed for another network.
    let mut forged = gossip(template.clone());
    let n = forged.len();
    forged[n - 40] ^= 0x55;
    let other = qubix_protocol::topics::Network::new("othernet").unwrap();
    let mut foreign = template.clone();
    foreign.offer_id = qubix_protocol::OfferId::from_bytes([4; 16]);
    let foreign = codec::encode(&GossipMessage::Offer(
        Signed::sign(foreign, rogue.key.signing_key(), &other)
            .unwrap()
            .envelope()
            .clone(),
    ))
    .unwrap();
    // 4. An expired offer and 5. an insane one.
    let mut expired = template.clone();
    expired.offer_id = qubix_protocol::OfferId::from_bytes([1; 16]);
    expired.issued_at = UnixMillis(now.0 - 120_000);
    expired.expires_at = UnixMillis(now.0 - 60_000);
    let mut insane = template.clone();
    insane.offer_id = qubix_protocol::OfferId::from_bytes([2; 16]);
    insane.gpu.vram_mib = 10 * 1024 * 1024;
    let attacks = [
        bytes,
        forged,
        foreign,
        gossip(expired),
        gossip(insane),
        vec![0xAB; 3000],
    ];
    // The rogue publishes until c1 has its subscription (gossipsub refuses to publish to
    // nobody), then c1 judges every forgery and scores the rogue below zero.
    let c1 = net.nodes[1].handle().clone();
    let mut round = 0u8;
    wait_until(WAIT, "c1 to score the rogue below zero", || {
        round = round.wrapping_add(1);
        let (rogue_net, c1) = (rogue.net.clone(), c1.clone());
        let mut attacks = attacks.clone();
        // Each round's copies differ, so none is a duplicate gossipsub drops unseen.
        attacks[5][0] = round;
        async move {
            for bytes in attacks {
                let _ = rogue_net.publish(bytes).await;
            }
            let peers = c1.net().peers().await.ok()?;
            let score = peers.iter().find(|p| p.peer == rogue_peer)?.score?;
            (score < 0.0).then_some(())
        }
    })
    .await
    .unwrap();
    // A flood of garbage on top.
    for i in 0..300u32 {
        let _ = rogue.net.publish(i.to_le_bytes().repeat(8)).await;
    }
    // Nothing of it went further: the other nodes never held a message from the rogue,
    // so they have no score for it at all, and no node holds any of its offers.
    for i in [0usize, 2] {
        let peers = net.nodes[i].handle().net().peers().await.unwrap();
        assert!(
            peers.iter().all(|p| p.peer != rogue_peer),
            "node {i} is not connected to the rogue"
        );
    }
    for i in 0..3 {
        let page = net.nodes[i]
            .handle()
            .offers(String::new(), None, None, None)
            .await
            .unwrap();
        assert!(
            page.offers
                .iter()
                .all(|v| v.offer.provider == victim_id && v.offer.gpu.vram_mib < 1024 * 1024),
            "node {i} holds only the honest offer"
        );
    }
    // …hold none of its offers, and still work: a price update reaches everyone.
    let pricing = ProviderPricing {
        default_price_per_gpu_hour: Qu(777),
        per_model: Default::default(),
        min_rental_secs: 60,
        max_rental_secs: 86_400,
    };
    net.nodes[0].handle().set_pricing(pricing).await.unwrap();
    for i in 0..3 {
        wait_offers(&net, i, 1, "only the honest, updated offer", |o| {
            o.provider == victim_id && o.price_per_gpu_hour == Qu(777)
        })
        .await
        .unwrap();
    }
    drop(rogue);
    net.shutdown().await;
}

/// Fifty nodes converge on one offer book: two providers' offers reach every node, and a
/// price change replaces the old offer on all fifty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_nodes_converge_on_one_offer_book() {
    let mut net = Testnet::builder("fifty-test").build().await.unwrap();
    net.add(NodeSpec::provider("p0", "RTX 4090:24:2", 1_200, "DE"))
        .await
        .unwrap();
    net.add(NodeSpec::provider("p1", "A100:80:1", 3_000, "US"))
        .await
        .unwrap();
    for i in 2..50 {
        net.add(NodeSpec::consumer(&format!("n{i}"))).await.unwrap();
    }
    for i in 0..50 {
        wait_offers(&net, i, 2, "both providers' offers", |o| o.simulated)
            .await
            .unwrap();
    }
    let pricing = ProviderPricing {
        default_price_per_gpu_hour: Qu(2_500),
        per_model: Default::default(),
        min_rental_secs: 60,
        max_rental_secs: 86_400,
    };
    net.nodes[1].handle().set_pricing(pricing).await.unwrap();
    for i in 0..50 {
        wait_offers(&net, i, 2, "the A100 at its new price only", |o| {
            o.gpu.model != "A100" || o.price_per_gpu_hour == Qu(2_500)
        })
        .await
        .unwrap();
    }
    net.shutdown().await;
}

/// Under emulated link conditions (every inbound event 250 ms late, a fifth of gossip lost),
/// a price update still reaches every node, never sooner than the latency allows: lost copies
/// are made up by other mesh peers and by republishing (offers live 6 s here, republished
/// every 2 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_converge_over_a_slow_lossy_network() {
    let latency = Duration::from_millis(250);
    let mut net = Testnet::builder("lossy-test")
        .conditions(latency, 0.2)
        .offer_ttl_secs(6)
        .build()
        .await
        .unwrap();
    net.add(NodeSpec::provider("provider", "RTX 4090:24:2", 1_200, "DE"))
        .await
        .unwrap();
    for i in 1..6 {
        net.add(NodeSpec::consumer(&format!("n{i}"))).await.unwrap();
    }
    for i in 0..6 {
        wait_offers(&net, i, 1, "the provider's offer", |o| {
            o.price_per_gpu_hour == Qu(1_200)
        })
        .await
        .unwrap();
    }
    let pricing = ProviderPricing {
        default_price_per_gpu_hour: Qu(950),
        per_model: Default::default(),
        min_rental_secs: 60,
        max_rental_secs: 86_400,
    };
    let changed = std::time::Instant::now();
    net.nodes[0].handle().set_pricing(pricing).await.unwrap();
    let mut first = None;
    for i in 1..6 {
        wait_offers(&net, i, 1, "the updated price", |o| {
            o.price_per_gpu_hour == Qu(950)
        })
        .await
        .unwrap();
        first.get_or_insert(changed.elapsed());
    }
    let first = first.unwrap();
    assert!(
        first >= latency,
        "an update cannot arrive before the link's latency: {first:?}"
    );
    net.shutdown().await;
}
