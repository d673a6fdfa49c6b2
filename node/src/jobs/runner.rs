//! One task per provider job that performs the lifecycle's effects on the container runtime
//! and reports what happened back as lifecycle inputs. It owns the job's container id, its
//! log follower, its exit watcher and its metrics sampler; it never decides anything.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use qubix_protocol::api::{GpuSample, MetricsSample};
use qubix_protocol::control::PublishedPort;
use qubix_protocol::job::PortRequest;
use qubix_protocol::{AgreementId, NodeId, UnixMillis};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::books::{LOG_LINES, LogBook, METRICS_SAMPLES, MetricsBook, system_line};
use super::lifecycle::{Effect, Input};
use crate::gpu::GpuProbe;
use crate::runtime::{
    BoundPort, ContainerId, ContainerRuntime, ContainerSpec, ContainerStatus, PullProgress,
};

/// How often a running job's metrics are sampled.
pub const METRICS_PERIOD: Duration = Duration::from_secs(5);
/// How long a stop waits before killing.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Effects queued per job.
const EFFECT_QUEUE: usize = 32;

/// What the service holds of a job's runner.
#[derive(Debug, Clone)]
pub struct RunnerHandle {
    effects: mpsc::Sender<Effect>,
    /// The job's consumer, from the terms verified when the runner started: the only peer
    /// that may control or read the job (checked on every request, so kept at hand rather
    /// than verified again each time).
    pub consumer: NodeId,
    /// The job's log.
    pub logs: Arc<LogBook>,
    /// The job's metrics.
    pub metrics: Arc<MetricsBook>,
    /// Published ports, once the container runs.
    pub ports: Arc<Mutex<Vec<BoundPort>>>,
    /// The ports the consumer asked for, with their purposes.
    requested: Arc<[PortRequest]>,
    /// The latest figures of the image pull.
    pull: Arc<Mutex<Option<PullProgress>>>,
}

impl RunnerHandle {
    /// Queues an effect without waiting; false when the queue is full or the runner stopped.
    pub fn try_perform(&self, effect: Effect) -> bool {
        self.effects.try_send(effect).is_ok()
    }

    /// Queues an effect; false when the runner has stopped.
    pub async fn perform(&self, effect: Effect) -> bool {
        self.effects.send(effect).await.is_ok()
    }

    /// The published ports.
    pub fn bound_ports(&self) -> Vec<BoundPort> {
        self.ports.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The published ports of the requested ones, as the consumer reaches them on `host`.
    pub fn published(&self, host: &str) -> Vec<PublishedPort> {
        self.bound_ports()
            .iter()
            .filter_map(|b| {
                let asked = self
                    .requested
                    .iter()
                    .find(|p| p.container_port == b.container_port)?;
                Some(PublishedPort {
                    container_port: b.container_port,
                    host: host.to_owned(),
                    host_port: b.host_port,
                    purpose: asked.purpose,
                })
            })
            .collect()
    }

    /// How far the image pull has come; `None` before it began.
    pub fn pull_progress(&self) -> Option<PullProgress> {
        self.pull.lock().ok().and_then(|p| p.clone())
    }
}

/// Where runners report.
pub type InputSender = mpsc::Sender<(AgreementId, Input)>;

struct Runner {
    id: AgreementId,
    spec: ContainerSpec,
    runtime: Arc<dyn ContainerRuntime>,
    probe: Option<Arc<dyn GpuProbe>>,
    inputs: InputSender,
    logs: Arc<LogBook>,
    metrics: Arc<MetricsBook>,
    ports: Arc<Mutex<Vec<BoundPort>>>,
    pull: Arc<Mutex<Option<PullProgress>>>,
    container: Option<ContainerId>,
    follower: Option<JoinHandle<()>>,
    watcher: Option<JoinHandle<()>>,
    /// When the job's disk use was last measured.
    disk_checked: Option<tokio::time::Instant>,
}

/// Where a runner lives: the node's shutdown signal, and the tracker its task joins, so
/// that the node's shutdown waits for an engine operation in progress.
#[derive(Debug)]
pub struct RunnerScope<'a> {
    /// Cancelled when the node stops.
    pub shutdown: CancellationToken,
    /// The node's tasks.
    pub tasks: &'a TaskTracker,
}

/// Starts the runner of job `spec.agreement_id` for `consumer`. `expect_container` is set
/// when the node restarted with the job's container running.
pub fn spawn(
    spec: ContainerSpec,
    consumer: NodeId,
    runtime: Arc<dyn ContainerRuntime>,
    probe: Option<Arc<dyn GpuProbe>>,
    inputs: InputSender,
    expect_container: bool,
    scope: RunnerScope<'_>,
) -> RunnerHandle {
    let RunnerScope { shutdown, tasks } = scope;
    let (tx, rx) = mpsc::channel(EFFECT_QUEUE);
    let handle = RunnerHandle {
        effects: tx,
        consumer,
        logs: super::books::Book::new(LOG_LINES),
        metrics: super::books::Book::new(METRICS_SAMPLES),
        ports: Arc::new(Mutex::new(Vec::new())),
        requested: spec.ports.clone().into(),
        pull: Arc::new(Mutex::new(None)),
    };
    let mut runner = Runner {
        id: spec.agreement_id,
        spec,
        runtime,
        probe,
        inputs,
        logs: handle.logs.clone(),
        metrics: handle.metrics.clone(),
        ports: handle.ports.clone(),
        pull: handle.pull.clone(),
        container: None,
        follower: None,
        watcher: None,
        disk_checked: None,
    };
    // Tracked, so that the node's shutdown waits for an engine operation in progress (a
    // container being created or removed) instead of leaving it half done.
    tasks.spawn(async move { runner.run(rx, expect_container, shutdown).await });
    handle
}

impl Runner {
    async fn run(
        &mut self,
        mut effects: mpsc::Receiver<Effect>,
        expect_container: bool,
        shutdown: CancellationToken,
    ) {
        if expect_container {
            self.find_container().await;
        }
        let mut sample = tokio::time::interval(METRICS_PERIOD);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                effect = effects.recv() => match effect {
                    Some(Effect::Remove) => {
                        self.remove().await;
                        break;
                    }
                    // A pull leaves nothing half done: shutdown need not wait for it.
                    Some(Effect::Pull) => tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = self.pull() => {}
                    },
                    Some(effect) => self.perform(effect).await,
                    None => break,
                },
                _ = sample.tick() => self.sample().await,
            }
        }
        self.stop_watching();
    }

    async fn report(&self, input: Input) {
        let _ = self.inputs.send((self.id, input)).await;
    }

    async fn perform(&mut self, effect: Effect) {
        match effect {
            Effect::Pull => self.pull().await,
            Effect::Run => self.create_and_start().await,
            Effect::Stop => {
                self.stop_watching();
                if let Some(c) = &self.container {
                    system_line(&self.logs, "stopping container (workspace kept)");
                    if let Err(e) = self.runtime.stop(c, STOP_TIMEOUT).await {
                        warn!(job = %self.id, error = %e, "stop failed");
                    }
                }
            }
            Effect::Resume => self.resume(false).await,
            Effect::Restart => self.resume(true).await,
            Effect::Remove | Effect::Release | Effect::Refund(_) => {}
        }
    }

    async fn pull(&mut self) {
        system_line(&self.logs, format!("pulling image {}", self.spec.image));
        let (tx, rx) = mpsc::channel::<PullProgress>(16);
        let progress = tokio::spawn(super::pull_watch::follow(
            rx,
            self.logs.clone(),
            self.pull.clone(),
        ));
        let result = self.runtime.pull(&self.spec.image, tx).await;
        let _ = progress.await;
        match result {
            Ok(()) => self.report(Input::Pulled).await,
            Err(e) => {
                warn!(job = %self.id, error = %e, "image pull failed");
                system_line(&self.logs, format!("image pull failed: {e}"));
                self.report(Input::PullFailed).await;
            }
        }
    }

    async fn create_and_start(&mut self) {
        let created = match self.runtime.create(&self.spec).await {
            Ok(id) => id,
            Err(e) => {
                warn!(job = %self.id, error = %e, "cannot create the container");
                system_line(&self.logs, format!("cannot create the container: {e}"));
                return self.report(Input::StartFailed).await;
            }
        };
        self.container = Some(created.clone());
        if let Err(e) = self.runtime.start(&created).await {
            warn!(job = %self.id, error = %e, "cannot start the container");
            system_line(&self.logs, format!("cannot start the container: {e}"));
            return self.report(Input::StartFailed).await;
        }
        info!(job = %self.id, container = %created, "container started");
        system_line(&self.logs, "container started");
        self.watch(None).await;
        self.report(Input::Started).await;
    }

    /// After a node restart: finds this job's container by its label and follows it, or
    /// reports it lost.
    async fn find_container(&mut self) {
        match self.runtime.list_managed().await {
            Ok(list) => match list.into_iter().find(|m| m.id.agreement_id == self.id) {
                Some(found) => {
                    info!(job = %self.id, container = %found.id, "container found after restart");
                    self.container = Some(found.id);
                    self.adopt().await;
                }
                None => {
                    system_line(
                        &self.logs,
                        "the container disappeared while the node was down",
                    );
                    self.report(Input::Lost).await;
                }
            },
            Err(e) => warn!(job = %self.id, error = %e, "cannot list containers to reconcile"),
        }
    }

    /// Follows a container found after a node restart.
    async fn adopt(&mut self) {
        let Some(c) = self.container.clone() else {
            return;
        };
        match self.runtime.inspect(&c).await.map(|s| s.status) {
            Ok(ContainerStatus::Running) => self.watch(Some(0)).await,
            Ok(ContainerStatus::Exited(exit)) => {
                self.report(Input::Exited {
                    code: exit.code,
                    oom: exit.oom_killed,
                })
                .await
            }
            Ok(ContainerStatus::Missing) => self.report(Input::Lost).await,
            Ok(ContainerStatus::Created) | Err(_) => {}
        }
    }

    async fn resume(&mut self, restart: bool) {
        let Some(c) = self.container.clone() else {
            return;
        };
        self.stop_watching();
        let result = if restart {
            self.runtime.restart(&c, STOP_TIMEOUT).await
        } else {
            self.runtime.start(&c).await
        };
        match result {
            Ok(()) => {
                system_line(
                    &self.logs,
                    if restart {
                        "container restarted"
                    } else {
                        "container started again"
                    },
                );
                self.watch(Some(0)).await;
                self.report(Input::Started).await;
            }
            Err(e) => {
                system_line(&self.logs, format!("cannot start the container: {e}"));
                self.report(Input::StartFailed).await;
            }
        }
    }

    /// Reads the published ports and starts the log follower and the exit watcher.
    async fn watch(&mut self, tail: Option<usize>) {
        let Some(c) = self.container.clone() else {
            return;
        };
        if let Ok(state) = self.runtime.inspect(&c).await {
            if let Ok(mut ports) = self.ports.lock() {
                *ports = state.ports;
            }
        }
        let logs = self.logs.clone();
        let mut stream = self.runtime.logs(&c, true, tail);
        self.follower = Some(tokio::spawn(async move {
            while let Some(Ok(line)) = stream.next().await {
                logs.push(line);
            }
        }));
        let runtime = self.runtime.clone();
        let inputs = self.inputs.clone();
        let id = self.id;
        self.watcher = Some(tokio::spawn(async move {
            let input = match runtime.wait(&c).await {
                Ok(exit) => Input::Exited {
                    code: exit.code,
                    oom: exit.oom_killed,
                },
                Err(_) => match runtime.inspect(&c).await.map(|s| s.status) {
                    Ok(ContainerStatus::Missing) => Input::Lost,
                    _ => return,
                },
            };
            let _ = inputs.send((id, input)).await;
        }));
    }

    fn stop_watching(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
        if let Some(f) = self.follower.take() {
            f.abort();
        }
    }

    async fn remove(&mut self) {
        self.stop_watching();
        if let Some(c) = self.container.take() {
            match self.runtime.remove(&c, true).await {
                Ok(()) => system_line(&self.logs, "container and workspace removed"),
                Err(e) => warn!(job = %self.id, error = %e, "remove failed"),
            }
        }
    }

    async fn sample(&mut self) {
        let Some(c) = &self.container else { return };
        if self.watcher.is_none() {
            return; // not running
        }
        let Ok(stats) = self.runtime.stats(c).await else {
            return;
        };
        let gpus = self
            .probe
            .as_ref()
            .map_or_else(Vec::new, |p| gpu_samples(p.as_ref(), &self.spec.gpu_uuids));
        self.metrics.push(MetricsSample {
            at: UnixMillis::now(),
            cpu_pct: stats.cpu_pct,
            memory_used_mib: stats.memory_used_mib(),
            memory_limit_mib: stats.memory_limit_mib(),
            gpus,
            simulated: self.probe.as_ref().is_some_and(|p| p.kind() == "simulated"),
        });
        self.check_disk().await;
    }

    /// Measures the job's disk use every [`DISK_PERIOD`] while it runs; past its bound, the
    /// job stops (its lifecycle decides) and its log says why.
    async fn check_disk(&mut self) {
        let (Some(c), limit) = (&self.container, self.spec.disk_limit_mib) else {
            return;
        };
        if limit == 0
            || self
                .disk_checked
                .is_some_and(|at| at.elapsed() < DISK_PERIOD)
        {
            return;
        }
        self.disk_checked = Some(tokio::time::Instant::now());
        let Ok(Some(used)) = self.runtime.disk_usage(c).await else {
            return;
        };
        let used_mib = used.div_ceil(1 << 20);
        if used_mib > limit {
            warn!(job = %self.id, used_mib, limit_mib = limit, "disk bound exceeded: stopping the job");
            system_line(
                &self.logs,
                format!(
                    "the job holds {used_mib} MiB, above its {limit} MiB of disk: stopped \
                     (its data is kept; free space before starting it again)"
                ),
            );
            self.report(Input::DiskExceeded).await;
        }
    }
}

/// How often a running job's disk use is measured.
pub const DISK_PERIOD: Duration = Duration::from_secs(10);

fn gpu_samples(probe: &dyn GpuProbe, uuids: &[String]) -> Vec<GpuSample> {
    uuids
        .iter()
        .filter_map(|uuid| {
            let t = probe.telemetry(uuid, true).ok()?;
            let total = probe
                .devices()
                .iter()
                .find(|d| &d.uuid == uuid)
                .map_or(0, |d| d.vram_mib);
            Some(GpuSample {
                uuid: uuid.clone(),
                utilization_pct: t.utilization_pct,
                memory_used_mib: t.memory_used_mib,
                memory_total_mib: total,
                temperature_c: t.temperature_c,
                power_w: t.power_w,
            })
        })
        .collect()
}
