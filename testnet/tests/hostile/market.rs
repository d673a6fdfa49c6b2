//! Attacks on the market: shadowing another provider's offer id (7), filling a newcomer's
//! book through offer sync with offers of thousands of made-up providers and flooding the
//! sync service (9), and tombstones from the far future (9).

use std::time::Duration;

use qubix_protocol::api::ErrorCode;
use qubix_protocol::market::{GossipMessage, OfferSyncRequest};
use qubix_protocol::offer::OfferWithdrawal;
use qubix_protocol::{NodeId, OfferRef, Qu, Signed, UnixMillis, codec};
use qubix_testnet::{NodeSpec, wait_until};

use crate::common::{Arena, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_attacks_hide_nothing_and_fill_nothing() {
    let mut arena = Arena::start("hostile-market").await;
    let network = arena.network();
    let honest = arena.provider_offer(arena.consumer).await;
    let c = arena.net.nodes[arena.consumer].handle().clone();

    // 7. A stranger publishes an offer under the honest provider's offer id, cheaper.
    let rogue = arena.net.add_rogue_to(31, arena.consumer).await.unwrap();
    let now = UnixMillis::now();
    let mut shadow = honest.clone();
    shadow.provider = NodeId::from_verifying_key(&rogue.key.signing_key().verifying_key());
    shadow.price_per_gpu_hour = Qu(1);
    shadow.sequence = honest.sequence + 1_000;
    shadow.issued_at = now;
    shadow.expires_at = now.saturating_add(Duration::from_secs(300));
    let signed = Signed::sign(shadow.clone(), rogue.key.signing_key(), &network).unwrap();
    let gossip = codec::encode(&GossipMessage::Offer(signed.envelope().clone())).unwrap();
    wait_until(
        WAIT,
        "the shadow offer to reach the consumer beside the honest one",
        || {
            let (net, c, gossip) = (rogue.net.clone(), c.clone(), gossip.clone());
            async move {
                let _ = net.publish(gossip).await;
                let page = c.offers(String::new(), None, None, None).await.ok()?;
                let same_id = page
                    .offers
                    .iter()
                    .filter(|v| v.offer.offer_id == honest.offer_id);
                (same_id.count() == 2).then_some(())
            }
        },
    )
    .await
    .unwrap();
    // Both are listed under their full names; the honest one is untouched.
    let page = c.offers(String::new(), None, None, None).await.unwrap();
    let names: Vec<OfferRef> = page.offers.iter().map(|v| v.id).collect();
    assert!(names.contains(&OfferRef::new(honest.provider, honest.offer_id)));
    assert!(names.contains(&OfferRef::new(shadow.provider, honest.offer_id)));
    // The bare id is ambiguous now: the launch says so and names both.
    let mut launch = crate::common::long_job(1);
    launch.offer_id = Some(OfferRef {
        offer_id: honest.offer_id,
        provider: None,
    });
    let api: qubix_protocol::api::ApiError = c.launch(launch.clone()).await.unwrap_err().into();
    assert_eq!(
        api.error.code,
        ErrorCode::InvalidValue,
        "{}",
        api.error.message
    );
    assert!(
        api.error.message.contains("2 providers"),
        "{}",
        api.error.message
    );
    // The full name rents from the honest provider.
    launch.offer_id = Some(OfferRef::new(honest.provider, honest.offer_id));
    let rented = c.launch(launch).await.unwrap();
    assert_eq!(rented.provider, honest.provider);
    arena
        .wait_state(
            arena.consumer,
            rented.id,
            qubix_protocol::control::JobState::Running,
        )
        .await;

    // 9. A withdrawal signed in the far future is refused: no tombstone for ever.
    let eternal = OfferWithdrawal {
        provider: shadow.provider,
        offer_id: shadow.offer_id,
        sequence: u64::MAX,
        issued_at: UnixMillis(u64::MAX),
    };
    let signed = Signed::sign(eternal, rogue.key.signing_key(), &network).unwrap();
    let gossip = codec::encode(&GossipMessage::Withdrawal(signed.envelope().clone())).unwrap();
    let _ = rogue.net.publish(gossip).await;
    let peers = c.net().peers().await.unwrap();
    let score = wait_until(WAIT, "the consumer to score the rogue below zero", || {
        let c = c.clone();
        let rogue_peer = rogue.net.local_peer_id();
        async move {
            let peers = c.net().peers().await.ok()?;
            peers
                .iter()
                .find(|p| p.peer == rogue_peer)?
                .score
                .filter(|s| *s < 0.0)
        }
    })
    .await
    .unwrap();
    assert!(score < 0.0 && !peers.is_empty());
    let still = c.offers(String::new(), None, None, None).await.unwrap();
    assert_eq!(
        still
            .offers
            .iter()
            .filter(|v| v.offer.offer_id == honest.offer_id)
            .count(),
        2,
        "the refused withdrawal removed nothing"
    );

    // 9. Sync flood: a seeder serves 3,000 offers of 60 made-up providers; a newcomer that
    //    lets one peer's sync add at most 500 holds at most 500 of them, and the honest
    //    offer still arrives.
    let book = qubix_testnet::bench::synthetic_offers(network.name(), 3_000);
    let (seeder, stop_seeder) = qubix_testnet::bench::start_seeder(network.name(), book)
        .await
        .unwrap();
    arena.net.set_bootstrap(vec![seeder]);
    arena.net.set_max_offers_per_sync(500);
    let newcomer = arena.net.add(NodeSpec::consumer("newcomer")).await.unwrap();
    let n = arena.net.nodes[newcomer].handle().clone();
    let me = honest.provider;
    wait_until(WAIT, "the honest offer to reach the newcomer", || {
        let n = n.clone();
        async move {
            let page = n.offers(String::new(), None, Some(1000), None).await.ok()?;
            page.offers
                .iter()
                .any(|v| v.offer.provider == me)
                .then_some(())
        }
    })
    .await
    .unwrap();
    let held = n
        .offers(String::new(), None, Some(1000), None)
        .await
        .unwrap()
        .total;
    assert!(
        held <= 500 + 3,
        "the seeder's sync added at most 500 offers, the book holds {held}"
    );
    stop_seeder.cancel();

    // 9. A peer asking for the book too often gets empty pages past its rate.
    let asker = arena.net.add_rogue_to(32, arena.provider).await.unwrap();
    let provider_peer = honest.provider.to_peer_id();
    wait_until(WAIT, "the asker to connect to the provider", || {
        let net = asker.net.clone();
        async move { (!net.peers().await.ok()?.is_empty()).then_some(()) }
    })
    .await
    .unwrap();
    // Waves of 16 at once (libp2p itself refuses more than 16 sync streams at a time).
    let started = std::time::Instant::now();
    let mut served = 0;
    for _ in 0..25 {
        let wave = (0..16).map(|_| {
            let net = asker.net.clone();
            let request = OfferSyncRequest {
                after: None,
                limit: 512,
            };
            async move { net.offer_sync(provider_peer, request).await }
        });
        for page in futures::future::join_all(wave).await {
            if page.is_ok_and(|p| !p.offers.is_empty()) {
                served += 1;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        f64::from(served) <= 100.0 + 20.0 * elapsed + 1.0 && served < 400,
        "at most a burst of 100 pages and 20 a second are served: {served} in {elapsed:.1} s"
    );

    let ended = c
        .act(rented.id, qubix_protocol::control::JobAction::Terminate)
        .await
        .unwrap();
    assert!(ended.state.is_final());
    drop((rogue, asker));
    arena
        .books_reconcile(&[arena.provider, arena.consumer])
        .await;
    arena.net.shutdown().await;
}
