//! The container runtime: how a provider's node runs a job.
//!
//! The node holds one `Arc<dyn ContainerRuntime>` (from [`connect`]) and the job lifecycle
//! manager drives it: `pull` → `create` → `start`, then `inspect`/`wait`/`logs`/`stats`
//! while it runs, `stop`/`start`/`restart` on the consumer's word, and `remove` at the end.
//! After a node restart, `list_managed` finds every container that carries the Qubix
//! labels, with its agreement id, for reconciliation.
//!
//! - [`DockerRuntime`] (`docker/`): Docker through bollard. A [`ContainerSpec`] becomes a
//!   container with GPUs attached by UUID, CPU/memory/pids limits, every capability but a
//!   short list dropped, `no-new-privileges`, a named workspace volume, ports published on
//!   an ephemeral host port, and labels naming the agreement. The spec has no field for
//!   anything privileged, so no request can ask for it.
//! - [`LocalProcessRuntime`] (`local/`): the testnet's fallback without Docker; the
//!   command runs as a local process, without isolation, and says so loudly. Refused on
//!   mainnet.
//! - [`bench`]: start latency through the runtime beside a plain `docker run`.
//!
//! Streams (logs) are pulled by the reader and own what they need (`'static`), so a task
//! can forward them; nothing in here queues without bound.

pub mod bench;
mod docker;
mod error;
mod local;
mod spec;
mod timestamp;
mod types;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use qubix_protocol::api::LogLine;
use qubix_protocol::topics::Network;
use tokio::sync::mpsc;
use tracing::{info, warn};

pub use docker::{
    BASE_CAPABILITIES, CleanUp, DockerRuntime, Ipv4Net, JobNetworkPolicy, PendingDocker,
    PullLimits, check_pool, same_image,
};
pub use error::{PullFailure, RuntimeError};
pub use local::{DEFAULT_LOG_LINES, LocalProcessRuntime};
pub use spec::{
    ContainerSpec, LABEL_AGREEMENT, LABEL_MANAGED, LABEL_NODE, MAX_CPU_CORES, MAX_MEMORY_MIB,
    MIN_MEMORY_MIB, SpecError, WORKSPACE_PATH, container_name, workspace_volume,
};
pub use types::{
    BoundPort, ContainerId, ContainerState, ContainerStats, ContainerStatus, ExitStatus,
    ManagedContainer, PullProgress, RuntimeInfo, RuntimeKind,
};

/// Longest log line kept; longer lines are cut (a job printing a megabyte without a
/// newline must not cost a megabyte per reader).
pub const MAX_LOG_LINE_BYTES: usize = 16 * 1024;

/// Runs job containers. Object-safe: the node holds an `Arc<dyn ContainerRuntime>` (and
/// `Debug`, so structs holding one can derive it).
///
/// Operations on a container that does not exist fail with
/// [`RuntimeError::NoSuchContainer`], except `inspect` (which reports
/// [`ContainerStatus::Missing`]) and `remove` (which succeeds: removing is idempotent).
pub trait ContainerRuntime: fmt::Debug + Send + Sync + 'static {
    /// Which implementation this is.
    fn kind(&self) -> RuntimeKind;

    /// Engine version and whether it can attach NVIDIA GPUs.
    fn probe(&self) -> BoxFuture<'_, Result<RuntimeInfo, RuntimeError>>;

    /// Makes `image` present, reporting progress; a present image needs no registry.
    /// Progress is advisory: updates are skipped while `progress` is full, except the last
    /// one (`complete: true`).
    fn pull<'a>(
        &'a self,
        image: &'a str,
        progress: mpsc::Sender<PullProgress>,
    ) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// Validates `spec` and creates its container (not started). The image must be present.
    fn create<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> BoxFuture<'a, Result<ContainerId, RuntimeError>>;

    /// Starts a created or stopped container; a running one is left as it is.
    fn start<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// SIGTERM, then SIGKILL after `timeout` (Docker counts whole seconds, rounding up);
    /// the container and its workspace are kept. A container not running is left as it is.
    fn stop<'a>(
        &'a self,
        id: &'a ContainerId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// Stops (as `stop`) and starts again.
    fn restart<'a>(
        &'a self,
        id: &'a ContainerId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// Kills and removes the container; with `with_volume`, its workspace too.
    fn remove<'a>(
        &'a self,
        id: &'a ContainerId,
        with_volume: bool,
    ) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// The container's state, `Missing` when it does not exist.
    fn inspect<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<ContainerState, RuntimeError>>;

    /// Every container carrying the Qubix labels (and this runtime's owner label, see
    /// [`DockerRuntime::with_owner`]), with its agreement id and state.
    fn list_managed(&self) -> BoxFuture<'_, Result<Vec<ManagedContainer>, RuntimeError>>;

    /// Log lines, stdout and stderr apart, oldest first: the last `tail` (all when `None`),
    /// then with `follow` new ones until the container stops.
    fn logs(
        &self,
        id: &ContainerId,
        follow: bool,
        tail: Option<usize>,
    ) -> BoxStream<'static, Result<LogLine, RuntimeError>>;

    /// One sample of CPU and memory use (zeros while not running).
    fn stats<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<ContainerStats, RuntimeError>>;

    /// Waits until the container is not running and says how it ended; at once for one
    /// that is not running (code 0 for one never started).
    fn wait<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<ExitStatus, RuntimeError>>;

    /// What the container's writable layer and workspace hold, bytes; `None` where the
    /// runtime cannot tell.
    fn disk_usage<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<u64>, RuntimeError>> {
        let _ = id;
        Box::pin(async { Ok(None) })
    }

    /// Removes `image` unless a container still uses it; true when it is gone. Nothing for
    /// runtimes without images.
    fn remove_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, RuntimeError>> {
        let _ = image;
        Box::pin(async { Ok(false) })
    }

    /// Removes what earlier runs of this node left behind (job networks, firewall rules and
    /// workspaces whose job has no container); nothing for runtimes that leave nothing.
    fn clean_up(&self) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(async { Ok(()) })
    }
}

/// How a node's runtime is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// Images on the engine that run without a pull; every other image is pulled by
    /// reference before it runs.
    pub local_images: Vec<String>,
    /// Each job's own network (`None`: Docker's default bridge, for tests of the engine).
    pub networks: Option<JobNetworkPolicy>,
    /// Without Docker, on a testnet, run jobs as local processes (no isolation).
    pub unsafe_local_jobs: bool,
    /// How large and how long an image pull may be.
    pub pull_limits: PullLimits,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            local_images: Vec::new(),
            networks: Some(JobNetworkPolicy::default()),
            unsafe_local_jobs: false,
            pull_limits: PullLimits::default(),
        }
    }
}

/// The runtime for this node: Docker when a daemon answers; otherwise, on a testnet and
/// with `unsafe_local_jobs`, local processes (in the system temp directory); otherwise an
/// error that says how to get Docker. Its `list_managed` sees the Qubix containers on the
/// daemon that carry no owner label; where nodes may share a daemon, use
/// [`connect_owned`].
pub async fn connect(
    network: &Network,
    options: &RuntimeOptions,
) -> Result<Arc<dyn ContainerRuntime>, RuntimeError> {
    connect_inner(network, None, options).await
}

/// As [`connect`], but Docker containers are labelled `qubix.node=<owner>` (pass the node
/// id) and `list_managed` sees only this owner's, so nodes sharing a daemon (a testnet on
/// one machine) never reconcile away each other's jobs.
pub async fn connect_owned(
    network: &Network,
    owner: &str,
    options: &RuntimeOptions,
) -> Result<Arc<dyn ContainerRuntime>, RuntimeError> {
    connect_inner(network, Some(owner), options).await
}

async fn connect_inner(
    network: &Network,
    owner: Option<&str>,
    options: &RuntimeOptions,
) -> Result<Arc<dyn ContainerRuntime>, RuntimeError> {
    let unreachable = match DockerRuntime::connect().await {
        Ok(docker) => {
            info!(
                network = network.name(),
                owner, "jobs run in Docker containers"
            );
            let docker = docker
                .with_local_images(&options.local_images)
                .with_job_networks(options.networks)
                .with_pull_limits(options.pull_limits);
            return Ok(Arc::new(match owner {
                Some(owner) => docker.with_owner(owner),
                None => docker,
            }));
        }
        Err(e) => e,
    };
    if !options.unsafe_local_jobs || network.is_mainnet() {
        return Err(unreachable);
    }
    warn!(
        error = %unreachable,
        "Docker unreachable and --unsafe-local-jobs set: jobs run as LOCAL PROCESSES on this \
         machine with NO ISOLATION; every offer says so"
    );
    let root = std::env::temp_dir().join(format!("qubix-jobs-{}", network.name()));
    Ok(Arc::new(LocalProcessRuntime::for_testnet(network, root)?))
}
