//! One local job: its command run as a process-group leader in the job's directory, a
//! supervisor task that pumps its output into the log ring and records how it ended, and
//! stop as SIGTERM to the group, then SIGKILL after the timeout. When the leader exits, the
//! rest of its group is killed, as a container's processes end with its init.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use qubix_protocol::api::{LogLine, LogStream};
use qubix_protocol::time::UnixMillis;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::log_ring::LogRing;
use super::procfs::{CpuSample, group_usage};
use crate::runtime::MAX_LOG_LINE_BYTES;
use crate::runtime::error::RuntimeError;
use crate::runtime::spec::ContainerSpec;
use crate::runtime::types::{ContainerId, ContainerStats, ExitStatus};

/// How long output may still drain after the leader exited and its group was killed.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How long a SIGKILLed process may take to be reaped.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// PATH for jobs when the node has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where a local job's process is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RunState {
    /// Never started.
    Created,
    /// Its process group runs.
    Running {
        pid: u32,
        started_at: UnixMillis,
        since: Instant,
    },
    /// Its last run ended.
    Exited {
        exit: ExitStatus,
        started_at: UnixMillis,
        finished_at: UnixMillis,
    },
}

/// A local job and its current run.
pub(crate) struct LocalJob {
    pub(crate) id: ContainerId,
    pub(crate) spec: ContainerSpec,
    /// The job's working directory (its "workspace").
    pub(crate) dir: PathBuf,
    pub(crate) logs: LogRing,
    state: watch::Sender<RunState>,
    /// Serialises start, stop and remove.
    op: tokio::sync::Mutex<()>,
    /// Asks the supervisor to SIGKILL the leader (when `kill` via the shell failed).
    kill: Mutex<Option<mpsc::Sender<()>>>,
    last_cpu: Mutex<Option<CpuSample>>,
}

impl LocalJob {
    pub(crate) fn new(
        id: ContainerId,
        spec: ContainerSpec,
        dir: PathBuf,
        log_lines: usize,
    ) -> Self {
        Self {
            id,
            spec,
            dir,
            logs: LogRing::new(log_lines),
            state: watch::channel(RunState::Created).0,
            op: tokio::sync::Mutex::new(()),
            kill: Mutex::new(None),
            last_cpu: Mutex::new(None),
        }
    }

    pub(crate) fn run_state(&self) -> RunState {
        *self.state.borrow()
    }

    /// Runs the command, unless it runs already.
    pub(crate) async fn start(self: &Arc<Self>) -> Result<(), RuntimeError> {
        let _op = self.op.lock().await;
        if matches!(self.run_state(), RunState::Running { .. }) {
            return Ok(());
        }
        let mut child = self
            .command()?
            .spawn()
            .map_err(|e| RuntimeError::local("spawn", &e))?;
        let pid = child.id().ok_or_else(|| RuntimeError::Local {
            op: "spawn",
            detail: "the process ended before it could be tracked".into(),
        })?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let (kill_tx, kill_rx) = mpsc::channel(1);
        *lock(&self.kill) = Some(kill_tx);
        *lock(&self.last_cpu) = None;
        self.logs.open_live();
        let started_at = UnixMillis::now();
        self.state.send_replace(RunState::Running {
            pid,
            started_at,
            since: Instant::now(),
        });
        info!(agreement = %self.id.agreement_id, pid, "local process started");
        let job = Arc::clone(self);
        tokio::spawn(async move {
            job.supervise(child, pid, stdout, stderr, kill_rx, started_at)
                .await
        });
        Ok(())
    }

    fn command(&self) -> Result<Command, RuntimeError> {
        let (program, args) = self
            .spec
            .command
            .split_first()
            .ok_or(RuntimeError::Unsupported {
                runtime: "local-process",
                what: "run an image's default command; give the job a command".into(),
            })?;
        let mut cmd = Command::new(program);
        // A clean environment: the node's own (wallet seed, tokens) must not leak into jobs.
        cmd.args(args)
            .current_dir(&self.dir)
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into()),
            )
            .env("HOME", &self.dir)
            .env("WORKSPACE", &self.dir)
            .envs(self.spec.env.iter().map(|v| (&v.name, &v.value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        Ok(cmd)
    }

    async fn supervise(
        self: Arc<Self>,
        mut child: Child,
        pid: u32,
        stdout: Option<impl AsyncRead + Unpin>,
        stderr: Option<impl AsyncRead + Unpin>,
        mut kill_rx: mpsc::Receiver<()>,
        started_at: UnixMillis,
    ) {
        let (exited_tx, exited_rx) = oneshot::channel::<()>();
        let waiter = async {
            let status = tokio::select! {
                status = child.wait() => status,
                Some(()) = kill_rx.recv() => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            signal_group(pid, "KILL").await;
            let _ = exited_tx.send(());
            status
        };
        let drain = async {
            let pumps = futures::future::join(
                pump(stdout, LogStream::Stdout, &self.logs),
                pump(stderr, LogStream::Stderr, &self.logs),
            );
            let grace = async {
                let _ = exited_rx.await;
                tokio::time::sleep(DRAIN_GRACE).await;
            };
            tokio::select! { _ = pumps => {}, () = grace => {} }
        };
        let (status, ()) = tokio::join!(waiter, drain);
        let exit = ExitStatus {
            code: exit_code(status),
            oom_killed: false,
        };
        self.logs
            .system(format!("qubix: process exited with code {}", exit.code));
        self.logs.close_live();
        *lock(&self.kill) = None;
        let finished_at = UnixMillis::now();
        self.state.send_replace(RunState::Exited {
            exit,
            started_at,
            finished_at,
        });
        info!(agreement = %self.id.agreement_id, pid, code = exit.code, "local process exited");
    }

    /// SIGTERM to the group, SIGKILL after `timeout`; a job not running is left as it is.
    pub(crate) async fn stop(&self, timeout: Duration) -> Result<(), RuntimeError> {
        let _op = self.op.lock().await;
        self.stop_locked(timeout).await
    }

    pub(crate) async fn stop_locked(&self, timeout: Duration) -> Result<(), RuntimeError> {
        let RunState::Running { pid, .. } = self.run_state() else {
            return Ok(());
        };
        signal_group(pid, "TERM").await;
        if self.exited_within(timeout).await {
            return Ok(());
        }
        warn!(agreement = %self.id.agreement_id, pid, "process ignored SIGTERM; killing it");
        signal_group(pid, "KILL").await;
        if let Some(kill) = lock(&self.kill).clone() {
            let _ = kill.try_send(());
        }
        if self.exited_within(KILL_GRACE).await {
            return Ok(());
        }
        Err(RuntimeError::Local {
            op: "stop",
            detail: format!("process {pid} survived SIGKILL"),
        })
    }

    async fn exited_within(&self, timeout: Duration) -> bool {
        let mut rx = self.state.subscribe();
        let ended = rx.wait_for(|s| !matches!(s, RunState::Running { .. }));
        matches!(tokio::time::timeout(timeout, ended).await, Ok(Ok(_)))
    }

    /// Waits until no process runs: the last exit, or code 0 for a job never started.
    pub(crate) async fn wait(&self) -> ExitStatus {
        let mut rx = self.state.subscribe();
        let state = match rx
            .wait_for(|s| !matches!(s, RunState::Running { .. }))
            .await
        {
            Ok(state) => *state,
            Err(_) => self.run_state(),
        };
        match state {
            RunState::Exited { exit, .. } => exit,
            _ => ExitStatus {
                code: 0,
                oom_killed: false,
            },
        }
    }

    /// CPU since the previous sample (or since start) and resident memory of the group.
    pub(crate) fn stats(&self) -> ContainerStats {
        let limit = self.spec.memory_mib.saturating_mul(1024 * 1024);
        let RunState::Running { pid, since, .. } = self.run_state() else {
            let at = UnixMillis::now();
            return ContainerStats {
                at,
                cpu_pct: 0.0,
                memory_used_bytes: 0,
                memory_limit_bytes: limit,
            };
        };
        let usage = group_usage(pid);
        let now = CpuSample {
            at: Instant::now(),
            ticks: usage.cpu_ticks,
        };
        let previous = lock(&self.last_cpu).replace(now);
        let from = previous.unwrap_or(CpuSample {
            at: since,
            ticks: 0,
        });
        ContainerStats {
            at: UnixMillis::now(),
            cpu_pct: from.pct_until(now),
            memory_used_bytes: usage.rss_bytes,
            memory_limit_bytes: limit,
        }
    }
}

/// Reads lines (each cut at [`MAX_LOG_LINE_BYTES`]) into the ring until end of file.
async fn pump(reader: Option<impl AsyncRead + Unpin>, stream: LogStream, logs: &LogRing) {
    let Some(reader) = reader else { return };
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        let (consumed, done) = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(chunk) => match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (take_capped(&mut line, &chunk[..i]) + 1, true),
                None => (take_capped(&mut line, chunk), false),
            },
        };
        reader.consume(consumed);
        if done {
            emit(&mut line, stream, logs);
        }
    }
    if !line.is_empty() {
        emit(&mut line, stream, logs);
    }
}

/// Appends what still fits under the line cap; returns how much of `bytes` was consumed.
fn take_capped(line: &mut Vec<u8>, bytes: &[u8]) -> usize {
    let room = MAX_LOG_LINE_BYTES.saturating_sub(line.len());
    line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    bytes.len()
}

fn emit(line: &mut Vec<u8>, stream: LogStream, logs: &LogRing) {
    let text = String::from_utf8_lossy(line);
    let text = text.strip_suffix('\r').unwrap_or(&text).to_owned();
    logs.push(LogLine {
        at: UnixMillis::now(),
        stream,
        line: text,
    });
    line.clear();
}

/// Sends `signal` to process group `pgid` with the shell's `kill` (no `unsafe` libc call).
async fn signal_group(pgid: u32, signal: &str) {
    let result = Command::new("sh")
        .args([
            "-c",
            "kill -s \"$0\" -- -\"$1\" 2>/dev/null",
            signal,
            &pgid.to_string(),
        ])
        .stdin(Stdio::null())
        .status()
        .await;
    debug!(pgid, signal, ?result, "signalled process group");
}

/// The exit code, or `128 + signal` when a signal ended it (as Docker reports it).
fn exit_code(status: std::io::Result<std::process::ExitStatus>) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => s
            .code()
            .map_or_else(|| 128 + i64::from(s.signal().unwrap_or(0)), i64::from),
        Err(_) => -1,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
