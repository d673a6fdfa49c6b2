//! The node service: one task that owns the market (offer book), the provider's desk, the
//! job records and the store. It judges what the network delivers, answers the API through
//! bounded commands with oneshot replies, and spawns short tasks for network round trips
//! (offer sync, negotiation) whose results come back to it as internal messages. Logic
//! lives in pure modules (`market`, `negotiation`); this task only performs what they decide.

mod accounts;
mod admission;
mod commands;
mod deposits;
mod driver;
mod images;
mod instances;
mod job_requests;
mod jobs;
mod market;
mod negotiate;
mod payments;
mod refunds;
mod retention;
mod runtime_health;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use qubix_protocol::api::Event;
use qubix_protocol::offer::Isolation;
use qubix_protocol::topics::Network;
use qubix_protocol::{AgreementId, NodeId, UnixMillis};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::gpu::GpuProbe;
use crate::keys::NodeKey;
use crate::market::{OfferBook, RateLimiter};
use crate::negotiation::ProviderDesk;
use crate::network::{NetworkEvent, NetworkHandle};
use crate::store::{JobRecord, Store};

pub(crate) use commands::Command;
pub use commands::{NodeHandle, ServiceError};

/// Capacity of the API command queue.
const COMMAND_QUEUE: usize = 256;
/// Capacity of the queue of results from spawned tasks.
const INTERNAL_QUEUE: usize = 256;
/// Capacity of the event broadcast (per subscriber lag beyond it is reported).
pub const EVENT_CAPACITY: usize = 1024;
/// Most offer-sync pages fetched from one peer per connection.
const MAX_SYNC_PAGES: u32 = 400;

/// What a provider node publishes.
pub struct ProviderSetup {
    /// The GPUs.
    pub probe: Arc<dyn GpuProbe>,
    /// Pricing, location and limits.
    pub config: crate::config::ProviderConfig,
}

impl std::fmt::Debug for ServiceSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSetup")
            .field("node", &self.key.node_id())
            .field("network", &self.network)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ProviderSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProviderSetup({} GPUs)", self.probe.devices().len())
    }
}

/// Everything the service needs at start.
pub struct ServiceSetup {
    /// The node's key.
    pub key: NodeKey,
    /// The network.
    pub network: Network,
    /// The node database.
    pub store: Store,
    /// The wallet identity (pays and is paid).
    pub wallet_identity: String,
    /// Provider setup, when this node offers GPUs.
    pub provider: Option<ProviderSetup>,
    /// Where provider jobs run (Docker, or local processes on a testnet).
    pub runtime: Option<Arc<dyn crate::runtime::ContainerRuntime>>,
    /// Payments on the Qubic network (or the devnet).
    pub settlement: Option<qubix_ledger::settle::QubicSettlement>,
    /// Why no GPU is offered, on a provider that found none.
    pub gpu_note: Option<String>,
    /// The double-entry ledger (in the node database).
    pub ledger: qubix_ledger::book::Ledger,
    /// The payment terms this node accepts as a consumer.
    pub terms_limits: crate::negotiation::TermsLimits,
    /// How many offers one peer's offer sync may add (refilled over an hour).
    pub offers_per_sync: usize,
    /// How long ended jobs' records are kept once their books are closed.
    pub record_retention: Duration,
    /// Why the container engine cannot run jobs, when it did not answer at start.
    pub runtime_down: Option<String>,
    /// A rogue node's misbehaviours (hostile test suite only).
    #[cfg(feature = "rogue")]
    pub rogue: crate::rogue::RogueConfig,
}

/// Results of spawned tasks.
#[derive(Debug)]
pub(crate) enum Internal {
    SyncPage {
        peer: PeerId,
        offers: Vec<qubix_protocol::Envelope>,
        next: Option<(NodeId, qubix_protocol::OfferId)>,
        page: u32,
    },
    Agreed {
        record: Box<JobRecord>,
        reply: tokio::sync::oneshot::Sender<Result<qubix_protocol::api::Instance, ServiceError>>,
    },
    Paid {
        id: AgreementId,
        window: u32,
        incoming: qubix_ledger::settle::IncomingTransfer,
    },
    PaymentRefused {
        id: AgreementId,
        notice: crate::store::WindowPayment,
        reason: String,
        retry: bool,
    },
    Balance {
        identity: String,
        balance: Option<qubix_protocol::Qu>,
    },
    ConsumerPaid {
        id: AgreementId,
        window: u32,
        transfer: qubix_ledger::settle::FinalTransfer,
    },
    InstanceEnded {
        id: AgreementId,
    },
    RefundArrived {
        id: AgreementId,
        incoming: qubix_ledger::settle::IncomingTransfer,
    },
    RefundPaid {
        id: AgreementId,
        n: u32,
        transfer: qubix_ledger::settle::FinalTransfer,
    },
    RefundStalled {
        id: AgreementId,
    },
    RuntimeChecked {
        down: Option<String>,
    },
    ImagesRemoved {
        removed: Vec<String>,
    },
    Status {
        id: AgreementId,
        status: qubix_protocol::control::JobStatus,
    },
    Usage {
        id: AgreementId,
        report: qubix_protocol::Envelope,
        receipt: Option<qubix_protocol::Envelope>,
    },
    ProviderLost {
        id: AgreementId,
    },
    Progress {
        id: AgreementId,
        progress: qubix_protocol::api::Progress,
    },
    Acted {
        id: AgreementId,
        result: Result<qubix_protocol::control::JobStatus, ServiceError>,
        reply: tokio::sync::oneshot::Sender<Result<qubix_protocol::api::Instance, ServiceError>>,
    },
}

pub(crate) struct Service {
    key: NodeKey,
    network_name: Network,
    net: NetworkHandle,
    store: Store,
    wallet_identity: String,
    book: OfferBook,
    market_guards: market::MarketGuards,
    negotiate_rate: RateLimiter<PeerId>,
    admission: admission::Admission,
    job_guards: job_requests::JobGuards,
    #[cfg(feature = "rogue")]
    rogue: crate::rogue::RogueConfig,
    payments: payments::PaymentChecks,
    terms_limits: crate::negotiation::TermsLimits,
    provider: Option<market::Provider>,
    desk: ProviderDesk,
    jobs: HashMap<AgreementId, JobRecord>,
    events: broadcast::Sender<Event>,
    internal_tx: mpsc::Sender<Internal>,
    started_at: UnixMillis,
    runtime: Option<Arc<dyn crate::runtime::ContainerRuntime>>,
    settlement: Option<qubix_ledger::settle::QubicSettlement>,
    runners: HashMap<AgreementId, crate::jobs::RunnerHandle>,
    job_inputs: crate::jobs::runner::InputSender,
    public_host: String,
    feeds: HashMap<AgreementId, instances::InstanceFeeds>,
    progress: HashMap<AgreementId, qubix_protocol::api::Progress>,
    shutdown: CancellationToken,
    gpu_note: Option<String>,
    ledger: qubix_ledger::book::Ledger,
    /// Provider jobs whose books are about to close, and refunds on their way out.
    closing: refunds::Closing,
    /// The service's background tasks (payments being verified, refunds awaited,
    /// withdrawals followed, …): stopped and awaited when the service ends, so nothing
    /// holding the node's database outlives it.
    tasks: TaskTracker,
    /// Stops them.
    tasks_stop: CancellationToken,
    /// How long ended jobs' records are kept once their books are closed.
    record_retention: Duration,
    /// When records were last pruned.
    records_pruned_at: UnixMillis,
    /// Whether the container engine answers.
    runtime_health: runtime_health::RuntimeHealth,
    /// Removal of pulled images no job needs.
    images: images::ImageCollection,
}

/// Capacity of the queue of runner reports.
const JOB_INPUT_QUEUE: usize = 256;

/// Starts the service task; returns its handle.
pub fn start(
    setup: ServiceSetup,
    net: NetworkHandle,
    net_events: mpsc::Receiver<NetworkEvent>,
    shutdown: CancellationToken,
    crash: CancellationToken,
) -> Result<(NodeHandle, tokio::task::JoinHandle<()>), ServiceError> {
    let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let (internal_tx, internal_rx) = mpsc::channel(INTERNAL_QUEUE);
    let (events, _) = broadcast::channel(EVENT_CAPACITY);
    let (job_inputs, job_inputs_rx) = mpsc::channel(JOB_INPUT_QUEUE);
    let public_host = setup
        .provider
        .as_ref()
        .map_or_else(|| "127.0.0.1".to_owned(), |p| p.config.public_host.clone());
    let jobs: HashMap<_, _> = setup.store.jobs()?.into_iter().collect();
    let nonces =
        setup.store.prune_nonces(UnixMillis::now().saturating_sub(
            job_requests::CONTROL_MAX_AGE + qubix_protocol::offer::MAX_CLOCK_SKEW,
        ))?;
    let isolation = match setup.runtime.as_ref().map(|r| r.kind()) {
        Some(crate::runtime::RuntimeKind::LocalProcess) => Isolation::Unisolated,
        _ => Isolation::Container,
    };
    let policy = setup
        .provider
        .as_ref()
        .map(|p| p.config.desk_policy())
        .unwrap_or_default();
    let job_requests_per_sec = setup
        .provider
        .as_ref()
        .map_or(100, |p| p.config.job_requests_per_sec);
    let provider = setup.provider.map(|p| {
        market::Provider::new(
            p,
            &setup.key,
            &setup.network,
            isolation,
            &setup.wallet_identity,
        )
    });
    let mut desk = ProviderDesk::new(setup.network.clone(), setup.key.node_id(), policy);
    if let Some(p) = &provider {
        p.fill_desk(&mut desk);
    }
    let mut service = Service {
        key: setup.key.clone(),
        network_name: setup.network.clone(),
        net: net.clone(),
        store: setup.store,
        wallet_identity: setup.wallet_identity.clone(),
        book: OfferBook::default(),
        market_guards: market::MarketGuards::new(setup.offers_per_sync),
        negotiate_rate: RateLimiter::new(20.0, 100.0, 10_000),
        admission: admission::Admission::default(),
        job_guards: job_requests::JobGuards::new(job_requests_per_sec, nonces),
        #[cfg(feature = "rogue")]
        rogue: setup.rogue,
        payments: payments::PaymentChecks::default(),
        terms_limits: setup.terms_limits,
        provider,
        desk,
        jobs,
        events: events.clone(),
        internal_tx,
        started_at: UnixMillis::now(),
        runtime: setup.runtime,
        settlement: setup.settlement,
        runners: HashMap::new(),
        job_inputs,
        public_host,
        feeds: HashMap::new(),
        progress: HashMap::new(),
        shutdown: shutdown.clone(),
        gpu_note: setup.gpu_note,
        ledger: setup.ledger,
        closing: refunds::Closing::default(),
        tasks: TaskTracker::new(),
        tasks_stop: CancellationToken::new(),
        record_retention: setup.record_retention,
        records_pruned_at: UnixMillis(0),
        runtime_health: runtime_health::RuntimeHealth::at_start(setup.runtime_down.clone()),
        images: images::ImageCollection::default(),
    };
    service.restore_reservations();
    service.resume_jobs();
    service.resume_payments();
    service.resume_accounts();
    service.reconcile_containers();
    let handle = NodeHandle::new(
        command_tx,
        net,
        events,
        setup.key.node_id(),
        setup.network,
        setup.wallet_identity,
    );
    let task = tokio::spawn(async move {
        service
            .run(
                command_rx,
                net_events,
                internal_rx,
                job_inputs_rx,
                shutdown,
                crash,
            )
            .await
    });
    Ok((handle, task))
}

impl Service {
    async fn run(
        &mut self,
        mut commands: mpsc::Receiver<Command>,
        mut net_events: mpsc::Receiver<NetworkEvent>,
        mut internal: mpsc::Receiver<Internal>,
        mut job_inputs: mpsc::Receiver<(AgreementId, crate::jobs::Input)>,
        shutdown: CancellationToken,
        crash: CancellationToken,
    ) {
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        let mut republish = tokio::time::interval(self.republish_period());
        info!(node = %self.key.node_id(), network = %self.network_name, "node service started");
        let crashed = loop {
            tokio::select! {
                biased;
                () = crash.cancelled() => {
                    warn!("node killed: offers are not withdrawn and expire on their own");
                    break true;
                }
                () = shutdown.cancelled() => break false,
                Some(event) = net_events.recv() => self.on_network_event(event).await,
                Some(msg) = internal.recv() => self.on_internal(msg).await,
                Some((id, input)) = job_inputs.recv() => {
                    if matches!(input, crate::jobs::Input::Pulled) {
                        self.note_pulled(&id);
                    }
                    let _ = self.apply(id, input).await;
                }
                Some(command) = commands.recv() => self.on_command(command).await,
                _ = republish.tick() => self.publish_offers().await,
                _ = sweep.tick() => self.sweep().await,
            }
        };
        if !crashed {
            self.withdraw_offers().await;
        }
        // Nothing reads these any more: a task that reports now must not wait for room.
        drop((job_inputs, internal, net_events));
        self.tasks_stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        info!("node service stopped");
    }

    /// Runs `task` in the background until it finishes or the service stops (then it is
    /// dropped where it stands, as a crash would; everything it does is idempotent or
    /// resumed at the next start).
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let stop = self.tasks_stop.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = task => {}
            }
        });
    }

    fn republish_period(&self) -> Duration {
        self.provider
            .as_ref()
            .map_or(Duration::from_secs(3600), |p| p.republish_period())
    }

    async fn on_network_event(&mut self, event: NetworkEvent) {
        match event {
            NetworkEvent::Gossip {
                source,
                propagation_source,
                message_id,
                data,
            } => {
                self.on_gossip(source, propagation_source, message_id, data)
                    .await;
            }
            NetworkEvent::OfferSync {
                peer,
                request,
                channel,
            } => self.serve_sync(peer, request, channel).await,
            NetworkEvent::Negotiate {
                peer,
                request,
                channel,
            } => self.on_negotiate(peer, request, channel).await,
            NetworkEvent::Job {
                peer,
                request,
                channel,
            } => self.on_job(peer, request, channel).await,
            NetworkEvent::PeerConnected(peer) => {
                self.emit_peer(peer, true);
                self.start_sync(peer);
            }
            NetworkEvent::PeerDisconnected(peer) => {
                self.market_guards.synced.remove(&peer);
                self.emit_peer(peer, false);
            }
            NetworkEvent::Listening(_) => {}
        }
    }

    /// After a restart: runners for live provider jobs, drivers for live instances.
    fn resume_jobs(&mut self) {
        let live: Vec<(AgreementId, crate::store::Role)> = self
            .jobs
            .iter()
            .filter(|(_, j)| !j.state.is_final())
            .map(|(id, j)| (*id, j.role))
            .collect();
        for (id, role) in live {
            match role {
                crate::store::Role::Provider => self.start_provider_job(id),
                crate::store::Role::Consumer => self.drive_instance(id),
            }
        }
    }

    fn emit_peer(&self, peer: PeerId, connected: bool) {
        if let Ok(node_id) = NodeId::from_peer_id(&peer) {
            let _ = self.events.send(Event::Peer { node_id, connected });
        }
    }

    async fn on_internal(&mut self, msg: Internal) {
        match msg {
            Internal::SyncPage {
                peer,
                offers,
                next,
                page,
            } => self.on_sync_page(peer, offers, next, page),
            Internal::Agreed { record, reply } => {
                let result = self.record_agreement(*record);
                if let Ok(instance) = &result {
                    self.drive_instance(instance.id);
                }
                let _ = reply.send(result);
            }
            Internal::Paid {
                id,
                window,
                incoming,
            } => self.credit(id, window, incoming).await,
            Internal::PaymentRefused {
                id,
                notice,
                reason,
                retry,
            } => self.payment_refused(id, notice, &reason, retry),
            Internal::Balance { identity, balance } => self.on_balance(identity, balance).await,
            Internal::ConsumerPaid {
                id,
                window,
                transfer,
            } => self.on_consumer_paid(id, window, &transfer),
            Internal::InstanceEnded { id } => self.close_instance(id),
            Internal::RefundArrived { id, incoming } => self.on_refund_arrived(id, incoming),
            Internal::RefundPaid { id, n, transfer } => self.on_refund_paid(id, n, transfer),
            Internal::RefundStalled { id } => self.on_refund_stalled(id),
            Internal::RuntimeChecked { down } => self.on_runtime_checked(down).await,
            Internal::ImagesRemoved { removed } => self.on_images_removed(removed),
            Internal::Status { id, status } => self.on_status(id, status),
            Internal::ProviderLost { id } => self.on_provider_lost(id),
            Internal::Usage {
                id,
                report,
                receipt,
            } => self.on_usage(id, report, receipt),
            Internal::Progress { id, progress } => self.on_progress(id, progress),
            Internal::Acted { id, result, reply } => self.acted(id, result, reply),
        }
    }

    async fn sweep(&mut self) {
        let now = UnixMillis::now();
        for (provider, offer_id) in self
            .book
            .sweep(now, now.saturating_sub(Duration::from_secs(3600)))
        {
            let _ = self.events.send(Event::OfferRemoved { offer_id, provider });
        }
        self.tick_jobs().await;
        self.close_overdue();
        self.prune_records_if_due(now).await;
        self.check_runtime_if_due(now);
        self.collect_images_if_due(now, false);
        // Bookkeeping about once a minute (the sweep runs every second).
        if (now.0 / 1000) % 60 == 0 {
            self.prune_nonces();
        }
        let lapsed = self.desk.sweep(now);
        if !lapsed.is_empty() {
            warn!(
                count = lapsed.len(),
                "reservations lapsed without countersignature or payment"
            );
            for id in lapsed {
                if self.jobs.contains_key(&id) {
                    let _ = self.apply(id, crate::jobs::Input::Lapsed).await;
                }
            }
            self.publish_offers().await;
        }
    }
}
