//! The `qubix` binary end to end, run as a subprocess with `QUBIX_API` and `QUBIX_TOKEN`
//! against a devnet testnet whose consumer serves a gateway: search (`offers --json`), rent a
//! real Docker container (`launch`), read its logs, stop and terminate it; and the exit codes
//! that tell usage errors (2), API errors (3) and unreachable nodes (4) apart, each with one
//! line on stderr.
//!
//! The binary belongs to `qubix-node`, which `cargo test -p qubix-testnet` does not build: the
//! test builds it (`cargo build -p qubix-node --bin qubix`, same target dir) when it is missing.
//! A stale binary is used as it is: rebuild it after changing the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use qubix_protocol::api::{Instance, OffersPage, SignedReceipt};
use qubix_protocol::control::JobState;
use qubix_testnet::{NodeSpec, Testnet, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn qubix_binary() -> PathBuf {
    qubix_testnet::process::qubix_binary().unwrap()
}

/// Runs `qubix ARGS` with the given API URL and token (none: no token anywhere).
fn qubix(api: &str, token: Option<&str>, args: &[&str]) -> Output {
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(qubix_binary());
    cmd.args(args)
        .env("QUBIX_API", api)
        .env("QUBIX_DATA_DIR", empty.path())
        .env("NO_COLOR", "1")
        .env_remove("QUBIX_TOKEN")
        .env_remove("RUST_BACKTRACE")
        .current_dir(empty.path());
    if let Some(t) = token {
        cmd.env("QUBIX_TOKEN", t);
    }
    cmd.output().expect("the qubix binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The command succeeded; its stdout parsed as JSON.
fn json<T: serde::de::DeserializeOwned>(out: &Output) -> T {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status.code(),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not the JSON expected ({e}): {}",
            text(&out.stdout)
        )
    })
}

/// The command failed with `code` and one line on stderr, without a backtrace.
fn failed(out: &Output, codes: &[i32]) -> String {
    let err = text(&out.stderr);
    assert!(
        out.status.code().is_some_and(|c| codes.contains(&c)),
        "expected exit {codes:?}, got {:?}; stderr: {err}",
        out.status.code()
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    err
}

fn one_line(err: &str) {
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err}"
    );
    assert!(err.starts_with("error: "), "{err}");
}

#[test]
fn errors_exit_with_their_class_and_one_line() {
    // Nothing listens on port 9: a connection failure.
    let err = failed(
        &qubix("http://127.0.0.1:9", Some("t"), &["instances"]),
        &[4],
    );
    one_line(&err);
    assert!(err.contains("QUBIX_API"), "{err}");
    // No token in the env, the flags or the data dir: a usage error.
    let err = failed(&qubix("http://127.0.0.1:9", None, &["instances"]), &[2]);
    one_line(&err);
    assert!(err.contains("QUBIX_TOKEN"), "{err}");
    // A token file other users can read is refused before it is read, as ssh does.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("api-token");
    std::fs::write(&token_file, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(qubix_binary())
        .arg("instances")
        .env("QUBIX_API", "http://127.0.0.1:9")
        .env("QUBIX_DATA_DIR", dir.path())
        .env_remove("QUBIX_TOKEN")
        .output()
        .unwrap();
    let err = failed(&out, &[2]);
    assert!(err.contains("chmod 600"), "{err}");
    // A bad URL scheme: a usage error.
    let err = failed(&qubix("ftp://127.0.0.1:9", Some("t"), &["instances"]), &[2]);
    one_line(&err);
    // An unknown flag: clap's usage error.
    failed(
        &qubix(
            "http://127.0.0.1:9",
            Some("t"),
            &["offers", "--no-such-flag"],
        ),
        &[2],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_launch_logs_stop_terminate_with_the_binary() {
    qubix_testnet::init_test_logging();
    if !qubix_testnet::docker_available() {
        eprintln!("skipping: no Docker daemon (set CI=true to make this a failure)");
        return;
    }
    let bin = qubix_binary(); // build it first, outside any timeout
    assert!(bin.exists());
    let mut net = Testnet::with_devnet("cli-test", Duration::from_millis(200))
        .await
        .unwrap();
    net.add(NodeSpec::provider("provider", "RTX 4090:24:1", 3_600, "DE"))
        .await
        .unwrap();
    let mut spec = NodeSpec::consumer("consumer");
    spec.gateway = Some(([127, 0, 0, 1], 0).into());
    let consumer = net.add(spec).await.unwrap();
    let gw = net.nodes[consumer].gateway().unwrap();
    let api = format!("http://{}", gw.addr);
    let token = gw.token.clone();
    let run = |args: Vec<String>| {
        let (api, token) = (api.clone(), token.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                qubix(&api, Some(&token), &args)
            })
            .await
            .unwrap()
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let page: OffersPage = wait_until(WAIT, "the offer in `qubix offers --json`", || {
        let out = run(args(&["offers", "--json"]));
        async move {
            let page: OffersPage = json(&out.await);
            (page.total == 1).then_some(page)
        }
    })
    .await
    .unwrap();
    assert_eq!(page.offers[0].offer.gpu.model, "RTX 4090");

    let launch = args(&[
        "launch",
        "--query",
        "gpu_name=RTX_4090",
        "--image",
        "qubix/test:latest",
        "--budget",
        "1800",
        "--idempotency-key",
        "cli-launch-1",
        "--json",
        "--",
        "sh",
        "-c",
        "echo hello-cli; while true; do sleep 1; done",
    ]);
    let launched: Instance = json(&run(launch.clone()).await);
    assert_eq!(launched.state, JobState::Running);
    // The same command again, as after a lost answer: the budget's offer is rented whole
    // now, so the rerun says where the first run's instance is, and rents nothing.
    let rerun = run(launch).await;
    assert_eq!(rerun.status.code(), Some(2));
    let said = String::from_utf8_lossy(&rerun.stderr);
    assert!(
        said.contains("cli-launch-1") && said.contains("qubix instances"),
        "{said}"
    );
    let listed: Vec<Instance> = json(&run(args(&["instances", "--json"])).await);
    assert_eq!(listed.len(), 1, "the rerun rented again: {listed:?}");
    assert_eq!(
        launched.budget.0, 1_800,
        "--budget 1800 at 3600 QU/GPU-hour rents half an hour"
    );
    let id = launched.id.to_string();

    wait_until(WAIT, "hello-cli in `qubix logs`", || {
        let out = run(args(&["logs", &id, "--tail", "50"]));
        async move {
            let out = out.await;
            (out.status.success() && text(&out.stdout).contains("hello-cli")).then_some(())
        }
    })
    .await
    .unwrap();

    // The signed receipts behind the spend, with their envelopes.
    let receipts: Vec<SignedReceipt> = wait_until(WAIT, "a receipt in `qubix receipts`", || {
        let out = run(args(&["receipts", &id, "--json"]));
        async move {
            let receipts: Vec<SignedReceipt> = json(&out.await);
            (!receipts.is_empty()).then_some(receipts)
        }
    })
    .await
    .unwrap();
    assert!(
        receipts
            .iter()
            .all(|r| r.agreement_id == launched.id && !r.envelope.is_empty())
    );
    let table = run(args(&["receipts", &id[..8]])).await;
    assert!(
        text(&table.stdout).contains("BILLED MIN"),
        "a table by default"
    );

    let stopped: Instance = json(&run(args(&["stop", &id, "--json"])).await);
    assert_eq!(stopped.state, JobState::Stopped);
    let short = &id[..8];
    let terminated: Instance = json(&run(args(&["terminate", short, "--json"])).await);
    assert_eq!(terminated.state, JobState::Terminated);
    assert_eq!(
        terminated.id, launched.id,
        "a unique prefix names the instance"
    );

    // A query that does not parse: the node refuses (3), in one line.
    let err = failed(&run(args(&["offers", "price<<"])).await, &[3]);
    one_line(&err);
    assert!(err.contains("invalid_query"), "{err}");
    // An id no instance has: a usage error when it is a prefix, an API error when whole.
    let err = failed(&run(args(&["instance", "ffff"])).await, &[2]);
    one_line(&err);
    assert!(err.contains("no instance id starts with"), "{err}");
    let whole = "5a".repeat(16);
    let err = failed(&run(args(&["instance", &whole])).await, &[3]);
    assert!(err.contains("not_found"), "{err}");
    // A terminated instance cannot start.
    let err = failed(&run(args(&["start", &id])).await, &[3]);
    assert!(err.contains("wrong_state"), "{err}");
    net.shutdown().await;
}
