//! [`QubicSettlement`]: the [`Settlement`] that pays on the Qubic network from the node's
//! wallet. A cheap, cloneable handle; the driver task behind it owns the outbox tree.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use qubix_protocol::Qu;

use super::confirm::ConfirmConfig;
use super::driver::{Command, Driver, Reply};
use super::incoming::{self, Expected};
use super::outbox::Outbox;
use super::scan::{self, IncomingScan};
use super::transfer::{
    FinalTransfer, IncomingTransfer, PaymentPurpose, TransferId, TransferState, TransferStatus,
};
use super::{Settlement, SettlementError};
use crate::qubic::{Identity, KeyPair, TxId};
use crate::rpc::{RpcClient, RpcConfig, TickInfo};

/// How a [`QubicSettlement`] runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SettlementConfig {
    /// The RPC endpoint, timeouts and retries.
    pub rpc: RpcConfig,
    /// Confirmation timing.
    pub confirm: ConfirmConfig,
}

/// Bound of the command channel from handles to the driver.
const COMMAND_QUEUE: usize = 64;

/// Identities (per RPC endpoint) with a running driver in this process: a second driver
/// for the same source could sign a second transaction while the first is pending.
static RUNNING: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Holds an identity's place in [`RUNNING`] for as long as its driver runs.
struct RunningGuard {
    key: (String, String),
}

impl RunningGuard {
    fn claim(identity: &Identity, rpc: &RpcClient) -> Result<RunningGuard, SettlementError> {
        let key = (identity.to_string(), rpc.base_url().to_owned());
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        if running.contains(&key) {
            return Err(SettlementError::AlreadyRunning {
                identity: key.0,
                rpc: key.1,
            });
        }
        running.push(key.clone());
        Ok(RunningGuard { key })
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        running.retain(|k| *k != self.key);
    }
}

/// Pays from one wallet on the Qubic network. Clone it freely; call
/// [`QubicSettlement::shutdown`] to stop the task (dropping every clone stops it too).
#[derive(Clone)]
pub struct QubicSettlement {
    commands: mpsc::Sender<Command>,
    changed: watch::Receiver<u64>,
    rpc: RpcClient,
    identity: Identity,
    cancel: CancellationToken,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for QubicSettlement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QubicSettlement")
            .field("identity", &self.identity.as_str())
            .field("rpc", &self.rpc.base_url())
            .finish()
    }
}

impl QubicSettlement {
    /// Opens the outbox in `db` and starts the driver on the current tokio runtime. Any
    /// transfer left unsettled by a previous run resumes where its persisted state says
    /// (a signed transaction is rebroadcast byte for byte).
    pub fn start(
        config: SettlementConfig,
        key: KeyPair,
        db: &sled::Db,
    ) -> Result<QubicSettlement, SettlementError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| SettlementError::NoRuntime)?;
        let rpc = RpcClient::new(config.rpc)?;
        let identity = key.identity();
        let guard = RunningGuard::claim(&identity, &rpc)?;
        let outbox = Outbox::open(db)?;
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let (changed_tx, changed) = watch::channel(0);
        let cancel = CancellationToken::new();
        let driver = Driver {
            rpc: rpc.clone(),
            key,
            outbox,
            config: config.confirm,
            commands: receiver,
            changed: changed_tx,
            cancel: cancel.clone(),
            active: None,
            io: None,
            wake: None,
        };
        let span = tracing::info_span!("settlement", identity = %identity);
        let task = runtime.spawn(
            async move {
                driver.run().await;
                drop(guard);
            }
            .instrument(span),
        );
        Ok(QubicSettlement {
            commands,
            changed,
            rpc,
            identity,
            cancel,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    /// Stops the driver and waits for it. Unsettled transfers stay in the outbox and
    /// resume on the next start.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// The RPC client this settlement uses.
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// The plain transfers (input type 0, money moved, more than 0 QU) that reached this
    /// settlement's identity from `from_tick` up to the archive's last processed tick, by
    /// tick then id. Stops after `max` transfers without splitting a tick (a single tick
    /// with more than `max` is returned whole); [`IncomingScan::through_tick`] says how far
    /// it covered, so the next call starts at `through_tick + 1` and nothing is missed or
    /// seen twice.
    pub async fn incoming_since(
        &self,
        from_tick: u32,
        max: usize,
    ) -> Result<IncomingScan, SettlementError> {
        scan::incoming_since(&self.rpc, &self.identity, from_tick, max).await
    }

    /// Every outgoing transfer, in id order.
    pub async fn transfers(&self) -> Result<Vec<TransferStatus>, SettlementError> {
        self.request(|reply| Command::List { reply }).await
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, SettlementError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| SettlementError::Shutdown)?;
        answer.await.map_err(|_| SettlementError::Shutdown)?
    }
}

/// A transfer's state in words, for timeouts.
fn describe(status: &TransferStatus) -> String {
    let tx = status.tx_id.as_ref().map_or_else(
        || "no transaction yet".to_owned(),
        |t| format!("transaction {t}"),
    );
    let tick = status.target_tick.unwrap_or(0);
    match &status.state {
        TransferState::Queued => "queued behind earlier transfers or waiting for the tick".into(),
        TransferState::Signed => format!("{tx} for tick {tick} is being broadcast"),
        TransferState::Pending { stalled: false } => {
            format!("{tx} targets tick {tick}, not yet processed")
        }
        TransferState::Pending { stalled: true } => {
            format!(
                "{tx} targets tick {tick}; the network's ticks are not advancing (epoch transition?)"
            )
        }
        TransferState::Final { tick } => format!("final in tick {tick}"),
        TransferState::Failed { reason } => format!("failed: {reason}"),
    }
}

impl QubicSettlement {
    /// The chain balance of `identity` and the tick it is valid for: it holds every
    /// transfer of the ticks up to that one, and none after.
    pub async fn balance_at(&self, identity: &Identity) -> Result<(Qu, u32), SettlementError> {
        let balance = self.rpc.balance(identity).await?;
        let qu = Qu(u64::try_from(balance.balance).unwrap_or(0));
        Ok((qu, balance.valid_for_tick))
    }
}

impl Settlement for QubicSettlement {
    fn identity(&self) -> Identity {
        self.identity.clone()
    }

    async fn pay(
        &self,
        to: &Identity,
        amount: Qu,
        purpose: PaymentPurpose,
    ) -> Result<TransferId, SettlementError> {
        let to = to.clone();
        self.request(|reply| Command::Pay {
            to,
            amount,
            purpose,
            reply,
        })
        .await
    }

    async fn transfer_status(&self, id: &TransferId) -> Result<TransferStatus, SettlementError> {
        let id = id.clone();
        let found = self
            .request(|reply| Command::Status {
                id: id.clone(),
                reply,
            })
            .await?;
        found.ok_or(SettlementError::UnknownTransfer { id })
    }

    async fn wait_final(
        &self,
        id: &TransferId,
        timeout: Duration,
    ) -> Result<FinalTransfer, SettlementError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.changed.clone();
        loop {
            changes.borrow_and_update();
            let status = self.transfer_status(id).await?;
            match (&status.state, &status.tx_id) {
                (TransferState::Final { tick }, Some(tx_id)) => {
                    return Ok(FinalTransfer {
                        id: id.clone(),
                        tx_id: tx_id.clone(),
                        to: status.to.clone(),
                        amount: status.amount,
                        tick: *tick,
                    });
                }
                (TransferState::Failed { reason }, _) => {
                    return Err(SettlementError::TransferFailed {
                        id: id.clone(),
                        reason: reason.clone(),
                    });
                }
                _ => {}
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(SettlementError::Shutdown),
                Err(_) => {
                    return Err(SettlementError::Timeout {
                        id: id.clone(),
                        waited: timeout,
                        state: describe(&status),
                    });
                }
            }
        }
    }

    async fn balance(&self, identity: &Identity) -> Result<Qu, SettlementError> {
        let balance = self.rpc.balance(identity).await?;
        Ok(Qu(u64::try_from(balance.balance).unwrap_or(0)))
    }

    async fn tick(&self) -> Result<TickInfo, SettlementError> {
        Ok(self.rpc.tick_info().await?)
    }

    async fn verify_incoming(
        &self,
        tx_id: &TxId,
        expected_to: &Identity,
        expected_from: Option<&Identity>,
        min_amount: Qu,
    ) -> Result<IncomingTransfer, SettlementError> {
        let expected = Expected {
            to: expected_to,
            from: expected_from,
            min_amount,
        };
        incoming::verify(&self.rpc, tx_id, expected).await
    }
}
