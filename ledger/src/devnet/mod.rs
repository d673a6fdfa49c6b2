//! A local Qubic devnet (feature `devnet`): an HTTP(S) server on 127.0.0.1 speaking the RPC
//! subset the ledger uses, with the real services' paths, JSON shapes and errors, so the
//! same client code runs against it as against `rpc.qubic.org`.
//!
//! * Broadcasts are checked like the real RPC: base64, the SchnorrQ signature (the real
//!   verification code), and a target tick above the current tick; identical bytes are one
//!   transaction.
//! * Transfers execute when their target tick is processed, with `moneyFlew` semantics
//!   (insufficient balance: included, nothing moves).
//! * Ticks advance every `tick_period`, or only by [`DevnetHandle::advance`] for
//!   deterministic tests.
//! * Faults: drop transactions, skip a tick interval, stall ticks (epoch transition), fail
//!   broadcasts with 500, or take a transaction but answer 500.
//! * Funding ([`DevnetHandle::fund`], [`DevnetConfig::funded`]) is a signed transfer from a
//!   faucet identity, so it shows in the archive like any payment.
//! * With [`DevnetConfig::tls`] it serves https ([`tls::self_signed`] makes a certificate).
//!
//! `chain` holds the state; `faucet` the funding identity; `archive` answers
//! `getTransactionsForIdentity`; `server` the axum routes; [`tls`] the https side.

mod archive;
mod chain;
mod faucet;
mod server;
pub mod tls;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::qubic::{Identity, TxId};
use crate::rpc::ChainTransaction;

use chain::Chain;
use server::Shared;
pub use tls::{DevnetTls, SelfSigned};

/// How the devnet runs.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// How often a tick is processed; `None` for manual ticks only.
    pub tick_period: Option<Duration>,
    /// Identities funded at start (by faucet transfers in the first tick), with their QU.
    pub funded: Vec<(Identity, u64)>,
    /// The first tick.
    pub initial_tick: u32,
    /// The first epoch.
    pub epoch: u32,
    /// Where the chain is saved by [`DevnetHandle::save`] and restored from at start, when
    /// the file exists (then `funded` is not applied again).
    pub state: Option<std::path::PathBuf>,
    /// Serve https with this certificate instead of plain http.
    pub tls: Option<DevnetTls>,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        DevnetConfig {
            tick_period: Some(Duration::from_millis(500)),
            funded: Vec::new(),
            initial_tick: 20_000_000,
            epoch: 150,
            state: None,
            tls: None,
        }
    }
}

/// Why the devnet could not start, or a wait failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevnetError {
    /// Binding 127.0.0.1 failed.
    #[error("devnet could not listen on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// The tick was not reached in time.
    #[error(
        "devnet did not reach tick {want} within {timeout:?} (it is at {at}; stalled or too slow?)"
    )]
    TickTimeout {
        /// The tick waited for.
        want: u32,
        /// The tick reached.
        at: u32,
        /// How long was waited.
        timeout: Duration,
    },
    /// The TLS setting cannot be used.
    #[error(
        "devnet TLS: {reason}; pass a PEM certificate chain and its PEM private key \
         (devnet::tls::self_signed makes both)"
    )]
    Tls {
        /// What is wrong.
        reason: String,
    },
    /// The faucet could not sign a funding transfer.
    #[error("devnet could not fund {identity}: {reason}")]
    Funding {
        /// The identity to fund.
        identity: String,
        /// Why.
        reason: String,
    },
    /// The saved chain could not be read or written.
    #[error(
        "devnet state {path}: {reason}; delete the file to start a fresh devnet (balances and \
         history are lost)"
    )]
    State {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// Starts devnets.
#[derive(Debug)]
pub struct Devnet;

impl Devnet {
    /// Starts a devnet on 127.0.0.1 (a free port) in the current tokio runtime.
    pub async fn start(config: DevnetConfig) -> Result<DevnetHandle, DevnetError> {
        let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
        let (chain, restored) = initial_chain(&config)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(DevnetError::Bind)?;
        let addr = listener.local_addr().map_err(DevnetError::Bind)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (ticks, _) = watch::channel(chain.tick());
        let handle = DevnetHandle {
            url: format!("{scheme}://{addr}"),
            chain: Arc::new(Mutex::new(chain)),
            ticks: Arc::new(ticks),
            cancel: CancellationToken::new(),
            state: config.state.clone(),
            restored,
        };
        let router = server::router(Shared {
            chain: handle.chain.clone(),
        });
        let cancel = handle.cancel.clone();
        match tls {
            None => tokio::spawn(serve(listener, router, cancel)),
            Some(tls) => {
                let listener = tls::TlsListener::start(listener, tls, cancel.clone())
                    .map_err(DevnetError::Bind)?;
                tokio::spawn(serve(listener, router, cancel))
            }
        };
        if let Some(period) = config.tick_period {
            tokio::spawn(tick_loop(handle.clone(), period));
        }
        tracing::info!(url = %handle.url, "devnet started");
        Ok(handle)
    }
}

/// The saved chain when there is one (then `true`), else a fresh one with `funded` paid
/// by the faucet.
fn initial_chain(config: &DevnetConfig) -> Result<(Chain, bool), DevnetError> {
    if let Some(path) = config.state.as_ref().filter(|p| p.exists()) {
        return Ok((load(path)?, true));
    }
    let mut chain = Chain::new(config.initial_tick, config.epoch);
    for (identity, amount) in &config.funded {
        chain
            .fund_genesis(identity.public_key(), *amount)
            .map_err(|e| DevnetError::Funding {
                identity: identity.to_string(),
                reason: e.to_string(),
            })?;
    }
    Ok((chain, false))
}

async fn serve<L>(listener: L, router: axum::Router, cancel: CancellationToken)
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await;
    if let Err(e) = served {
        tracing::warn!(error = %e, "devnet server stopped");
    }
}

async fn tick_loop(handle: DevnetHandle, period: Duration) {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        tokio::select! {
            biased;
            () = handle.cancel.cancelled() => break,
            _ = interval.tick() => { handle.advance(); }
        }
    }
}

/// Controls a running devnet. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DevnetHandle {
    url: String,
    chain: Arc<Mutex<Chain>>,
    ticks: Arc<watch::Sender<u32>>,
    cancel: CancellationToken,
    state: Option<std::path::PathBuf>,
    restored: bool,
}

/// Reads a saved chain.
fn load(path: &std::path::Path) -> Result<Chain, DevnetError> {
    let state = |reason: String| DevnetError::State {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| state(e.to_string()))?;
    let snapshot: chain::Snapshot =
        serde_json::from_slice(&bytes).map_err(|e| state(e.to_string()))?;
    Chain::restore(snapshot).map_err(state)
}

impl DevnetHandle {
    fn with<T>(&self, f: impl FnOnce(&mut Chain) -> T) -> T {
        let mut chain = self.chain.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut chain)
    }

    /// The base URL to give the RPC client: `http://127.0.0.1:<port>`, or
    /// `https://127.0.0.1:<port>` with [`DevnetConfig::tls`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends `amount` QU to `identity` from the faucet: a signed transfer included in the
    /// current tick with `moneyFlew`, so the balance grows at once and the archive lists
    /// the transfer once the tick is processed. Returns its id (the last one's when the
    /// amount needed several transfers); `None` for 0 QU, which sends nothing.
    pub fn fund(&self, identity: &Identity, amount: u64) -> Option<TxId> {
        let funded = self.with(|c| c.fund(identity.public_key(), amount));
        funded.unwrap_or_else(|e| {
            // Unreachable: the faucet splits amounts and signs for its own key.
            tracing::error!(identity = %identity, amount, error = %e, "devnet faucet failed");
            None
        })
    }

    /// The faucet identity that [`DevnetHandle::fund`] pays from.
    pub fn faucet(&self) -> Identity {
        self.with(|c| c.faucet().identity())
    }

    /// An identity's balance.
    pub fn balance(&self, identity: &Identity) -> u64 {
        self.with(|c| c.balance_of(&identity.public_key()))
    }

    /// The current tick.
    pub fn tick(&self) -> u32 {
        self.with(|c| c.tick())
    }

    /// Processes one tick (none while stalled); returns the current tick.
    pub fn advance(&self) -> u32 {
        let tick = self.with(Chain::advance);
        self.ticks.send_replace(tick);
        tick
    }

    /// Processes `n` ticks.
    pub fn advance_by(&self, n: u32) -> u32 {
        (0..n).fold(self.tick(), |_, _| self.advance())
    }

    /// Waits until the current tick is at least `tick`.
    pub async fn wait_for_tick(&self, tick: u32, timeout: Duration) -> Result<u32, DevnetError> {
        let mut ticks = self.ticks.subscribe();
        let reached = tokio::time::timeout(timeout, ticks.wait_for(|t| *t >= tick)).await;
        match reached {
            Ok(Ok(t)) => Ok(*t),
            _ => Err(DevnetError::TickTimeout {
                want: tick,
                at: self.tick(),
                timeout,
            }),
        }
    }

    /// The archive's record of an included transaction.
    pub fn transaction(&self, id: &TxId) -> Option<ChainTransaction> {
        self.with(|c| c.transaction(id.as_str()))
    }

    /// Fault: accept the next `n` new transactions but never include them.
    pub fn drop_next(&self, n: u32) {
        self.with(|c| c.faults.drop_next = n);
    }

    /// Fault: never include this transaction.
    pub fn drop_transaction(&self, id: &TxId) {
        self.with(|c| c.faults.drop_ids.insert(id.to_string()));
    }

    /// Fault: skip the next `n` ticks as an epoch transition would; what targets them is
    /// never included. Returns the new current tick.
    pub fn skip_ticks(&self, n: u32) -> u32 {
        let tick = self.with(|c| c.skip(n));
        self.ticks.send_replace(tick);
        tick
    }

    /// Fault: stop (or resume) tick processing, like an epoch transition.
    pub fn set_stalled(&self, stalled: bool) {
        self.with(|c| c.faults.stalled = stalled);
    }

    /// Fault: refuse the next `n` broadcasts with 500 "tx wasn't broadcast to any peers".
    pub fn fail_next_broadcasts(&self, n: u32) {
        self.with(|c| c.faults.fail_broadcasts = n);
    }

    /// Fault: take the next `n` transactions but answer 500, as if the answer was lost.
    pub fn lose_next_broadcast_responses(&self, n: u32) {
        self.with(|c| c.faults.lose_responses = n);
    }

    /// Whether the chain was restored from [`DevnetConfig::state`] rather than started fresh.
    pub fn restored(&self) -> bool {
        self.restored
    }

    /// Writes the chain to [`DevnetConfig::state`] (atomically: a whole file or the old
    /// one); does nothing without a state path.
    pub fn save(&self) -> Result<(), DevnetError> {
        let Some(path) = &self.state else {
            return Ok(());
        };
        let state = |e: std::io::Error| DevnetError::State {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let snapshot = self.with(|c| c.snapshot());
        let bytes = serde_json::to_vec(&snapshot).map_err(|e| state(e.into()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(state)?;
        std::fs::rename(&tmp, path).map_err(state)
    }

    /// Stops the server and the ticker.
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}
