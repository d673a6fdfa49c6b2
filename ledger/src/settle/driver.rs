//! The settlement task: the one owner of the outbox tree. It serves the handles' commands
//! and drives the oldest unsettled transfer through [`Confirmation`], performing each
//! [`Next`] action: signing in place, RPC calls as one in-flight future, waits as a timer.
//! Cancellation comes first in every `select!`.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use qubix_protocol::amount::MAX_QU;
use qubix_protocol::{Qu, UnixMillis};

use super::SettlementError;
use super::confirm::{Attempt, BroadcastOutcome, ConfirmConfig, Event, Lookup, Next};
use super::outbox::{Outbox, TransferRecord};
use super::transfer::{PaymentPurpose, TransferId, TransferStatus};
use crate::qubic::{Identity, KeyPair, TxId, build_transfer};
use crate::rpc::{Broadcast, RpcClient, RpcError};

/// A reply channel.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, SettlementError>>;

/// What a handle asks the driver.
pub(crate) enum Command {
    Pay {
        to: Identity,
        amount: Qu,
        purpose: PaymentPurpose,
        reply: Reply<TransferId>,
    },
    Status {
        id: TransferId,
        reply: Reply<Option<TransferStatus>>,
    },
    List {
        reply: Reply<Vec<TransferStatus>>,
    },
}

type Io = Pin<Box<dyn Future<Output = Event> + Send>>;

enum Input {
    Stop,
    Command(Command),
    Event(Event),
    Wake,
}

/// The task's state.
pub(crate) struct Driver {
    pub(crate) rpc: RpcClient,
    pub(crate) key: KeyPair,
    pub(crate) outbox: Outbox,
    pub(crate) config: ConfirmConfig,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) changed: watch::Sender<u64>,
    pub(crate) cancel: CancellationToken,
    pub(crate) active: Option<TransferRecord>,
    pub(crate) io: Option<Io>,
    pub(crate) wake: Option<UnixMillis>,
}

impl Driver {
    /// Runs until cancelled or every handle is gone.
    pub(crate) async fn run(mut self) {
        let start = self.take_next();
        self.feed(start);
        loop {
            match self.next_input().await {
                Input::Stop => break,
                Input::Command(command) => self.handle(command),
                Input::Event(event) => {
                    self.io = None;
                    self.feed(Some(event));
                }
                Input::Wake => {
                    self.wake = None;
                    let event = match self.active {
                        Some(_) => Some(Event::Wake),
                        None => self.take_next(),
                    };
                    self.feed(event);
                }
            }
        }
        tracing::debug!("settlement driver stopped");
    }

    async fn next_input(&mut self) -> Input {
        let has_io = self.io.is_some();
        let wake = self
            .wake
            .map(|at| tokio::time::Instant::now() + at.since(UnixMillis::now()));
        let io = &mut self.io;
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Input::Stop,
            command = self.commands.recv() => command.map_or(Input::Stop, Input::Command),
            event = async {
                match io {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            }, if has_io => Input::Event(event),
            () = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            }, if !has_io && wake.is_some() => Input::Wake,
        }
    }

    /// Feeds events to the active transfer until an action needs to wait.
    fn feed(&mut self, mut event: Option<Event>) {
        while let Some(ev) = event.take() {
            let now = UnixMillis::now();
            let Some(record) = self.active.as_mut() else {
                return;
            };
            let step = record.confirmation.on(ev, now, &self.config);
            if step.persist {
                if let Err(e) = self.outbox.save(record) {
                    // Nothing unpersisted goes out: fall back to the last durable state.
                    tracing::error!(transfer = %record.id, error = %e, "could not persist transfer state; retrying");
                    self.active = None;
                    self.wake = Some(now.saturating_add(self.config.backoff));
                    return;
                }
            }
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
            event = self.perform(step.next);
        }
    }

    /// Performs an action; returns the next event when it is available at once.
    fn perform(&mut self, next: Next) -> Option<Event> {
        match next {
            Next::Sign { target_tick } => Some(self.sign(target_tick)),
            Next::WaitUntil(at) => {
                self.wake = Some(at);
                None
            }
            Next::Done => {
                if let Some(done) = self.active.take() {
                    let state = done.status().map(|s| s.state);
                    tracing::info!(transfer = %done.id, state = ?state, "transfer settled");
                }
                self.take_next()
            }
            io => {
                self.io = Some(self.io_for(io));
                None
            }
        }
    }

    /// Makes the oldest unsettled transfer active; `Start` for it.
    fn take_next(&mut self) -> Option<Event> {
        match self.outbox.next_open() {
            Ok(next) => {
                if let Some(record) = &next {
                    tracing::info!(transfer = %record.id, amount = record.amount.0, "confirming transfer");
                }
                self.active = next;
                self.active.as_ref().map(|_| Event::Start)
            }
            Err(e) => {
                tracing::error!(error = %e, "could not read the transfer queue; retrying");
                self.wake = Some(UnixMillis::now().saturating_add(self.config.max_backoff));
                None
            }
        }
    }

    fn sign(&self, target_tick: u32) -> Event {
        let Some(record) = &self.active else {
            return Event::SignFailed("no active transfer".into());
        };
        let signed = record
            .to
            .parse::<Identity>()
            .map_err(|e| e.to_string())
            .and_then(|to| {
                build_transfer(&self.key, to.public_key(), record.amount.0, target_tick)
                    .map_err(|e| e.to_string())
            });
        match signed {
            Ok(tx) => Event::Signed(Attempt {
                number: record.confirmation.attempts() + 1,
                target_tick,
                tx_id: tx.id().to_string(),
                encoded: tx.to_base64(),
            }),
            Err(message) => Event::SignFailed(message),
        }
    }

    fn io_for(&self, next: Next) -> Io {
        let rpc = self.rpc.clone();
        Box::pin(async move {
            match next {
                Next::FetchTick => Event::Tick(text(rpc.tick_info().await.map(|t| t.tick))),
                Next::Broadcast { encoded } => {
                    Event::Broadcast(outcome(rpc.broadcast_base64(&encoded).await))
                }
                Next::FetchArchive => {
                    Event::Archive(text(rpc.last_processed_tick().await.map(|l| l.tick_number)))
                }
                Next::FetchIntervals => {
                    Event::Intervals(text(rpc.processed_tick_intervals().await))
                }
                Next::Lookup { tx_id } => Event::Lookup(lookup(&rpc, &tx_id).await),
                _ => Event::Wake,
            }
        })
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Pay {
                to,
                amount,
                purpose,
                reply,
            } => {
                let result = self.queue(&to, amount, &purpose);
                let _ = reply.send(result);
                if self.active.is_none() && self.wake.is_none() {
                    let start = self.take_next();
                    self.feed(start);
                }
            }
            Command::Status { id, reply } => {
                let _ = reply.send(self.status(&id));
            }
            Command::List { reply } => {
                let _ = reply.send(self.list());
            }
        }
    }

    fn queue(
        &self,
        to: &Identity,
        amount: Qu,
        purpose: &PaymentPurpose,
    ) -> Result<TransferId, SettlementError> {
        let invalid = |why: &str| Err(SettlementError::InvalidPayment(why.to_owned()));
        if amount.0 == 0 || amount.0 > MAX_QU {
            return invalid("the amount must be between 1 QU and 10^15 QU");
        }
        if *to == self.key.identity() {
            return invalid("the destination is this wallet itself");
        }
        if !purpose.is_valid() {
            return invalid("a purpose key must be 1-64 characters of A-Z a-z 0-9 . _ : -");
        }
        let (record, new) = self.outbox.create(purpose, to, amount, UnixMillis::now())?;
        if new {
            tracing::info!(transfer = %record.id, to = %to, amount = amount.0, "payment queued");
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(record.id)
    }

    /// The freshest view: the active transfer in memory, others from the outbox.
    fn status(&self, id: &TransferId) -> Result<Option<TransferStatus>, SettlementError> {
        match &self.active {
            Some(active) if active.id == *id => active.status().map(Some),
            _ => self.outbox.get(id)?.map(|r| r.status()).transpose(),
        }
    }

    fn list(&self) -> Result<Vec<TransferStatus>, SettlementError> {
        let mut all = Vec::new();
        for record in self.outbox.all()? {
            let record = match &self.active {
                Some(active) if active.id == record.id => active,
                _ => &record,
            };
            all.push(record.status()?);
        }
        Ok(all)
    }
}

fn text<T>(result: Result<T, RpcError>) -> Result<T, String> {
    result.map_err(|e| e.to_string())
}

/// What a broadcast result means for confirmation.
fn outcome(result: Result<Broadcast, RpcError>) -> BroadcastOutcome {
    match result {
        Ok(_) => BroadcastOutcome::Accepted,
        Err(RpcError::TargetTickPassed { .. }) => BroadcastOutcome::TickPassed,
        Err(e @ RpcError::Decode { .. }) => BroadcastOutcome::Unknown(e.to_string()),
        Err(e @ RpcError::Rejected { status: 400, .. }) => {
            BroadcastOutcome::Rejected(e.to_string())
        }
        Err(e) => BroadcastOutcome::Transient(e.to_string()),
    }
}

async fn lookup(rpc: &RpcClient, tx_id: &str) -> Result<Lookup, String> {
    let id: TxId = tx_id.parse().map_err(|e| format!("stored tx id: {e}"))?;
    match rpc.transaction(&id).await {
        Ok(Some(tx)) => Ok(Lookup::Found {
            tick: tx.tick_number,
            money_flew: tx.money_flew,
        }),
        Ok(None) => Ok(Lookup::NotFound),
        Err(e) => Err(e.to_string()),
    }
}
