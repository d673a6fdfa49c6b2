//! Twenty concurrent rentals of one provider through the market, in real containers: one
//! consumer launches twenty one-GPU instances at once against an offer of twenty simulated
//! GPUs; each negotiates, pays its first window on the devnet and runs in a container of
//! its own, labelled with its agreement id; terminating them all removes every container.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::future::join_all;
use qubix_node::config::{NodeConfig, ProviderConfig};
use qubix_node::node::RunningNode;
use qubix_node::service::NodeHandle;
use qubix_protocol::AgreementId;
use qubix_protocol::api::{Event, LaunchRequest};
use qubix_protocol::control::{JobAction, JobState};
use qubix_testnet::{NodeSpec, Testnet, wait_until};
use tokio::sync::broadcast;

const JOBS: usize = 20;
/// Twenty simulated GPUs of one model, hence one offer of twenty (`--simulate-gpu` takes at
/// most sixteen per entry).
const SIMULATED_GPUS: &str = "RTX 4090:24:10,RTX 4090:24:10";
const NETWORK: &str = "many-jobs-test";
/// The consumer's wallet pays one transfer at a time; fast devnet ticks keep twenty first
/// windows from queueing for minutes.
const DEVNET_TICK: Duration = Duration::from_millis(50);
/// Everything below waits on events; this only names what did not happen in time.
const WAIT: Duration = Duration::from_secs(60);
/// Twenty payments in a row, then twenty container starts.
const ALL_RUNNING: Duration = Duration::from_secs(100);

fn launch_request() -> LaunchRequest {
    LaunchRequest {
        offer_id: None,
        query: Some("gpu_name=RTX_4090".into()),
        image: "qubix/test:latest".into(),
        command: vec![
            "sh".into(),
            "-c".into(),
            "while true; do sleep 1; done".into(),
        ],
        env: Default::default(),
        ports: vec![],
        gpus: 1,
        duration_secs: 3600,
        max_price_per_gpu_hour: None,
        cpu_cores: Some(1),
        ram_mib: Some(64),
        disk_gib: Some(1),
        capabilities: Vec::new(),
    }
}

/// `docker` with `args`; its stdout lines.
fn docker(args: &[&str]) -> Vec<String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    assert!(out.status.success(), "docker {args:?} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The job networks the provider node created, and its firewall rules.
fn networks_and_rules_of_node(node: &str) -> (usize, usize) {
    let networks = docker(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("label=qubix.node={node}"),
    ])
    .len();
    let rules = std::process::Command::new("iptables-save")
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains(&format!("qubix:{node}:")))
                .count()
        })
        .unwrap_or(0);
    (networks, rules)
}

/// (agreement id label, container id, state) of every container the provider node created.
fn containers_of_node(node: &str) -> Vec<(String, String, String)> {
    docker(&[
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        &format!("label=qubix.node={node}"),
        "--format",
        "{{.Label \"qubix.agreement\"}} {{.ID}} {{.State}}",
    ])
    .into_iter()
    .filter_map(|line| {
        let mut parts = line.split(' ').map(str::to_owned);
        Some((parts.next()?, parts.next()?, parts.next()?))
    })
    .collect()
}

/// Removes what the provider left in Docker when the test fails half-way (a passing test
/// leaves nothing: it checks that terminate removed it all).
struct Leftovers(String);

impl Drop for Leftovers {
    fn drop(&mut self) {
        let filter = format!("label=qubix.node={}", self.0);
        let lists: [(&[&str], &[&str]); 2] = [
            (&["ps", "-aq"], &["rm", "-f"]),
            (&["volume", "ls", "-q"], &["volume", "rm", "-f"]),
        ];
        for (list, remove) in lists {
            let Ok(out) = Command::new("docker")
                .args(list)
                .args(["--filter", &filter])
                .output()
            else {
                return;
            };
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker").args(remove).args(&ids).output();
            }
        }
    }
}

/// The provider, started beside the harness because it must offer a core per rental: the
/// harness's providers offer the machine's cores, and every rental takes at least one, so a
/// two-core machine could admit only two. The containers' CPU limits still hold each to one
/// core; twenty idle shell loops fit on any machine.
async fn start_provider(net: &Testnet, bootstrap: usize, dir: &Path) -> RunningNode {
    let config = NodeConfig {
        data_dir: dir.join("provider"),
        network: NETWORK.into(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        bootstrap: vec![net.nodes[bootstrap].addr.to_string()],
        mdns: false,
        gateway: None,
        qubic_rpc: net.devnet().unwrap().url().to_owned(),
        provider: ProviderConfig {
            enabled: true,
            simulate_gpu: Some(SIMULATED_GPUS.into()),
            default_price: 3_600,
            cpu_cores: JOBS as u32,
            local_images: qubix_testnet::harness::engine_images(),
            ..ProviderConfig::default()
        },
        ..NodeConfig::default()
    };
    let wallet = qubix_testnet::harness::wallet_for(NETWORK, net.nodes.len(), "provider");
    RunningNode::start(config.validate().unwrap(), wallet, None)
        .await
        .unwrap()
}

/// Waits until every instance in `ids` is in `want`, following the consumer's events (and
/// re-reading its instances when the events lagged). Returns the instances whose pull
/// figures reached the consumer on the way: only those it saw pulling, as it polls.
async fn all_reach(
    c: &NodeHandle,
    events: &mut broadcast::Receiver<Event>,
    ids: &HashSet<AgreementId>,
    want: JobState,
    timeout: Duration,
) -> HashSet<AgreementId> {
    let mut pulls = HashSet::new();
    let mut there: HashSet<AgreementId> = c
        .instances()
        .await
        .unwrap()
        .into_iter()
        .filter(|i| ids.contains(&i.id) && i.state == want)
        .map(|i| i.id)
        .collect();
    let deadline = tokio::time::Instant::now() + timeout;
    while there.len() < ids.len() {
        let event = tokio::time::timeout_at(deadline, events.recv()).await;
        match event {
            Err(_) => {
                let states: Vec<_> = c
                    .instances()
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|i| (i.state, i.progress.map(|p| p.detail)))
                    .collect();
                panic!(
                    "timed out after {timeout:?}: {} of {} instances are {}; all: {states:?}",
                    there.len(),
                    ids.len(),
                    want.as_str()
                );
            }
            Ok(Ok(Event::InstanceState { id, state })) if ids.contains(&id) && state == want => {
                there.insert(id);
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                there.extend(
                    c.instances()
                        .await
                        .unwrap()
                        .into_iter()
                        .filter(|i| ids.contains(&i.id) && i.state == want)
                        .map(|i| i.id),
                );
            }
            Ok(Ok(Event::InstanceProgress { id, progress })) if progress.phase == "pulling" => {
                // The image is on the provider already: no layer had to be downloaded.
                assert_eq!(progress.layers_total, Some(0), "{progress:?}");
                assert!(progress.detail.contains("image present"), "{progress:?}");
                pulls.insert(id);
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => panic!("the consumer stopped"),
            Ok(Ok(_)) => {}
        }
    }
    pulls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_rentals_of_one_provider_each_run_in_their_own_container() {
    qubix_testnet::init_test_logging();
    if !qubix_testnet::docker_available() {
        eprintln!("skipping: no Docker daemon (set CI=true to make this a failure)");
        return;
    }
    let started = Instant::now();
    let mut net = Testnet::with_devnet(NETWORK, DEVNET_TICK).await.unwrap();
    let consumer = net.add(NodeSpec::consumer("consumer")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let provider = start_provider(&net, consumer, dir.path()).await;
    let provider_id = provider.handle.node_id().to_peer_id().to_string();
    let _leftovers = Leftovers(provider_id.clone());
    let c = net.nodes[consumer].handle().clone();
    wait_until(
        WAIT,
        "the offer of twenty GPUs to reach the consumer",
        || {
            let c = c.clone();
            async move {
                let page = c.offers(String::new(), None, None, None).await.ok()?;
                (page.total == 1 && page.offers.first()?.offer.gpu_count == JOBS as u32)
                    .then_some(())
            }
        },
    )
    .await
    .unwrap();

    // Twenty launches at once, each negotiated with the provider.
    let mut events = c.subscribe();
    let launches = (0..JOBS).map(|_| {
        let c = c.clone();
        async move { c.launch(launch_request()).await }
    });
    let ids: HashSet<AgreementId> = join_all(launches)
        .await
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("launch {i} failed: {e}")).id)
        .collect();
    assert_eq!(ids.len(), JOBS, "every launch is its own agreement");
    let negotiated = started.elapsed();

    let pulls = all_reach(&c, &mut events, &ids, JobState::Running, ALL_RUNNING).await;
    let running = started.elapsed();

    // One running container per agreement, found by its label, none shared.
    let containers = containers_of_node(&provider_id);
    assert_eq!(containers.len(), JOBS, "{containers:?}");
    let labels: HashSet<&str> = containers.iter().map(|(a, _, _)| a.as_str()).collect();
    let agreements: Vec<String> = ids.iter().map(ToString::to_string).collect();
    assert_eq!(
        labels,
        agreements.iter().map(String::as_str).collect(),
        "one container per agreement, labelled with it"
    );
    let distinct: HashSet<&str> = containers.iter().map(|(_, c, _)| c.as_str()).collect();
    assert_eq!(distinct.len(), JOBS, "no container is shared");
    for (agreement, _, state) in &containers {
        assert_eq!(state, "running", "the container of {agreement}");
    }
    let jobs = provider.handle.provider_jobs().await.unwrap();
    let on_provider = jobs.iter().filter(|j| j.state == JobState::Running);
    assert_eq!(on_provider.count(), JOBS, "the provider runs all twenty");

    // Terminate them all at once; every container goes.
    let terminations = ids.iter().map(|&id| {
        let c = c.clone();
        async move { (id, c.act(id, JobAction::Terminate).await) }
    });
    for (id, result) in join_all(terminations).await {
        let instance = result.unwrap_or_else(|e| panic!("terminating {id} failed: {e}"));
        assert_eq!(instance.state, JobState::Terminated, "instance {id}");
    }
    wait_until(WAIT, "every container to be removed", || {
        let left = containers_of_node(&provider_id).len();
        async move { (left == 0).then_some(()) }
    })
    .await
    .unwrap();
    // Each job's network and rules go after its container: wait for them too, or the
    // provider's shutdown below would cut their removal short.
    wait_until(WAIT, "every job network and rule to be removed", || {
        let left = networks_and_rules_of_node(&provider_id);
        async move { (left == (0, 0)).then_some(()) }
    })
    .await
    .unwrap();
    let removed = started.elapsed();
    eprintln!(
        "{JOBS} rentals: negotiated after {negotiated:.1?}, all running after {running:.1?}, \
         all removed after {removed:.1?}; pull figures seen for {} of them",
        pulls.len()
    );
    provider.shutdown().await;
    net.shutdown().await;
}
