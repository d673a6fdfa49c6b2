//! The [`Testnet`] builder: real `qubix` nodes on loopback TCP in their own data dirs, in one
//! process, with helpers to add, kill and restart nodes and to wait for conditions with a
//! timeout that names what did not happen.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use qubix_ledger::devnet::{Devnet, DevnetConfig, DevnetHandle};
use qubix_ledger::qubic::{KeyPair, Seed};
use qubix_node::config::{NodeConfig, ProviderConfig};
use qubix_node::keys::NodeKey;
use qubix_node::network::{LinkConditions, NetworkSettings};
use qubix_node::node::RunningNode;
use qubix_node::service::NodeHandle;
use qubix_protocol::topics::Network;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// Why the testnet failed.
#[derive(Debug, thiserror::Error)]
pub enum TestnetError {
    /// A node did not start.
    #[error("node {name}: {message}")]
    Node {
        /// The node.
        name: String,
        /// Why.
        message: String,
    },
    /// A condition did not hold in time.
    #[error("timed out after {0:?} waiting for: {1}")]
    Timeout(Duration, String),
    /// Filesystem trouble.
    #[error("testnet data dir: {0}")]
    Io(#[from] std::io::Error),
}

/// What kind of node to start.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// A name for logs and errors.
    pub name: String,
    /// Simulated GPUs (`MODEL:VRAM_GIB:COUNT`), making it a provider.
    pub simulate_gpu: Option<String>,
    /// Price per GPU-hour.
    pub price: u64,
    /// Country code.
    pub country: String,
    /// QU the devnet funds its wallet with at start.
    pub funds: u64,
    /// Serve the API and console here.
    pub gateway: Option<std::net::SocketAddr>,
    /// Changes to the node's configuration before it starts (payment terms, limits, and in
    /// the hostile suite a rogue node's misbehaviours).
    pub configure: Option<fn(&mut NodeConfig)>,
}

impl NodeSpec {
    /// A consumer node.
    pub fn consumer(name: &str) -> Self {
        Self {
            name: name.into(),
            simulate_gpu: None,
            price: 1_000,
            country: "DE".into(),
            funds: 10_000_000,
            gateway: None,
            configure: None,
        }
    }

    /// A provider with simulated GPUs.
    pub fn provider(name: &str, gpus: &str, price: u64, country: &str) -> Self {
        Self {
            name: name.into(),
            simulate_gpu: Some(gpus.into()),
            price,
            country: country.into(),
            funds: 0,
            gateway: None,
            configure: None,
        }
    }

    /// The same node with its configuration changed by `f` before it starts.
    pub fn configured(mut self, f: fn(&mut NodeConfig)) -> Self {
        self.configure = Some(f);
        self
    }
}

/// The 55-letter seed of [`wallet_for`], for a node started as a process
/// (`QUBIX_WALLET_SEED`). Testnet money only: the seed follows from public names.
pub fn wallet_seed_for(network: &str, index: usize, name: &str) -> String {
    let digest = Sha256::new()
        .chain_update(network.as_bytes())
        .chain_update(index.to_le_bytes())
        .chain_update(name.as_bytes())
        .finalize();
    (0..55)
        .map(|i| char::from(b'a' + digest[i % 32].wrapping_add(i as u8) % 26))
        .collect()
}

/// A node's wallet: a seed derived from the testnet, the node's index and name, so a
/// restarted node keeps its wallet.
pub fn wallet_for(network: &str, index: usize, name: &str) -> KeyPair {
    let seed = wallet_seed_for(network, index, name);
    match Seed::new(&seed) {
        Ok(seed) => KeyPair::from_seed(&seed),
        Err(_) => unreachable!("55 lowercase letters are always a valid seed"),
    }
}

/// Whether a Docker engine answers, for tests that run containers. Under `CI=true` a missing
/// engine is a failure (the test command starts one), never a silent skip.
pub fn docker_available() -> bool {
    let ok = std::process::Command::new("docker")
        .arg("info")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok || std::env::var("CI").as_deref() != Ok("true"),
        "Docker is required under CI=true: run ./scripts/setup-test-env"
    );
    ok
}

/// The images on this machine's Docker engine (`repository:tag`), read once; empty without
/// Docker. The testnet's providers allow them to run without a pull, since no registry is
/// reachable from a test machine.
pub fn engine_images() -> Vec<String> {
    static IMAGES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    IMAGES
        .get_or_init(|| {
            let listed = std::process::Command::new("docker")
                .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
                .output();
            match listed {
                Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| !l.contains("<none>") && !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            }
        })
        .clone()
}

/// One node of the testnet.
#[derive(Debug)]
pub struct TestNode {
    /// Its spec.
    pub spec: NodeSpec,
    /// Its data dir.
    pub data_dir: PathBuf,
    /// Its address with `/p2p/<id>`.
    pub addr: Multiaddr,
    running: Option<RunningNode>,
}

impl TestNode {
    /// The node's handle; panics if the node is stopped (a test bug).
    pub fn handle(&self) -> &NodeHandle {
        match &self.running {
            Some(r) => &r.handle,
            None => panic!("node {} is stopped", self.spec.name),
        }
    }

    /// The node's escrow ledger; panics if the node is stopped (a test bug).
    pub fn ledger(&self) -> &qubix_ledger::Ledger {
        match &self.running {
            Some(r) => &r.ledger,
            None => panic!("node {} is stopped", self.spec.name),
        }
    }

    /// The served API and console, when the node has a gateway.
    pub fn gateway(&self) -> Option<&qubix_node::node::GatewayInfo> {
        self.running.as_ref().and_then(|r| r.gateway.as_ref())
    }

    /// Whether it runs.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The node's key, read from its data dir (a test signs messages as this node with it).
    pub fn key(&self) -> NodeKey {
        match NodeKey::load_or_create(&self.data_dir) {
            Ok(key) => key,
            Err(e) => panic!("node {}: cannot read its key: {e}", self.spec.name),
        }
    }
}

/// A network of nodes on loopback.
#[derive(Debug)]
pub struct Testnet {
    /// The nodes, in start order.
    pub nodes: Vec<TestNode>,
    dir: NetDir,
    network: String,
    heartbeat: Duration,
    offer_ttl_secs: u64,
    conditions: Option<LinkConditions>,
    extra_bootstrap: Vec<String>,
    devnet: Option<DevnetHandle>,
    max_offers_per_sync: Option<usize>,
    /// Whether the providers' jobs were removed (at [`Testnet::shutdown`]); a testnet dropped
    /// without it removes them in [`Drop`].
    cleaned: bool,
}

/// A misbehaving participant for tests: a bare network layer that publishes crafted bytes.
#[derive(Debug)]
pub struct Rogue {
    /// Its key (the key its gossip is signed with).
    pub key: NodeKey,
    /// Its network handle.
    pub net: qubix_node::network::NetworkHandle,
    _events: tokio::sync::mpsc::Receiver<qubix_node::network::NetworkEvent>,
    shutdown: CancellationToken,
}

impl Drop for Rogue {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Where a testnet keeps its nodes' data: a temporary folder removed with it, or a folder
/// kept for the next start.
#[derive(Debug)]
enum NetDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl NetDir {
    fn path(&self) -> &Path {
        match self {
            NetDir::Temp(t) => t.path(),
            NetDir::Kept(p) => p,
        }
    }
}

/// Removes what the providers `owners` left on this machine's engine (containers of jobs
/// still running when the testnet stopped, their networks, rules and workspaces): a testnet
/// that is not kept leaves nothing behind, and `up` leaves nothing of its providers.
pub async fn remove_jobs_of(owners: &[String]) {
    let Ok(engine) = qubix_node::runtime::DockerRuntime::connect().await else {
        return;
    };
    for owner in owners {
        let engine = engine.clone().with_owner(owner.clone());
        use qubix_node::runtime::ContainerRuntime as _;
        // A container a stopped node was still removing is gone only when the engine has
        // finished; its network and workspace can go only then. Bounded: 20 s.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            for job in engine.list_managed().await.unwrap_or_default() {
                if let Err(e) = engine.remove(&job.id, true).await {
                    tracing::warn!(error = %e, "a job container of the testnet was left");
                }
            }
            if let Err(e) = engine.remove_orphans().await {
                tracing::warn!(error = %e, "the testnet's job networks were not all removed");
            }
            let left = left_on_engine(owner);
            if left.is_empty() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(%owner, ?left, "left on the engine after 20 s");
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// What the engine still holds for `owner`'s jobs: containers in any state (one being
/// removed included), networks and volumes.
pub fn left_on_engine(owner: &str) -> Vec<String> {
    let filter = format!("label=qubix.node={owner}");
    let mut left = Vec::new();
    for what in [
        &["ps", "-aq", "--filter"][..],
        &["network", "ls", "-q", "--filter"][..],
        &["volume", "ls", "-q", "--filter"][..],
    ] {
        let Ok(out) = std::process::Command::new("docker")
            .args(what)
            .arg(&filter)
            .output()
        else {
            return Vec::new();
        };
        left.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|id| format!("{} {id}", what[0])),
        );
    }
    left
}

/// A devnet ticking every `tick`, restored from `state` when that file exists.
async fn start_devnet(
    tick: Duration,
    state: Option<PathBuf>,
) -> Result<DevnetHandle, TestnetError> {
    let config = DevnetConfig {
        tick_period: Some(tick),
        state,
        ..DevnetConfig::default()
    };
    Devnet::start(config).await.map_err(|e| TestnetError::Node {
        name: "devnet".into(),
        message: e.to_string(),
    })
}

/// Builds a [`Testnet`]: `Testnet::builder("name").devnet(tick).build().await`.
#[derive(Debug, Clone)]
pub struct TestnetBuilder {
    name: String,
    devnet_tick: Option<Duration>,
    heartbeat: Duration,
    offer_ttl_secs: u64,
    keep: Option<PathBuf>,
    conditions: Option<LinkConditions>,
}

impl TestnetBuilder {
    /// Runs a Qubic devnet ticking every `tick` that the nodes settle against.
    pub fn devnet(mut self, tick: Duration) -> Self {
        self.devnet_tick = Some(tick);
        self
    }

    /// Emulated link conditions on every node: each inbound network event arrives `latency`
    /// later and a share `loss` of gossip messages is lost (loopback has neither).
    pub fn conditions(mut self, latency: Duration, loss: f64) -> Self {
        self.conditions = Some(LinkConditions { latency, loss });
        self
    }

    /// The gossipsub heartbeat (200 ms by default, fast for tests).
    pub fn heartbeat(mut self, heartbeat: Duration) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// How long offers live before they must be republished (120 s by default).
    pub fn offer_ttl_secs(mut self, secs: u64) -> Self {
        self.offer_ttl_secs = secs;
        self
    }

    /// Keeps the nodes' data (keys, databases, ledgers) in `dir` and the devnet's chain in
    /// `dir/devnet.json` (saved at [`Testnet::shutdown`]), and reuses both when they are
    /// there: the same nodes, wallets and balances as last time.
    pub fn keep_in(mut self, dir: PathBuf) -> Self {
        self.keep = Some(dir);
        self
    }

    /// Starts the devnet, if asked for; nodes are added with [`Testnet::add`].
    pub async fn build(self) -> Result<Testnet, TestnetError> {
        let mut net = Testnet::new(&self.name)?;
        if let Some(dir) = &self.keep {
            std::fs::create_dir_all(dir)?;
            net.dir = NetDir::Kept(dir.clone());
        }
        if let Some(tick) = self.devnet_tick {
            let state = self.keep.as_ref().map(|d| d.join("devnet.json"));
            net.devnet = Some(start_devnet(tick, state).await?);
        }
        net.heartbeat = self.heartbeat;
        if let Some(c) = self.conditions {
            c.validate().map_err(|message| TestnetError::Node {
                name: "conditions".into(),
                message,
            })?;
        }
        net.conditions = self.conditions;
        net.offer_ttl_secs = self.offer_ttl_secs;
        Ok(net)
    }
}

impl Testnet {
    /// A builder for a testnet on network `name`.
    pub fn builder(name: &str) -> TestnetBuilder {
        TestnetBuilder {
            name: name.into(),
            devnet_tick: None,
            heartbeat: Duration::from_millis(200),
            offer_ttl_secs: 120,
            keep: None,
            conditions: None,
        }
    }

    /// An empty testnet on network `name` (fast gossip heartbeat for tests).
    pub fn new(name: &str) -> Result<Self, TestnetError> {
        Ok(Self {
            nodes: Vec::new(),
            dir: NetDir::Temp(tempfile::tempdir()?),
            cleaned: false,
            network: name.into(),
            heartbeat: Duration::from_millis(200),
            offer_ttl_secs: 120,
            conditions: None,
            extra_bootstrap: Vec::new(),
            devnet: None,
            max_offers_per_sync: None,
        })
    }

    /// A testnet with a Qubic devnet (ticks every `tick`) that nodes settle against.
    pub async fn with_devnet(name: &str, tick: Duration) -> Result<Self, TestnetError> {
        let mut net = Self::new(name)?;
        net.devnet = Some(start_devnet(tick, None).await?);
        Ok(net)
    }

    /// The network the nodes run on (signatures are bound to it).
    pub fn network(&self) -> Network {
        match Network::new(&self.network) {
            Ok(n) => n,
            // Nodes cannot start on an invalid name; a test that asks has a bug.
            Err(e) => panic!("testnet name {:?}: {e}", self.network),
        }
    }

    /// The devnet, when there is one.
    pub fn devnet(&self) -> Option<&DevnetHandle> {
        self.devnet.as_ref()
    }

    fn config(
        &self,
        spec: &NodeSpec,
        data_dir: PathBuf,
        port: u16,
        bootstrap: Vec<String>,
    ) -> NodeConfig {
        let mut config = NodeConfig {
            data_dir,
            network: self.network.clone(),
            listen: vec![format!("/ip4/127.0.0.1/tcp/{port}")],
            bootstrap,
            mdns: false,
            gateway: spec.gateway,
            qubic_rpc: self
                .devnet
                .as_ref()
                .map_or_else(|| "http://127.0.0.1:9".into(), |d| d.url().to_owned()),
            provider: ProviderConfig {
                enabled: spec.simulate_gpu.is_some(),
                simulate_gpu: spec.simulate_gpu.clone(),
                default_price: spec.price,
                country: spec.country.clone(),
                offer_ttl_secs: self.offer_ttl_secs,
                // No registry is reachable here: the images on the engine may run as they are.
                local_images: engine_images(),
                ..ProviderConfig::default()
            },
            ..NodeConfig::default()
        };
        if let Some(n) = self.max_offers_per_sync {
            config.market.max_offers_per_sync = n;
        }
        if let Some(configure) = spec.configure {
            configure(&mut config);
        }
        config
    }

    /// How many offers one peer's sync may add to the next nodes' books (benchmarks that seed
    /// a large book raise it; the default is the node's).
    pub fn set_max_offers_per_sync(&mut self, n: usize) {
        self.max_offers_per_sync = Some(n);
    }

    /// Peers outside the testnet that every new node dials too (e.g. a benchmark's seeder).
    pub fn set_bootstrap(&mut self, addrs: Vec<String>) {
        self.extra_bootstrap = addrs;
    }

    /// Bootstrap addresses for a new node: the first node and the previous one.
    fn bootstrap(&self) -> Vec<String> {
        let mut out: Vec<String> = self.extra_bootstrap.clone();
        out.extend(
            self.nodes
                .iter()
                .filter(|n| n.is_running())
                .take(1)
                .map(|n| n.addr.to_string()),
        );
        if let Some(last) = self.nodes.iter().rev().find(|n| n.is_running()) {
            let a = last.addr.to_string();
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }

    async fn launch(
        &self,
        index: usize,
        spec: &NodeSpec,
        data_dir: PathBuf,
        port: u16,
        bootstrap: Vec<String>,
    ) -> Result<(RunningNode, Multiaddr), TestnetError> {
        let err = |message: String| TestnetError::Node {
            name: spec.name.clone(),
            message,
        };
        let valid = self
            .config(spec, data_dir, port, bootstrap)
            .validate()
            .map_err(|e| err(e.to_string()))?;
        let mut settings = NetworkSettings::new(valid.network.clone());
        settings.heartbeat = self.heartbeat;
        settings.conditions = self.conditions;
        settings.mdns = false;
        let wallet = wallet_for(&self.network, index, &spec.name);
        let node = RunningNode::start(valid, wallet, Some(settings))
            .await
            .map_err(|e| err(e.to_string()))?;
        let handle = node.handle.clone();
        let addr = wait_until(
            Duration::from_secs(10),
            &format!("{} to listen", spec.name),
            || {
                let handle = handle.clone();
                async move {
                    handle
                        .net()
                        .listen_addrs()
                        .await
                        .ok()
                        .and_then(|a| a.into_iter().next())
                }
            },
        )
        .await?;
        let addr = addr.with(Protocol::P2p(handle.net().local_peer_id()));
        Ok((node, addr))
    }

    /// Starts a node and connects it to the network; returns its index.
    pub async fn add(&mut self, spec: NodeSpec) -> Result<usize, TestnetError> {
        let data_dir = self
            .dir
            .path()
            .join(format!("{}-{}", self.nodes.len(), spec.name));
        let index = self.nodes.len();
        // A restored devnet already holds what the wallets were given (and did with it).
        let fresh_chain = self.devnet.as_ref().is_some_and(|d| !d.restored());
        if let (Some(devnet), true) = (&self.devnet, fresh_chain && spec.funds > 0) {
            let tick = devnet.tick();
            devnet.fund(
                &wallet_for(&self.network, index, &spec.name).identity(),
                spec.funds,
            );
            // A funding is a transfer: the node's wallet holds it once its tick is processed.
            devnet
                .wait_for_tick(tick + 1, Duration::from_secs(10))
                .await
                .map_err(|e| TestnetError::Node {
                    name: "devnet".into(),
                    message: e.to_string(),
                })?;
        }
        let (running, addr) = self
            .launch(index, &spec, data_dir.clone(), 0, self.bootstrap())
            .await?;
        self.nodes.push(TestNode {
            spec,
            data_dir,
            addr,
            running: Some(running),
        });
        Ok(self.nodes.len() - 1)
    }

    /// Stops node `i` cleanly (offers withdrawn, state flushed).
    pub async fn stop(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].running.take() {
            node.shutdown().await;
        }
    }

    /// Kills node `i` abruptly: no withdrawal, no goodbye.
    pub async fn kill(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].running.take() {
            node.kill().await;
        }
    }

    /// Starts a rogue participant: a bare network layer with its own key, connected to the
    /// first running nodes, that can publish whatever bytes a test crafts.
    pub async fn add_rogue(&self, seed: u8) -> Result<Rogue, TestnetError> {
        let first: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_running())
            .take(3)
            .collect();
        self.start_rogue(seed, &first, 100).await
    }

    /// A rogue connected to node `i` alone: it holds one connection at most, so every
    /// message it sends reaches that node first, and any other node only through it.
    pub async fn add_rogue_to(&self, seed: u8, i: usize) -> Result<Rogue, TestnetError> {
        self.start_rogue(seed, &[i], 1).await
    }

    async fn start_rogue(
        &self,
        seed: u8,
        to: &[usize],
        max_connections: u32,
    ) -> Result<Rogue, TestnetError> {
        let err = |message: String| TestnetError::Node {
            name: "rogue".into(),
            message,
        };
        let key = NodeKey::from_secret([seed; 32]);
        let network = Network::new(&self.network).map_err(|e| err(e.to_string()))?;
        let mut settings = NetworkSettings::new(network);
        settings.heartbeat = self.heartbeat;
        settings.conditions = self.conditions;
        settings.mdns = false;
        settings.max_connections = max_connections;
        let listen = vec![
            "/ip4/127.0.0.1/tcp/0"
                .parse()
                .map_err(|e: libp2p::multiaddr::Error| err(e.to_string()))?,
        ];
        let bootstrap: Vec<Multiaddr> = to.iter().map(|i| self.nodes[*i].addr.clone()).collect();
        let shutdown = CancellationToken::new();
        let (net, events) = qubix_node::network::start(
            key.libp2p_keypair(),
            settings,
            listen,
            bootstrap,
            shutdown.clone(),
        )
        .await
        .map_err(|e| err(e.to_string()))?;
        Ok(Rogue {
            key,
            net,
            _events: events,
            shutdown,
        })
    }

    /// Sets the TTL of offers of the next providers added (seconds).
    pub fn set_offer_ttl(&mut self, secs: u64) {
        self.offer_ttl_secs = secs;
    }

    /// Restarts node `i` on the same data dir and port.
    pub async fn restart(&mut self, i: usize) -> Result<(), TestnetError> {
        self.stop(i).await;
        let port = self.nodes[i]
            .addr
            .iter()
            .find_map(|p| {
                if let Protocol::Tcp(port) = p {
                    Some(port)
                } else {
                    None
                }
            })
            .unwrap_or(0);
        let bootstrap: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(j, n)| *j != i && n.is_running())
            .take(2)
            .map(|(_, n)| n.addr.to_string())
            .collect();
        let spec = self.nodes[i].spec.clone();
        let (running, addr) = self
            .launch(i, &spec, self.nodes[i].data_dir.clone(), port, bootstrap)
            .await?;
        self.nodes[i].running = Some(running);
        self.nodes[i].addr = addr;
        Ok(())
    }

    /// Stops every node, then saves the devnet's chain when the testnet is kept.
    pub async fn shutdown(mut self) {
        let providers = self.providers();
        for i in 0..self.nodes.len() {
            self.stop(i).await;
        }
        if matches!(self.dir, NetDir::Temp(_)) {
            remove_jobs_of(&providers).await;
        }
        self.cleaned = true;
        if let Some(devnet) = &self.devnet
            && let Err(e) = devnet.save()
        {
            tracing::warn!(error = %e, "the devnet's chain was not saved");
        }
    }

    /// The folder holding the nodes' data dirs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The node ids of the providers (the owners their job containers are labelled with).
    fn providers(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.spec.simulate_gpu.is_some())
            .filter_map(|n| NodeKey::load_or_create(&n.data_dir).ok())
            .map(|key| key.node_id().to_string())
            .collect()
    }
}

impl Drop for Testnet {
    /// A testnet dropped without [`Testnet::shutdown`] (a test that ends early or fails)
    /// still leaves nothing on the engine: its providers' jobs are removed on a thread of
    /// their own, since `drop` cannot await on the runtime it may run in.
    fn drop(&mut self) {
        if self.cleaned || !matches!(self.dir, NetDir::Temp(_)) {
            return;
        }
        let providers = self.providers();
        if providers.is_empty() {
            return;
        }
        let cleaner = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(remove_jobs_of(&providers));
        });
        let _ = cleaner.join();
    }
}

/// Polls `probe` until it yields `Some`, or fails after `timeout` naming `what`.
pub async fn wait_until<T, F, Fut>(
    timeout: Duration,
    what: &str,
    mut probe: F,
) -> Result<T, TestnetError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TestnetError::Timeout(timeout, what.into()));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
