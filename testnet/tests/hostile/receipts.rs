//! Attacks on usage and receipts: a consumer that never countersigns (3), one that sends a
//! receipt for a report that was never issued, such as sequence `u64::MAX` (3), a provider
//! that bills more than ran (billing capped by the paid window, P17), and an honest consumer
//! that restarts mid-rental (15).

use qubix_ledger::Account;
use qubix_protocol::billing::{Receipt, UsageReport};
use qubix_protocol::control::{EndReason, JobMessage, JobReply, JobState};
use qubix_protocol::{Qu, Signed, UnixMillis};
use qubix_testnet::{NodeSpec, wait_until};

use crate::common::{Arena, Manual, PRICE, WAIT, long_job, short_terms};

/// A consumer that never countersigns.
fn withholds(c: &mut qubix_node::config::NodeConfig) {
    c.rogue.withhold_receipts = true;
}

/// A provider that bills ten minutes more than it metered.
fn overbills(c: &mut qubix_node::config::NodeConfig) {
    short_terms(c);
    c.provider.payment.stop_grace_secs = 6; // it ends its unreceipted job soon
    c.rogue.report_extra_ms = 600_000;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_attacks_gain_nothing() {
    let mut arena = Arena::start("hostile-receipts").await;
    let honest = arena.honest_rental().await;
    let offer = arena.provider_offer(arena.consumer).await;
    let provider = arena.net.nodes[arena.provider].handle().clone();

    // 3. A consumer that never countersigns: the provider stops the job once an interval
    //    (3 s) of usage is unacknowledged and an interval passed without a receipt, then
    //    ends it after the stop grace, having worked at most about two intervals unsigned.
    let rogue = arena
        .net
        .add(NodeSpec::consumer("withholder").configured(withholds))
        .await
        .unwrap();
    arena.offers_reach(rogue, 1).await;
    let r = arena.net.nodes[rogue].handle().clone();
    let mut launch = long_job(1);
    launch.offer_id = Some(qubix_protocol::OfferRef::new(
        offer.provider,
        offer.offer_id,
    ));
    let withheld = r.launch(launch).await.unwrap().id;
    let ended = wait_until(WAIT, "the unreceipted job to end", || {
        let provider = provider.clone();
        async move {
            let jobs = provider.provider_jobs().await.ok()?;
            jobs.into_iter()
                .find(|j| j.id == withheld && j.state.is_final())
        }
    })
    .await
    .unwrap();
    assert_eq!(ended.state, JobState::Terminated);
    assert_eq!(ended.reason, Some(EndReason::Unacknowledged));
    // The provider closes its books on the metered usage: it keeps what it metered (at
    // most a few intervals' worth) and refunds the rest of the prepaid window.
    let ledger = arena.net.nodes[arena.provider].ledger().clone();
    let books = wait_until(
        WAIT,
        "the provider's books of the unreceipted job to close",
        || {
            let ledger = ledger.clone();
            async move {
                let a = ledger.agreement(&withheld).ok()??;
                let due = ledger.balance(&Account::RefundsDue(withheld)).ok()?;
                (a.ended_at.is_some() && a.refunded.0 > 0 && due == 0).then_some(a)
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(books.receipt_amount, Qu(0), "no receipt was ever signed");
    let kept = books.paid.0 - books.refunded.0;
    assert!(
        kept <= 9,
        "at most three 3 s intervals kept unsigned, got {kept} QU"
    );

    // 3. A receipt for a report never issued (sequence u64::MAX) is refused and poisons
    //    nothing: a genuine receipt is still taken.
    let manual = Manual::join(&arena, 23, 10_000).await;
    let terms = manual.agree(&offer).await;
    let id = terms.payload().agreement_id;
    let paid = manual.pay(&offer.pay_to, 60, "receipts-w0").await;
    let notice = JobMessage::Paid {
        agreement_id: id,
        window: 0,
        tx_id: paid.tx_id.to_string(),
    };
    manual.job(&offer, notice).await;
    wait_until(WAIT, "the rogue's job to run", || {
        let (manual, offer) = (&manual, &offer);
        async move { (manual.state(offer, id).await == JobState::Running).then_some(()) }
    })
    .await
    .unwrap();
    let poisoned = receipt(&manual, id, u64::MAX, 0, Qu(0));
    assert_eq!(
        manual.job(&offer, poisoned).await,
        JobReply::Error(qubix_protocol::control::JobErrorCode::Refused)
    );
    let report = match manual
        .job(&offer, JobMessage::UsageQuery { agreement_id: id })
        .await
    {
        JobReply::Usage(e) => e
            .open::<UsageReport>(&manual.network)
            .unwrap()
            .into_payload(),
        other => panic!("no report: {other:?}"),
    };
    // Right sequence, wrong figures: refused too.
    let inflated = receipt(&manual, id, report.sequence, report.billable_millis, Qu(0));
    assert!(matches!(
        manual.job(&offer, inflated).await,
        JobReply::Error(_)
    ));
    let genuine = receipt(
        &manual,
        id,
        report.sequence,
        report.billable_millis,
        report.amount_due,
    );
    assert!(matches!(
        manual.job(&offer, genuine).await,
        JobReply::Status(_)
    ));
    manual
        .job(
            &offer,
            manual.control(id, qubix_protocol::control::JobAction::Terminate),
        )
        .await;

    // P17. A provider that reports ten more minutes than ran: the consumer never
    //      acknowledges beyond what it paid and saw, and books no more than one interval
    //      of it as unacknowledged.
    arena
        .net
        .add(NodeSpec::provider("overbiller", "RTX 3090:24:1", PRICE, "FR").configured(overbills))
        .await
        .unwrap();
    arena.offers_reach(arena.consumer, 2).await;
    let c = arena.net.nodes[arena.consumer].handle().clone();
    let mut launch = long_job(1);
    launch.query = Some("gpu_name=RTX_3090".into());
    let billed = c.launch(launch).await.unwrap().id;
    arena
        .wait_state(arena.consumer, billed, JobState::Running)
        .await;
    // Without receipts the overbiller's own lifecycle stops and ends the job.
    let ended = arena
        .wait_state(arena.consumer, billed, JobState::Terminated)
        .await;
    assert_eq!(ended.reason, Some(EndReason::Unacknowledged));
    let consumer_ledger = arena.net.nodes[arena.consumer].ledger().clone();
    let line = wait_until(
        WAIT,
        "the consumer's books of the overbilled rental to close",
        || {
            let ledger = consumer_ledger.clone();
            async move {
                let a = ledger.agreement(&billed).ok()??;
                a.ended_at
                    .is_some()
                    .then(|| ledger.instance_billing(&billed).ok()?)?
            }
        },
    )
    .await
    .unwrap();
    assert!(
        line.spent.0 <= 3,
        "at most one 3 s interval booked, got {}",
        line.spent
    );

    // 15. The honest consumer restarts mid-rental: its meter comes back from its receipts
    //     and the provider's last report, its receipts go on, and the rental keeps running.
    let receipts_before = ledger.receipts(&honest).unwrap().len();
    drop((c, consumer_ledger)); // they hold the consumer's store open
    arena.net.restart(arena.consumer).await.unwrap();
    let ledger = arena.net.nodes[arena.provider].ledger().clone();
    wait_until(WAIT, "receipts to go on after the consumer's restart", || {
        let ledger = ledger.clone();
        async move { (ledger.receipts(&honest).ok()?.len() > receipts_before + 3).then_some(()) }
    })
    .await
    .unwrap();
    arena.finish_honest_rental(honest).await;
    arena
        .books_reconcile(&[arena.provider, arena.consumer])
        .await;
    manual.leave().await;
    arena.net.shutdown().await;
}

/// A receipt signed by the rogue for report `sequence` of agreement `id`.
fn receipt(
    manual: &Manual,
    id: qubix_protocol::AgreementId,
    sequence: u64,
    millis: u64,
    amount: Qu,
) -> JobMessage {
    let r = Receipt {
        agreement_id: id,
        consumer: manual.rogue.key.node_id(),
        report_sequence: sequence,
        billable_millis: millis,
        amount,
        issued_at: UnixMillis::now(),
    };
    let signed = Signed::sign(r, manual.rogue.key.signing_key(), &manual.network).unwrap();
    JobMessage::Receipt(signed.envelope().clone())
}
