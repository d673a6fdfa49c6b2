//! A whole Qubix network on one machine: the [`harness::Testnet`] builder used by the
//! integration tests and the benchmarks, and the `qubix-testnet` binary (`up`, `bench`).

pub mod bench;
pub mod harness;

pub use harness::{NodeSpec, Rogue, TestNode, Testnet, TestnetError, wait_until};
