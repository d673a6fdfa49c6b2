//! Helpers shared by the integration tests: keys, a fast devnet, settlement and ledger
//! setup, agreement terms and receipts, and waiting on conditions under a deadline.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use qubix_ledger::devnet::{Devnet, DevnetConfig, DevnetHandle};
use qubix_ledger::qubic::{Identity, KeyPair, TxId};
use qubix_ledger::rpc::RpcConfig;
use qubix_ledger::settle::ConfirmConfig;
use qubix_ledger::{IncomingTransfer, Ledger, LedgerConfig, QubicSettlement, SettlementConfig};
use qubix_protocol::billing::Receipt;
use qubix_protocol::job::AgreementTerms;
use qubix_protocol::testing;
use qubix_protocol::{Envelope, Qu, Signed, UnixMillis};

/// A key pair from a seed of one repeated letter.
pub fn keypair(letter: char) -> KeyPair {
    KeyPair::from_seed_str(&letter.to_string().repeat(55)).expect("valid seed")
}

/// A devnet that processes a tick every 10 ms, with these identities funded.
pub async fn devnet(funded: &[(&KeyPair, u64)]) -> DevnetHandle {
    devnet_with(funded, Some(Duration::from_millis(10))).await
}

/// A devnet with the given tick period (`None`: manual ticks).
pub async fn devnet_with(funded: &[(&KeyPair, u64)], period: Option<Duration>) -> DevnetHandle {
    let config = DevnetConfig {
        tick_period: period,
        funded: funded.iter().map(|(k, a)| (k.identity(), *a)).collect(),
        ..DevnetConfig::default()
    };
    Devnet::start(config).await.expect("devnet starts")
}

/// RPC settings for tests: short timeouts and backoff.
pub fn rpc_config(url: &str) -> RpcConfig {
    RpcConfig {
        base_url: url.to_owned(),
        timeout: Duration::from_secs(5),
        retries: 2,
        backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..RpcConfig::default()
    }
}

/// Settlement settings for tests: a short tick offset and fast polling.
pub fn settlement_config(url: &str) -> SettlementConfig {
    SettlementConfig {
        rpc: rpc_config(url),
        confirm: ConfirmConfig {
            tick_offset: 3,
            poll: Duration::from_millis(5),
            stall_after: Duration::from_millis(100),
            stall_poll: Duration::from_millis(20),
            backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(40),
            max_attempts: 10,
        },
    }
}

/// A temporary sled database.
pub fn temp_db() -> sled::Db {
    sled::Config::new()
        .temporary(true)
        .open()
        .expect("temporary sled database")
}

/// A settlement paying from `key`, on its own temporary database.
pub fn settlement(devnet: &DevnetHandle, key: &KeyPair) -> (QubicSettlement, sled::Db) {
    let db = temp_db();
    let s = QubicSettlement::start(settlement_config(devnet.url()), key.clone(), &db)
        .expect("settlement starts");
    (s, db)
}

/// A ledger on a temporary database, not flushed per operation.
pub fn ledger() -> Ledger {
    Ledger::open(&temp_db(), LedgerConfig { durable: false }).expect("ledger opens")
}

/// Waits until the async `condition` holds, polling every 2 ms; panics naming what did
/// not happen within `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Agreement terms between consumer node 1 and provider node 2: 1,200 QU/GPU-hour, one GPU,
/// one hour (budget 1,200 QU), 10-minute windows (200 QU each).
pub fn terms(pay_to: &Identity, refund_to: &Identity) -> AgreementTerms {
    let mut terms = testing::agreement_terms(1, 2).expect("sample terms");
    terms.pay_to = pay_to.to_string();
    terms.refund_to = refund_to.to_string();
    terms
}

/// A cumulative receipt for `amount`, signed by the consumer (node 1).
pub fn receipt(terms: &AgreementTerms, sequence: u64, amount: u64) -> Envelope {
    let r = Receipt {
        agreement_id: terms.agreement_id,
        consumer: testing::node(1),
        report_sequence: sequence,
        billable_millis: sequence * 60_000,
        amount: Qu(amount),
        issued_at: UnixMillis(testing::NOW.0 + sequence * 60_000),
    };
    Signed::sign(r, &testing::key(1), &testing::network())
        .expect("consumer signs")
        .envelope()
        .clone()
}

/// An incoming transfer as `verify_incoming` would return it, for ledger-only tests.
pub fn incoming(n: u8, amount: u64) -> IncomingTransfer {
    IncomingTransfer {
        tx_id: TxId::from_hash([n; 32]),
        from: keypair('x').identity(),
        to: keypair('y').identity(),
        amount: Qu(amount),
        tick: 1,
    }
}

/// A fixed test time.
pub fn at(minute: u64) -> UnixMillis {
    UnixMillis(testing::NOW.0 + minute * 60_000)
}
