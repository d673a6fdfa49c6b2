//! Jobs end to end on a loopback testnet with the Qubic devnet and real Docker containers: a
//! consumer rents, pays the first window with a real signed transfer, the provider verifies
//! it on chain and starts the container; logs and metrics reach the consumer; stop keeps the
//! container, start resumes it, terminate removes it and refunds the unused part.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use qubix_protocol::api::LaunchRequest;
use qubix_protocol::control::{JobAction, JobErrorCode, JobMessage, JobReply, JobState};
use qubix_testnet::{NodeSpec, Testnet, wait_until};

const WAIT: Duration = Duration::from_secs(60);

/// Waits until the consumer behind `c` holds the provider's one offer.
async fn offer_arrives(c: &qubix_node::service::NodeHandle) {
    wait_until(WAIT, "the offer to reach the consumer", || {
        let c = c.clone();
        async move { (c.offers(String::new(), None, None, None).await.ok()?.total == 1).then_some(()) }
    })
    .await
    .unwrap();
}

/// One GPU for an hour, running `script` under `sh -c` in the test image (one core, 128 MiB).
fn shell_job(script: &str) -> LaunchRequest {
    LaunchRequest {
        offer_id: None,
        query: None,
        image: "qubix/test:latest".into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        env: Default::default(),
        ports: vec![],
        gpus: 1,
        duration_secs: 3600,
        max_price_per_gpu_hour: None,
        cpu_cores: Some(1),
        ram_mib: Some(128),
        disk_gib: Some(1),
        capabilities: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rent_pay_run_watch_stop_start_terminate_refund() {
    qubix_testnet::init_test_logging();
    if !qubix_testnet::docker_available() {
        eprintln!("skipping: no Docker daemon (set CI=true to make this a failure)");
        return;
    }
    let mut net = Testnet::with_devnet("jobs-test", Duration::from_millis(200))
        .await
        .unwrap();
    net.add(NodeSpec::provider("provider", "RTX 4090:24:1", 3_600, "DE"))
        .await
        .unwrap();
    let consumer = net.add(NodeSpec::consumer("consumer")).await.unwrap();
    let c = net.nodes[consumer].handle().clone();
    offer_arrives(&c).await;
    let launch = LaunchRequest {
        query: Some("gpu_name=RTX_4090".into()),
        ram_mib: Some(256),
        ..shell_job(
            "echo hello from the job; echo data > /workspace/kept; while true; do sleep 1; done",
        )
    };
    let instance = c.launch(launch).await.unwrap();
    let id = instance.id;
    let state = |want: JobState| {
        let c = c.clone();
        move || {
            let c = c.clone();
            async move { (c.instance(id).await.ok()?.state == want).then_some(()) }
        }
    };
    wait_until(
        WAIT,
        "the instance to run after payment",
        state(JobState::Running),
    )
    .await
    .unwrap();
    let paid = c.instance(id).await.unwrap().paid;
    assert_eq!(
        paid.0, 600,
        "the first window (600 s at 1 QU/s) is paid before anything runs"
    );
    // Logs travel from the container to the consumer.
    wait_until(WAIT, "the job's output in the consumer's log", || {
        let c = c.clone();
        async move {
            c.logs(id, 100)
                .await
                .ok()?
                .0
                .iter()
                .any(|l| l.line.contains("hello from the job"))
                .then_some(())
        }
    })
    .await
    .unwrap();
    // Metrics arrive, with simulated GPU figures labelled as such.
    wait_until(WAIT, "a metrics sample", || {
        let c = c.clone();
        async move {
            c.metrics(id, 10)
                .await
                .ok()?
                .0
                .last()
                .filter(|s| s.simulated && !s.gpus.is_empty())
                .map(|_| ())
        }
    })
    .await
    .unwrap();
    // The provider's signed usage reports are countersigned as receipts: spend shows.
    wait_until(WAIT, "a countersigned usage report", || {
        let c = c.clone();
        async move { (c.instance(id).await.ok()?.spent.0 > 0).then_some(()) }
    })
    .await
    .unwrap();
    // Stop keeps the container; start resumes it.
    assert_eq!(
        c.act(id, JobAction::Stop).await.unwrap().state,
        JobState::Stopped
    );
    assert_eq!(
        c.act(id, JobAction::Start).await.unwrap().state,
        JobState::Running
    );
    // Terminate removes it and refunds the unused part of the window.
    let devnet = net.devnet().unwrap();
    let consumer_identity =
        qubix_testnet::harness::wallet_for("jobs-test", consumer, "consumer").identity();
    let before = devnet.balance(&consumer_identity);
    assert_eq!(
        c.act(id, JobAction::Terminate).await.unwrap().state,
        JobState::Terminated
    );
    wait_until(WAIT, "the refund to arrive on chain", || {
        let now = devnet.balance(&consumer_identity);
        async move { (now > before).then_some(()) }
    })
    .await
    .unwrap();
    let refunded = devnet.balance(&consumer_identity) - before;
    assert!(
        refunded > 500 && refunded < 600,
        "refund of the unused part, got {refunded}"
    );
    assert!(
        c.act(id, JobAction::Start).await.is_err(),
        "a terminated instance cannot start"
    );
    books_agree(&net, "jobs-test", consumer, 0, id, refunded).await;
    net.shutdown().await;
}

/// Both nodes' escrow ledgers tell the same story of a finished rental, each matches its
/// wallet's balance on chain, and both audit clean.
async fn books_agree(
    net: &Testnet,
    network: &str,
    consumer: usize,
    provider: usize,
    id: qubix_protocol::AgreementId,
    refunded: u64,
) {
    let c = net.nodes[consumer].ledger().clone();
    let p = net.nodes[provider].ledger().clone();
    wait_until(
        WAIT,
        "the consumer's ledger to record the verified refund",
        || {
            let c = c.clone();
            async move { (c.instance_billing(&id).ok()??.refunded.0 == refunded).then_some(()) }
        },
    )
    .await
    .unwrap();
    let mine = c.instance_billing(&id).unwrap().unwrap();
    let theirs = p.agreement(&id).unwrap().unwrap();
    assert_eq!(
        mine.paid, theirs.paid,
        "what the consumer paid, the provider received"
    );
    assert_eq!(
        mine.refunded, theirs.refunded,
        "what the provider refunded arrived"
    );
    assert_eq!(mine.escrow.0, 0, "the unspent escrow returned to available");
    assert!(mine.spent.0 > 0);
    assert_eq!(
        mine.spent,
        p.earnings().unwrap().earned,
        "the consumer's spend is the provider's earnings (same receipts)"
    );
    assert_eq!(
        mine.paid.0 - mine.spent.0,
        mine.refunded.0,
        "every paid QU is either spent or refunded"
    );
    assert_eq!(p.earnings().unwrap().refunds_due.0, 0, "nothing left owed");
    let signing_network = net.network();
    let receipts = c.signed_receipts(&id, &signing_network).unwrap();
    assert_eq!(
        receipts,
        p.signed_receipts(&id, &signing_network).unwrap(),
        "both sides keep the same signed receipts"
    );
    assert_eq!(
        receipts.last().map(|r| r.amount),
        Some(mine.spent),
        "the newest receipt is what was spent"
    );
    let devnet = net.devnet().unwrap();
    for (index, name, ledger) in [(consumer, "consumer", &c), (provider, "provider", &p)] {
        let audit = ledger.audit().unwrap();
        assert!(audit.is_clean(), "{name}'s ledger: {:?}", audit.problems);
        let identity = qubix_testnet::harness::wallet_for(network, index, name).identity();
        let chain = qubix_protocol::Qu(devnet.balance(&identity));
        assert_eq!(
            ledger.reconcile(chain).unwrap().difference,
            0,
            "{name}'s ledger matches its wallet on chain"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_restart_mid_job_finds_its_container_and_the_job_runs_on() {
    qubix_testnet::init_test_logging();
    if !qubix_testnet::docker_available() {
        eprintln!("skipping: no Docker daemon (set CI=true to make this a failure)");
        return;
    }
    let mut net = Testnet::with_devnet("restart-test", Duration::from_millis(200))
        .await
        .unwrap();
    let provider = net
        .add(NodeSpec::provider("provider", "RTX 4090:24:1", 3_600, "DE"))
        .await
        .unwrap();
    let consumer = net.add(NodeSpec::consumer("consumer")).await.unwrap();
    let c = net.nodes[consumer].handle().clone();
    offer_arrives(&c).await;
    let launch = shell_job("i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done");
    let id = c.launch(launch).await.unwrap().id;
    let running = || {
        let c = c.clone();
        async move { (c.instance(id).await.ok()?.state == JobState::Running).then_some(()) }
    };
    wait_until(WAIT, "the instance to run", running)
        .await
        .unwrap();
    net.restart(provider).await.unwrap();
    // The restarted provider adopts the container by its label: the job keeps running and
    // its log keeps growing on the consumer.
    let before = c.logs(id, 1000).await.unwrap().0.len();
    wait_until(WAIT, "new log lines after the provider's restart", || {
        let c = c.clone();
        async move { (c.logs(id, 1000).await.ok()?.0.len() > before + 2).then_some(()) }
    })
    .await
    .unwrap();
    assert_eq!(c.instance(id).await.unwrap().state, JobState::Running);
    let jobs = net.nodes[provider].handle().provider_jobs().await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].state,
        JobState::Running,
        "the provider's job survived its restart"
    );
    let devnet = net.devnet().unwrap();
    let identity =
        qubix_testnet::harness::wallet_for("restart-test", consumer, "consumer").identity();
    let before = devnet.balance(&identity);
    assert_eq!(
        c.act(id, JobAction::Terminate).await.unwrap().state,
        JobState::Terminated
    );
    // The provider's books survived its restart: the refund is what they say is owed.
    wait_until(WAIT, "the refund to arrive on chain", || {
        let now = devnet.balance(&identity);
        async move { (now > before).then_some(()) }
    })
    .await
    .unwrap();
    let refunded = devnet.balance(&identity) - before;
    books_agree(&net, "restart-test", consumer, provider, id, refunded).await;
    net.shutdown().await;
}

/// A provider that dies mid-window: the consumer notices its silence, marks the instance
/// failed, returns the unspent escrow to available and records the unused paid time as owed
/// by the provider; its books still match its wallet on chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_dies_mid_window_owes_the_unused_time() {
    qubix_testnet::init_test_logging();
    if !qubix_testnet::docker_available() {
        eprintln!("skipping: no Docker daemon (set CI=true to make this a failure)");
        return;
    }
    let mut net = Testnet::with_devnet("vanish-test", Duration::from_millis(200))
        .await
        .unwrap();
    let provider = net
        .add(NodeSpec::provider("provider", "RTX 4090:24:1", 3_600, "DE"))
        .await
        .unwrap();
    let consumer = net.add(NodeSpec::consumer("consumer")).await.unwrap();
    let c = net.nodes[consumer].handle().clone();
    offer_arrives(&c).await;
    // Ends on its own, so no container outlives the test for long.
    let launch = LaunchRequest {
        ram_mib: Some(64),
        ..shell_job("sleep 90")
    };
    let id = c.launch(launch).await.unwrap().id;
    wait_until(WAIT, "a countersigned usage report", || {
        let c = c.clone();
        async move {
            let i = c.instance(id).await.ok()?;
            (i.state == JobState::Running && i.spent.0 > 0).then_some(())
        }
    })
    .await
    .unwrap();
    net.kill(provider).await;
    wait_until(
        Duration::from_secs(90),
        "the consumer to give the silent provider up",
        || {
            let c = c.clone();
            async move {
                let i = c.instance(id).await.ok()?;
                (i.state == JobState::Failed
                    && i.reason == Some(qubix_protocol::control::EndReason::ProviderLost))
                .then_some(())
            }
        },
    )
    .await
    .unwrap();
    let ledger = net.nodes[consumer].ledger().clone();
    let line = wait_until(WAIT, "the consumer's books to close", || {
        let ledger = ledger.clone();
        async move {
            let record = ledger.agreement(&id).ok()??;
            record.ended_at.is_some().then_some(())?;
            ledger.instance_billing(&id).ok()?
        }
    })
    .await
    .unwrap();
    assert_eq!(line.paid.0, 600, "one window was paid");
    assert_eq!(line.escrow.0, 0, "the unspent escrow is available again");
    assert!(line.spent.0 > 0 && line.spent.0 < 600, "{line:?}");
    let owed = ledger
        .balance(&qubix_ledger::Account::RefundReceivable(id))
        .unwrap();
    assert_eq!(
        owed,
        i64::try_from(line.paid.0 - line.spent.0).unwrap(),
        "the unused paid time is recorded as owed by the provider"
    );
    assert!(ledger.audit().unwrap().is_clean());
    let identity =
        qubix_testnet::harness::wallet_for("vanish-test", consumer, "consumer").identity();
    let chain = qubix_protocol::Qu(net.devnet().unwrap().balance(&identity));
    assert_eq!(ledger.reconcile(chain).unwrap().difference, 0);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_can_neither_control_nor_read_someone_elses_job() {
    use qubix_protocol::control::{JobControl, JobErrorCode, JobMessage, JobReply};
    use qubix_protocol::{Nonce, Signed, UnixMillis};
    qubix_testnet::init_test_logging();
    if !qubix_testnet::docker_available() {
        eprintln!("skipping: no Docker daemon (set CI=true to make this a failure)");
        return;
    }
    let mut net = Testnet::with_devnet("stranger-test", Duration::from_millis(200))
        .await
        .unwrap();
    let provider = net
        .add(NodeSpec::provider("provider", "RTX 4090:24:1", 3_600, "DE"))
        .await
        .unwrap();
    let consumer = net.add(NodeSpec::consumer("consumer")).await.unwrap();
    let c = net.nodes[consumer].handle().clone();
    offer_arrives(&c).await;
    let launch = shell_job("echo secret-output; while true; do sleep 1; done");
    let id = c.launch(launch).await.unwrap().id;
    wait_until(WAIT, "the instance to run", || {
        let c = c.clone();
        async move { (c.instance(id).await.ok()?.state == JobState::Running).then_some(()) }
    })
    .await
    .unwrap();
    let stranger = net.add_rogue(77).await.unwrap();
    let provider_peer = net.nodes[provider].handle().node_id().to_peer_id();
    wait_until(WAIT, "the stranger to connect", || {
        let s = stranger.net.clone();
        async move {
            s.peers()
                .await
                .ok()?
                .iter()
                .any(|p| p.peer == provider_peer)
                .then_some(())
        }
    })
    .await
    .unwrap();
    // A control request signed by the stranger for the consumer's job.
    let control = JobControl {
        agreement_id: id,
        consumer: stranger.key.node_id(),
        action: JobAction::Terminate,
        nonce: Nonce::random(),
        issued_at: UnixMillis::now(),
    };
    let signed = Signed::sign(control, stranger.key.signing_key(), &net.network()).unwrap();
    let reply = stranger
        .net
        .job(
            provider_peer,
            JobMessage::Control(signed.envelope().clone()),
        )
        .await
        .unwrap();
    assert_eq!(reply, JobReply::Error(JobErrorCode::NotYourJob));
    // Reading its logs is refused too.
    let reply = stranger
        .net
        .job(
            provider_peer,
            JobMessage::Logs {
                agreement_id: id,
                after: 0,
                max: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(reply, JobReply::Error(JobErrorCode::NotYourJob));
    // The job is untouched.
    assert_eq!(c.instance(id).await.unwrap().state, JobState::Running);
    assert_eq!(
        c.act(id, JobAction::Terminate).await.unwrap().state,
        JobState::Terminated
    );
    drop(stranger);
    net.shutdown().await;
}

/// Both sides keep an ended job's record three seconds after its books close.
fn prunes_soon(c: &mut qubix_node::config::NodeConfig) {
    c.record_retention_secs = 3;
}

/// A job that completes: once both books are closed and the retention period has passed,
/// both sides prune its record, the provider removes its exited container and workspace,
/// and each side keeps the signed agreement as evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_job_is_pruned_with_its_container_and_its_agreement_kept() {
    qubix_testnet::init_test_logging();
    assert!(
        qubix_testnet::docker_available(),
        "this test runs a real container: run ./scripts/setup-test-env"
    );
    let mut net = Testnet::with_devnet("prune-test", Duration::from_millis(200))
        .await
        .unwrap();
    let provider = net
        .add(NodeSpec::provider("provider", "RTX 4090:24:1", 3_600, "DE").configured(prunes_soon))
        .await
        .unwrap();
    let consumer = net
        .add(NodeSpec::consumer("consumer").configured(prunes_soon))
        .await
        .unwrap();
    let c = net.nodes[consumer].handle().clone();
    let p = net.nodes[provider].handle().clone();
    offer_arrives(&c).await;
    let launch = shell_job("echo done; sleep 2");
    let id = c.launch(launch).await.unwrap().id;
    let completed = wait_until(WAIT, "the job to complete", || {
        let p = p.clone();
        async move {
            let jobs = p.provider_jobs().await.ok()?;
            jobs.into_iter()
                .find(|j| j.id == id && j.state == JobState::Completed)
        }
    })
    .await
    .unwrap();
    assert_eq!(completed.reason, None);
    // The exited container is still there for the consumer's logs…
    let network = net.network();
    let runtime = qubix_node::runtime::connect_owned(
        &network,
        &net.nodes[provider].handle().node_id().to_string(),
        &Default::default(),
    )
    .await
    .unwrap();
    let held = |runtime: std::sync::Arc<dyn qubix_node::runtime::ContainerRuntime>| async move {
        runtime
            .list_managed()
            .await
            .unwrap()
            .iter()
            .any(|m| m.id.agreement_id == id)
    };
    assert!(held(runtime.clone()).await, "the exited container is kept");
    // …until the record goes, on both sides.
    wait_until(WAIT, "both sides to prune the record", || {
        let (c, p) = (c.clone(), p.clone());
        async move {
            let provider_gone = p.provider_jobs().await.ok()?.iter().all(|j| j.id != id);
            let consumer_gone = c.instance(id).await.is_err();
            (provider_gone && consumer_gone).then_some(())
        }
    })
    .await
    .unwrap();
    // The provider still answers the consumer about the pruned job, from its evidence:
    // status (with the refunds) yes, a state change no.
    let key = net.nodes[consumer].key();
    let ask = |action: JobAction| {
        let control = qubix_protocol::control::JobControl {
            agreement_id: id,
            consumer: key.node_id(),
            action,
            nonce: qubix_protocol::Nonce::random(),
            issued_at: qubix_protocol::UnixMillis::now(),
        };
        let signed = qubix_protocol::Signed::sign(control, key.signing_key(), &network).unwrap();
        let net = c.net().clone();
        let provider_peer = p.node_id().to_peer_id();
        async move {
            net.job(
                provider_peer,
                JobMessage::Control(signed.envelope().clone()),
            )
            .await
            .unwrap()
        }
    };
    match ask(JobAction::Status).await {
        JobReply::Status(s) => {
            assert_eq!(s.state, JobState::Completed);
            assert_eq!(s.refunds.len(), 1, "{s:?}");
        }
        other => panic!("no status for the pruned job: {other:?}"),
    }
    assert_eq!(
        ask(JobAction::Restart).await,
        JobReply::Error(JobErrorCode::WrongState)
    );
    wait_until(WAIT, "the container and workspace to be removed", || {
        let runtime = runtime.clone();
        async move { (!held(runtime).await).then_some(()) }
    })
    .await
    .unwrap();
    // The books are untouched by pruning, and each side keeps the agreement.
    let billing = net.nodes[consumer].ledger().instance_billing(&id).unwrap();
    assert!(
        billing.is_some(),
        "the consumer's books of the rental remain"
    );
    for i in [provider, consumer] {
        let data = net.nodes[i].data_dir.clone();
        net.stop(i).await;
        let store = qubix_node::store::Store::open(&data).unwrap();
        let kept = store.evidence(&id).unwrap().expect("the agreement is kept");
        assert_eq!(kept.state, JobState::Completed);
        assert_eq!(
            kept.agreement
                .verify(&network)
                .unwrap()
                .payload()
                .agreement_id,
            id
        );
    }
    drop((c, p));
    net.shutdown().await;
}
