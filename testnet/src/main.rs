//! `qubix-testnet`: `up` starts a whole Qubix network on this machine; `bench` runs every
//! benchmark and prints measured figures beside baselines measured in the same run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod up;

#[derive(Parser, Debug)]
#[command(
    name = "qubix-testnet",
    version,
    about = "A whole Qubix network on one machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start providers with simulated GPUs, a consumer node with the web console, and the
    /// Qubic devnet; Ctrl-C stops everything.
    Up(up::UpArgs),
    /// Run the benchmarks and print a table of figures, baselines and ratios.
    Bench {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Only the quick benchmarks (smaller networks).
        #[arg(long)]
        quick: bool,
        /// Where to write the JSON result as well.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run only these benchmarks (comma-separated): propagation, join, negotiation,
        /// ledger, container, launch, http, memory.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
}

async fn bench(
    json: bool,
    quick: bool,
    out: Option<PathBuf>,
    only: Vec<String>,
) -> anyhow::Result<()> {
    let run = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    use qubix_testnet::bench;
    let rtt = bench::loopback_rtt(2_000).await?;
    let mut figures = Vec::new();
    let sizes: &[usize] = if quick { &[10] } else { &[20, 50] };
    if run("propagation") {
        for &n in sizes {
            eprintln!("measuring offer propagation over {n} nodes…");
            figures.extend(bench::offer_propagation(n, 20, rtt).await?);
        }
    }
    if run("join") {
        let offers = if quick { 2_000 } else { 10_000 };
        eprintln!("measuring join-to-full-book with {offers} offers…");
        figures.push(bench::join_to_full_book(offers, rtt).await?);
    }
    if run("negotiation") {
        eprintln!("measuring the negotiation round trip…");
        figures.extend(bench::negotiation_round_trip(if quick { 10 } else { 30 }, rtt).await?);
    }
    if run("ledger") {
        eprintln!("measuring durable ledger operations and signatures…");
        figures.extend(bench::ledger(quick)?);
    }
    let image = std::env::var("QUBIX_TEST_IMAGE").unwrap_or_else(|_| "qubix/test:latest".into());
    let mut docker_run_ms = f64::NAN;
    if run("container") || run("launch") {
        eprintln!("measuring container start through the runtime beside docker run…");
        let start = bench::container_start(&image, if quick { 3 } else { 7 }).await?;
        docker_run_ms = start.baseline;
        figures.push(start);
    }
    if run("launch") {
        eprintln!("measuring launch → running through a testnet…");
        figures.push(bench::launch_to_running(&image, docker_run_ms).await?);
    }
    if run("http") {
        let market = if quick { 10_000 } else { 100_000 };
        eprintln!("measuring marketplace queries over HTTP with {market} offers…");
        figures.extend(bench::http_query(market).await?);
    }
    if run("memory") {
        let offers = if quick { 10_000 } else { 100_000 };
        eprintln!("measuring a node process's memory, idle and with {offers} offers…");
        figures.extend(bench::node_memory(offers).await?);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        bench::print_table(&figures);
    }
    if let Some(path) = out {
        std::fs::write(path, serde_json::to_vec_pretty(&figures)?)?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,qubix_testnet=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Bench {
            json,
            quick,
            out,
            only,
        } => bench(json, quick, out, only).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
