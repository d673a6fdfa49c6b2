//! The Qubix node.
pub mod market;
pub mod network;
