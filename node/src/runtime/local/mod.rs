//! [`LocalProcessRuntime`]: the testnet's fallback when no Docker daemon can be reached.
//! Each job's command runs as a plain child process of the node, in a directory of its
//! own, with only the job's environment. There is no isolation at all: no image (the
//! command runs on the host), no GPU attach, no CPU or memory limit, no port publishing
//! (a port is reported as itself on 127.0.0.1). It exists so a testnet runs on a machine
//! without Docker, is refused on mainnet, and says so loudly.
//!
//! Jobs live in this runtime's memory: after a node restart `list_managed` finds none
//! (the processes died with the node, which started them with kill-on-drop), and their
//! directories are left for `remove` to delete.

mod job;
mod log_ring;
mod procfs;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use qubix_protocol::api::LogLine;
use qubix_protocol::ids::AgreementId;
use qubix_protocol::topics::Network;
use tokio::sync::mpsc;
use tracing::{info, warn};

use self::job::{LocalJob, RunState};
use super::ContainerRuntime;
use super::error::RuntimeError;
use super::spec::{ContainerSpec, workspace_volume};
use super::types::{
    BoundPort, ContainerId, ContainerState, ContainerStats, ContainerStatus, ExitStatus,
    ManagedContainer, PullProgress, RuntimeInfo, RuntimeKind,
};

/// Log lines kept per job unless set otherwise.
pub const DEFAULT_LOG_LINES: usize = 10_000;

/// Runs jobs as local processes (testnet only, no isolation).
pub struct LocalProcessRuntime {
    root: PathBuf,
    log_lines: usize,
    jobs: Mutex<HashMap<AgreementId, Arc<LocalJob>>>,
}

impl std::fmt::Debug for LocalProcessRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProcessRuntime")
            .field("root", &self.root)
            .field("jobs", &self.jobs().len())
            .finish_non_exhaustive()
    }
}

impl LocalProcessRuntime {
    /// A runtime keeping job directories under `root`; refused on mainnet.
    pub fn for_testnet(network: &Network, root: impl Into<PathBuf>) -> Result<Self, RuntimeError> {
        if network.is_mainnet() {
            return Err(RuntimeError::LocalOnMainnet);
        }
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| RuntimeError::local("create job root", &e))?;
        warn!(
            network = network.name(),
            root = %root.display(),
            "NO DOCKER: jobs run as plain local processes WITHOUT ISOLATION (no image, no GPU, \
             no CPU or memory limits, no port publishing); testnet only"
        );
        Ok(Self {
            root,
            log_lines: DEFAULT_LOG_LINES,
            jobs: Mutex::new(HashMap::new()),
        })
    }

    /// Keeps at most `lines` log lines per job.
    pub fn with_log_capacity(mut self, lines: usize) -> Self {
        self.log_lines = lines.max(1);
        self
    }

    /// The directory a job runs in.
    pub fn job_dir(&self, agreement: &AgreementId) -> PathBuf {
        self.root.join(workspace_volume(agreement))
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<AgreementId, Arc<LocalJob>>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn job(&self, id: &ContainerId) -> Option<Arc<LocalJob>> {
        self.jobs()
            .get(&id.agreement_id)
            .filter(|j| j.id == *id)
            .cloned()
    }

    fn existing(&self, id: &ContainerId) -> Result<Arc<LocalJob>, RuntimeError> {
        self.job(id)
            .ok_or_else(|| RuntimeError::NoSuchContainer(id.native.clone()))
    }

    async fn create_job(&self, spec: &ContainerSpec) -> Result<ContainerId, RuntimeError> {
        spec.validate()?;
        if spec.command.is_empty() {
            return Err(RuntimeError::Unsupported {
                runtime: "local-process",
                what: "run an image's default command; give the job a command".into(),
            });
        }
        let agreement = spec.agreement_id;
        let id = ContainerId::for_agreement(agreement);
        let dir = self.job_dir(&agreement);
        if self.jobs().contains_key(&agreement) {
            return Err(RuntimeError::AlreadyExists { name: id.native });
        }
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| RuntimeError::local("create job dir", &e))?;
        let job = Arc::new(LocalJob::new(id.clone(), spec.clone(), dir, self.log_lines));
        job.logs.system(format!(
            "qubix: local-process runtime (testnet, no Docker): image {} is not used; the \
             command runs on the host without isolation, GPUs or limits",
            spec.image
        ));
        // Two concurrent creates both passed the check above; the first to insert wins.
        match self.jobs().entry(agreement) {
            Entry::Occupied(_) => return Err(RuntimeError::AlreadyExists { name: id.native }),
            Entry::Vacant(slot) => slot.insert(job),
        };
        info!(%agreement, image = %spec.image, "local job created; the image is ignored");
        Ok(id)
    }

    async fn remove_job(&self, id: &ContainerId, with_volume: bool) -> Result<(), RuntimeError> {
        let dir = self.job_dir(&id.agreement_id);
        if let Some(job) = self.job(id) {
            job.stop(Duration::ZERO).await?;
            self.jobs().remove(&id.agreement_id);
            if !job.spec.workspace {
                remove_dir(&dir).await?;
            }
        }
        if with_volume {
            remove_dir(&dir).await?;
        }
        info!(agreement = %id.agreement_id, with_volume, "local job removed");
        Ok(())
    }
}

async fn remove_dir(dir: &std::path::Path) -> Result<(), RuntimeError> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(RuntimeError::local("remove job dir", &e))
        }
        _ => Ok(()),
    }
}

/// The state of a job: ports are "published" as themselves on 127.0.0.1 while it runs.
fn job_state(job: &LocalJob) -> ContainerState {
    let running_ports = || {
        job.spec
            .ports
            .iter()
            .map(|p| BoundPort {
                container_port: p.container_port,
                host_ip: "127.0.0.1".into(),
                host_port: p.container_port,
            })
            .collect()
    };
    match job.run_state() {
        RunState::Created => ContainerState {
            status: ContainerStatus::Created,
            started_at: None,
            finished_at: None,
            ports: vec![],
        },
        RunState::Running { started_at, .. } => ContainerState {
            status: ContainerStatus::Running,
            started_at: Some(started_at),
            finished_at: None,
            ports: running_ports(),
        },
        RunState::Exited {
            exit,
            started_at,
            finished_at,
        } => ContainerState {
            status: ContainerStatus::Exited(exit),
            started_at: Some(started_at),
            finished_at: Some(finished_at),
            ports: vec![],
        },
    }
}

impl ContainerRuntime for LocalProcessRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::LocalProcess
    }

    fn probe(&self) -> BoxFuture<'_, Result<RuntimeInfo, RuntimeError>> {
        Box::pin(async {
            Ok(RuntimeInfo {
                kind: RuntimeKind::LocalProcess,
                version: env!("CARGO_PKG_VERSION").to_owned(),
                nvidia_runtime: false,
            })
        })
    }

    fn pull<'a>(
        &'a self,
        image: &'a str,
        progress: mpsc::Sender<PullProgress>,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            info!(image, "local-process runtime: no image to pull");
            let done = PullProgress {
                status: "local-process runtime: image not used".into(),
                complete: true,
                ..Default::default()
            };
            let _ = progress.send(done).await;
            Ok(())
        })
    }

    fn create<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> BoxFuture<'a, Result<ContainerId, RuntimeError>> {
        Box::pin(self.create_job(spec))
    }

    fn start<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move { self.existing(id)?.start().await })
    }

    fn stop<'a>(
        &'a self,
        id: &'a ContainerId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move { self.existing(id)?.stop(timeout).await })
    }

    fn restart<'a>(
        &'a self,
        id: &'a ContainerId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let job = self.existing(id)?;
            job.stop(timeout).await?;
            job.start().await
        })
    }

    fn remove<'a>(
        &'a self,
        id: &'a ContainerId,
        with_volume: bool,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.remove_job(id, with_volume))
    }

    fn inspect<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<ContainerState, RuntimeError>> {
        Box::pin(async move {
            Ok(self
                .job(id)
                .map_or_else(ContainerState::missing, |j| job_state(&j)))
        })
    }

    fn list_managed(&self) -> BoxFuture<'_, Result<Vec<ManagedContainer>, RuntimeError>> {
        let jobs: Vec<Arc<LocalJob>> = self.jobs().values().cloned().collect();
        Box::pin(async move {
            Ok(jobs
                .iter()
                .map(|j| ManagedContainer {
                    id: j.id.clone(),
                    image: j.spec.image.clone(),
                    state: job_state(j),
                })
                .collect())
        })
    }

    fn logs(
        &self,
        id: &ContainerId,
        follow: bool,
        tail: Option<usize>,
    ) -> BoxStream<'static, Result<LogLine, RuntimeError>> {
        match self.job(id) {
            Some(job) => job.logs.stream(follow, tail),
            None => stream::once(futures::future::ready(Err(RuntimeError::NoSuchContainer(
                id.native.clone(),
            ))))
            .boxed(),
        }
    }

    fn stats<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<ContainerStats, RuntimeError>> {
        Box::pin(async move {
            let job = self.existing(id)?;
            tokio::task::spawn_blocking(move || job.stats())
                .await
                .map_err(|e| RuntimeError::Local {
                    op: "stats",
                    detail: e.to_string(),
                })
        })
    }

    fn wait<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<ExitStatus, RuntimeError>> {
        Box::pin(async move { Ok(self.existing(id)?.wait().await) })
    }
}
