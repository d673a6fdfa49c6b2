//! Attacks on payments: one transfer for two jobs, someone else's transfer, a short or
//! misdirected transfer (2); a payment notice that is lost, and one the provider was
//! checking when it went down (6); money that arrives after the refund (16).

use qubix_protocol::control::{JobAction, JobMessage, JobReply, JobState};
use qubix_protocol::{AgreementId, Qu};
use qubix_testnet::wait_until;

use crate::common::{Arena, Manual, WAIT};

/// A payment notice; the provider's reply.
async fn notice(
    rogue: &Manual,
    offer: &qubix_protocol::offer::Offer,
    id: AgreementId,
    window: u32,
    tx: &str,
) -> JobReply {
    let message = JobMessage::Paid {
        agreement_id: id,
        window,
        tx_id: tx.into(),
    };
    rogue.job(offer, message).await
}

fn status_paid(reply: &JobReply) -> Option<Qu> {
    match reply {
        JobReply::Status(s) => Some(s.paid),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_attacks_gain_nothing() {
    let mut arena = Arena::start("hostile-payments").await;
    let honest = arena.honest_rental().await;
    let rogue = Manual::join(&arena, 22, 10_000).await;
    let offer = arena.provider_offer(arena.consumer).await;
    let pay_to = offer.pay_to.clone();
    let window = 60; // 60 s at 1 QU/s

    // 2. The rogue holds two agreements and pays the first.
    let first = rogue.agree(&offer).await;
    let second = rogue.agree(&offer).await;
    let (a1, a2) = (first.payload().agreement_id, second.payload().agreement_id);
    let paid = rogue.pay(&pay_to, window, "w-a1").await;
    let tx1 = paid.tx_id.to_string();
    notice(&rogue, &offer, a1, 0, &tx1).await;
    wait_until(WAIT, "the first agreement to be credited and run", || {
        let (rogue, offer) = (&rogue, &offer);
        async move { (rogue.state(offer, a1).await == JobState::Running).then_some(()) }
    })
    .await
    .unwrap();
    // The same transfer for the second agreement: credited once, node-wide.
    notice(&rogue, &offer, a2, 0, &tx1).await;
    // The honest consumer's transfer, quoted by the rogue: not from its paying identity.
    let honest_tx = arena.net.nodes[arena.consumer]
        .handle()
        .instance(honest)
        .await
        .unwrap();
    assert!(honest_tx.paid.0 > 0);
    let consumer_pays = honest_payment(&arena, honest).await;
    notice(&rogue, &offer, a2, 0, &consumer_pays).await;
    // One QU short of the window, and a transfer to someone else.
    let short = rogue.pay(&pay_to, window - 1, "w-a2-short").await;
    notice(&rogue, &offer, a2, 0, short.tx_id.as_ref()).await;
    let elsewhere = arena.identity(arena.consumer).to_string();
    let misdirected = rogue.pay(&elsewhere, window, "w-a2-elsewhere").await;
    notice(&rogue, &offer, a2, 0, misdirected.tx_id.as_ref()).await;
    // None of them funds the second agreement: it lapses unpaid.
    wait_until(WAIT, "the second agreement to lapse unpaid", || {
        let (rogue, offer) = (&rogue, &offer);
        async move { (rogue.state(offer, a2).await == JobState::Terminated).then_some(()) }
    })
    .await
    .unwrap();
    let reply = rogue
        .job(&offer, rogue.control(a2, JobAction::Status))
        .await;
    assert_eq!(
        status_paid(&reply),
        Some(Qu(0)),
        "nothing credited: {reply:?}"
    );

    // 16. The first agreement ends; its refund goes out. A payment that arrives after it
    //     (a second window) is owed back too, as a second refund.
    rogue
        .job(&offer, rogue.control(a1, JobAction::Terminate))
        .await;
    let refunds = |want: usize| {
        let (rogue, offer) = (&rogue, &offer);
        async move {
            match rogue.job(offer, rogue.control(a1, JobAction::Status)).await {
                JobReply::Status(s) if s.refunds.len() >= want => Some(s.refunds),
                _ => None,
            }
        }
    };
    wait_until(WAIT, "the first refund", || refunds(1))
        .await
        .unwrap();
    let late = rogue.pay(&pay_to, window, "w-a1-late").await;
    notice(&rogue, &offer, a1, 1, late.tx_id.as_ref()).await;
    let two = wait_until(WAIT, "a second refund for the late payment", || refunds(2))
        .await
        .unwrap();
    let devnet = arena.net.devnet().unwrap().clone();
    let second_refund = devnet.transaction(&two[1].parse().unwrap()).unwrap();
    assert_eq!(
        second_refund.amount, window,
        "the late window came back whole"
    );

    // 6. A notice lost: the honest consumer pays while the provider is down; its notice
    //    fails, and it repeats the notice until the restarted provider shows the credit.
    let c = arena.net.nodes[arena.consumer].handle().clone();
    // The chain holds still while the consumer pays, so the payment cannot be final before
    // the provider is gone.
    devnet.set_stalled(true);
    let lost = c.launch(crate::common::long_job(1)).await.unwrap();
    arena.net.kill(arena.provider).await;
    devnet.set_stalled(false);
    wait_until(WAIT, "the consumer's payment to be final", || {
        let c = c.clone();
        async move { (c.instance(lost.id).await.ok()?.paid.0 > 0).then_some(()) }
    })
    .await
    .unwrap();
    arena.net.restart(arena.provider).await.unwrap();
    arena
        .wait_state(arena.consumer, lost.id, JobState::Running)
        .await;

    // 6. A notice received while the transfer was not on chain yet, then a restart: the
    //    provider checks it again when it comes back.
    let third = rogue.agree(&offer).await;
    let a3 = third.payload().agreement_id;
    devnet.set_stalled(true);
    let to: qubix_ledger::qubic::Identity = pay_to.parse().unwrap();
    let purpose = qubix_ledger::PaymentPurpose::Other { key: "w-a3".into() };
    use qubix_ledger::Settlement;
    let pending = rogue
        .settlement
        .pay(&to, Qu(window), purpose)
        .await
        .unwrap();
    let tx3 = wait_until(WAIT, "the transfer to be signed", || {
        let s = rogue.settlement.clone();
        let pending = pending.clone();
        async move { s.transfer_status(&pending).await.ok()?.tx_id }
    })
    .await
    .unwrap();
    notice(&rogue, &offer, a3, 0, tx3.as_ref()).await;
    arena.net.kill(arena.provider).await;
    devnet.set_stalled(false);
    rogue.settlement.wait_final(&pending, WAIT).await.unwrap();
    arena.net.restart(arena.provider).await.unwrap();
    wait_until(
        WAIT,
        "the restarted provider to credit the pending payment",
        || {
            let (rogue, offer) = (&rogue, &offer);
            async move { (rogue.state(offer, a3).await == JobState::Running).then_some(()) }
        },
    )
    .await
    .unwrap();
    rogue
        .job(&offer, rogue.control(a3, JobAction::Terminate))
        .await;
    c.act(lost.id, JobAction::Terminate).await.unwrap();

    arena.finish_honest_rental(honest).await;
    arena
        .books_reconcile(&[arena.provider, arena.consumer])
        .await;
    rogue.leave().await;
    arena.net.shutdown().await;
}

/// A transaction of the honest consumer to the provider (its rental's first window), from
/// the devnet's archive.
async fn honest_payment(arena: &Arena, _id: AgreementId) -> String {
    let devnet = arena.net.devnet().unwrap();
    let rpc =
        qubix_ledger::RpcClient::new(qubix_ledger::RpcConfig::with_base_url(devnet.url())).unwrap();
    let consumer = arena.identity(arena.consumer);
    let provider = arena.identity(arena.provider);
    let mut query = qubix_ledger::rpc::IdentityQuery::new(consumer.clone());
    query.source = Some(consumer);
    query.destination = Some(provider);
    wait_until(WAIT, "the honest payment in the archive", || {
        let (rpc, query) = (rpc.clone(), query.clone());
        async move {
            let page = rpc.transactions_for_identity(&query).await.ok()?;
            page.transactions.first().map(|t| t.hash.clone())
        }
    })
    .await
    .unwrap()
}
