//! `qubix-testnet up`, the README's main command, run as a user runs it: one OS process per
//! node with `--processes`, a clean stop on SIGTERM, and `--keep` bringing back the same
//! nodes and the same chain (balances not funded twice).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use qubix_sdk::Client;
use qubix_testnet::wait_until;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(120);

/// Starts `up` with `args` and waits for its "is up" line; returns the process and the
/// parsed testnet.json.
async fn up(dir: &Path, args: &[&str]) -> (Child, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qubix-testnet"))
        .arg("up")
        .args(["--providers", "2", "--gateway", "127.0.0.1:0", "--keep"])
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group, as a shell gives a foreground job: Ctrl-C signals the group.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let seen = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("Qubix testnet is up") {
                return true;
            }
            printed.push(line);
        }
        false
    })
    .await;
    assert_eq!(seen.ok(), Some(true), "`up` came up");
    // The rest of the announcement, up to where the file is named.
    while let Ok(Some(line)) = lines.next_line().await {
        let last = line.starts_with("Node list, URL and token");
        printed.push(line);
        if last {
            break;
        }
    }
    // Keep draining its output so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let file: Value =
        serde_json::from_slice(&std::fs::read(dir.join("testnet.json")).unwrap()).unwrap();
    // Not on a terminal: the token is in the 0600 file, not in the output.
    let token = file["token"].as_str().unwrap();
    assert!(
        !printed.iter().any(|l| l.contains(token)),
        "the token was printed to a pipe: {printed:#?}"
    );
    assert_eq!(mode(&dir.join("testnet.json")), 0o600);
    let logs = find(dir, "node.log");
    assert!(
        !args.contains(&"--processes") || !logs.is_empty(),
        "no node.log in process mode"
    );
    for log in logs {
        assert_eq!(mode(&log), 0o600, "{}", log.display());
    }
    (child, file)
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file called `name` under `dir`.
fn find(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(find(&path, name));
        } else if entry.file_name() == name {
            found.push(path);
        }
    }
    found
}

/// SIGTERM, then the exit status within a minute.
async fn stop(mut child: Child) {
    let pid = child.id().unwrap();
    let sent = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("`up` stops within a minute of SIGTERM")
        .unwrap();
    assert!(status.success(), "`up` exits cleanly: {status}");
}

/// Ctrl-C at a terminal: SIGINT to `up`'s whole process group; then it must exit cleanly
/// within a minute.
async fn interrupt(mut child: Child) {
    let pid = child.id().unwrap();
    let sent = std::process::Command::new("sh")
        .args(["-c", &format!("kill -INT -{pid}")])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("`up` stops within a minute of Ctrl-C")
        .unwrap();
    assert!(status.success(), "`up` exits cleanly: {status}");
}

fn client(file: &Value) -> Client {
    Client::new(
        file["api"].as_str().unwrap(),
        file["token"].as_str().unwrap(),
    )
    .unwrap()
}

fn node_ids(file: &Value) -> Vec<String> {
    file["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_nodes_as_processes_and_keep_brings_the_same_network_back() {
    let dir = tempfile::tempdir().unwrap();

    let (first, file) = up(dir.path(), &["--processes"]).await;
    let c = client(&file);
    let offers = wait_until(WAIT, "both providers' offers at the consumer", || {
        let c = c.clone();
        async move {
            let page = c.offers("", None, None, None).await.ok()?;
            (page.total == 2).then_some(page)
        }
    })
    .await
    .unwrap();
    assert!(
        offers.offers.iter().all(|o| o.offer.simulated),
        "simulated GPUs say so"
    );
    let wallet = c.wallet().await.unwrap();
    assert_eq!(wallet.balance.map(|b| b.0), Some(50_000_000));
    let ids = node_ids(&file);
    assert_eq!(ids.len(), 3, "two providers and the consumer");
    // A rental running when Ctrl-C comes: `up` promises its container is removed, and
    // leaves nothing of its providers on the engine.
    let launch = qubix_sdk::api::LaunchRequest {
        offer_id: None,
        query: Some("num_gpus>=1".into()),
        image: "qubix/test:latest".into(),
        command: vec![
            "sh".into(),
            "-c".into(),
            "while true; do sleep 1; done".into(),
        ],
        env: Default::default(),
        ports: vec![],
        gpus: 1,
        duration_secs: 600,
        max_price_per_gpu_hour: None,
        cpu_cores: None,
        ram_mib: None,
        disk_gib: None,
        capabilities: vec![],
    };
    let instance = c.launch(&launch).await.unwrap();
    c.wait_until_running(instance.id, WAIT, |_| {})
        .await
        .unwrap();
    assert!(
        ids.iter()
            .any(|id| !qubix_testnet::harness::left_on_engine(id).is_empty()),
        "the rental runs in a container of a provider"
    );
    interrupt(first).await;
    for id in &ids {
        assert_eq!(
            qubix_testnet::harness::left_on_engine(id),
            Vec::<String>::new(),
            "left by {id}"
        );
    }
    assert!(
        dir.path().join("state/devnet.json").exists(),
        "the chain is saved"
    );

    // In-process this time, from the kept state: the same nodes and wallets, and the
    // chain's balances as they were (not funded again).
    let (second, file) = up(dir.path(), &[]).await;
    assert_eq!(node_ids(&file), ids, "the same node keys");
    let c = client(&file);
    wait_until(WAIT, "the offers again", || {
        let c = c.clone();
        async move { (c.offers("", None, None, None).await.ok()?.total == 2).then_some(()) }
    })
    .await
    .unwrap();
    let wallet = c.wallet().await.unwrap();
    let balance = wallet.balance.map_or(0, |b| b.0);
    assert!(
        (49_000_000..=50_000_000).contains(&balance),
        "the restored chain, less the rental, not funded twice: {balance}"
    );
    stop(second).await;
}
