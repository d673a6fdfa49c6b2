//! A job's network (issue 13): a job reaches the internet (a namespace on a TEST-NET address
//! stands in for it) but neither the host (a listener on its bridge address) nor a private
//! network (a namespace on an RFC 1918 address); with public egress off, not the internet
//! either. Everything runs on this machine: the test makes its own namespaces, checks with
//! `ip route get` that each target routes into its own namespace before anything is sent,
//! and removes them at the end. Host-wide state: in the `host-network` test group.

use std::process::Command;
use std::time::Duration;

use qubix_node::runtime::{
    ContainerRuntime, ContainerSpec, ContainerStatus, DockerRuntime, JobNetworkPolicy,
};
use qubix_protocol::AgreementId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::WAIT;

/// This test's own address ranges: (the host's side, the namespace's side).
const PRIVATE: (&str, &str) = ("10.199.7.1", "10.199.7.2");
const INTERNET: (&str, &str) = ("198.51.100.1", "198.51.100.2");
const PORT: u16 = 8099;

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace joined to the host by a veth pair, serving `PORT` over HTTP.
struct Namespace {
    name: &'static str,
    host_if: &'static str,
    server: std::process::Child,
}

impl Namespace {
    fn create(
        name: &'static str,
        host_if: &'static str,
        ns_if: &'static str,
        (host, ns): (&str, &str),
    ) -> Self {
        Self::remove(name, host_if);
        run(&["ip", "netns", "add", name]);
        run(&[
            "ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if,
        ]);
        run(&["ip", "link", "set", ns_if, "netns", name]);
        run(&["ip", "addr", "add", &format!("{host}/24"), "dev", host_if]);
        run(&["ip", "link", "set", host_if, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", name];
            all.extend_from_slice(args);
            run(&all)
        };
        inside(&["ip", "addr", "add", &format!("{ns}/24"), "dev", ns_if]);
        inside(&["ip", "link", "set", ns_if, "up"]);
        inside(&["ip", "link", "set", "lo", "up"]);
        inside(&["ip", "route", "add", "default", "via", host]);
        let root = std::env::temp_dir().join(format!("{name}-www"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("ok"), format!("{name}\n")).unwrap();
        let server = Command::new("ip")
            .args(["netns", "exec", name, "busybox", "httpd", "-f", "-p"])
            .arg(PORT.to_string())
            .arg("-h")
            .arg(&root)
            .spawn()
            .unwrap();
        // Before anything is sent there: the target routes into this namespace.
        let route = run(&["ip", "route", "get", ns]);
        assert!(
            route.contains(&format!("dev {host_if}")),
            "{ns} routes elsewhere: {route}"
        );
        Self {
            name,
            host_if,
            server,
        }
    }

    fn remove(name: &str, host_if: &str) {
        let _ = Command::new("ip").args(["link", "del", host_if]).output();
        let _ = Command::new("ip").args(["netns", "del", name]).output();
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        Self::remove(self.name, self.host_if);
    }
}

/// Waits until `addr` serves `/ok` to this host (the control: reachable from here).
async fn serves(addr: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = async {
            let mut s = tokio::net::TcpStream::connect((addr, PORT)).await.ok()?;
            s.write_all(b"GET /ok HTTP/1.0\r\n\r\n").await.ok()?;
            let mut body = String::new();
            s.read_to_string(&mut body).await.ok()?;
            body.contains("200").then_some(())
        };
        if tokio::time::timeout(Duration::from_secs(2), got)
            .await
            .ok()
            .flatten()
            .is_some()
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr}:{PORT} never served this host"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs one job that tries each target and prints `reach` or `blocked` for each; returns
/// the lines.
async fn job_tries(rt: &DockerRuntime, host_port: u16) -> Vec<String> {
    let id = AgreementId::random();
    // busybox's static wget cannot resolve anything; nc speaks the HTTP needed.
    let script = format!(
        "GW=$(ip route | awk '/default/ {{print $3}}'); \
         for t in \"$GW {host_port}\" \"{} {PORT}\" \"{} {PORT}\"; do \
           set -- $t; \
           if printf 'GET /ok HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $1 $2 | grep -q 200; \
           then echo reach $1:$2; else echo blocked $1:$2; fi; \
         done; echo done",
        PRIVATE.1, INTERNET.1
    );
    let spec = ContainerSpec {
        agreement_id: id,
        image: "qubix/test:latest".into(),
        command: vec!["sh".into(), "-c".into(), script],
        env: vec![],
        gpu_uuids: vec![],
        attach_gpus: false,
        cpu_cores: 1,
        memory_mib: 64,
        shm_mib: 16,
        pids_limit: 64,
        disk_gib: 1,
        ports: vec![],
        publish_ip: std::net::IpAddr::from([127, 0, 0, 1]),
        workspace: false,
        capabilities: vec![],
        disk_limit_mib: 0,
    };
    let container = rt.create(&spec).await.unwrap();
    rt.start(&container).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let state = rt.inspect(&container).await.unwrap();
        if matches!(state.status, ContainerStatus::Exited(_)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job never finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    use futures::StreamExt;
    let lines: Vec<String> = rt
        .logs(&container, false, None)
        .filter_map(|l| async move { l.ok().map(|l| l.line) })
        .collect()
        .await;
    rt.remove(&container, true).await.unwrap();
    assert!(lines.iter().any(|l| l == "done"), "{lines:?}");
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_network_a_job_reaches_the_internet_but_not_the_host_or_private_networks() {
    qubix_testnet::init_test_logging();
    assert!(
        qubix_testnet::docker_available(),
        "run ./scripts/setup-test-env"
    );
    let private = Namespace::create("qbxt-priv", "qbxt-pv0", "qbxt-pv1", PRIVATE);
    let internet = Namespace::create("qbxt-inet", "qbxt-iv0", "qbxt-iv1", INTERNET);
    // A listener on every host address, the job's bridge address included.
    let host = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let host_port = host.local_addr().unwrap().port();
    let serving = tokio::spawn(async move {
        while let Ok((mut s, _)) = host.accept().await {
            let _ = s
                .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                .await;
        }
    });
    // Controls: each target serves this host, so a job that cannot reach it is stopped by
    // its isolation, not by a broken setup.
    serves(PRIVATE.1).await;
    serves(INTERNET.1).await;

    let owner = format!("hostile-net-{}", AgreementId::random());
    let images = qubix_testnet::harness::engine_images();
    let open = DockerRuntime::connect()
        .await
        .unwrap()
        .with_owner(owner.clone())
        .with_local_images(&images);
    let lines = job_tries(&open, host_port).await;
    let outcome = |target: &str| {
        lines
            .iter()
            .find(|l| l.contains(target))
            .map(|l| l.split(' ').next().unwrap_or_default().to_owned())
    };
    assert_eq!(
        outcome(&format!(":{host_port}")).as_deref(),
        Some("blocked"),
        "{lines:?}"
    );
    assert_eq!(
        outcome("10.199.7.2").as_deref(),
        Some("blocked"),
        "{lines:?}"
    );
    assert_eq!(
        outcome("198.51.100.2").as_deref(),
        Some("reach"),
        "{lines:?}"
    );

    // Public egress off: the internet is out of reach too.
    let closed = DockerRuntime::connect()
        .await
        .unwrap()
        .with_owner(owner.clone())
        .with_local_images(&images)
        .with_job_networks(Some(JobNetworkPolicy {
            public_egress: false,
            ..JobNetworkPolicy::default()
        }));
    let lines = job_tries(&closed, host_port).await;
    assert!(
        lines.iter().filter(|l| l.starts_with("blocked")).count() == 3,
        "{lines:?}"
    );

    // Nothing of the jobs is left: no network, no rule.
    let left = open.remove_orphans().await.unwrap();
    assert_eq!(left, qubix_node::runtime::CleanUp::default());
    for chain in ["DOCKER-USER", "QUBIX-INPUT"] {
        let rules = run(&["iptables", "-S", chain]);
        assert!(
            !rules.contains(&owner),
            "{chain} keeps rules of the test: {rules}"
        );
    }
    serving.abort();
    drop((private, internet));
}
