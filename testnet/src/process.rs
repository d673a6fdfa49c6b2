//! Nodes as operating-system processes: the `qubix` binary started with `qubix node`, as a
//! user runs it. `up --processes` runs its network this way, the memory benchmark measures
//! a node's resident set this way, and the CLI tests find the binary here.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::harness::TestnetError;

fn fail(name: &str, message: impl std::fmt::Display) -> TestnetError {
    TestnetError::Node {
        name: name.into(),
        message: message.to_string(),
    }
}

/// `target/<profile>/qubix`, beside the running program (or beside its `deps/` folder, for
/// a test binary); built with cargo, in the same profile, when it is missing. The test
/// command builds it with the workspace; after changing the node, rebuild it with
/// `cargo build -p qubix-node --bin qubix` (in the same profile) before `up --processes`.
pub fn qubix_binary() -> Result<PathBuf, TestnetError> {
    let exe = std::env::current_exe()?;
    let mut dir = exe
        .parent()
        .ok_or_else(|| fail("qubix", "the running program has no folder"))?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir
            .parent()
            .ok_or_else(|| fail("qubix", "deps/ has no parent"))?;
    }
    let bin = dir.join(format!("qubix{}", std::env::consts::EXE_SUFFIX));
    if bin.exists() {
        return Ok(bin);
    }
    let target_dir = dir
        .parent()
        .ok_or_else(|| fail("qubix", "target/<profile> has no parent"))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "-p",
            "qubix-node",
            "--bin",
            "qubix",
            "--target-dir",
        ])
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(other) => {
            build.args(["--profile", other]);
        }
    }
    let status = build.status()?;
    if status.success() && bin.exists() {
        Ok(bin)
    } else {
        Err(fail(
            "qubix",
            format!(
                "{} is missing and building it failed: run `cargo build -p qubix-node --bin qubix`",
                bin.display()
            ),
        ))
    }
}

/// How to start one `qubix node` process.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Its name (for messages).
    pub name: String,
    /// Its data directory (created when missing).
    pub data_dir: PathBuf,
    /// `--network`.
    pub network: String,
    /// The TCP port on 127.0.0.1 (0: any free one).
    pub port: u16,
    /// `--bootstrap` addresses.
    pub bootstrap: Vec<String>,
    /// `--qubic-rpc`.
    pub qubic_rpc: String,
    /// `QUBIX_WALLET_SEED` (never put on the command line, where `ps` would show it).
    pub wallet_seed: String,
    /// `--simulate-gpu` (makes it a provider).
    pub simulate_gpu: Option<String>,
    /// `--price`.
    pub price: Option<u64>,
    /// `--country`.
    pub country: Option<String>,
    /// `--gateway`.
    pub gateway: Option<std::net::SocketAddr>,
    /// `--max-offers-per-sync`.
    pub max_offers_per_sync: Option<usize>,
    /// `--unsafe-local-jobs`.
    pub unsafe_local_jobs: bool,
    /// `--local-image` (each).
    pub local_images: Vec<String>,
    /// Further environment variables (a test's `DOCKER_HOST`, say).
    pub env: Vec<(String, String)>,
}

/// A running `qubix node` process; killed when dropped unless stopped first.
#[derive(Debug)]
pub struct NodeProcess {
    /// Its name.
    pub name: String,
    child: Child,
    /// The console login URL it printed, when it serves a gateway.
    pub console: Option<String>,
    /// Its log file (stderr).
    pub log: PathBuf,
}

/// Creates (or empties) a node's log file, readable by this user only: a node's log may
/// name its wallet and jobs.
fn private_log(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

impl NodeProcess {
    /// Starts the node and waits until it runs (it prints its console URL when it has a
    /// gateway; otherwise, until its log says it is running).
    pub async fn start(binary: &Path, spec: &ProcessSpec) -> Result<NodeProcess, TestnetError> {
        std::fs::create_dir_all(&spec.data_dir)?;
        let log = spec.data_dir.join("node.log");
        let mut cmd = tokio::process::Command::new(binary);
        cmd.arg("node")
            .arg("--data-dir")
            .arg(&spec.data_dir)
            .args(["--network", &spec.network])
            .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", spec.port)])
            .args(["--qubic-rpc", &spec.qubic_rpc])
            .arg("--no-mdns")
            .env("QUBIX_WALLET_SEED", &spec.wallet_seed)
            .env("RUST_LOG", "info,libp2p_gossipsub=warn,libp2p_kad=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(private_log(&log)?)
            // Its own process group: a Ctrl-C at the terminal reaches whoever started it
            // (which stops it in order), not the node directly.
            .process_group(0)
            .kill_on_drop(true);
        let mut log_file = std::fs::OpenOptions::new().append(true).open(&log)?;
        if !spec.bootstrap.is_empty() {
            cmd.args(["--bootstrap", &spec.bootstrap.join(",")]);
        }
        if let Some(gpus) = &spec.simulate_gpu {
            cmd.args(["--simulate-gpu", gpus]);
        }
        if let Some(price) = spec.price {
            cmd.args(["--price", &price.to_string()]);
        }
        if let Some(country) = &spec.country {
            cmd.args(["--country", country]);
        }
        if let Some(addr) = spec.gateway {
            cmd.args(["--gateway", &addr.to_string()]);
        }
        if let Some(n) = spec.max_offers_per_sync {
            cmd.args(["--max-offers-per-sync", &n.to_string()]);
        }
        if spec.unsafe_local_jobs {
            cmd.arg("--unsafe-local-jobs");
        }
        for image in &spec.local_images {
            cmd.args(["--local-image", image]);
        }
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| fail(&spec.name, "no stdout"))?;
        // The node logs and prints on stdout: every line goes to the log file; the reader
        // reports the console URL (with a gateway) or the "node running" line (without),
        // and ends with the process.
        let wants_console = spec.gateway.is_some();
        let login_file = spec.data_dir.join(qubix_node::node::LOGIN_URL_FILE);
        let (tx, rx) = tokio::sync::oneshot::channel::<Option<String>>();
        tokio::spawn(async move {
            use std::io::Write as _;
            let mut tx = Some(tx);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = writeln!(log_file, "{line}");
                // Not on a terminal, the node prints where the login URL is, not the URL.
                let ready = match line.strip_prefix("console: ") {
                    Some(_) if wants_console => {
                        let url = qubix_protocol::secret_file::read_secret_file(&login_file)
                            .ok()
                            .and_then(|b| String::from_utf8(b).ok());
                        Some(url)
                    }
                    _ if !wants_console && line.contains("node running") => Some(None),
                    _ => None,
                };
                if let Some(ready) = ready
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(ready);
                }
            }
        });
        let mut node = NodeProcess {
            name: spec.name.clone(),
            child,
            console: None,
            log,
        };
        match tokio::time::timeout(Duration::from_secs(60), rx).await {
            Ok(Ok(console)) => node.console = console,
            _ => return Err(node.failed("did not come up within 60 s").await),
        }
        Ok(node)
    }

    async fn failed(&mut self, what: &str) -> TestnetError {
        let _ = self.child.kill().await;
        let tail: String = std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        fail(&self.name, format!("{what}; its log ends with:\n{tail}"))
    }

    /// A client of this node's API, with the token its console URL carries.
    pub fn client(&self) -> Result<qubix_sdk::Client, TestnetError> {
        let console = self
            .console
            .as_deref()
            .ok_or_else(|| fail(&self.name, "serves no gateway"))?;
        let (base, token) = console
            .split_once("#token=")
            .ok_or_else(|| fail(&self.name, "its console URL carries no token"))?;
        qubix_sdk::Client::new(base.trim_end_matches('/'), token).map_err(|e| fail("sdk", e))
    }

    /// The operating-system process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Resident memory now, in bytes (Linux: `VmRSS` of `/proc/<pid>/status`).
    pub fn rss_bytes(&self) -> Result<u64, TestnetError> {
        let pid = self
            .pid()
            .ok_or_else(|| fail(&self.name, "the process has exited"))?;
        rss_of(pid)
    }

    /// Stops it as Ctrl-C would (SIGTERM: offers withdrawn, state saved), waiting up to
    /// 30 s; killed after that.
    pub async fn stop(mut self) -> Result<(), TestnetError> {
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -TERM {pid}")])
            .status();
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status?;
                Ok(())
            }
            Err(_) => {
                let _ = self.child.kill().await;
                Err(fail(
                    &self.name,
                    "did not stop within 30 s of SIGTERM; killed",
                ))
            }
        }
    }
}

/// Resident memory of process `pid`, in bytes.
pub fn rss_of(pid: u32) -> Result<u64, TestnetError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| fail("rss", format!("no VmRSS for process {pid}")))
}
