//! Qubix ledger: money in QU.
//!
//! - [`qubic`]: Qubic keys, identities, SchnorrQ-with-K12 signatures and transactions,
//!   written from the spec in pure Rust.
pub mod qubic;
