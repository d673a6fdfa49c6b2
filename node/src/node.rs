//! Assembling a node: data directory, key, GPU probe, network task, service task. The
//! [`RunningNode`] owns the shutdown token and the tasks; dropping it does not stop them,
//! [`RunningNode::shutdown`] does, withdrawing offers and flushing state first.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::ValidConfig;
use crate::gpu::{self, Probe};
use crate::keys::NodeKey;
use crate::network::{self, NetworkSettings};
use crate::service::{self, NodeHandle, ProviderSetup, ServiceSetup};
use crate::store::Store;
use qubix_ledger::qubic::KeyPair;
use qubix_ledger::rpc::RpcConfig;
use qubix_ledger::settle::{QubicSettlement, SettlementConfig};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory is unusable.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The node key.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// The GPU probe.
    #[error(transparent)]
    Gpu(#[from] gpu::GpuError),
    /// The network.
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    /// The store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The service.
    #[error(transparent)]
    Service(#[from] service::ServiceError),
    /// The container runtime.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    /// The configuration (checked again where a value is used).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The Qubic settlement.
    #[error(transparent)]
    Settlement(#[from] qubix_ledger::settle::SettlementError),
    /// The escrow ledger.
    #[error(transparent)]
    Ledger(#[from] qubix_ledger::LedgerError),
    /// The API and console.
    #[error(transparent)]
    Gateway(#[from] qubix_gateway::GatewayError),
    /// The Qubic RPC settings.
    #[error(transparent)]
    Rpc(#[from] qubix_ledger::rpc::RpcError),
    /// The CA certificate to trust for the Qubic RPC could not be read.
    #[error("cannot read the Qubic RPC's CA certificate {path}: {source}")]
    RpcCa {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

async fn serve_gateway(
    addr: std::net::SocketAddr,
    dir: &std::path::Path,
    api: crate::api::NodeApiImpl,
    shutdown: CancellationToken,
) -> Result<(GatewayInfo, qubix_gateway::Gateway), StartError> {
    let token = qubix_gateway::load_or_create_token(dir)?;
    let served = qubix_gateway::serve(addr, Arc::new(api), token.clone(), async move {
        shutdown.cancelled().await
    })
    .await?;
    let login_url = qubix_gateway::login_url(served.local_addr(), &token);
    let path = dir.join(LOGIN_URL_FILE);
    let login_file =
        match qubix_protocol::secret_file::write_secret_file(&path, login_url.as_bytes()) {
            Ok(()) => Some(path),
            Err(e) => {
                warn!(path = %path.display(), error = %e, "the login URL file was not written");
                None
            }
        };
    info!(addr = %served.local_addr(), login_url_file = ?login_file, "API and console served");
    let info = GatewayInfo {
        addr: served.local_addr(),
        login_url,
        login_file,
        token: token.expose().to_owned(),
    };
    Ok((info, served))
}

/// The file in the data directory that holds the console's login URL (mode 0600).
pub const LOGIN_URL_FILE: &str = "login-url";

/// A started node.
#[derive(Debug)]
pub struct RunningNode {
    /// The handle for the API, the CLI and tests.
    pub handle: NodeHandle,
    /// Why no GPU is offered, on a provider that found none.
    pub gpu_note: Option<String>,
    /// Where the API and console are served, when they are.
    pub gateway: Option<GatewayInfo>,
    /// The escrow ledger (read it; the node writes it).
    pub ledger: qubix_ledger::Ledger,
    shutdown: CancellationToken,
    crash: CancellationToken,
    service: tokio::task::JoinHandle<()>,
    settlement: QubicSettlement,
    served: Option<qubix_gateway::Gateway>,
}

/// The served API and console.
#[derive(Debug, Clone)]
pub struct GatewayInfo {
    /// The bound address.
    pub addr: std::net::SocketAddr,
    /// The URL that logs the console in (contains the token: never log it; print it only
    /// to a terminal).
    pub login_url: String,
    /// The file (mode 0600) that holds `login_url`, unless it could not be written.
    pub login_file: Option<std::path::PathBuf>,
    /// The API token.
    pub token: String,
}

impl RunningNode {
    /// Starts a node from a validated configuration, paying and paid with `wallet`.
    pub async fn start(
        config: ValidConfig,
        wallet: KeyPair,
        settings: Option<NetworkSettings>,
    ) -> Result<Self, StartError> {
        let dir = &config.config.data_dir;
        std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
            path: dir.clone(),
            source,
        })?;
        let key = NodeKey::load_or_create(dir)?;
        let node_id = key.node_id();
        let (provider, gpu_note) = provider_setup(&config)?;
        let shutdown = CancellationToken::new();
        let crash = CancellationToken::new();
        let mut settings = settings.unwrap_or_else(|| NetworkSettings::new(config.network.clone()));
        settings.mdns = settings.mdns && config.config.mdns;
        let (net, events) = network::start(
            key.libp2p_keypair(),
            settings,
            config.listen.clone(),
            config.bootstrap.clone(),
            crash.clone(),
        )
        .await?;
        info!(node = %key.node_id(), network = %config.network, provider = provider.is_some(), "node starting");
        let store = Store::open(dir)?;
        let (runtime, runtime_down) = match &provider {
            Some(_) => provider_runtime(&config, &node_id.to_string()).await?,
            None => (None, None),
        };
        let runtime_for_api = runtime.clone();
        let ca_pem = match &config.config.qubic_rpc_ca {
            Some(path) => Some(std::fs::read(path).map_err(|source| StartError::RpcCa {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        let rpc = RpcConfig {
            base_url: config.config.qubic_rpc.clone(),
            ca_pem,
            ..RpcConfig::default()
        };
        rpc.validate()?;
        let wallet_identity = wallet.identity().to_string();
        let settlement = QubicSettlement::start(
            SettlementConfig {
                rpc,
                ..SettlementConfig::default()
            },
            wallet,
            store.db(),
        )?;
        let ledger = qubix_ledger::book::Ledger::open(
            store.db(),
            qubix_ledger::book::LedgerConfig::default(),
        )?;
        let store_for_api = store.clone();
        let setup = ServiceSetup {
            ledger: ledger.clone(),
            key,
            network: config.network.clone(),
            store,
            wallet_identity,
            provider,
            runtime,
            settlement: Some(settlement.clone()),
            gpu_note: gpu_note.clone(),
            terms_limits: config.config.consumer.terms,
            offers_per_sync: config.config.market.max_offers_per_sync,
            record_retention: Duration::from_secs(config.config.record_retention_secs),
            runtime_down,
            #[cfg(feature = "rogue")]
            rogue: config.config.rogue,
        };
        let (handle, service) =
            service::start(setup, net, events, shutdown.clone(), crash.clone())?;
        let settlement_handle = settlement.clone();
        let ledger_handle = ledger.clone();
        let gateway = match config.config.gateway {
            Some(addr) => {
                let api = crate::api::NodeApiImpl::new(
                    handle.clone(),
                    settlement,
                    ledger.clone(),
                    runtime_for_api,
                    config.config.qubic_rpc.clone(),
                    store_for_api,
                );
                Some(serve_gateway(addr, dir, api, shutdown.clone()).await?)
            }
            None => None,
        };
        let (gateway, served) = match gateway {
            Some((info, served)) => (Some(info), Some(served)),
            None => (None, None),
        };
        Ok(Self {
            handle,
            ledger: ledger_handle,
            gateway,
            settlement: settlement_handle,
            gpu_note,
            shutdown,
            crash,
            service,
            served,
        })
    }

    /// A token that stops the node when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the node: withdraws offers, stops the tasks, waits for the service to finish.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        if let Err(e) = self.service.await {
            warn!(error = %e, "node service ended abnormally");
        }
        self.crash.cancel();
        Self::stop_serving(self.served).await;
        self.settlement.shutdown().await;
    }

    /// Waits for the gateway to close its connections (bounded: a client that holds a stream
    /// open does not hold the node), so that nothing of this node outlives the call and a
    /// restart in the same process finds its database free.
    async fn stop_serving(served: Option<qubix_gateway::Gateway>) {
        let Some(served) = served else { return };
        match tokio::time::timeout(Duration::from_secs(10), served.wait()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "the gateway ended with an error"),
            Err(_) => warn!("the gateway did not close its connections within 10 s"),
        }
    }

    /// Stops the node abruptly, as a crash or a power cut would: nothing is withdrawn, the
    /// network drops at once. For failure tests.
    pub async fn kill(self) {
        self.crash.cancel();
        self.shutdown.cancel();
        let _ = self.service.await;
        Self::stop_serving(self.served).await;
        self.settlement.shutdown().await;
    }
}

/// The provider's container runtime, and why jobs cannot run when its engine does not
/// answer: the node still starts, offers nothing, and asks the engine again while it runs.
async fn provider_runtime(
    config: &ValidConfig,
    owner: &str,
) -> Result<
    (
        Option<Arc<dyn crate::runtime::ContainerRuntime>>,
        Option<String>,
    ),
    StartError,
> {
    let p = &config.config.provider;
    let options = crate::runtime::RuntimeOptions {
        local_images: p.local_images.clone(),
        networks: Some(crate::runtime::JobNetworkPolicy {
            pool: p.job_network_pool()?,
            public_egress: p.public_egress,
        }),
        unsafe_local_jobs: p.unsafe_local_jobs,
        pull_limits: crate::runtime::PullLimits {
            max_bytes: p.max_image_gib.saturating_mul(1 << 30),
            timeout: Duration::from_secs(p.pull_timeout_secs),
        },
    };
    match crate::runtime::connect_owned(&config.network, owner, &options).await {
        Ok(runtime) => {
            if let Err(e) = runtime.clean_up().await {
                warn!(error = %e, "could not remove what earlier runs left behind");
            }
            Ok((Some(runtime), None))
        }
        Err(e @ crate::runtime::RuntimeError::DockerUnreachable { .. }) => {
            warn!(error = %e, "Docker does not answer: nothing is offered until it does (asked again every 10 s)");
            let docker = crate::runtime::PendingDocker::new(owner, &options);
            Ok((Some(Arc::new(docker)), Some(e.to_string())))
        }
        Err(e) => Err(e.into()),
    }
}

fn provider_setup(
    config: &ValidConfig,
) -> Result<(Option<ProviderSetup>, Option<String>), StartError> {
    let p = &config.config.provider;
    if !p.enabled {
        return Ok((None, None));
    }
    match gpu::detect(p.simulate_gpu.as_deref(), &config.network)? {
        Probe::Found(probe) => {
            let probe: Arc<dyn gpu::GpuProbe> = Arc::from(probe);
            if probe.kind() == "simulated" {
                warn!(
                    gpus = probe.devices().len(),
                    "SIMULATED GPUs: offers are marked simulated (testnet only)"
                );
            }
            Ok((
                Some(ProviderSetup {
                    probe,
                    config: p.clone(),
                }),
                None,
            ))
        }
        Probe::None(reason) => {
            warn!(%reason, "provider mode without GPUs: nothing will be offered");
            Ok((None, Some(reason)))
        }
    }
}
