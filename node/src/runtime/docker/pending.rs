//! [`PendingDocker`]: the Docker runtime of a provider that started while its engine did not
//! answer. Every call connects first when it is not connected yet (bollard refuses to build
//! a client for a socket that does not exist), then goes to the connected
//! [`DockerRuntime`]; a call made while the engine is still away fails as that engine would.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use qubix_protocol::api::LogLine;
use tokio::sync::{Mutex, mpsc};

use super::DockerRuntime;
use crate::runtime::error::RuntimeError;
use crate::runtime::spec::ContainerSpec;
use crate::runtime::types::{
    ContainerId, ContainerState, ContainerStats, ExitStatus, ManagedContainer, PullProgress,
    RuntimeInfo, RuntimeKind,
};
use crate::runtime::{ContainerRuntime, RuntimeOptions};

/// A Docker runtime that connects on first use, and again until it succeeds.
#[derive(Debug, Clone)]
pub struct PendingDocker {
    owner: String,
    options: Arc<RuntimeOptions>,
    connected: Arc<Mutex<Option<DockerRuntime>>>,
}

impl PendingDocker {
    /// A runtime for `owner`'s containers (see [`DockerRuntime::with_owner`]) set up as
    /// `options` say, not connected.
    pub fn new(owner: impl Into<String>, options: &RuntimeOptions) -> Self {
        Self {
            owner: owner.into(),
            options: Arc::new(options.clone()),
            connected: Arc::new(Mutex::new(None)),
        }
    }

    async fn docker(&self) -> Result<DockerRuntime, RuntimeError> {
        connect(&self.connected, &self.owner, &self.options).await
    }
}

async fn connect(
    connected: &Mutex<Option<DockerRuntime>>,
    owner: &str,
    options: &RuntimeOptions,
) -> Result<DockerRuntime, RuntimeError> {
    let mut held = connected.lock().await;
    if let Some(docker) = held.as_ref() {
        return Ok(docker.clone());
    }
    let docker = DockerRuntime::connect()
        .await?
        .with_owner(owner)
        .with_local_images(&options.local_images)
        .with_job_networks(options.networks)
        .with_pull_limits(options.pull_limits);
    *held = Some(docker.clone());
    Ok(docker)
}

impl ContainerRuntime for PendingDocker {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }

    fn probe(&self) -> BoxFuture<'_, Result<RuntimeInfo, RuntimeError>> {
        Box::pin(async move { self.docker().await?.probe().await })
    }

    fn pull<'a>(
        &'a self,
        image: &'a str,
        progress: mpsc::Sender<PullProgress>,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move { self.docker().await?.pull(image, progress).await })
    }

    fn create<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> BoxFuture<'a, Result<ContainerId, RuntimeError>> {
        Box::pin(async move { self.docker().await?.create(spec).await })
    }

    fn start<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move { self.docker().await?.start(id).await })
    }

    fn stop<'a>(
        &'a self,
        id: &'a ContainerId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move { self.docker().await?.stop(id, timeout).await })
    }

    fn restart<'a>(
        &'a self,
        id: &'a ContainerId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move { self.docker().await?.restart(id, timeout).await })
    }

    fn remove<'a>(
        &'a self,
        id: &'a ContainerId,
        with_volume: bool,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move { self.docker().await?.remove(id, with_volume).await })
    }

    fn inspect<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<ContainerState, RuntimeError>> {
        Box::pin(async move { self.docker().await?.inspect(id).await })
    }

    fn list_managed(&self) -> BoxFuture<'_, Result<Vec<ManagedContainer>, RuntimeError>> {
        Box::pin(async move { self.docker().await?.list_managed().await })
    }

    fn logs(
        &self,
        id: &ContainerId,
        follow: bool,
        tail: Option<usize>,
    ) -> BoxStream<'static, Result<LogLine, RuntimeError>> {
        let (connected, owner, id) = (self.connected.clone(), self.owner.clone(), id.clone());
        let options = self.options.clone();
        futures::stream::once(async move {
            match connect(&connected, &owner, &options).await {
                Ok(docker) => docker.logs(&id, follow, tail),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    fn stats<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<ContainerStats, RuntimeError>> {
        Box::pin(async move { self.docker().await?.stats(id).await })
    }

    fn wait<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<ExitStatus, RuntimeError>> {
        Box::pin(async move { self.docker().await?.wait(id).await })
    }

    fn disk_usage<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<u64>, RuntimeError>> {
        Box::pin(async move { self.docker().await?.disk_usage(id).await })
    }

    fn remove_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, RuntimeError>> {
        Box::pin(async move { self.docker().await?.remove_image(image).await })
    }

    fn clean_up(&self) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(async move { self.docker().await?.clean_up_orphans().await.map(|_| ()) })
    }
}
