//! The provider's host is never the consumer's (issue 13): a provider whose Docker does not
//! answer runs nothing on its own machine, offers nothing and says why, and offers again
//! once Docker answers; only `--unsafe-local-jobs` (simulated GPUs off mainnet) runs jobs
//! as host processes, and then its offers say they are unisolated.

use std::time::Duration;

use qubix_protocol::control::JobState;
use qubix_protocol::offer::Isolation;
use qubix_testnet::harness::wallet_seed_for;
use qubix_testnet::process::{NodeProcess, ProcessSpec, qubix_binary};
use qubix_testnet::registry::LoopbackRegistry;
use qubix_testnet::{NodeSpec, Testnet, wait_until};

use crate::common::{WAIT, long_job};

const NETWORK: &str = "hostile-host";

/// A provider process whose Docker is at `docker_sock` (a path that may not exist yet).
fn provider(
    net: &Testnet,
    name: &str,
    gpus: &str,
    docker_sock: &std::path::Path,
    unsafe_local_jobs: bool,
) -> ProcessSpec {
    ProcessSpec {
        name: name.into(),
        data_dir: net.dir().join(name),
        network: NETWORK.into(),
        port: 0,
        bootstrap: vec![net.nodes[0].addr.to_string()],
        qubic_rpc: net.devnet().unwrap().url().to_owned(),
        wallet_seed: wallet_seed_for(NETWORK, 90, name),
        simulate_gpu: Some(gpus.into()),
        price: Some(3_600),
        country: Some("DE".into()),
        gateway: Some(([127, 0, 0, 1], 0).into()),
        max_offers_per_sync: None,
        unsafe_local_jobs,
        local_images: qubix_testnet::harness::engine_images(),
        env: vec![(
            "DOCKER_HOST".into(),
            format!("unix://{}", docker_sock.display()),
        )],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_docker_a_provider_offers_nothing_and_runs_nothing_on_its_host() {
    qubix_testnet::init_test_logging();
    assert!(
        qubix_testnet::docker_available(),
        "this group runs real containers: run ./scripts/setup-test-env"
    );
    let binary = qubix_binary().unwrap();
    let mut net = Testnet::with_devnet(NETWORK, Duration::from_millis(100))
        .await
        .unwrap();
    let consumer = net.add(NodeSpec::consumer("consumer")).await.unwrap();
    let c = net.nodes[consumer].handle().clone();
    let sockets = tempfile::tempdir().unwrap();
    let docker_sock = sockets.path().join("docker.sock");

    // Docker does not answer (its socket is missing): the provider starts, says why, and
    // offers nothing, not even in its own book.
    let spec = provider(&net, "no-docker", "RTX 4090:24:1", &docker_sock, false);
    let node = NodeProcess::start(&binary, &spec).await.unwrap();
    let api = node.client().unwrap();
    let gpus = api.gpus().await.unwrap();
    let reason = gpus
        .reason
        .expect("the provider says why nothing is offered");
    assert!(reason.contains("container engine"), "{reason}");
    let own = api.offers("", None, None, None).await.unwrap();
    assert_eq!(own.total, 0, "nothing offered while Docker is down");

    // With --unsafe-local-jobs, a provider without Docker offers, and says it is unisolated.
    let local = provider(&net, "local-jobs", "RTX 3090:24:1", &docker_sock, true);
    let local = NodeProcess::start(&binary, &local).await.unwrap();
    let unisolated = wait_until(WAIT, "the local-jobs provider's offer", || {
        let c = c.clone();
        async move {
            let page = c
                .offers("gpu_name=RTX_3090".into(), None, None, None)
                .await
                .ok()?;
            page.offers.first().map(|v| v.offer.isolation)
        }
    })
    .await
    .unwrap();
    assert_eq!(unisolated, Isolation::Unisolated);
    local.stop().await.unwrap();

    // Docker answers at that address now: the provider offers within its next check, and
    // a rental runs in a container.
    std::os::unix::fs::symlink("/var/run/docker.sock", &docker_sock).unwrap();
    wait_until(WAIT, "the provider to offer once Docker answers", || {
        let c = c.clone();
        async move {
            let page = c
                .offers("gpu_name=RTX_4090".into(), None, None, None)
                .await
                .ok()?;
            (page.total == 1).then_some(())
        }
    })
    .await
    .unwrap();
    assert!(api.gpus().await.unwrap().reason.is_none());
    let mut launch = long_job(1);
    launch.query = Some("gpu_name=RTX_4090".into());
    let id = c.launch(launch).await.unwrap().id;
    wait_until(WAIT, "the rental to run in a container", || {
        let c = c.clone();
        async move { (c.instance(id).await.ok()?.state == JobState::Running).then_some(()) }
    })
    .await
    .unwrap();
    let ended = c
        .act(id, qubix_protocol::control::JobAction::Terminate)
        .await
        .unwrap();
    assert!(ended.state.is_final());
    // The terminated job's container, network and workspace go before the provider stops
    // (a provider that stops keeps its tenants' containers for its next start).
    let owner = api.node().await.unwrap().node_id.to_string();
    wait_until(WAIT, "the terminated job's container to be removed", || {
        let left = qubix_testnet::harness::left_on_engine(&owner);
        async move { left.is_empty().then_some(()) }
    })
    .await
    .unwrap();
    node.stop().await.unwrap();
    drop(c);
    net.shutdown().await;
}

/// Pulls are bounded in size and in time: an image larger than the limit is abandoned as too
/// large, a registry that never answers as too slow, and within the limits the same image
/// is pulled. Everything stays on loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pulls_are_bounded_in_size_and_time() {
    use qubix_node::runtime::{
        ContainerRuntime, DockerRuntime, PullFailure, PullLimits, RuntimeError,
    };
    assert!(
        qubix_testnet::docker_available(),
        "run ./scripts/setup-test-env"
    );
    let registry = LoopbackRegistry::start().await.unwrap();
    let name = format!("big-{}", qubix_protocol::AgreementId::random());
    let image = registry
        .publish("qubix/test:latest", &name, 4 << 20)
        .unwrap();
    let runtime = |limits: PullLimits| async move {
        DockerRuntime::connect()
            .await
            .unwrap()
            .with_pull_limits(limits)
    };
    let too_large = |e: &RuntimeError| {
        matches!(
            e,
            RuntimeError::Pull {
                failure: PullFailure::TooLarge,
                ..
            }
        )
    };
    let small = runtime(PullLimits {
        max_bytes: 1 << 20,
        timeout: Duration::from_secs(60),
    })
    .await;
    let (tx, _rx) = tokio::sync::mpsc::channel(64);
    let err = small.pull(&image, tx).await.unwrap_err();
    assert!(too_large(&err), "{err}");
    assert!(!present(&image), "nothing of it kept");

    // A registry that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    let patient = runtime(PullLimits {
        max_bytes: 1 << 30,
        timeout: Duration::from_secs(2),
    })
    .await;
    let (tx, _rx) = tokio::sync::mpsc::channel(64);
    let err = patient
        .pull(&format!("{silent_addr}/qubix/slow:1"), tx)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::Pull {
                failure: PullFailure::TimedOut,
                ..
            }
        ),
        "{err}"
    );
    held.abort();

    // Within the limits, the image is pulled.
    let (tx, _rx) = tokio::sync::mpsc::channel(64);
    patient
        .pull(&image, tx)
        .await
        .expect("pulled within the limits");
    assert!(present(&image));
    qubix_testnet::registry::docker(&["rmi", &image]).unwrap();
}

/// Whether the engine holds `image`.
fn present(image: &str) -> bool {
    std::process::Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A provider keeping ended jobs' records for three seconds.
fn prunes_soon(c: &mut qubix_node::config::NodeConfig) {
    c.record_retention_secs = 3;
}

/// An image the provider pulled for a job is removed once no job needs it: after the job
/// ended and its record (with the exited container) went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_pulled_for_jobs_are_removed_once_unused() {
    qubix_testnet::init_test_logging();
    assert!(
        qubix_testnet::docker_available(),
        "run ./scripts/setup-test-env"
    );
    let registry = LoopbackRegistry::start().await.unwrap();
    let name = format!("collected-{}", qubix_protocol::AgreementId::random());
    let image = registry.publish("qubix/test:latest", &name, 4096).unwrap();
    let mut net = Testnet::with_devnet("hostile-images", Duration::from_millis(100))
        .await
        .unwrap();
    net.add(NodeSpec::provider("provider", "RTX 4090:24:1", 3_600, "DE").configured(prunes_soon))
        .await
        .unwrap();
    let consumer = net.add(NodeSpec::consumer("consumer")).await.unwrap();
    let c = net.nodes[consumer].handle().clone();
    wait_until(WAIT, "the offer", || {
        let c = c.clone();
        async move { (c.offers(String::new(), None, None, None).await.ok()?.total == 1).then_some(()) }
    })
    .await
    .unwrap();
    let mut launch = long_job(1);
    launch.image = image.clone();
    launch.command = vec!["sh".into(), "-c".into(), "echo done; sleep 1".into()];
    let id = c.launch(launch).await.unwrap().id;
    wait_until(WAIT, "the job to complete", || {
        let c = c.clone();
        async move {
            c.instance(id)
                .await
                .ok()
                .filter(|i| i.state == JobState::Completed)
        }
    })
    .await
    .unwrap();
    assert!(
        present(&image),
        "pulled from the loopback registry for the job"
    );
    wait_until(WAIT, "the unused image to be removed", || {
        let image = image.clone();
        async move { (!present(&image)).then_some(()) }
    })
    .await
    .unwrap();
    // The allow-listed test image, never pulled, stays.
    assert!(present("qubix/test:latest"));
    drop(c);
    net.shutdown().await;
}
