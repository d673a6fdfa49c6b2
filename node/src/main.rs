//! The `qubix` binary: `qubix node` runs a node. Configuration layers: TOML file (`--config`)
//! < `QUBIX_*` environment variables < flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use qubix_node::cli::{ClientCommand, Connection};
use qubix_node::config::{NodeConfig, Overrides};
use qubix_node::node::RunningNode;
use tracing::{error, info};

#[derive(Parser, Debug)]
#[command(
    name = "qubix",
    version,
    about = "Qubix: a peer-to-peer GPU compute market paid in QU"
)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node (consumer, and provider with --provider).
    Node(NodeArgs),
    /// Print shell completions: `qubix completions bash > /etc/bash_completion.d/qubix`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Client(ClientCommand),
}

#[derive(Args, Debug)]
struct NodeArgs {
    /// TOML configuration file.
    #[arg(long, env = "QUBIX_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (keys, databases, API token).
    #[arg(long, env = "QUBIX_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Network: mainnet, testnet or a custom name.
    #[arg(long, env = "QUBIX_NETWORK")]
    network: Option<String>,
    /// Listen multiaddr (repeatable), e.g. /ip4/0.0.0.0/tcp/4001.
    #[arg(long, env = "QUBIX_LISTEN", value_delimiter = ',')]
    listen: Option<Vec<String>>,
    /// Bootstrap peer multiaddr with /p2p/<id> (repeatable).
    #[arg(long, env = "QUBIX_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Option<Vec<String>>,
    /// Do not look for LAN peers by mDNS.
    #[arg(long)]
    no_mdns: bool,
    /// Serve the API and web console on this address, e.g. 127.0.0.1:8080.
    #[arg(long, env = "QUBIX_GATEWAY")]
    gateway: Option<SocketAddr>,
    /// Allow --gateway on an address other machines reach. The API is plain HTTP: put it
    /// behind a TLS proxy.
    #[arg(long, env = "QUBIX_GATEWAY_PUBLIC")]
    gateway_public: bool,
    /// Qubic RPC base URL (https unless on this machine).
    #[arg(long, env = "QUBIX_QUBIC_RPC")]
    qubic_rpc: Option<String>,
    /// A PEM CA certificate to trust for the Qubic RPC beside the system's.
    #[arg(long, env = "QUBIX_QUBIC_RPC_CA")]
    qubic_rpc_ca: Option<PathBuf>,
    /// Offer this machine's GPUs.
    #[arg(long, env = "QUBIX_PROVIDER")]
    provider: bool,
    /// Simulated GPUs for testnets, e.g. "RTX 4090:24:2" (implies --provider).
    #[arg(long, env = "QUBIX_SIMULATE_GPU")]
    simulate_gpu: Option<String>,
    /// Run jobs as plain processes on this machine when Docker does not answer: NO
    /// ISOLATION (simulated GPUs off mainnet only; every offer says so).
    #[arg(long, env = "QUBIX_UNSAFE_LOCAL_JOBS")]
    unsafe_local_jobs: bool,
    /// An image already on this machine's engine that jobs may run without a pull
    /// (repeatable); every other image is pulled by reference before it runs.
    #[arg(
        long = "local-image",
        env = "QUBIX_LOCAL_IMAGES",
        value_delimiter = ','
    )]
    local_images: Option<Vec<String>>,
    /// Price in QU per GPU-hour.
    #[arg(long, env = "QUBIX_PRICE")]
    price: Option<u64>,
    /// ISO country code of this machine.
    #[arg(long, env = "QUBIX_COUNTRY")]
    country: Option<String>,
    /// The most offers one peer's offer sync may add to the book.
    #[arg(long, env = "QUBIX_MAX_OFFERS_PER_SYNC")]
    max_offers_per_sync: Option<usize>,
}

impl NodeArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            data_dir: self.data_dir.clone(),
            network: self.network.clone(),
            listen: self.listen.clone(),
            bootstrap: self.bootstrap.clone(),
            mdns: self.no_mdns.then_some(false),
            gateway: self.gateway,
            gateway_public: self.gateway_public.then_some(true),
            qubic_rpc: self.qubic_rpc.clone(),
            provider: self.provider.then_some(true),
            simulate_gpu: self.simulate_gpu.clone(),
            unsafe_local_jobs: self.unsafe_local_jobs.then_some(true),
            local_images: self.local_images.clone(),
            price: self.price,
            country: self.country.clone(),
            max_offers_per_sync: self.max_offers_per_sync,
            qubic_rpc_ca: self.qubic_rpc_ca.clone(),
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,libp2p_gossipsub=warn,libp2p_kad=warn")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

async fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    let base = match &args.config {
        Some(path) => NodeConfig::from_file(path)?,
        None => NodeConfig::default(),
    };
    let config = base.overlay(args.overrides()).validate()?;
    let wallet = qubix_ledger::Wallet::load(
        &config.config.data_dir,
        std::env::var("QUBIX_WALLET_SEED").ok(),
    )?;
    let identity = wallet.identity();
    let node = RunningNode::start(config, wallet.key_pair().clone(), None).await?;
    let info = node
        .handle
        .info()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    info!(node = %info.node_id, network = %info.network, wallet = %identity, "node running; Ctrl-C stops it");
    if let Some(gateway) = &node.gateway {
        // The URL carries the API token: shown on a terminal, never in a log or a pipe.
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            println!("console: {}", gateway.login_url);
        } else {
            match &gateway.login_file {
                Some(file) => println!(
                    "console: http://{}/ (login URL in {})",
                    gateway.addr,
                    file.display()
                ),
                None => println!(
                    "console: http://{}/ (log in with the token in the data dir's api-token)",
                    gateway.addr
                ),
            }
        }
    }
    if let Some(note) = &node.gpu_note {
        info!(reason = %note, "no GPU offered");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    info!("shutting down: withdrawing offers and saving state");
    node.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Node(args) => {
            init_tracing();
            match run_node(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    error!("{e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "qubix", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Client(command) => match qubix_node::cli::run(&cli.connection, command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}", e.message());
                ExitCode::from(e.exit_code())
            }
        },
    }
}
