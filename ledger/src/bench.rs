//! Measured figures, each beside a baseline measured in the same run: ledger operations per
//! second against raw sled batches of the same keys and bytes under the same flush policy,
//! and SchnorrQ (Qubic transfers) against ed25519 (node messages) signing and verification.
//! A program, not a timed test: `cargo run --release -p qubix-ledger --example bench_ledger`,
//! or call [`run`] from the testnet bench.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};

use qubix_protocol::{Qu, UnixMillis};

use crate::book::{Ledger, LedgerConfig, LedgerError};
use crate::qubic::{KeyPair, TxId, schnorrq};
use crate::settle::IncomingTransfer;

/// One measured figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// Operations per second.
    pub per_second: f64,
    /// The baseline's name, when this figure has one.
    pub baseline: Option<String>,
    /// The baseline's operations per second.
    pub baseline_per_second: Option<f64>,
    /// `per_second / baseline per_second`.
    pub ratio: Option<f64>,
}

/// How much to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchConfig {
    /// Ledger operations flushed to disk one by one.
    pub durable_ops: u64,
    /// Ledger operations without a flush each.
    pub buffered_ops: u64,
    /// Signatures made and checked per scheme.
    pub signatures: u64,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            durable_ops: 1_000,
            buffered_ops: 20_000,
            signatures: 2_000,
        }
    }
}

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// sled failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// Key generation failed.
    #[error("key generation: {0}")]
    Seed(#[from] crate::qubic::SeedError),
}

/// Runs every measurement in fresh databases under `dir`.
pub fn run(dir: &Path, config: &BenchConfig) -> Result<Vec<Figure>, BenchError> {
    let mut figures = Vec::new();
    for (durable, ops) in [(true, config.durable_ops), (false, config.buffered_ops)] {
        let label = if durable { "flushed" } else { "buffered" };
        let (ledger_rate, raw_rate) = ledger_against_raw(dir, label, durable, ops)?;
        figures.push(pair(
            format!("ledger deposit, {label}"),
            ledger_rate,
            format!("sled batch of the same keys and bytes, {label}"),
            raw_rate,
        ));
    }
    figures.extend(signatures(config.signatures)?);
    Ok(figures)
}

fn pair(name: String, rate: f64, baseline: String, base_rate: f64) -> Figure {
    Figure {
        name,
        per_second: rate,
        ratio: Some(rate / base_rate),
        baseline: Some(baseline),
        baseline_per_second: Some(base_rate),
    }
}

fn rate(ops: u64, elapsed: Duration) -> f64 {
    ops as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Chunks of ledger deposits and of raw batches of the same shape, alternating so both
/// see the same disk and machine load; returns both rates.
fn ledger_against_raw(
    dir: &Path,
    label: &str,
    durable: bool,
    ops: u64,
) -> Result<(f64, f64), BenchError> {
    const CHUNKS: u64 = 10;
    let ledger = Ledger::open(
        &sled::open(dir.join(format!("ledger-{label}")))?,
        LedgerConfig { durable },
    )?;
    let raw = sled::open(dir.join(format!("raw-{label}")))?.open_tree("raw")?;
    let deposits = Deposits::new()?;
    let per_chunk = (ops / CHUNKS).max(1);
    let (mut ledger_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    for chunk in 0..CHUNKS {
        let range = chunk * per_chunk..(chunk + 1) * per_chunk;
        let start = Instant::now();
        for n in range.clone() {
            ledger.deposit(&deposits.transfer(n), UnixMillis(n))?;
        }
        ledger_time += start.elapsed();
        let shape = ledger.last_batch_shape()?;
        let start = Instant::now();
        for n in range {
            raw_batch(&raw, &shape, n, durable)?;
        }
        raw_time += start.elapsed();
    }
    let total = per_chunk * CHUNKS;
    Ok((rate(total, ledger_time), rate(total, raw_time)))
}

/// Distinct incoming transfers to deposit.
struct Deposits {
    from: crate::qubic::Identity,
    to: crate::qubic::Identity,
}

impl Deposits {
    fn new() -> Result<Deposits, BenchError> {
        Ok(Deposits {
            from: KeyPair::from_seed_str(&"b".repeat(55))?.identity(),
            to: KeyPair::from_seed_str(&"c".repeat(55))?.identity(),
        })
    }

    fn transfer(&self, n: u64) -> IncomingTransfer {
        IncomingTransfer {
            tx_id: TxId::from_hash(hash_of(n)),
            from: self.from.clone(),
            to: self.to.clone(),
            amount: Qu(n % 1_000 + 1),
            tick: 1,
        }
    }
}

fn hash_of(n: u64) -> [u8; 32] {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&n.to_le_bytes());
    hash
}

/// The same writes as one deposit as one raw sled batch: the same key and value sizes, new
/// keys for the record and its log entry, the same keys each time for the sequence and the
/// balances (which a deposit overwrites).
fn raw_batch(
    tree: &sled::Tree,
    shape: &[(usize, usize)],
    n: u64,
    durable: bool,
) -> Result<(), BenchError> {
    let mut batch = sled::Batch::default();
    for (i, (key_len, value_len)) in shape.iter().enumerate() {
        let mut key = vec![b'k'; (*key_len).max(9)];
        if i < 2 {
            key[..8].copy_from_slice(&n.to_be_bytes());
        }
        key[8] = i as u8;
        batch.insert(key, vec![7u8; *value_len]);
    }
    tree.apply_batch(batch)?;
    if durable {
        tree.flush()?;
    }
    Ok(())
}

/// SchnorrQ against ed25519, signing and verifying a 32-byte digest.
fn signatures(n: u64) -> Result<Vec<Figure>, BenchError> {
    let qubic = KeyPair::from_seed_str(&"a".repeat(55))?;
    let public = qubic.public_key();
    let ed = SigningKey::from_bytes(&[7u8; 32]);
    let verifying = ed.verifying_key();
    let digest = [42u8; 32];
    let timed = |f: &dyn Fn(u64)| {
        let start = Instant::now();
        for i in 0..n {
            f(i);
        }
        rate(n, start.elapsed())
    };
    let q_sig = qubic.sign_digest(&digest);
    let e_sig = ed.sign(&digest);
    let q_sign = timed(&|i| {
        black_box(qubic.sign_digest(&black_box(hash_of(i))));
    });
    let e_sign = timed(&|i| {
        black_box(ed.sign(&black_box(hash_of(i))));
    });
    let q_verify = timed(&|_| {
        black_box(schnorrq::verify(&public, black_box(&digest), &q_sig).is_ok());
    });
    let e_verify = timed(&|_| {
        black_box(verifying.verify_strict(black_box(&digest), &e_sig).is_ok());
    });
    Ok(vec![
        pair(
            "SchnorrQ sign".into(),
            q_sign,
            "ed25519 sign".into(),
            e_sign,
        ),
        pair(
            "SchnorrQ verify".into(),
            q_verify,
            "ed25519 verify".into(),
            e_verify,
        ),
    ])
}
