//! Attacks on `job/2`: a captured control request replayed, also after the provider
//! restarts (8), or signed for another network (10); request and payment-notice floods (8); and strings from a provider that
//! would reach a terminal or a shell hint (12).

use qubix_protocol::control::{JobAction, JobErrorCode, JobMessage, JobReply, JobState};
use qubix_protocol::job::{PortPurpose, PortRequest};
use qubix_protocol::{AgreementId, Nonce};
use qubix_testnet::{NodeSpec, wait_until};

use crate::common::{Arena, Manual, PRICE, WAIT, long_job, short_terms};

/// A provider announcing a host that is a shell command.
fn odd_host(c: &mut qubix_node::config::NodeConfig) {
    short_terms(c);
    c.provider.public_host = "1.2.3.4; touch /tmp/owned".into();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_protocol_attacks_gain_nothing() {
    let mut arena = Arena::start("hostile-jobs").await;
    let honest = arena.honest_rental().await;
    let offer = arena.provider_offer(arena.consumer).await;
    let provider_peer = offer.provider.to_peer_id();
    let network = arena.network();

    // 8. A control request captured on the way (the consumer's own, signed by its key) works
    //    once, and never again: not now, not after the provider restarts.
    let consumer_key = arena.net.nodes[arena.consumer].key();
    let control = qubix_protocol::control::JobControl {
        agreement_id: honest,
        consumer: consumer_key.node_id(),
        action: JobAction::Stop,
        nonce: Nonce::random(),
        issued_at: qubix_protocol::UnixMillis::now(),
    };
    let signed =
        qubix_protocol::Signed::sign(control, consumer_key.signing_key(), &network).unwrap();
    let captured = JobMessage::Control(signed.envelope().clone());
    let send = |arena: &Arena, message: JobMessage| {
        let net = arena.net.nodes[arena.consumer].handle().net().clone();
        async move { net.job(provider_peer, message).await.unwrap() }
    };
    // 10. The same request signed for another network (say, captured on a testnet and
    //     played on this one) does not open here.
    let elsewhere = qubix_protocol::topics::Network::new("othernet").unwrap();
    let mut foreign = signed.payload().clone();
    foreign.nonce = Nonce::random();
    let foreign =
        qubix_protocol::Signed::sign(foreign, consumer_key.signing_key(), &elsewhere).unwrap();
    assert_eq!(
        send(&arena, JobMessage::Control(foreign.envelope().clone())).await,
        JobReply::Error(JobErrorCode::Refused)
    );
    let first = send(&arena, captured.clone()).await;
    assert!(
        matches!(&first, JobReply::Status(s) if s.state == JobState::Stopped),
        "{first:?}"
    );
    let c = arena.net.nodes[arena.consumer].handle().clone();
    c.act(honest, JobAction::Start).await.unwrap();
    assert_eq!(
        send(&arena, captured.clone()).await,
        JobReply::Error(JobErrorCode::Refused)
    );
    arena.net.restart(arena.provider).await.unwrap();
    let replayed = wait_until(WAIT, "the restarted provider to answer", || {
        let message = captured.clone();
        let net = arena.net.nodes[arena.consumer].handle().net().clone();
        async move { net.job(provider_peer, message).await.ok() }
    })
    .await
    .unwrap();
    assert_eq!(replayed, JobReply::Error(JobErrorCode::Refused));
    arena
        .wait_state(arena.consumer, honest, JobState::Running)
        .await;

    let rogue = Manual::join(&arena, 24, 10_000).await;
    // Payment notices for transactions that are not on chain: a job keeps a few pending,
    // then the rest are refused until those are checked.
    let terms = rogue.agree(&offer).await;
    let id = terms.payload().agreement_id;
    let mut replies = Vec::new();
    for i in 0..10u8 {
        let notice = JobMessage::Paid {
            agreement_id: id,
            window: 0,
            tx_id: qubix_ledger::qubic::TxId::from_hash([i; 32]).to_string(),
        };
        replies.push(rogue.job(&offer, notice).await);
    }
    let kept = replies
        .iter()
        .filter(|r| matches!(r, JobReply::Status(_)))
        .count();
    let limited = replies
        .iter()
        .filter(|r| **r == JobReply::Error(JobErrorCode::RateLimited))
        .count();
    assert_eq!(
        (kept, limited),
        (4, 6),
        "four unchecked notices are kept, the rest refused: {replies:?}"
    );
    // A notice that cannot name a transaction is refused outright.
    let garbage = JobMessage::Paid {
        agreement_id: id,
        window: 0,
        tx_id: "not a transaction".into(),
    };
    assert_eq!(
        rogue.job(&offer, garbage).await,
        JobReply::Error(JobErrorCode::Refused)
    );
    // An ended job answers its status at once.
    let ended = rogue.control(id, JobAction::Terminate);
    rogue.job(&offer, ended).await;
    assert_eq!(rogue.state(&offer, id).await, JobState::Terminated);

    // 8. A flood of requests from one peer meets the rate limit; the honest consumer, polling
    //    meanwhile, is not affected.
    let unknown = AgreementId::random();
    // Waves of 32 at once: libp2p already refuses streams past 64 at a time, so what reaches
    // the service is a fast, steady flood.
    let mut replies = Vec::new();
    let started = std::time::Instant::now();
    for _ in 0..20 {
        let wave = (0..32).map(|_| {
            let status = rogue.control(unknown, JobAction::Status);
            let net = rogue.rogue.net.clone();
            async move { net.job(provider_peer, status).await }
        });
        replies.extend(futures::future::join_all(wave).await);
    }
    let limited = replies
        .iter()
        .filter(|r| matches!(r, Ok(JobReply::Error(JobErrorCode::RateLimited))))
        .count();
    let elapsed = started.elapsed().as_secs_f64();
    let served = replies
        .iter()
        .filter(|r| matches!(r, Ok(JobReply::Error(JobErrorCode::UnknownJob))))
        .count();
    assert!(limited > 0, "640 requests in waves meet the per-peer limit");
    assert!(
        served as f64 <= 60.0 + 20.0 * elapsed + 1.0,
        "at most a burst of 60 and 20 a second are served: {served} in {elapsed:.1} s"
    );
    arena
        .wait_state(arena.consumer, honest, JobState::Running)
        .await;

    // 12. A provider announcing a shell command as its host, and a job printing escape
    //     sequences: the consumer shows neither as such.
    arena
        .net
        .add(NodeSpec::provider("odd", "RTX 3090:24:1", PRICE, "FR").configured(odd_host))
        .await
        .unwrap();
    arena.offers_reach(arena.consumer, 2).await;
    let mut launch = long_job(1);
    launch.query = Some("gpu_name=RTX_3090".into());
    launch.ports = vec![PortRequest {
        container_port: 22,
        purpose: PortPurpose::Ssh,
    }];
    launch.command = vec![
        "sh".into(),
        "-c".into(),
        "printf 'ok \\033]0;owned\\007\\033[2J end\\n'; while true; do sleep 1; done".into(),
    ];
    let odd = c.launch(launch).await.unwrap().id;
    arena
        .wait_state(arena.consumer, odd, JobState::Running)
        .await;
    let line = wait_until(WAIT, "the job's output at the consumer", || {
        let c = c.clone();
        async move {
            let (lines, _) = c.logs(odd, 100).await.ok()?;
            lines
                .into_iter()
                .find(|l| l.line.contains("end"))
                .map(|l| l.line)
        }
    })
    .await
    .unwrap();
    assert!(
        !line.chars().any(|ch| ch.is_control() && ch != '\t'),
        "no control character reaches the consumer's API: {line:?}"
    );
    assert!(line.contains("\\u{1b}]0;owned"), "{line}");
    let instance = c.instance(odd).await.unwrap();
    assert!(
        instance
            .connections
            .iter()
            .all(|x| !x.host.contains(';') && !x.hint.contains("touch")),
        "{:?}",
        instance.connections
    );
    c.act(odd, JobAction::Terminate).await.unwrap();

    arena.finish_honest_rental(honest).await;
    arena
        .books_reconcile(&[arena.provider, arena.consumer])
        .await;
    rogue.leave().await;
    arena.net.shutdown().await;
}
