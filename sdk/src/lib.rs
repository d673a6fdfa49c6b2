//! The Qubix SDK: a typed async client of a node's gateway API (`/api/v1`).
//!
//! ```no_run
//! # async fn run() -> Result<(), qubix_sdk::SdkError> {
//! use qubix_sdk::Client;
//! use qubix_protocol::api::LaunchRequest;
//!
//! let client = Client::new("http://127.0.0.1:8080", "TOKEN")?;
//! let page = client.offers("gpu_name=RTX_4090 num_gpus>=1 price<=2000", Some("price"), Some(5), None).await?;
//! if page.offers.is_empty() {
//!     let why = client.explain("gpu_name=RTX_4090 price<=2000").await?;
//!     println!("nothing matched: {}", why.summary);
//!     return Ok(());
//! }
//! let launch = LaunchRequest {
//!     offer_id: Some(page.offers[0].id),
//!     query: None,
//!     image: "pytorch/pytorch:latest".into(),
//!     command: vec![],
//!     env: Default::default(),
//!     ports: vec![],
//!     gpus: 1,
//!     duration_secs: 3600,
//!     max_price_per_gpu_hour: None,
//!     cpu_cores: None,
//!     ram_mib: None,
//!     disk_gib: None,
//!     capabilities: vec![],
//! };
//! let instance = client.launch(&launch).await?;
//! let running = client.wait_until_running(instance.id, std::time::Duration::from_secs(300), |i| {
//!     println!("{}", i.state.as_str());
//! }).await?;
//! println!("running on {}", running.provider);
//! # Ok(()) }
//! ```
//!
//! The same flow runs end to end as `sdk/examples/search_and_launch.rs` against a local
//! testnet (`cargo run -p qubix-testnet -- up` prints the URL and token):
//!
//! ```text
//! QUBIX_API=http://127.0.0.1:8080 QUBIX_TOKEN=<token> \
//!     cargo run -p qubix-sdk --example search_and_launch -- "gpu_name=RTX_4090"
//! ```
//!
//! `follow_logs` streams an instance's log and `budget_watch` follows spending live.
//!
//! Parts: [`Client`] (every route), [`SdkError`] (transport, API and decoding errors kept
//! apart), and WebSocket streams for logs, metrics and events ([`Client::log_stream`],
//! [`Client::metrics_stream`], [`Client::events`]).

mod client;
mod error;
mod stream;

pub use client::{Client, ClientBuilder, IDEMPOTENCY_KEY, new_idempotency_key};
pub use error::SdkError;
pub use qubix_protocol::api;
