//! Prints the ledger and signature benchmark: `cargo run --release -p qubix-ledger --example
//! bench_ledger [durable_ops buffered_ops signatures]`.

use qubix_ledger::bench::{BenchConfig, run};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let defaults = BenchConfig::default();
    let config = BenchConfig {
        durable_ops: args.first().copied().unwrap_or(defaults.durable_ops),
        buffered_ops: args.get(1).copied().unwrap_or(defaults.buffered_ops),
        signatures: args.get(2).copied().unwrap_or(defaults.signatures),
    };
    let dir = tempfile::tempdir()?;
    println!(
        "{:<26} {:>8}   {:<44} {:>8} {:>6}",
        "measure", "ops/s", "baseline (same run)", "ops/s", "ratio"
    );
    for f in run(dir.path(), &config)? {
        let base = f.baseline.as_deref().unwrap_or("-");
        let base_rate = f
            .baseline_per_second
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
        let ratio = f
            .ratio
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
        println!(
            "{:<26} {:>8.0}   {:<44} {:>8} {:>6}",
            f.name, f.per_second, base, base_rate, ratio
        );
    }
    Ok(())
}
