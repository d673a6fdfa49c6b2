//! The hostile suite: rogue consumers and providers attack a real testnet with Docker and
//! the Qubic devnet. A rogue is the real node with some of its honest checks switched off
//! (`qubix-node`'s `rogue` feature, which only this crate's dev-dependencies enable), or a
//! real node key and network layer signing whatever the test crafts. After every attack the
//! honest side has lost nothing beyond the bound `docs/security.md` states, both ledgers
//! balance and reconcile with the chain, and an honest rental running meanwhile completes.
//! Each group shares one testnet (one test).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)] // test code

mod accounts;
mod common;
mod host;
mod jobs;
mod market;
mod negotiation;
mod network;
mod payments;
mod receipts;
