//! The Docker runtime against a real daemon and the local test image `qubix/test:latest`
//! (busybox; built by scripts/setup-test-env). Without Docker these tests fail under
//! CI=true and skip with a notice otherwise. Every container and volume a test creates is
//! removed by a guard when the test ends, pass or fail.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use futures::StreamExt;
use qubix_node::runtime::{
    BASE_CAPABILITIES, ContainerId, ContainerRuntime, ContainerSpec, ContainerStatus,
    DockerRuntime, LABEL_AGREEMENT, PullFailure, RuntimeError, RuntimeKind, container_name,
    workspace_volume,
};
use qubix_protocol::api::{LogLine, LogStream};
use qubix_protocol::ids::AgreementId;
use qubix_protocol::job::{EnvVar, PortPurpose, PortRequest};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

const IMAGE: &str = "qubix/test:latest";
const STOP: Duration = Duration::from_secs(5);
const DEADLINE: Duration = Duration::from_secs(20);

/// A runtime, a raw client for checks behind its back, and cleanup of what the test made.
struct Harness {
    rt: Arc<dyn ContainerRuntime>,
    /// The same runtime, for its own clean-up of what is left.
    engine: DockerRuntime,
    docker: Docker,
    made: Mutex<Vec<AgreementId>>,
}

impl Harness {
    /// The harness, or `None` (skip) when Docker is absent and CI is not set.
    async fn new() -> Option<Self> {
        let under_ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let rt = match DockerRuntime::connect().await {
            // An owner of its own: other nodes on this daemon (a testnet's reconciliation)
            // neither list nor remove this test's containers.
            Ok(rt) => rt.with_owner(format!("runtime-test-{}", AgreementId::random())),
            Err(e) if under_ci => panic!("CI=true needs a Docker daemon: {e}"),
            Err(e) => {
                eprintln!("SKIPPED (no Docker; CI=true makes this a failure): {e}");
                return None;
            }
        };
        let docker = Docker::connect_with_local_defaults()
            .unwrap()
            .negotiate_version()
            .await
            .unwrap();
        if docker.inspect_image(IMAGE).await.is_err() {
            assert!(
                !under_ci,
                "CI=true needs the image {IMAGE}: run scripts/setup-test-env"
            );
            eprintln!("SKIPPED: image {IMAGE} missing; run scripts/setup-test-env");
            return None;
        }
        Some(Self {
            rt: Arc::new(rt.clone()),
            engine: rt,
            docker,
            made: Mutex::new(Vec::new()),
        })
    }

    /// A small spec running `sh -c script`, registered for cleanup.
    fn spec(&self, script: &str) -> ContainerSpec {
        let agreement_id = AgreementId::random();
        self.made.lock().unwrap().push(agreement_id);
        ContainerSpec {
            agreement_id,
            image: IMAGE.into(),
            command: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![EnvVar {
                name: "GREETING".into(),
                value: "hello".into(),
            }],
            gpu_uuids: vec![],
            attach_gpus: false,
            cpu_cores: 1,
            memory_mib: 64,
            shm_mib: 16,
            pids_limit: 64,
            disk_gib: 1,
            ports: vec![],
            publish_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            workspace: true,
            capabilities: vec![],
            disk_limit_mib: 0,
        }
    }

    async fn run(&self, spec: &ContainerSpec) -> ContainerId {
        let id = self.rt.create(spec).await.expect("create");
        self.rt.start(&id).await.expect("start");
        id
    }

    async fn status(&self, id: &ContainerId) -> ContainerStatus {
        self.rt.inspect(id).await.expect("inspect").status
    }

    async fn lines(&self, id: &ContainerId) -> Vec<LogLine> {
        let all: Vec<_> = self.rt.logs(id, false, None).collect().await;
        all.into_iter().map(|l| l.expect("log line")).collect()
    }

    /// Waits until the (non-follow) logs hold `count` stdout lines equal to `text`.
    async fn until_logged(&self, id: &ContainerId, text: &str, count: usize) {
        let what = format!("{count}× {text:?} in the logs of {id}");
        until(&what, || async {
            let lines = self.lines(id).await;
            lines.iter().filter(|l| l.line == text).count() >= count
        })
        .await;
    }
}

impl Drop for Harness {
    /// Removes every container the test made, then lets the runtime remove what that
    /// leaves behind (job networks, firewall rules, volumes), on a plain thread (no runtime
    /// needed in drop), even when the test panicked.
    fn drop(&mut self) {
        let ids = std::mem::take(&mut *self.made.lock().unwrap_or_else(|e| e.into_inner()));
        if ids.is_empty() {
            return;
        }
        let engine = self.engine.clone();
        let cleanup = std::thread::spawn(move || {
            let names: Vec<String> = ids.iter().map(container_name).collect();
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&names)
                .output();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the clean-up");
            if let Err(e) = runtime.block_on(engine.remove_orphans()) {
                eprintln!("clean-up after the test: {e}");
            }
        });
        let _ = cleanup.join();
    }
}

/// Polls `check` until it holds; fails naming `what` after [`DEADLINE`].
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + DEADLINE;
    while !check().await {
        assert!(
            Instant::now() < end,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The next item of a log stream, failing after [`DEADLINE`].
async fn next(logs: &mut LogStreamOf) -> Option<Result<LogLine, RuntimeError>> {
    tokio::time::timeout(DEADLINE, logs.next())
        .await
        .expect("no log line (or end) in time")
}

type LogStreamOf = futures::stream::BoxStream<'static, Result<LogLine, RuntimeError>>;

fn stdout_texts(lines: &[LogLine]) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.stream == LogStream::Stdout)
        .map(|l| l.line.as_str())
        .collect()
}

#[tokio::test]
async fn full_lifecycle_keeps_the_workspace_across_stop_and_restart() {
    let Some(h) = Harness::new().await else {
        return;
    };
    let script = "echo \"run $(cat /workspace/marker 2>/dev/null || echo fresh)\"; \
                  echo to-stderr >&2; echo one; echo two; echo \"$GREETING\"; \
                  [ -f /workspace/marker ] || echo kept > /workspace/marker; exec sleep 300";
    let spec = h.spec(script);
    let before = qubix_protocol::time::UnixMillis::now();
    let id = h.rt.create(&spec).await.unwrap();
    assert_eq!(h.status(&id).await, ContainerStatus::Created);

    h.rt.start(&id).await.unwrap();
    let state = h.rt.inspect(&id).await.unwrap();
    assert_eq!(state.status, ContainerStatus::Running);
    assert!(
        state.started_at.is_some_and(|t| t.0 + 1_000 >= before.0),
        "{state:?}"
    );
    h.until_logged(&id, "hello", 1).await;
    let lines = h.lines(&id).await;
    assert_eq!(stdout_texts(&lines), ["run fresh", "one", "two", "hello"]);
    assert!(
        lines
            .iter()
            .any(|l| l.stream == LogStream::Stderr && l.line == "to-stderr")
    );
    assert!(
        lines.windows(2).all(|w| w[0].at <= w[1].at),
        "timestamps go forward"
    );
    assert!(
        lines.iter().all(|l| l.at.0 + 1_000 >= before.0),
        "timestamps come from Docker"
    );

    h.rt.stop(&id, STOP).await.unwrap();
    assert!(matches!(h.status(&id).await, ContainerStatus::Exited(_)));
    h.rt.start(&id).await.unwrap();
    h.until_logged(&id, "run kept", 1).await;

    let first_start = h.rt.inspect(&id).await.unwrap().started_at;
    h.rt.restart(&id, STOP).await.unwrap();
    let state = h.rt.inspect(&id).await.unwrap();
    assert_eq!(state.status, ContainerStatus::Running);
    assert!(state.started_at >= first_start);
    h.until_logged(&id, "run kept", 2).await;

    h.rt.remove(&id, true).await.unwrap();
    assert_eq!(h.status(&id).await, ContainerStatus::Missing);
    assert!(
        h.docker
            .inspect_volume(&workspace_volume(&spec.agreement_id))
            .await
            .is_err()
    );
    h.rt.remove(&id, true)
        .await
        .expect("removing twice is fine");
}

#[tokio::test]
async fn follow_streams_lines_as_they_are_produced() {
    let Some(h) = Harness::new().await else {
        return;
    };
    let spec = h.spec("echo first; while [ ! -f /workspace/go ]; do sleep 0.05; done; echo second");
    let id = h.run(&spec).await;
    let mut follow = h.rt.logs(&id, true, None);
    assert_eq!(next(&mut follow).await.unwrap().unwrap().line, "first");
    assert_eq!(
        h.status(&id).await,
        ContainerStatus::Running,
        "streamed before the job ended"
    );

    let touched = std::process::Command::new("docker")
        .args(["exec", &id.native, "touch", "/workspace/go"])
        .status()
        .unwrap();
    assert!(touched.success());
    assert_eq!(next(&mut follow).await.unwrap().unwrap().line, "second");
    assert!(
        next(&mut follow).await.is_none(),
        "follow ends when the container stops"
    );
}

#[tokio::test]
async fn limits_security_and_ports_are_applied() {
    let Some(h) = Harness::new().await else {
        return;
    };
    let mut spec =
        h.spec("grep -E 'NoNewPrivs|CapEff' /proc/self/status; echo hello | nc -l -p 8080");
    spec.cpu_cores = 2;
    spec.memory_mib = 96;
    spec.shm_mib = 32;
    spec.pids_limit = 50;
    spec.ports = vec![
        PortRequest {
            container_port: 8080,
            purpose: PortPurpose::Tcp,
        },
        PortRequest {
            container_port: 2222,
            purpose: PortPurpose::Ssh,
        },
    ];
    let id = h.run(&spec).await;

    let inspect = h.docker.inspect_container(&id.native, None).await.unwrap();
    let host = inspect.host_config.unwrap();
    assert_eq!(host.nano_cpus, Some(2_000_000_000));
    assert_eq!(host.memory, Some(96 << 20));
    assert_eq!(host.memory_swap, Some(96 << 20), "no swap");
    assert_eq!(host.shm_size, Some(32 << 20));
    assert_eq!(host.pids_limit, Some(50));
    assert_eq!(host.privileged, Some(false));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    let added: HashSet<String> = host.cap_add.unwrap().into_iter().collect();
    assert_eq!(
        added,
        BASE_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    );
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges:true".to_owned()])
    );
    let labels = inspect.config.unwrap().labels.unwrap();
    assert_eq!(labels[LABEL_AGREEMENT], spec.agreement_id.to_string());
    assert_eq!(
        inspect.name.as_deref(),
        Some(&*format!("/{}", container_name(&spec.agreement_id)))
    );

    // Inside: no new privileges, and exactly the base capabilities: KILL, NET_BIND_SERVICE
    // and AUDIT_WRITE (bits 5, 10 and 29).
    h.until_logged(&id, "NoNewPrivs:\t1", 1).await;
    let lines = h.lines(&id).await;
    assert!(
        stdout_texts(&lines).contains(&"CapEff:\t0000000020000420"),
        "{lines:?}"
    );

    // Ports: ephemeral host ports on 127.0.0.1, read back, and reachable.
    let ports = h.rt.inspect(&id).await.unwrap().ports;
    assert_eq!(
        ports.iter().map(|p| p.container_port).collect::<Vec<_>>(),
        [2222, 8080]
    );
    assert!(
        ports
            .iter()
            .all(|p| p.host_ip == "127.0.0.1" && p.host_port != 0),
        "{ports:?}"
    );
    let web = ports.iter().find(|p| p.container_port == 8080).unwrap();
    // docker-proxy accepts at once, and hangs up until nc inside listens: ask until it answers.
    until("port 8080 to answer through its host port", || async {
        let Ok(mut conn) = tokio::net::TcpStream::connect(("127.0.0.1", web.host_port)).await
        else {
            return false;
        };
        let mut got = String::new();
        let read = tokio::time::timeout(DEADLINE, conn.read_to_string(&mut got)).await;
        matches!(read, Ok(Ok(_))) && got == "hello\n"
    })
    .await;
}

/// Capabilities a job was granted join the base set, and nothing else does: read from the
/// job's PID 1.
#[tokio::test]
async fn granted_capabilities_join_the_base_set() {
    let Some(h) = Harness::new().await else {
        return;
    };
    let mut spec = h.spec("grep CapEff /proc/1/status; sleep 30");
    spec.capabilities = qubix_node::negotiation::SSH_CAPABILITIES.to_vec();
    let id = h.run(&spec).await;
    // The base set and CHOWN, DAC_OVERRIDE, FOWNER, SETGID, SETUID, SYS_CHROOT (bits 0, 1,
    // 3, 6, 7, 18).
    h.until_logged(&id, "CapEff:\t00000000200404eb", 1).await;
}

#[tokio::test]
async fn a_non_zero_exit_is_recorded() {
    let Some(h) = Harness::new().await else {
        return;
    };
    let id = h.run(&h.spec("echo bye; exit 3")).await;
    let exit = tokio::time::timeout(DEADLINE, h.rt.wait(&id))
        .await
        .expect("exit in time")
        .unwrap();
    assert_eq!((exit.code, exit.oom_killed), (3, false));
    let state = h.rt.inspect(&id).await.unwrap();
    assert_eq!(state.status, ContainerStatus::Exited(exit));
    // Not `finished_at >= started_at`: for a job this short, Docker may stamp its start
    // after its exit under load.
    assert!(
        state.started_at.is_some() && state.finished_at.is_some(),
        "{state:?}"
    );
    assert!(state.ports.is_empty());
}

#[tokio::test]
async fn a_memory_hog_is_oom_killed() {
    let Some(h) = Harness::new().await else {
        return;
    };
    let mut spec = h.spec("x=$(head -c 64m /dev/zero | tr '\\0' a); echo survived");
    spec.memory_mib = 8;
    spec.shm_mib = 4;
    let id = h.run(&spec).await;
    let exit = tokio::time::timeout(DEADLINE, h.rt.wait(&id))
        .await
        .expect("exit in time")
        .unwrap();
    assert!(exit.oom_killed, "{exit:?}");
    assert_eq!(exit.code, 137);
    assert!(!stdout_texts(&h.lines(&id).await).contains(&"survived"));
}

#[tokio::test]
async fn list_managed_finds_labelled_containers() {
    let Some(h) = Harness::new().await else {
        return;
    };
    let running = h.run(&h.spec("exec sleep 300")).await;
    let created = h.rt.create(&h.spec("exec sleep 300")).await.unwrap();
    let managed = h.rt.list_managed().await.unwrap();
    for (id, status) in [
        (&running, ContainerStatus::Running),
        (&created, ContainerStatus::Created),
    ] {
        let found = managed
            .iter()
            .find(|m| m.id == *id)
            .unwrap_or_else(|| panic!("{id} not listed"));
        assert_eq!(found.state.status, status);
        assert_eq!(found.image, IMAGE);
    }

    // Nodes sharing a daemon: each runtime lists only its own owner's containers.
    let node_b = DockerRuntime::connect()
        .await
        .unwrap()
        .with_owner(AgreementId::random().to_string());
    assert!(
        node_b.list_managed().await.unwrap().is_empty(),
        "node b sees nothing of ours"
    );
    let unowned = DockerRuntime::connect().await.unwrap();
    let seen = unowned.list_managed().await.unwrap();
    assert!(
        !seen.iter().any(|m| m.id == running),
        "a runtime without owner sees only unowned"
    );

    // Knowing only the agreement is enough to reach (and clean up) a job's container.
    let by_name = ContainerId::for_agreement(created.agreement_id);
    assert_eq!(h.status(&by_name).await, ContainerStatus::Created);
    h.rt.remove(&by_name, true).await.unwrap();
    assert_eq!(h.status(&created).await, ContainerStatus::Missing);
}

#[tokio::test]
async fn a_container_removed_behind_our_back_is_missing() {
    let Some(h) = Harness::new().await else {
        return;
    };
    let id = h.run(&h.spec("exec sleep 300")).await;
    let force = bollard::query_parameters::RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    h.docker
        .remove_container(&id.native, Some(force))
        .await
        .unwrap();

    assert_eq!(
        h.rt.inspect(&id).await.unwrap(),
        qubix_node::runtime::ContainerState::missing()
    );
    assert!(h.rt.start(&id).await.unwrap_err().is_missing());
    assert!(h.rt.stop(&id, STOP).await.unwrap_err().is_missing());
    assert!(h.rt.wait(&id).await.unwrap_err().is_missing());
    assert!(h.rt.stats(&id).await.unwrap_err().is_missing());
    let first_log = h.rt.logs(&id, true, None).next().await.unwrap();
    assert!(first_log.unwrap_err().is_missing());
    h.rt.remove(&id, true)
        .await
        .expect("removing a missing container is fine");
}

/// A port on 127.0.0.1 where nothing listens: a registry name there fails at once, and
/// no pull leaves this machine.
fn closed_loopback_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Images are pulled by reference, whether or not a copy is present, unless they are on the
/// provider's allow-list; bare image ids are refused; a failed pull says why.
#[tokio::test]
async fn images_are_pulled_by_reference_unless_allowed_locally() {
    let Some(h) = Harness::new().await else {
        return;
    };
    // The test image under a registry name on loopback where no registry listens.
    let registry = format!("127.0.0.1:{}", closed_loopback_port());
    let repo = format!("{registry}/qubix/pulled-{}", AgreementId::random());
    let name = format!("{repo}:latest");
    h.docker
        .tag_image(
            IMAGE,
            Some(
                bollard::query_parameters::TagImageOptionsBuilder::new()
                    .repo(&repo)
                    .tag("latest")
                    .build(),
            ),
        )
        .await
        .unwrap();

    // Present, but not on the allow-list: the pull goes to its registry, and fails.
    let (tx, _rx) = mpsc::channel(16);
    let err = h.rt.pull(&name, tx).await.unwrap_err();
    let RuntimeError::Pull { failure, .. } = &err else {
        panic!("not a pull error: {err}")
    };
    assert_eq!(*failure, PullFailure::Network, "{err}");
    assert!(err.to_string().contains(&name), "{err}");

    // On the allow-list: it runs from the copy, no registry needed.
    let allowed = DockerRuntime::connect()
        .await
        .unwrap()
        .with_local_images(std::slice::from_ref(&name));
    let (tx, mut rx) = mpsc::channel(16);
    allowed
        .pull(&name, tx)
        .await
        .expect("an allowed local image needs no registry");
    assert!(rx.recv().await.unwrap().complete);
    let _ = h
        .docker
        .remove_image(
            &name,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;

    // Missing everywhere: typed, and create says the image is missing.
    let missing = format!(
        "{registry}/qubix/no-such-image-{}:nope",
        AgreementId::random()
    );
    let (tx, _rx) = mpsc::channel(16);
    let err = allowed.pull(&missing, tx).await.unwrap_err();
    assert!(matches!(err, RuntimeError::Pull { .. }), "{err}");
    let mut spec = h.spec("true");
    spec.image = missing;
    let err = h.rt.create(&spec).await.unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::Pull {
                failure: PullFailure::NoSuchImage,
                ..
            }
        ),
        "{err}"
    );

    // A bare image id names whatever the provider holds: refused before anything runs.
    let mut spec = h.spec("true");
    spec.image = "sha256:0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f".into();
    let err = h.rt.create(&spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidSpec(_)), "{err}");
}

#[tokio::test]
async fn twenty_containers_start_concurrently_and_are_cleaned_up() {
    let Some(h) = Harness::new().await else {
        return;
    };
    let specs: Vec<ContainerSpec> = (0..20).map(|_| h.spec("exec sleep 300")).collect();
    let ids: Vec<ContainerId> = futures::future::join_all(specs.iter().map(|s| h.run(s))).await;
    let states = futures::future::join_all(ids.iter().map(|id| h.status(id))).await;
    assert!(
        states.iter().all(|s| *s == ContainerStatus::Running),
        "{states:?}"
    );

    let removed = futures::future::join_all(ids.iter().map(|id| h.rt.remove(id, true))).await;
    assert!(removed.iter().all(Result::is_ok), "{removed:?}");
    let states = futures::future::join_all(ids.iter().map(|id| h.status(id))).await;
    assert!(
        states.iter().all(|s| *s == ContainerStatus::Missing),
        "{states:?}"
    );
}

#[tokio::test]
async fn gpus_are_requested_by_uuid_and_a_missing_nvidia_runtime_is_named() {
    let Some(h) = Harness::new().await else {
        return;
    };
    if h.rt.probe().await.unwrap().nvidia_runtime {
        eprintln!(
            "SKIPPED: this Docker has an NVIDIA runtime; the GPU test belongs to the GPU machine"
        );
        return;
    }
    let mut spec = h.spec("true");
    spec.attach_gpus = true;
    spec.gpu_uuids = vec!["GPU-00000000-1111-2222-3333-444444444444".into()];
    let id = h.rt.create(&spec).await.unwrap();
    let host = h
        .docker
        .inspect_container(&id.native, None)
        .await
        .unwrap()
        .host_config
        .unwrap();
    let request = &host.device_requests.unwrap()[0];
    assert_eq!(request.driver.as_deref(), Some("nvidia"));
    assert_eq!(request.device_ids.as_deref(), Some(&spec.gpu_uuids[..]));
    let err = h.rt.start(&id).await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::GpuRuntimeMissing { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("nvidia-container-toolkit"));
}

#[tokio::test]
async fn probe_stats_and_refusals() {
    let Some(h) = Harness::new().await else {
        return;
    };
    let info = h.rt.probe().await.unwrap();
    assert_eq!(info.kind, RuntimeKind::Docker);
    let engine = h.docker.info().await.unwrap();
    assert_eq!(
        info.nvidia_runtime,
        engine.runtimes.unwrap_or_default().contains_key("nvidia")
    );
    assert!(!info.version.is_empty());

    let spec = h.spec("while :; do :; done");
    let id = h.run(&spec).await;
    let stats = h.rt.stats(&id).await.unwrap();
    assert_eq!(stats.memory_limit_mib(), 64);
    assert!(
        stats.memory_used_bytes > 0 && stats.cpu_pct > 5.0,
        "{stats:?}"
    );

    let again = h.rt.create(&spec).await.unwrap_err();
    assert!(
        matches!(again, RuntimeError::AlreadyExists { .. }),
        "{again}"
    );
    let mut bad = h.spec("true");
    bad.pids_limit = 0;
    assert!(matches!(
        h.rt.create(&bad).await,
        Err(RuntimeError::InvalidSpec(_))
    ));
    assert!(
        h.docker
            .inspect_container(&container_name(&bad.agreement_id), None)
            .await
            .is_err()
    );
}

/// `cargo test -p qubix-node --test runtime_docker -- --ignored --nocapture bench`
#[tokio::test]
#[ignore = "a benchmark, not a test: run it by name to print figures"]
async fn bench_start_latency() {
    let Some(h) = Harness::new().await else {
        return;
    };
    let runs = 20;
    let l = qubix_node::runtime::bench::bench_start_latency(&*h.rt, IMAGE, runs)
        .await
        .unwrap();
    let (ours_min, docker_min) = l.min_ms();
    println!(
        "start latency, {runs} runs each: qubix runtime median {:.1} ms (min {ours_min:.1}), \
         docker run -d median {:.1} ms (min {docker_min:.1}), ratio of medians {:.2}",
        l.ours_median_ms(),
        l.docker_run_median_ms(),
        l.ratio()
    );
}

/// A job that writes more than its disk allows, in its workspace or in its writable layer,
/// is reported by its runner (its lifecycle then stops it); one within the bound is not.
#[tokio::test]
async fn a_job_over_its_disk_bound_is_reported() {
    let Some(h) = Harness::new().await else {
        return;
    };
    let watched = |script: &str, limit_mib: u64| {
        let mut spec = h.spec(script);
        spec.disk_limit_mib = limit_mib;
        spec
    };
    let cases = [
        (
            watched("head -c 8388608 /dev/urandom > /workspace/big; sleep 60", 4),
            true,
        ),
        (
            watched("head -c 8388608 /dev/urandom > /tmp/big; sleep 60", 4),
            true,
        ),
        (
            watched(
                "head -c 1048576 /dev/urandom > /workspace/small; sleep 60",
                64,
            ),
            false,
        ),
    ];
    for (spec, over) in cases {
        let (tx, mut rx) = mpsc::channel(64);
        let stop = tokio_util::sync::CancellationToken::new();
        let tasks = tokio_util::task::TaskTracker::new();
        let runner = qubix_node::jobs::spawn(
            spec.clone(),
            qubix_node::keys::NodeKey::from_secret([7; 32]).node_id(),
            h.rt.clone(),
            None,
            tx,
            false,
            qubix_node::jobs::RunnerScope {
                shutdown: stop.clone(),
                tasks: &tasks,
            },
        );
        runner.perform(qubix_node::jobs::Effect::Run).await;
        // Two measurements at least: one right after the start, one a period later.
        let window = qubix_node::jobs::runner::DISK_PERIOD * 2 + Duration::from_secs(5);
        let reported = tokio::time::timeout(window, async {
            while let Some((_, input)) = rx.recv().await {
                if input == qubix_node::jobs::Input::DiskExceeded {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        assert_eq!(reported, over, "{}", spec.command[2]);
        runner.perform(qubix_node::jobs::Effect::Remove).await;
        stop.cancel();
        tasks.close();
        tasks.wait().await;
    }
}
