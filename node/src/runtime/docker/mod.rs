//! [`DockerRuntime`]: jobs in Docker containers through bollard. The Docker client is the
//! one owner of the daemon connection; it is a cheap clone (one pooled socket client), so
//! log streams carry their own handle and outlive the call that made them.

mod create;
mod disk;
mod errors;
mod jobnet;
mod jobnet_ops;
mod layers;
mod logs;
mod managed;
mod oom;
mod pending;
mod pull;
mod state;

use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    CreateContainerOptions, RemoveContainerOptions, RemoveVolumeOptions, RestartContainerOptions,
    StatsOptions, StopContainerOptions, WaitContainerOptions,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use qubix_protocol::api::LogLine;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

pub use create::BASE_CAPABILITIES;
pub(crate) use errors::{engine_error, is_not_found};
pub use jobnet::{Ipv4Net, check_pool};
pub use jobnet_ops::{CleanUp, JobNetworkPolicy};
pub use pending::PendingDocker;
pub use pull::{PullLimits, same_image};

use self::errors::{create_error, daemon_address, plain_error};
use super::ContainerRuntime;
use super::error::RuntimeError;
use super::spec::{ContainerSpec, container_name, workspace_volume};
use super::types::{
    ContainerId, ContainerState, ContainerStats, ContainerStatus, ExitStatus, ManagedContainer,
    PullProgress, RuntimeInfo, RuntimeKind,
};

/// How long connecting and the first ping may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Added to a stop timeout for the HTTP request that waits on it.
const STOP_SLACK: Duration = Duration::from_secs(30);

/// Docker takes stop timeouts in whole seconds; round up, so 500 ms is not "kill at once".
fn whole_seconds(timeout: Duration) -> i32 {
    let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// Runs jobs as Docker containers.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    /// The node whose containers these are (label `qubix.node`), when set.
    owner: Option<String>,
    /// Images that run from the local copy without a pull (the provider's allow-list).
    local_images: std::sync::Arc<[String]>,
    /// How each job's own network is made (`None`: jobs share Docker's default bridge,
    /// for tests of the engine alone).
    networks: Option<JobNetworkPolicy>,
    /// One job network allocated at a time.
    network_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// How large and how long a pull may be.
    pull_limits: PullLimits,
    /// Whether the storage driver enforces a size on a container's writable layer.
    storage_quota: bool,
}

impl DockerRuntime {
    /// Connects to the local daemon (`DOCKER_HOST` when it is a `unix://` socket, else
    /// `/var/run/docker.sock`), agrees on an API version and pings it.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let address = daemon_address();
        let unreachable = |detail: String| RuntimeError::DockerUnreachable {
            address: address.clone(),
            detail,
        };
        let docker =
            Docker::connect_with_local_defaults().map_err(|e| unreachable(e.to_string()))?;
        let docker = tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| unreachable("no answer within 5 s".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::time::timeout(CONNECT_TIMEOUT, docker.ping())
            .await
            .map_err(|_| unreachable("no answer to ping within 5 s".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        debug!(%address, api = %docker.client_version(), "connected to docker");
        let storage_quota = match docker.info().await {
            Ok(info) => disk::driver_has_quota(
                info.driver.as_deref().unwrap_or_default(),
                info.driver_status.as_deref().unwrap_or_default(),
            ),
            Err(_) => false,
        };
        Ok(Self {
            docker,
            owner: None,
            local_images: std::sync::Arc::from(Vec::new()),
            networks: Some(JobNetworkPolicy::default()),
            network_lock: std::sync::Arc::default(),
            pull_limits: PullLimits::default(),
            storage_quota,
        })
    }

    /// How each job's own network is made; `None` puts jobs on Docker's default bridge
    /// (no isolation between jobs or from the host: for tests of the engine alone).
    pub fn with_job_networks(mut self, policy: Option<JobNetworkPolicy>) -> Self {
        self.networks = policy;
        self
    }

    /// Bounds on the size and duration of image pulls.
    pub fn with_pull_limits(mut self, limits: PullLimits) -> Self {
        self.pull_limits = limits;
        self
    }

    /// Removes what earlier runs of this node left behind, and says what (see [`CleanUp`]).
    pub async fn remove_orphans(&self) -> Result<CleanUp, RuntimeError> {
        self.clean_up_orphans().await
    }

    /// Images already on the engine that jobs may run without a pull (none by default:
    /// every other image is pulled by reference, without credentials, before it runs).
    pub fn with_local_images(mut self, images: &[String]) -> Self {
        self.local_images = std::sync::Arc::from(images.to_vec());
        self
    }

    /// Labels what this runtime creates with `qubix.node=<owner>`; `list_managed` then
    /// lists only those (and a runtime without an owner only containers without one). Use
    /// it whenever several nodes may share one daemon (a testnet on one machine): a node
    /// reconciling after a restart must not adopt or remove another node's jobs.
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    async fn probe_engine(&self) -> Result<RuntimeInfo, RuntimeError> {
        let version = self
            .docker
            .version()
            .await
            .map_err(|e| plain_error("version", e))?;
        let info = self
            .docker
            .info()
            .await
            .map_err(|e| plain_error("info", e))?;
        let nvidia_runtime = info.runtimes.is_some_and(|r| r.contains_key("nvidia"));
        Ok(RuntimeInfo {
            kind: RuntimeKind::Docker,
            version: version.version.unwrap_or_default(),
            nvidia_runtime,
        })
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<ContainerId, RuntimeError> {
        spec.validate()?;
        if spec.workspace {
            self.docker
                .create_volume(create::volume_request(spec, self.owner.as_deref()))
                .await
                .map_err(|e| plain_error("create volume", e))?;
        }
        let name = container_name(&spec.agreement_id);
        if self.docker.inspect_container(&name, None).await.is_ok() {
            // The job's container exists, and with it its network: touch neither.
            return Err(RuntimeError::AlreadyExists { name });
        }
        let network = match &self.networks {
            Some(policy) => Some(self.create_job_network(&spec.agreement_id, policy).await?),
            None => None,
        };
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let mut body = create::create_body(spec, self.owner.as_deref(), network.as_deref());
        if self.storage_quota
            && spec.disk_limit_mib > 0
            && let Some(host) = body.host_config.as_mut()
        {
            host.storage_opt =
                Some([("size".to_owned(), format!("{}M", spec.disk_limit_mib))].into());
        }
        let mut attempt = self
            .docker
            .create_container(Some(options.clone()), body.clone())
            .await;
        if let Err(e) = &attempt
            && self.storage_quota
            && e.to_string().to_ascii_lowercase().contains("storage-opt")
        {
            // The driver has no quota on this filesystem after all: the size is watched.
            warn!(error = %e, "no storage quota here; the job's disk use is watched instead");
            if let Some(host) = body.host_config.as_mut() {
                host.storage_opt = None;
            }
            attempt = self.docker.create_container(Some(options), body).await;
        }
        let created = match attempt {
            Ok(created) => created,
            Err(e) => {
                if network.is_some() {
                    let _ = self.remove_job_network(&spec.agreement_id).await;
                }
                return Err(create_error(spec, &name, e));
            }
        };
        for warning in created.warnings.iter().filter(|w| !w.is_empty()) {
            warn!(agreement = %spec.agreement_id, %warning, "docker warned on create");
        }
        info!(agreement = %spec.agreement_id, container = %name, image = %spec.image,
            gpus = spec.gpu_uuids.len(), attach_gpus = spec.attach_gpus, "container created");
        Ok(ContainerId {
            agreement_id: spec.agreement_id,
            native: created.id,
        })
    }

    async fn start_container(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        self.docker
            .start_container(&id.native, None)
            .await
            .map_err(|e| engine_error("start", &id.native, e))?;
        info!(agreement = %id.agreement_id, container = %id, "container started");
        Ok(())
    }

    async fn stop_container(
        &self,
        id: &ContainerId,
        timeout: Duration,
    ) -> Result<(), RuntimeError> {
        let options = StopContainerOptions {
            t: Some(whole_seconds(timeout)),
            signal: None,
        };
        let client = self.docker.clone().with_timeout(timeout + STOP_SLACK);
        client
            .stop_container(&id.native, Some(options))
            .await
            .map_err(|e| engine_error("stop", &id.native, e))?;
        info!(agreement = %id.agreement_id, container = %id, "container stopped");
        Ok(())
    }

    async fn restart_container(
        &self,
        id: &ContainerId,
        timeout: Duration,
    ) -> Result<(), RuntimeError> {
        let options = RestartContainerOptions {
            t: Some(whole_seconds(timeout)),
            signal: None,
        };
        let client = self.docker.clone().with_timeout(timeout + STOP_SLACK);
        client
            .restart_container(&id.native, Some(options))
            .await
            .map_err(|e| engine_error("restart", &id.native, e))?;
        info!(agreement = %id.agreement_id, container = %id, "container restarted");
        Ok(())
    }

    async fn remove_container(
        &self,
        id: &ContainerId,
        with_volume: bool,
    ) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        match self
            .docker
            .remove_container(&id.native, Some(options))
            .await
        {
            Err(e) if !is_not_found(&e) => return Err(engine_error("remove", &id.native, e)),
            _ => {}
        }
        self.remove_job_network(&id.agreement_id).await?;
        if with_volume {
            let volume = workspace_volume(&id.agreement_id);
            let options = Some(RemoveVolumeOptions { force: false });
            match self.docker.remove_volume(&volume, options).await {
                Err(e) if !is_not_found(&e) => return Err(plain_error("remove volume", e)),
                _ => {}
            }
        }
        info!(agreement = %id.agreement_id, container = %id, with_volume, "container removed");
        Ok(())
    }

    async fn inspect_container(&self, native: &str) -> Result<ContainerState, RuntimeError> {
        match self.docker.inspect_container(native, None).await {
            Ok(inspect) => {
                let state = state::container_state(&inspect);
                Ok(oom::confirm_oom(&self.docker, native, state).await)
            }
            Err(e) if is_not_found(&e) => Ok(ContainerState::missing()),
            Err(e) => Err(engine_error("inspect", native, e)),
        }
    }

    async fn container_stats(&self, id: &ContainerId) -> Result<ContainerStats, RuntimeError> {
        let options = StatsOptions {
            stream: false,
            one_shot: false,
        };
        let mut stream = self.docker.stats(&id.native, Some(options));
        match stream.next().await {
            Some(Ok(stats)) => Ok(state::container_stats(&stats)),
            Some(Err(e)) => Err(engine_error("stats", &id.native, e)),
            None => Err(RuntimeError::Docker {
                op: "stats",
                detail: "the engine sent no sample".into(),
            }),
        }
    }

    async fn wait_container(&self, id: &ContainerId) -> Result<ExitStatus, RuntimeError> {
        let options = WaitContainerOptions {
            condition: "not-running".into(),
        };
        let mut stream = self.docker.wait_container(&id.native, Some(options));
        let code = match stream.next().await {
            Some(Ok(response)) => response.status_code,
            Some(Err(DockerError::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(engine_error("wait", &id.native, e)),
            None => {
                return Err(RuntimeError::Docker {
                    op: "wait",
                    detail: "no answer".into(),
                });
            }
        };
        // The wait answer has no OOM flag; inspect has it (confirmed against the event log)
        // and the exact code.
        match self.inspect_container(&id.native).await?.status {
            ContainerStatus::Exited(exit) => Ok(exit),
            _ => Ok(ExitStatus {
                code,
                oom_killed: false,
            }),
        }
    }
}

impl ContainerRuntime for DockerRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }

    fn probe(&self) -> BoxFuture<'_, Result<RuntimeInfo, RuntimeError>> {
        Box::pin(self.probe_engine())
    }

    fn pull<'a>(
        &'a self,
        image: &'a str,
        progress: mpsc::Sender<PullProgress>,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(pull::pull(
            &self.docker,
            image,
            &self.local_images,
            self.pull_limits,
            progress,
        ))
    }

    fn create<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> BoxFuture<'a, Result<ContainerId, RuntimeError>> {
        Box::pin(self.create_container(spec))
    }

    fn start<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.start_container(id))
    }

    fn stop<'a>(
        &'a self,
        id: &'a ContainerId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.stop_container(id, timeout))
    }

    fn restart<'a>(
        &'a self,
        id: &'a ContainerId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.restart_container(id, timeout))
    }

    fn remove<'a>(
        &'a self,
        id: &'a ContainerId,
        with_volume: bool,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.remove_container(id, with_volume))
    }

    fn inspect<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<ContainerState, RuntimeError>> {
        Box::pin(self.inspect_container(&id.native))
    }

    fn list_managed(&self) -> BoxFuture<'_, Result<Vec<ManagedContainer>, RuntimeError>> {
        Box::pin(self.managed_containers())
    }

    fn logs(
        &self,
        id: &ContainerId,
        follow: bool,
        tail: Option<usize>,
    ) -> BoxStream<'static, Result<LogLine, RuntimeError>> {
        logs::logs(&self.docker, &id.native, follow, tail)
    }

    fn stats<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<ContainerStats, RuntimeError>> {
        Box::pin(self.container_stats(id))
    }

    fn wait<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<ExitStatus, RuntimeError>> {
        Box::pin(self.wait_container(id))
    }

    fn clean_up(&self) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(async move { self.clean_up_orphans().await.map(|_| ()) })
    }

    fn disk_usage<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<u64>, RuntimeError>> {
        Box::pin(async move {
            let options = bollard::query_parameters::InspectContainerOptions { size: true };
            let inspect = self
                .docker
                .inspect_container(&id.native, Some(options))
                .await
                .map_err(|e| engine_error("inspect", &id.native, e))?;
            let layer = inspect
                .size_rw
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(0);
            let workspace = match self
                .docker
                .inspect_volume(&workspace_volume(&id.agreement_id))
                .await
            {
                Ok(volume) => {
                    let path = std::path::PathBuf::from(volume.mountpoint);
                    tokio::task::spawn_blocking(move || disk::tree_size(&path))
                        .await
                        .unwrap_or(0)
                }
                Err(e) if is_not_found(&e) => 0,
                Err(e) => return Err(plain_error("inspect volume", e)),
            };
            Ok(Some(layer.saturating_add(workspace)))
        })
    }

    fn remove_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, RuntimeError>> {
        Box::pin(async move {
            // Never forced: an image some container (any node's) still uses stays.
            match self
                .docker
                .remove_image(
                    image,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if is_not_found(&e) => Ok(true),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                }) => Ok(false),
                Err(e) => Err(plain_error("remove image", e)),
            }
        })
    }
}
