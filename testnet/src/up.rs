//! `qubix-testnet up`: providers with varied simulated GPUs, prices and locations, one
//! consumer node, every node a real `qubix` node on loopback TCP in its own data dir.

use std::net::SocketAddr;
use std::path::PathBuf;

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
    simulated_gpus: Option<String>,
}

#[derive(Serialize)]
struct TestnetFile {
    network: String,
    nodes: Vec<NodeEntry>,
    simulated: bool,
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    if args.providers == 0 || args.providers > 32 {
        anyhow::bail!("--providers must be 1-32");
    }
    let mut net = Testnet::new("testnet")?;
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
    net.add(NodeSpec::consumer("consumer")).await?;
    let file = TestnetFile {
        network: "testnet".into(),
        nodes: net
            .nodes
            .iter()
            .map(|n| NodeEntry {
                name: n.spec.name.clone(),
                node_id: n.handle().node_id().to_string(),
                address: n.addr.to_string(),
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
    println!(
        "Qubix testnet is up: {} providers with SIMULATED GPUs and 1 consumer on loopback.",
        args.providers
    );
    for n in &file.nodes {
        println!(
            "  {:<12} {}  {}",
            n.name,
            n.node_id,
            n.simulated_gpus.as_deref().unwrap_or("consumer")
        );
    }
    println!("Node list: {}", dir.join("testnet.json").display());
    println!(
        "The web console ({}) and the Qubic devnet are not part of this build yet.",
        args.gateway
    );
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    println!("Stopping: withdrawing offers and saving state…");
    net.shutdown().await;
    Ok(())
}
