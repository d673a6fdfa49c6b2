//! Search the market, rent the cheapest match, wait for it to run, print its first log lines
//! and terminate it.
//!
//! Start a local testnet in one terminal (`cargo run -p qubix-testnet -- up`); it prints the
//! API URL and token. Then, in another:
//!
//! ```text
//! export QUBIX_API=http://127.0.0.1:8080 QUBIX_TOKEN=<token printed by `up`>
//! cargo run -p qubix-sdk --example search_and_launch -- "gpu_name=RTX_4090 price<=2000"
//! ```
//!
//! The query is optional (default: any offer with a GPU). The image is `qubix/test:latest`
//! unless `QUBIX_IMAGE` names another.

use std::time::Duration;

use qubix_sdk::Client;
use qubix_sdk::api::LaunchRequest;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::new(env("QUBIX_API")?, env("QUBIX_TOKEN")?)?;
    let query = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "num_gpus>=1".into());
    let page = client.offers(&query, Some("price"), Some(5), None).await?;
    println!("{} offers match {query:?}; the cheapest:", page.total);
    for view in &page.offers {
        let o = &view.offer;
        println!(
            "  {}  {} × {}  {} per GPU-hour  {}",
            view.id, o.gpu_count, o.gpu.model, o.price_per_gpu_hour, o.location.country
        );
    }
    let Some(cheapest) = page.offers.first() else {
        println!("nothing matched: {}", client.explain(&query).await?.summary);
        return Ok(());
    };
    let request = LaunchRequest {
        offer_id: Some(cheapest.id),
        query: None,
        image: std::env::var("QUBIX_IMAGE").unwrap_or_else(|_| "qubix/test:latest".into()),
        command: vec![
            "sh".into(),
            "-c".into(),
            "echo hello from the example; while true; do sleep 1; done".into(),
        ],
        env: Default::default(),
        ports: vec![],
        gpus: 1,
        duration_secs: 600,
        max_price_per_gpu_hour: None,
        cpu_cores: None,
        ram_mib: None,
        disk_gib: None,
        capabilities: Vec::new(),
    };
    let instance = client.launch(&request).await?;
    println!("rented {}; waiting for the container", instance.id);
    let running = client
        .wait_until_running(instance.id, Duration::from_secs(300), |i| {
            let detail = i.progress.as_ref().map_or("", |p| p.detail.as_str());
            println!("  {} {detail}", i.state.as_str());
        })
        .await?;
    println!(
        "running on {} ({} × {}{})",
        running.provider,
        running.gpus,
        running.gpu_model,
        if running.simulated { ", simulated" } else { "" }
    );
    for _ in 0..20 {
        let lines = client.logs(running.id, 20).await?;
        if !lines.is_empty() {
            lines.iter().for_each(|l| println!("  | {}", l.line));
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ended = client.terminate(running.id).await?;
    println!(
        "{} is {}; the unused part is refunded",
        ended.id,
        ended.state.as_str()
    );
    Ok(())
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name} (printed by `qubix-testnet up`)"))
}
