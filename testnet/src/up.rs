//! `qubix-testnet up`: providers with varied simulated GPUs, prices and locations, one
//! consumer node, every node a real `qubix` node on loopback TCP in its own data dir: in
//! this process, or (`--processes`) each its own `qubix node` process. `--keep` keeps the
//! nodes' data and the devnet's chain for the next `up --keep`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use qubix_testnet::{NodeSpec, Testnet};
use serde::Serialize;

/// Options of `up`.
#[derive(Args, Debug)]
pub(crate) struct UpArgs {
    /// Number of provider nodes.
    #[arg(long, default_value_t = 4)]
    providers: usize,
    /// Address of the consumer's API and console.
    #[arg(long, default_value = "127.0.0.1:8080")]
    gateway: SocketAddr,
    /// Where to write testnet.json (node ids, addresses, console URL and token), and the
    /// kept state with --keep (default: .qubix-testnet).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the nodes' data (keys, ledgers, jobs) and the devnet's chain (balances, history)
    /// in <data-dir>/state, and reuse them when they are there.
    #[arg(long)]
    keep: bool,
    /// Run every node as its own `qubix node` OS process instead of inside this one.
    #[arg(long)]
    processes: bool,
    /// Where Docker does not answer, run jobs as plain processes on this machine: NO
    /// ISOLATION between jobs and this machine (./scripts/up sets Docker up instead).
    #[arg(long)]
    unsafe_local_jobs: bool,
}

/// The network name of `up`.
const NETWORK: &str = "testnet";

/// The provider line-up: (GPUs, price per GPU-hour, country).
const LINEUP: [(&str, u64, &str); 8] = [
    ("RTX 4090:24:2", 1_200, "DE"),
    ("A100 SXM:80:4", 4_500, "FR"),
    ("RTX 3090:24:1", 700, "US"),
    ("H100 SXM:80:8", 9_000, "NL"),
    ("RTX 4080:16:2", 900, "PL"),
    ("L40S:48:2", 3_100, "SE"),
    ("RTX A6000:48:1", 2_000, "FI"),
    ("A10:24:4", 1_100, "CA"),
];

#[derive(Serialize)]
struct NodeEntry {
    name: String,
    node_id: String,
    address: String,
    wallet: String,
    simulated_gpus: Option<String>,
}

#[derive(Serialize)]
struct TestnetFile {
    network: String,
    console: String,
    api: String,
    token: String,
    qubic_devnet: String,
    nodes: Vec<NodeEntry>,
    simulated: bool,
}

/// A provider that runs jobs as local processes when Docker does not answer.
fn local_jobs(c: &mut qubix_node::config::NodeConfig) {
    c.provider.unsafe_local_jobs = true;
}

/// The network's nodes: the providers of the line-up, then the consumer.
fn specs(providers: usize, gateway: SocketAddr, unsafe_local_jobs: bool) -> Vec<NodeSpec> {
    let mut specs: Vec<NodeSpec> = (0..providers)
        .map(|i| {
            let (gpus, price, country) = LINEUP[i % LINEUP.len()];
            let spec = NodeSpec::provider(&format!("provider-{i}"), gpus, price, country);
            if unsafe_local_jobs {
                spec.configured(local_jobs)
            } else {
                spec
            }
        })
        .collect();
    let mut consumer = NodeSpec::consumer("consumer");
    consumer.funds = 50_000_000;
    consumer.gateway = Some(gateway);
    specs.push(consumer);
    specs
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    // Before anything starts: a Ctrl-C, SIGTERM or a closed terminal while nodes start up
    // must still stop them in order, not kill `up` and orphan them.
    let mut stop = StopSignals::install()?;
    if args.providers == 0 || args.providers > 32 {
        anyhow::bail!("--providers must be 1-32");
    }
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(".qubix-testnet"));
    std::fs::create_dir_all(&dir)?;
    let state = dir.join("state");
    let mut builder = Testnet::builder(NETWORK)
        .devnet(Duration::from_millis(500))
        .offer_ttl_secs(300);
    if args.keep {
        builder = builder.keep_in(state.clone());
    } else if state.exists() {
        println!(
            "note: {} holds an earlier --keep network; add --keep to reuse it",
            state.display()
        );
    }
    let mut net = builder.build().await?;
    let restored = net.devnet().is_some_and(|d| d.restored());
    let specs = specs(args.providers, args.gateway, args.unsafe_local_jobs);
    if !qubix_testnet::docker_available() {
        if args.unsafe_local_jobs {
            println!(
                "WARNING: Docker does not answer; with --unsafe-local-jobs the providers run jobs \
                 as plain processes on THIS machine, with no isolation (offers say `unisolated`)."
            );
        } else {
            println!(
                "note: Docker does not answer, so the providers offer nothing. Run ./scripts/up \
                 (it sets Docker up), or add --unsafe-local-jobs to run jobs as plain processes \
                 on this machine without isolation."
            );
        }
    }
    if args.processes {
        let nodes = processes::start(&net, &specs, args.unsafe_local_jobs).await?;
        let (entries, console, login_file) = processes::describe(&net, &specs, &nodes)?;
        let provider_ids: Vec<String> = entries
            .iter()
            .filter(|e| e.simulated_gpus.is_some())
            .map(|e| e.node_id.clone())
            .collect();
        let (api, token) = console
            .split_once("#token=")
            .map(|(a, t)| (a.trim_end_matches('/').to_owned(), t.to_owned()))
            .ok_or_else(|| anyhow::anyhow!("the consumer's console URL carries no token"))?;
        let gateway = qubix_node::node::GatewayInfo {
            addr: api
                .trim_start_matches("http://")
                .parse()
                .map_err(|e| anyhow::anyhow!("the consumer's API address {api}: {e}"))?,
            login_url: console.clone(),
            login_file: Some(login_file),
            token,
        };
        announce(
            &net,
            &dir,
            &gateway,
            entries,
            restored,
            "one OS process per node",
        )?;
        stop.wait().await;
        println!("Stopping: terminating instances (containers are removed), stopping nodes…");
        let client =
            qubix_sdk::Client::new(format!("http://{}", gateway.addr), gateway.token.clone())?;
        terminate_all_via_api(&client).await;
        for (node, _) in nodes.into_iter().rev() {
            if let Err(e) = node.stop().await {
                eprintln!("  {e}");
            }
        }
        // A provider stopped while it was still removing a terminated job's container
        // leaves the rest: nothing of the providers stays.
        qubix_testnet::harness::remove_jobs_of(&provider_ids).await;
    } else {
        for spec in specs {
            net.add(spec).await?;
        }
        let c = net.nodes.len() - 1;
        let gateway = net.nodes[c]
            .gateway()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the consumer has no gateway"))?;
        let entries = net
            .nodes
            .iter()
            .map(|n| NodeEntry {
                name: n.spec.name.clone(),
                node_id: n.handle().node_id().to_string(),
                address: n.addr.to_string(),
                wallet: n.handle().wallet_identity().to_owned(),
                simulated_gpus: n.spec.simulate_gpu.clone(),
            })
            .collect();
        announce(&net, &dir, &gateway, entries, restored, "in this process")?;
        stop.wait().await;
        println!("Stopping: terminating instances (containers are removed), withdrawing offers…");
        let consumer = net.nodes[c].handle().clone();
        for instance in consumer.instances().await.unwrap_or_default() {
            if !instance.state.is_final() {
                if let Err(e) = consumer
                    .act(instance.id, qubix_protocol::control::JobAction::Terminate)
                    .await
                {
                    eprintln!("  could not terminate {}: {e}", instance.id);
                }
            }
        }
    }
    let provider_ids: Vec<String> = net
        .nodes
        .iter()
        .filter(|n| n.spec.simulate_gpu.is_some())
        .map(|n| n.key().node_id().to_string())
        .collect();
    net.shutdown().await;
    qubix_testnet::harness::remove_jobs_of(&provider_ids).await;
    if args.keep {
        println!("State kept in {}; `up --keep` resumes it.", state.display());
    }
    Ok(())
}

/// Terminates every live instance of the consumer through its API.
async fn terminate_all_via_api(client: &qubix_sdk::Client) {
    for instance in client.instances().await.unwrap_or_default() {
        if !instance.state.is_final()
            && let Err(e) = client.terminate(instance.id).await
        {
            eprintln!("  could not terminate {}: {e}", instance.id);
        }
    }
}

/// Writes testnet.json and prints how to reach the network.
fn announce(
    net: &Testnet,
    dir: &std::path::Path,
    gateway: &qubix_node::node::GatewayInfo,
    nodes: Vec<NodeEntry>,
    restored: bool,
    how: &str,
) -> anyhow::Result<()> {
    let devnet_url = net.devnet().map(|d| d.url().to_owned()).unwrap_or_default();
    let file = TestnetFile {
        network: NETWORK.into(),
        console: gateway.login_url.clone(),
        api: format!("http://{}", gateway.addr),
        token: gateway.token.clone(),
        qubic_devnet: devnet_url.clone(),
        nodes,
        simulated: true,
    };
    let path = dir.join("testnet.json");
    qubix_protocol::secret_file::write_secret_file(&path, &serde_json::to_vec_pretty(&file)?)?;
    println!();
    println!("Qubix testnet is up ({how}).");
    // The login URL and the token grant the consumer's wallet: shown on a terminal only.
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        println!("  console      {}", gateway.login_url);
        println!("  API          http://{}   (QUBIX_API)", gateway.addr);
        println!("  token        {}   (QUBIX_TOKEN)", gateway.token);
    } else {
        println!(
            "  console      http://{}/   (login URL and token in {}, mode 0600)",
            gateway.addr,
            path.display()
        );
        println!("  API          http://{}   (QUBIX_API)", gateway.addr);
    }
    if restored {
        println!(
            "  Qubic devnet {devnet_url}  (ticks every 500 ms; restored: balances and history of the kept network)"
        );
    } else {
        println!(
            "  Qubic devnet {devnet_url}  (ticks every 500 ms; the consumer's wallet holds 50,000,000 QU)"
        );
    }
    println!("  SIMULATED:   every provider's GPUs are simulated; offers and instances say so.");
    for n in &file.nodes {
        println!(
            "  {:<12} {}  {}",
            n.name,
            n.node_id,
            n.simulated_gpus.as_deref().unwrap_or("consumer")
        );
    }
    println!(
        "Node list, URL and token: {}",
        dir.join("testnet.json").display()
    );
    println!("Press Ctrl-C to stop (containers are removed).");
    Ok(())
}

/// Ctrl-C, SIGTERM or SIGHUP (the terminal closed), caught from the start of `up`: one
/// that arrives while the nodes start is acted on as soon as they have.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }
}

mod processes {
    //! `up --processes`: every node a `qubix node` process with its own data dir.

    use std::path::PathBuf;

    use qubix_node::keys::NodeKey;
    use qubix_testnet::harness::{wallet_for, wallet_seed_for};
    use qubix_testnet::process::{NodeProcess, ProcessSpec, qubix_binary};
    use qubix_testnet::{NodeSpec, Testnet};

    use super::{NETWORK, NodeEntry};

    /// A free TCP port on 127.0.0.1 (the node binds it right after).
    fn free_port() -> std::io::Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    }

    fn data_dir(net: &Testnet, i: usize, spec: &NodeSpec) -> std::path::PathBuf {
        net.dir().join(format!("{i}-{}", spec.name))
    }

    /// Starts the nodes in order, each bootstrapping from the first; funds the wallets on a
    /// fresh devnet.
    pub(super) async fn start(
        net: &Testnet,
        specs: &[NodeSpec],
        unsafe_local_jobs: bool,
    ) -> anyhow::Result<Vec<(NodeProcess, String)>> {
        let binary = qubix_binary()?;
        let devnet = net.devnet().ok_or_else(|| anyhow::anyhow!("no devnet"))?;
        let mut nodes = Vec::with_capacity(specs.len());
        let mut first: Option<String> = None;
        for (i, spec) in specs.iter().enumerate() {
            let dir = data_dir(net, i, spec);
            std::fs::create_dir_all(&dir)?;
            let key = NodeKey::load_or_create(&dir)?;
            if !devnet.restored() && spec.funds > 0 {
                let tick = devnet.tick();
                devnet.fund(&wallet_for(NETWORK, i, &spec.name).identity(), spec.funds);
                // A funding is a transfer: the wallet holds it once its tick is processed.
                devnet
                    .wait_for_tick(tick + 1, std::time::Duration::from_secs(10))
                    .await?;
            }
            let port = free_port()?;
            let process = ProcessSpec {
                name: spec.name.clone(),
                data_dir: dir,
                network: NETWORK.into(),
                port,
                bootstrap: first.iter().cloned().collect(),
                qubic_rpc: devnet.url().to_owned(),
                wallet_seed: wallet_seed_for(NETWORK, i, &spec.name),
                simulate_gpu: spec.simulate_gpu.clone(),
                price: spec.simulate_gpu.as_ref().map(|_| spec.price),
                country: Some(spec.country.clone()),
                gateway: spec.gateway,
                max_offers_per_sync: None,
                unsafe_local_jobs: unsafe_local_jobs && spec.simulate_gpu.is_some(),
                local_images: qubix_testnet::harness::engine_images(),
                env: Vec::new(),
            };
            let node = NodeProcess::start(&binary, &process).await?;
            println!(
                "  {} runs as process {} (log: {})",
                spec.name,
                node.pid().unwrap_or(0),
                node.log.display()
            );
            let addr = format!(
                "/ip4/127.0.0.1/tcp/{port}/p2p/{}",
                key.node_id().to_peer_id()
            );
            if first.is_none() {
                first = Some(addr.clone());
            }
            nodes.push((node, addr));
        }
        Ok(nodes)
    }

    /// The testnet.json entries, the consumer's console URL and the file that holds it.
    pub(super) fn describe(
        net: &Testnet,
        specs: &[NodeSpec],
        nodes: &[(NodeProcess, String)],
    ) -> anyhow::Result<(Vec<NodeEntry>, String, PathBuf)> {
        let mut entries = Vec::new();
        let mut console = None;
        let mut login_file = PathBuf::new();
        for (i, (spec, (node, addr))) in specs.iter().zip(nodes).enumerate() {
            let key = NodeKey::load_or_create(&data_dir(net, i, spec))?;
            entries.push(NodeEntry {
                name: spec.name.clone(),
                node_id: key.node_id().to_string(),
                address: addr.clone(),
                wallet: wallet_for(NETWORK, i, &spec.name).identity().to_string(),
                simulated_gpus: spec.simulate_gpu.clone(),
            });
            if node.console.is_some() {
                console = node.console.clone();
                login_file = data_dir(net, i, spec).join(qubix_node::node::LOGIN_URL_FILE);
            }
        }
        let console =
            console.ok_or_else(|| anyhow::anyhow!("the consumer printed no console URL"))?;
        Ok((entries, console, login_file))
    }
}
