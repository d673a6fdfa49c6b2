//! Benchmarks: programs that measure a figure and a baseline in the same run and print both
//! with their ratio. `cargo run --release -p qubix-testnet -- bench` runs them all.

mod market;
mod more;
mod node;
mod rtt;

use serde::Serialize;

pub use market::{join_to_full_book, offer_propagation, start_seeder, synthetic_offers};
pub use more::{container_start, http_query, launch_to_running, ledger};
pub use node::{negotiation_round_trip, node_memory};
pub use rtt::loopback_rtt;

/// One measured figure beside its baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// What it is compared with.
    pub baseline_name: String,
    /// The baseline's value, measured in the same run.
    pub baseline: f64,
}

impl Figure {
    /// value / baseline.
    pub fn ratio(&self) -> f64 {
        if self.baseline == 0.0 {
            f64::INFINITY
        } else {
            self.value / self.baseline
        }
    }
}

/// Prints figures as an aligned table.
pub fn print_table(figures: &[Figure]) {
    println!(
        "{:<46} {:>12} {:<6} {:<34} {:>12} {:>9}",
        "figure", "value", "unit", "baseline", "baseline", "ratio"
    );
    for f in figures {
        println!(
            "{:<46} {:>12.3} {:<6} {:<34} {:>12.3} {:>9.1}",
            f.name,
            f.value,
            f.unit,
            f.baseline_name,
            f.baseline,
            f.ratio()
        );
    }
}

/// The p-th percentile (0–100) of unsorted samples.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)]
}
