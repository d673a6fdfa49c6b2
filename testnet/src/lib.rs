//! A whole Qubix network on one machine: the [`harness::Testnet`] builder used by the
//! integration tests and the benchmarks, and the `qubix-testnet` binary (`up`, `bench`).

pub mod bench;
pub mod harness;
pub mod process;
pub mod registry;

pub use harness::{
    NodeSpec, Rogue, TestNode, Testnet, TestnetBuilder, TestnetError, docker_available, wait_until,
};

/// Installs a log subscriber for tests when `RUST_LOG` is set (once per process).
pub fn init_test_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
