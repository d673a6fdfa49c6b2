//! The local-process runtime (testnet fallback without Docker): real child processes in
//! a temporary directory. Needs only `sh` and busybox/coreutils tools on the host.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use qubix_node::runtime::{
    BoundPort, ContainerId, ContainerRuntime, ContainerSpec, ContainerStatus, LocalProcessRuntime,
    RuntimeError, RuntimeKind,
};
use qubix_protocol::api::{LogLine, LogStream};
use qubix_protocol::ids::AgreementId;
use qubix_protocol::job::{EnvVar, PortPurpose, PortRequest};
use qubix_protocol::topics::Network;

const DEADLINE: Duration = Duration::from_secs(20);

fn runtime(dir: &tempfile::TempDir) -> LocalProcessRuntime {
    let testnet = Network::new("testnet").unwrap();
    LocalProcessRuntime::for_testnet(&testnet, dir.path()).unwrap()
}

fn spec(script: &str) -> ContainerSpec {
    ContainerSpec {
        agreement_id: AgreementId::random(),
        image: "ignored/image:1".into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        env: vec![EnvVar {
            name: "TOKEN".into(),
            value: "s3cret".into(),
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

async fn run(rt: &LocalProcessRuntime, spec: &ContainerSpec) -> ContainerId {
    let id = rt.create(spec).await.unwrap();
    rt.start(&id).await.unwrap();
    id
}

async fn texts(rt: &LocalProcessRuntime, id: &ContainerId, stream: LogStream) -> Vec<String> {
    let lines: Vec<_> = rt.logs(id, false, None).collect().await;
    lines
        .into_iter()
        .map(Result::unwrap)
        .filter(|l| l.stream == stream)
        .map(|l| l.line)
        .collect()
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn until_logged(rt: &LocalProcessRuntime, id: &ContainerId, text: &str, count: usize) {
    until(&format!("{count}× {text:?} in the logs"), || async {
        texts(rt, id, LogStream::Stdout)
            .await
            .iter()
            .filter(|l| *l == text)
            .count()
            >= count
    })
    .await;
}

async fn next(logs: &mut BoxStream<'static, Result<LogLine, RuntimeError>>) -> Option<LogLine> {
    let item = tokio::time::timeout(DEADLINE, logs.next())
        .await
        .expect("no log line in time");
    item.map(Result::unwrap)
}

#[test]
fn mainnet_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mainnet = Network::new("mainnet").unwrap();
    let err = LocalProcessRuntime::for_testnet(&mainnet, dir.path())
        .err()
        .unwrap();
    assert_eq!(err, RuntimeError::LocalOnMainnet);
    assert!(err.to_string().contains("refused on mainnet"));
}

#[tokio::test]
async fn full_lifecycle_keeps_the_job_dir_across_stop_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir);
    let script = "echo \"run $(cat marker 2>/dev/null || echo fresh)\"; echo to-stderr >&2; \
                  echo one; echo two; echo \"token=$TOKEN home=$HOME\"; \
                  [ -f marker ] || echo kept > marker; exec sleep 300";
    let s = spec(script);
    let id = rt.create(&s).await.unwrap();
    assert_eq!(
        rt.inspect(&id).await.unwrap().status,
        ContainerStatus::Created
    );
    rt.start(&id).await.unwrap();
    assert_eq!(
        rt.inspect(&id).await.unwrap().status,
        ContainerStatus::Running
    );
    let job_dir = rt.job_dir(&s.agreement_id);
    let env_line = format!("token=s3cret home={}", job_dir.display());
    until_logged(&rt, &id, &env_line, 1).await;
    let out = texts(&rt, &id, LogStream::Stdout).await;
    assert_eq!(out, ["run fresh", "one", "two", env_line.as_str()]);
    assert_eq!(texts(&rt, &id, LogStream::Stderr).await, ["to-stderr"]);
    assert!(
        texts(&rt, &id, LogStream::System).await[0].contains("image ignored/image:1 is not used")
    );

    rt.stop(&id, Duration::from_secs(5)).await.unwrap();
    let ContainerStatus::Exited(exit) = rt.inspect(&id).await.unwrap().status else {
        panic!("not exited")
    };
    assert_eq!(exit.code, 128 + 15, "ended by SIGTERM");
    assert!(
        job_dir.join("marker").exists(),
        "stop keeps the job's files"
    );
    rt.start(&id).await.unwrap();
    until_logged(&rt, &id, "run kept", 1).await;
    rt.restart(&id, Duration::from_secs(5)).await.unwrap();
    until_logged(&rt, &id, "run kept", 2).await;

    rt.remove(&id, true).await.unwrap();
    assert_eq!(
        rt.inspect(&id).await.unwrap().status,
        ContainerStatus::Missing
    );
    assert!(
        !job_dir.exists(),
        "remove with the volume deletes the job dir"
    );
    assert!(rt.start(&id).await.unwrap_err().is_missing());
}

#[tokio::test]
async fn stop_escalates_to_sigkill_when_sigterm_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir);
    let id = run(&rt, &spec("trap '' TERM; echo ready; sleep 300")).await;
    until_logged(&rt, &id, "ready", 1).await;
    let begun = Instant::now();
    rt.stop(&id, Duration::from_millis(300)).await.unwrap();
    assert!(begun.elapsed() >= Duration::from_millis(300));
    let exit = rt.wait(&id).await.unwrap();
    assert_eq!(exit.code, 137, "{exit:?}");
}

#[tokio::test]
async fn follow_streams_lines_as_they_are_produced() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir);
    let s = spec("echo first; while [ ! -f go ]; do sleep 0.05; done; echo second");
    let id = run(&rt, &s).await;
    let mut follow = rt.logs(&id, true, None);
    assert_eq!(next(&mut follow).await.unwrap().stream, LogStream::System);
    assert_eq!(next(&mut follow).await.unwrap().line, "first");
    assert_eq!(
        rt.inspect(&id).await.unwrap().status,
        ContainerStatus::Running
    );
    std::fs::write(rt.job_dir(&s.agreement_id).join("go"), b"").unwrap();
    assert_eq!(next(&mut follow).await.unwrap().line, "second");
    assert!(
        next(&mut follow)
            .await
            .unwrap()
            .line
            .contains("exited with code 0")
    );
    assert!(
        next(&mut follow).await.is_none(),
        "follow ends with the process"
    );
}

#[tokio::test]
async fn exits_ports_and_stats_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir);
    let id = run(&rt, &spec("exit 3")).await;
    let exit = tokio::time::timeout(DEADLINE, rt.wait(&id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((exit.code, exit.oom_killed), (3, false));
    assert_eq!(
        rt.inspect(&id).await.unwrap().status,
        ContainerStatus::Exited(exit)
    );

    let mut busy = spec("while :; do :; done");
    busy.ports = vec![PortRequest {
        container_port: 8888,
        purpose: PortPurpose::Jupyter,
    }];
    let id = run(&rt, &busy).await;
    let ports = rt.inspect(&id).await.unwrap().ports;
    let want = BoundPort {
        container_port: 8888,
        host_ip: "127.0.0.1".into(),
        host_port: 8888,
    };
    assert_eq!(ports, [want]);
    until("the busy loop to use CPU", || async {
        let stats = rt.stats(&id).await.unwrap();
        stats.cpu_pct > 5.0 && stats.memory_used_bytes > 0
    })
    .await;
    assert_eq!(rt.stats(&id).await.unwrap().memory_limit_mib(), 64);
    let listed = rt.list_managed().await.unwrap();
    assert_eq!(listed.len(), 2);
    rt.remove(&id, true).await.unwrap();
}

#[tokio::test]
async fn the_log_buffer_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).with_log_capacity(5);
    let id = run(
        &rt,
        &spec("i=0; while [ $i -lt 20 ]; do echo $i; i=$((i+1)); done"),
    )
    .await;
    rt.wait(&id).await.unwrap();
    let lines: Vec<String> = rt
        .logs(&id, false, None)
        .map(|l| l.unwrap().line)
        .collect()
        .await;
    assert_eq!(lines[..4], ["16", "17", "18", "19"]);
    assert!(lines[4].contains("exited with code 0"));
    let tail: Vec<_> = rt.logs(&id, false, Some(2)).collect().await;
    assert_eq!(tail.len(), 2);
}

#[tokio::test]
async fn specs_without_a_command_or_with_bad_limits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir);
    let mut s = spec("true");
    s.command.clear();
    assert!(matches!(
        rt.create(&s).await,
        Err(RuntimeError::Unsupported { .. })
    ));
    s.command = vec!["true".into()];
    s.memory_mib = 0;
    assert!(matches!(
        rt.create(&s).await,
        Err(RuntimeError::InvalidSpec(_))
    ));
    assert_eq!(rt.kind(), RuntimeKind::LocalProcess);
    assert!(!rt.probe().await.unwrap().nvidia_runtime);
}

/// `connect` without a reachable daemon: re-runs this binary's `fallback_child` with
/// DOCKER_HOST pointing at a socket that does not exist (no env mutation in-process).
#[test]
fn connect_falls_back_only_on_testnets_when_allowed() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "fallback_child", "--ignored", "--nocapture"])
        .env("DOCKER_HOST", "unix:///nonexistent/qubix-test-docker.sock")
        .env("QUBIX_RUNTIME_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && text.contains("1 passed"),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
#[ignore = "run by connect_falls_back_only_on_testnets_when_allowed"]
async fn fallback_child() {
    if std::env::var("QUBIX_RUNTIME_CHILD").is_err() {
        return;
    }
    let testnet = Network::new("testnet").unwrap();
    let rt = qubix_node::runtime::connect(
        &testnet,
        &qubix_node::runtime::RuntimeOptions {
            unsafe_local_jobs: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(rt.kind(), RuntimeKind::LocalProcess);
    let refused = qubix_node::runtime::connect(&testnet, &Default::default())
        .await
        .err()
        .unwrap();
    assert!(
        refused
            .to_string()
            .contains("install docker.io and start dockerd"),
        "{refused}"
    );
    let mainnet = Network::new("mainnet").unwrap();
    let refused = qubix_node::runtime::connect(
        &mainnet,
        &qubix_node::runtime::RuntimeOptions {
            unsafe_local_jobs: true,
            ..Default::default()
        },
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(refused, RuntimeError::DockerUnreachable { .. }),
        "{refused}"
    );
}
