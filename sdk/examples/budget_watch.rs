//! Watch spending live and terminate any instance whose spend reaches a budget.
//!
//! Against a local testnet (`cargo run -p qubix-testnet -- up`, which prints the API URL and
//! token):
//!
//! ```text
//! export QUBIX_API=http://127.0.0.1:8080 QUBIX_TOKEN=<token printed by `up`>
//! cargo run -p qubix-sdk --example budget_watch -- 500
//! ```
//!
//! The argument is the most QU one instance may spend (default 1000). It checks the billing
//! figures at start and again on every `billing` event of the node's event stream, until
//! Ctrl-C.

use std::collections::HashSet;

use futures::StreamExt;
use qubix_protocol::AgreementId;
use qubix_sdk::api::{Billing, Event};
use qubix_sdk::{Client, SdkError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::new(env("QUBIX_API")?, env("QUBIX_TOKEN")?)?;
    let budget: u64 = match std::env::args().nth(1) {
        Some(text) => text.parse().map_err(|e| format!("budget {text:?}: {e}"))?,
        None => 1_000,
    };
    println!("terminating any instance that spends {budget} QU or more (Ctrl-C stops)");
    let mut events = Box::pin(client.events());
    let mut ended = HashSet::new();
    let first = client.billing().await?;
    enforce(&client, &first, budget, &mut ended).await?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = events.next() => match event {
                None => break,
                Some(Ok(Event::Billing { billing })) => {
                    enforce(&client, &billing, budget, &mut ended).await?;
                }
                Some(Ok(Event::Lagged { .. })) => {
                    let billing = client.billing().await?;
                    enforce(&client, &billing, budget, &mut ended).await?;
                }
                Some(Ok(_)) => {}
                // The stream reconnects by itself after reporting a dropped connection.
                Some(Err(e)) => eprintln!("events: {e}"),
            },
        }
    }
    Ok(())
}

/// Prints the totals and terminates the instances over budget.
async fn enforce(
    client: &Client,
    billing: &Billing,
    budget: u64,
    ended: &mut HashSet<AgreementId>,
) -> Result<(), SdkError> {
    println!(
        "available {}  escrow {}  spent {}",
        billing.available, billing.escrow, billing.spent
    );
    let over = billing
        .instances
        .iter()
        .filter(|i| i.spent.0 >= budget && !ended.contains(&i.id))
        .collect::<Vec<_>>();
    for instance in over {
        let now = client.terminate(instance.id).await?;
        ended.insert(instance.id);
        println!(
            "  {} spent {} (budget {budget} QU): now {}",
            now.id,
            instance.spent,
            now.state.as_str()
        );
    }
    Ok(())
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name} (printed by `qubix-testnet up`)"))
}
