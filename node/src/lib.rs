//! The Qubix node.
pub mod api;
pub mod cli;
pub mod config;
pub mod gpu;
pub mod jobs;
pub mod keys;
pub mod market;
pub mod negotiation;
pub mod network;
pub mod node;
#[cfg(feature = "rogue")]
pub mod rogue;
pub mod runtime;
pub mod service;
pub mod store;
