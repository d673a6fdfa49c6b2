//! Attacks on negotiation: forged terms at countersign (1), a countersignature under the
//! provider's tag (11), free reservations (5), and a rogue provider's unbounded terms (4).

use qubix_protocol::api::ErrorCode;
use qubix_protocol::control::JobState;
use qubix_protocol::job::{
    Agreement, AgreementTerms, NegotiateRequest, NegotiateResponse, RejectCode,
};
use qubix_protocol::{Qu, Signed};
use qubix_testnet::{NodeSpec, wait_until};

use crate::common::{Arena, Manual, PRICE, WAIT, long_job, short_terms};

/// The rogue provider: short terms, then a window of a year and no bound checked.
fn greedy_terms(c: &mut qubix_node::config::NodeConfig) {
    short_terms(c);
    c.rogue.unchecked_payment = true;
    c.provider.payment.window_secs = 365 * 24 * 3600;
}

/// The honest provider, keeping ended jobs' records five seconds after their books close.
fn prunes_soon(c: &mut qubix_node::config::NodeConfig) {
    short_terms(c);
    c.record_retention_secs = 5;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiation_attacks_gain_nothing() {
    let mut arena = Arena::start_configured("hostile-negotiation", prunes_soon).await;
    let honest = arena.honest_rental().await;
    let rogue = Manual::join(&arena, 21, 10_000).await;
    let offer = arena.provider_offer(arena.consumer).await;
    let provider = arena.net.nodes[arena.provider].handle().clone();

    // 1. Forged terms: the rogue signs its own self-consistent terms for a reserved id (price
    //    1, endless graces, a second key of its own as "the provider") and countersigns them.
    let terms = rogue.propose(&offer, &rogue.identity()).await.unwrap();
    let reserved = terms.payload().agreement_id;
    let accomplice = qubix_protocol::testing::key(99);
    let accomplice_id = qubix_protocol::NodeId::from_verifying_key(&accomplice.verifying_key());
    let mut own_request = rogue.request(&offer, &rogue.identity()).into_payload();
    own_request.provider = accomplice_id;
    own_request.max_price_per_gpu_hour = Qu(1);
    let own_request =
        Signed::sign(own_request, rogue.rogue.key.signing_key(), &rogue.network).unwrap();
    let mut forged = terms.payload().clone();
    forged.request = own_request.envelope().clone();
    forged.provider = accomplice_id;
    forged.price_per_gpu_hour = Qu(1);
    forged.budget = Qu(1);
    forged.payment.stop_grace_secs = u64::MAX;
    forged.payment.terminate_grace_secs = u64::MAX;
    let forged = Signed::sign(forged, &accomplice, &rogue.network).unwrap();
    let answer = rogue.countersign(&offer, &forged).await;
    assert_eq!(
        rejection(&answer),
        Some(RejectCode::TermsMismatch),
        "forged terms: {answer:?}"
    );
    // The genuine terms re-signed with the provider's figures changed do not open as the
    // provider's (the rogue has no provider key), so the only countersignature accepted is
    // over the exact bytes offered.
    assert!(
        provider
            .provider_jobs()
            .await
            .unwrap()
            .iter()
            .all(|j| j.id != reserved),
        "nothing was recorded for the forged countersignature"
    );

    // 11. A countersignature made under the provider's tag instead of the consumer's own.
    let payload = &terms.envelope().as_bytes()[qubix_protocol::signed::HEADER_LEN..];
    let wrong_tag = qubix_protocol::signed::sign_bytes::<AgreementTerms>(
        rogue.rogue.key.signing_key(),
        &rogue.network,
        payload,
    );
    let agreement = Agreement {
        terms: terms.envelope().clone(),
        consumer_signature: wrong_tag.to_vec(),
    };
    let answer = rogue
        .negotiate(&offer, NegotiateRequest::Countersign(agreement))
        .await;
    assert_eq!(
        rejection(&answer),
        Some(RejectCode::BadSignature),
        "{answer:?}"
    );

    // 5. Free reservations. An identity that holds nothing reserves nothing…
    let empty = qubix_ledger::qubic::KeyPair::from_seed_str(&"q".repeat(55)).unwrap();
    assert_eq!(
        rogue.propose(&offer, empty.identity().as_ref()).await.err(),
        Some(RejectCode::InsufficientBalance)
    );
    // …a funded one holds at most three unpaid reservations here (the provider's cap; the
    //    default is 32), whatever node keys it uses, and none beyond its balance.
    let second = rogue.propose(&offer, &rogue.identity()).await.unwrap();
    let third = rogue.propose(&offer, &rogue.identity()).await.unwrap();
    assert_eq!(
        rogue.propose(&offer, &rogue.identity()).await.err(),
        Some(RejectCode::ReservationLimit)
    );
    // Reservations countersigned and never paid lapse at fund_by, and the GPUs come back.
    let unpaid = rogue.countersign(&offer, &second).await;
    assert!(
        matches!(unpaid, NegotiateResponse::Confirmed(_)),
        "{unpaid:?}"
    );
    let id = second.payload().agreement_id;
    wait_until(WAIT, "the unpaid reservation to lapse and end", || {
        let provider = provider.clone();
        async move {
            let jobs = provider.provider_jobs().await.ok()?;
            let job = jobs.into_iter().find(|j| j.id == id)?;
            (job.state == JobState::Terminated).then_some(())
        }
    })
    .await
    .unwrap();
    drop(third);
    let c = arena.net.nodes[arena.consumer].handle().clone();
    let me = offer.provider;
    wait_until(WAIT, "every reserved GPU back in the offer", || {
        let c = c.clone();
        async move {
            let page = c.offers(String::new(), None, None, None).await.ok()?;
            // Four GPUs, one held by the honest rental.
            let back = page
                .offers
                .iter()
                .any(|v| v.offer.provider == me && v.offer.gpu_count == 3);
            back.then_some(())
        }
    })
    .await
    .unwrap();
    // The lapsed reservation's record is pruned after the retention period (5 s here); its
    // signed agreement stays as evidence (checked at the end, in the stopped provider's
    // store). The honest rental's record stays while it runs.
    wait_until(WAIT, "the lapsed reservation's record to be pruned", || {
        let provider = provider.clone();
        async move {
            let jobs = provider.provider_jobs().await.ok()?;
            jobs.iter().all(|j| j.id != id).then_some(jobs)
        }
    })
    .await
    .unwrap()
    .iter()
    .find(|j| j.id == honest)
    .expect("the running rental's record is kept");

    // 4. A rogue provider asks for a year's window: the consumer refuses, naming the field,
    //    and locks nothing.
    let greedy = arena
        .net
        .add(NodeSpec::provider("greedy", "RTX 3090:24:1", PRICE, "FR").configured(greedy_terms))
        .await
        .unwrap();
    arena.offers_reach(arena.consumer, 2).await;
    let before = arena.net.nodes[arena.consumer]
        .ledger()
        .billing(None)
        .unwrap();
    let mut launch = long_job(1);
    launch.query = Some("gpu_name=RTX_3090".into());
    let refused = c.launch(launch).await.unwrap_err();
    let api: qubix_protocol::api::ApiError = refused.into();
    assert_eq!(
        api.error.code,
        ErrorCode::UnacceptableTerms,
        "{}",
        api.error.message
    );
    assert_eq!(api.error.field.as_deref(), Some("payment.window_secs"));
    let after = arena.net.nodes[arena.consumer]
        .ledger()
        .billing(None)
        .unwrap();
    assert_eq!(
        (after.escrow, after.available),
        (before.escrow, before.available)
    );
    let greedy_jobs = arena.net.nodes[greedy]
        .handle()
        .provider_jobs()
        .await
        .unwrap();
    assert!(greedy_jobs.iter().all(|j| j.state != JobState::Running));

    arena.finish_honest_rental(honest).await;
    arena
        .books_reconcile(&[arena.provider, arena.consumer])
        .await;
    rogue.leave().await;
    let data = arena.net.nodes[arena.provider].data_dir.clone();
    arena.net.stop(arena.provider).await;
    let store = qubix_node::store::Store::open(&data).unwrap();
    let kept = store
        .evidence(&id)
        .unwrap()
        .expect("the lapsed agreement's evidence");
    assert_eq!(
        kept.agreement
            .verify(&arena.network())
            .unwrap()
            .payload()
            .agreement_id,
        id
    );
    assert_eq!(kept.state, JobState::Terminated);
    drop(store);
    arena.net.shutdown().await;
}

fn rejection(answer: &NegotiateResponse) -> Option<RejectCode> {
    match answer {
        NegotiateResponse::Rejected(r) => Some(r.code),
        _ => None,
    }
}
