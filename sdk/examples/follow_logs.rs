//! Follow an instance's log live over WebSocket, like `qubix logs -f`.
//!
//! Against a local testnet (`cargo run -p qubix-testnet -- up`, which prints the API URL and
//! token) with an instance running (e.g. from the `search_and_launch` example or
//! `qubix launch`):
//!
//! ```text
//! export QUBIX_API=http://127.0.0.1:8080 QUBIX_TOKEN=<token printed by `up`>
//! cargo run -p qubix-sdk --example follow_logs -- <instance id>
//! ```
//!
//! Without an id it follows the newest instance. It ends when the instance's log ends, or on
//! Ctrl-C.

use futures::StreamExt;
use qubix_sdk::Client;
use qubix_sdk::api::LogEvent;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::new(env("QUBIX_API")?, env("QUBIX_TOKEN")?)?;
    let id = match std::env::args().nth(1) {
        Some(text) => text.parse()?,
        None => {
            client
                .instances()
                .await?
                .into_iter()
                .max_by_key(|i| i.created_at)
                .ok_or("no instances yet: launch one first")?
                .id
        }
    };
    eprintln!("following {id} (Ctrl-C stops)");
    let mut stream = Box::pin(client.log_stream(id, 20));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = stream.next() => match event {
                None => {
                    eprintln!("the log ended");
                    break;
                }
                Some(Ok(LogEvent::Line(line))) => println!("{}", line.line),
                Some(Ok(LogEvent::Lagged { missed })) => eprintln!("… {missed} lines skipped"),
                Some(Err(e)) => return Err(e.into()),
            },
        }
    }
    Ok(())
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name} (printed by `qubix-testnet up`)"))
}
