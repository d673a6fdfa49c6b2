//! `qubix-testnet up`: providers with varied simulated GPUs, prices and locations, one
//! consumer node, every node a real `qubix` node on loopback TCP in its own data dir.

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
    /// Where to write testnet.json (node ids, addresses, console URL and token).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

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

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    if args.providers == 0 || args.providers > 32 {
        anyhow::bail!("--providers must be 1-32");
    }
    let mut net = Testnet::with_devnet("testnet", Duration::from_millis(500)).await?;
    net.set_offer_ttl(300);
    for i in 0..args.providers {
        let (gpus, price, country) = LINEUP[i % LINEUP.len()];
        net.add(NodeSpec::provider(
            &format!("provider-{i}"),
            gpus,
            price,
            country,
        ))
        .await?;
    }
    let mut consumer = NodeSpec::consumer("consumer");
    consumer.funds = 50_000_000;
    consumer.gateway = Some(args.gateway);
    let c = net.add(consumer).await?;
    let gateway = net.nodes[c]
        .gateway()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the consumer has no gateway"))?;
    let devnet_url = net.devnet().map(|d| d.url().to_owned()).unwrap_or_default();
    let file = TestnetFile {
        network: "testnet".into(),
        console: gateway.login_url.clone(),
        api: format!("http://{}", gateway.addr),
        token: gateway.token.clone(),
        qubic_devnet: devnet_url.clone(),
        nodes: net
            .nodes
            .iter()
            .map(|n| NodeEntry {
                name: n.spec.name.clone(),
                node_id: n.handle().node_id().to_string(),
                address: n.addr.to_string(),
                wallet: n.handle().wallet_identity().to_owned(),
                simulated_gpus: n.spec.simulate_gpu.clone(),
            })
            .collect(),
        simulated: true,
    };
    let dir = args
        .data_dir
        .unwrap_or_else(|| PathBuf::from(".qubix-testnet"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("testnet.json"), serde_json::to_vec_pretty(&file)?)?;
    println!();
    println!("Qubix testnet is up.");
    println!("  console      {}", gateway.login_url);
    println!("  API          http://{}   (QUBIX_API)", gateway.addr);
    println!("  token        {}   (QUBIX_TOKEN)", gateway.token);
    println!(
        "  Qubic devnet {devnet_url}  (ticks every 500 ms; the consumer's wallet holds 50,000,000 QU)"
    );
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
    wait_for_stop_signal().await?;
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
    net.shutdown().await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn wait_for_stop_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
