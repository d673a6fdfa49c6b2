//! The API of the service: a cloneable [`NodeHandle`] that sends bounded commands with a
//! oneshot reply, and the service's side of each command.

use super::instances::InstanceFeeds;
use qubix_protocol::api::{
    ApiError, ErrorCode, Event, Instance, LaunchRequest, NodeInfo, OfferView, OffersPage, PeerInfo,
    ProviderPricing,
};
use qubix_protocol::api::{GpuInfo, GpusView, LogLine, MetricsSample, ProviderJob};
use qubix_protocol::control::JobAction;
use qubix_protocol::query::{Explanation, Query};
use qubix_protocol::topics::Network;
use qubix_protocol::{AgreementId, NodeId};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::Service;
use crate::network::NetworkHandle;
use crate::store::{JobRecord, Role, StoreError};

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A user-facing error with its API code and, where one is at fault, the field.
    #[error("{1}")]
    Api(ErrorCode, String, Option<String>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or an impossible state; details are logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
    /// The service has stopped.
    #[error("the node is shutting down")]
    Shutdown,
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Api(code, message, field) => {
                let err = ApiError::new(code, message);
                match field {
                    Some(f) => err.with_field(f),
                    None => err,
                }
            }
            ServiceError::Shutdown => {
                ApiError::new(ErrorCode::Unavailable, "the node is shutting down")
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(
                    ErrorCode::Internal,
                    "internal error; the node's log has the details",
                )
            }
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, ServiceError>>;

/// A command to the service.
#[derive(Debug)]
pub(crate) enum Command {
    /// Node facts.
    Info(Reply<NodeInfo>),
    /// A page of offers.
    Offers {
        /// Query text.
        q: String,
        /// Sort override (`price`, `-reliability`, …).
        sort: Option<String>,
        /// Limit override.
        limit: Option<u32>,
        /// Offset override.
        offset: Option<u32>,
        /// Where the answer goes.
        reply: Reply<OffersPage>,
    },
    /// Explain a query.
    Explain {
        /// Query text.
        q: String,
        /// Where the answer goes.
        reply: Reply<Explanation>,
    },
    /// Rent GPUs.
    Launch(Box<LaunchRequest>, Reply<Instance>),
    /// Instances this node rents.
    Instances(Reply<Vec<Instance>>),
    /// One instance.
    Instance(AgreementId, Reply<Instance>),
    /// Stop, start, restart or terminate an instance.
    Act(AgreementId, JobAction, Reply<Instance>),
    /// The log and metrics buffers of an instance.
    Feeds(AgreementId, Reply<InstanceFeeds>),
    /// This node's GPUs.
    Gpus(Reply<GpusView>),
    /// Jobs this node runs for others.
    ProviderJobs(Reply<Vec<ProviderJob>>),
    /// The provider's pricing.
    Pricing(Reply<ProviderPricing>),
    /// Sets the provider's pricing and republishes its offers.
    SetPricing(ProviderPricing, Reply<ProviderPricing>),
    /// Follow a withdrawal queued for payment until its outcome is recorded.
    FollowWithdrawal(String),
    /// Adopt the deposits that arrived.
    AdoptDeposits(Reply<qubix_protocol::Qu>),
}

/// A cloneable handle to a running node.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
    net: NetworkHandle,
    events: broadcast::Sender<Event>,
    node_id: NodeId,
    network: Network,
    wallet_identity: String,
}

impl NodeHandle {
    pub(super) fn new(
        commands: mpsc::Sender<Command>,
        net: NetworkHandle,
        events: broadcast::Sender<Event>,
        node_id: NodeId,
        network: Network,
        wallet_identity: String,
    ) -> Self {
        Self {
            commands,
            net,
            events,
            node_id,
            network,
            wallet_identity,
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The network name.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The wallet identity.
    pub fn wallet_identity(&self) -> &str {
        &self.wallet_identity
    }

    /// The network layer.
    pub fn net(&self) -> &NetworkHandle {
        &self.net
    }

    /// Live events (bounded; a slow subscriber sees `Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ServiceError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| ServiceError::Shutdown)?;
        rx.await.map_err(|_| ServiceError::Shutdown)?
    }

    /// Node facts.
    pub async fn info(&self) -> Result<NodeInfo, ServiceError> {
        self.call(Command::Info).await
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, ServiceError> {
        let peers = self.net.peers().await.map_err(|_| ServiceError::Shutdown)?;
        Ok(peers
            .into_iter()
            .filter_map(|p| {
                Some(PeerInfo {
                    node_id: NodeId::from_peer_id(&p.peer).ok()?,
                    addresses: p.addresses.iter().map(ToString::to_string).collect(),
                    rtt_ms: p
                        .rtt
                        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    agent: p.agent,
                    offers: 0,
                })
            })
            .collect())
    }

    /// A page of offers matching a query.
    pub async fn offers(
        &self,
        q: String,
        sort: Option<String>,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> Result<OffersPage, ServiceError> {
        self.call(|reply| Command::Offers {
            q,
            sort,
            limit,
            offset,
            reply,
        })
        .await
    }

    /// Why a query matches what it matches.
    pub async fn explain(&self, q: String) -> Result<Explanation, ServiceError> {
        self.call(|reply| Command::Explain { q, reply }).await
    }

    /// Rents GPUs: negotiates with the provider and records the agreement.
    pub async fn launch(&self, request: LaunchRequest) -> Result<Instance, ServiceError> {
        self.call(|reply| Command::Launch(Box::new(request), reply))
            .await
    }

    /// Instances this node rents.
    pub async fn instances(&self) -> Result<Vec<Instance>, ServiceError> {
        self.call(Command::Instances).await
    }

    /// One instance.
    pub async fn instance(&self, id: AgreementId) -> Result<Instance, ServiceError> {
        self.call(|reply| Command::Instance(id, reply)).await
    }

    /// The provider's pricing.
    pub async fn pricing(&self) -> Result<ProviderPricing, ServiceError> {
        self.call(Command::Pricing).await
    }

    /// Sets the provider's pricing; offers are republished at once.
    pub async fn set_pricing(
        &self,
        pricing: ProviderPricing,
    ) -> Result<ProviderPricing, ServiceError> {
        self.call(|reply| Command::SetPricing(pricing, reply)).await
    }

    /// Has the service follow withdrawal `id` (booked in the ledger, its transfer queued)
    /// until the ledger records it final or failed. A node that stops first picks it up
    /// again at its next start.
    pub async fn follow_withdrawal(&self, id: String) -> Result<(), ServiceError> {
        self.commands
            .send(Command::FollowWithdrawal(id))
            .await
            .map_err(|_| ServiceError::Shutdown)
    }

    /// Records the deposits that reached the wallet since the last scan (transfers that
    /// belong to a live rental are left for it); returns how much was adopted.
    pub async fn refresh_deposits(&self) -> Result<qubix_protocol::Qu, ServiceError> {
        self.call(Command::AdoptDeposits).await
    }

    /// Stops, starts, restarts or terminates an instance; returns it after the provider
    /// answered.
    pub async fn act(&self, id: AgreementId, action: JobAction) -> Result<Instance, ServiceError> {
        self.call(|reply| Command::Act(id, action, reply)).await
    }

    /// The last `tail` log lines of an instance and a live feed of the next ones.
    pub async fn logs(
        &self,
        id: AgreementId,
        tail: usize,
    ) -> Result<(Vec<LogLine>, broadcast::Receiver<LogLine>), ServiceError> {
        let feeds = self.call(|reply| Command::Feeds(id, reply)).await?;
        Ok(feeds.logs.tail_and_follow(tail))
    }

    /// The last `history` metrics samples of an instance and a live feed of the next ones.
    pub async fn metrics(
        &self,
        id: AgreementId,
        history: usize,
    ) -> Result<(Vec<MetricsSample>, broadcast::Receiver<MetricsSample>), ServiceError> {
        let feeds = self.call(|reply| Command::Feeds(id, reply)).await?;
        Ok(feeds.metrics.tail_and_follow(history))
    }

    /// This node's GPUs, or why it has none.
    pub async fn gpus(&self) -> Result<GpusView, ServiceError> {
        self.call(Command::Gpus).await
    }

    /// Jobs this node runs for others, newest first.
    pub async fn provider_jobs(&self) -> Result<Vec<ProviderJob>, ServiceError> {
        self.call(Command::ProviderJobs).await
    }
}

fn invalid_query(q: &str, e: &qubix_protocol::query::QueryError) -> ServiceError {
    ServiceError::Api(ErrorCode::InvalidQuery, e.describe(q), Some("q".into()))
}

/// Parses `q` and applies the separate sort/limit/offset parameters over it.
pub(crate) fn build_query(
    q: &str,
    sort: Option<&str>,
    limit: Option<u32>,
    offset: Option<u32>,
) -> Result<Query, ServiceError> {
    let mut query = Query::parse(q).map_err(|e| invalid_query(q, &e))?;
    if let Some(sort) = sort.filter(|s| !s.is_empty()) {
        query.sort = Query::parse(&format!("sort={sort}"))
            .map_err(|e| {
                ServiceError::Api(ErrorCode::InvalidQuery, e.to_string(), Some("sort".into()))
            })?
            .sort;
    }
    if let Some(limit) = limit {
        if limit == 0 || limit > qubix_protocol::query::MAX_LIMIT {
            return Err(ServiceError::Api(
                ErrorCode::InvalidValue,
                format!("limit must be 1-{}", qubix_protocol::query::MAX_LIMIT),
                Some("limit".into()),
            ));
        }
        query.limit = Some(limit);
    }
    if let Some(offset) = offset {
        query.offset = offset;
    }
    Ok(query)
}

/// The API view of a consumer's job record.
pub(crate) fn instance_of(
    network: &Network,
    id: &AgreementId,
    job: &JobRecord,
) -> Result<Instance, ServiceError> {
    let terms = job.terms(network)?;
    let t = terms.payload();
    let request = t
        .open_request(network)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(Instance {
        id: *id,
        provider: t.provider,
        offer_id: job.offer_id,
        state: job.state,
        image: request.payload().image.clone(),
        gpus: t.gpus,
        gpu_model: job.gpu_model.clone(),
        simulated: job.simulated,
        price_per_gpu_hour: t.price_per_gpu_hour,
        duration_secs: t.duration_secs,
        budget: t.budget,
        paid: job.paid,
        spent: job.spent,
        created_at: job.created_at,
        started_at: job.started_at,
        exit_code: job.exit_code,
        reason: job.reason,
        connections: Vec::new(),
        progress: None,
    })
}

impl Service {
    pub(super) async fn on_command(&mut self, command: Command) {
        match command {
            Command::Info(reply) => {
                let _ = reply.send(Ok(self.info().await));
            }
            Command::Offers {
                q,
                sort,
                limit,
                offset,
                reply,
            } => {
                let _ = reply.send(self.offers_page(&q, sort.as_deref(), limit, offset));
            }
            Command::Explain { q, reply } => {
                let result = Query::parse(&q)
                    .map_err(|e| invalid_query(&q, &e))
                    .map(|query| self.book.explain(&query, |_| None));
                let _ = reply.send(result);
            }
            Command::Launch(request, reply) => self.launch(*request, reply),
            Command::Instances(reply) => {
                let mut list: Vec<Instance> = self
                    .jobs
                    .iter()
                    .filter(|(_, j)| j.role == Role::Consumer)
                    .filter_map(|(id, _)| self.instance_view(*id).ok())
                    .collect();
                list.sort_by_key(|i| std::cmp::Reverse(i.created_at));
                let _ = reply.send(Ok(list));
            }
            Command::Instance(id, reply) => {
                let _ = reply.send(self.instance_view(id));
            }
            Command::Act(id, action, reply) => self.act(id, action, reply),
            Command::Feeds(id, reply) => {
                let result = match self.jobs.get(&id) {
                    Some(j) if j.role == Role::Consumer => Ok(self.feeds(id)),
                    _ => Err(ServiceError::Api(
                        ErrorCode::NotFound,
                        format!("no instance {id}"),
                        None,
                    )),
                };
                let _ = reply.send(result);
            }
            Command::Gpus(reply) => {
                let _ = reply.send(Ok(self.gpus_view()));
            }
            Command::ProviderJobs(reply) => {
                let result = self.provider_mut().map(|_| ());
                let _ = reply.send(result.map(|()| self.provider_job_list()));
            }
            Command::Pricing(reply) => {
                let _ = reply.send(self.provider_mut().map(|p| p.pricing()));
            }
            Command::AdoptDeposits(reply) => self.refresh_deposits(reply),
            Command::FollowWithdrawal(id) => {
                if let Some(settlement) = self.settlement.clone() {
                    self.spawn(super::accounts::follow_withdrawal(
                        self.ledger.clone(),
                        settlement,
                        id,
                    ));
                }
            }
            Command::SetPricing(pricing, reply) => {
                let result = self.provider_mut().and_then(|p| p.set_pricing(&pricing));
                if result.is_ok() {
                    self.refresh_desk();
                    self.publish_offers().await;
                }
                let _ = reply.send(result);
            }
        }
    }

    fn provider_mut(&mut self) -> Result<&mut super::market::Provider, ServiceError> {
        self.provider.as_mut().ok_or_else(|| {
            ServiceError::Api(
                ErrorCode::NotEnabled,
                "this node is not a provider; start it with --provider".into(),
                None,
            )
        })
    }

    fn offers_page(
        &self,
        q: &str,
        sort: Option<&str>,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> Result<OffersPage, ServiceError> {
        let query = build_query(q, sort, limit, offset)?;
        let page = self.book.search(&query, |_| None);
        Ok(OffersPage {
            total: page.total_matched,
            offset: page.offset,
            limit: page.limit,
            offers: page
                .items
                .iter()
                .map(|f| OfferView {
                    id: qubix_protocol::OfferRef::new(f.offer.provider, f.offer.offer_id),
                    offer: f.offer.clone(),
                    reliability: f.reliability,
                })
                .collect(),
        })
    }

    async fn info(&self) -> NodeInfo {
        let listen = self.net.listen_addrs().await.unwrap_or_default();
        let peers = self.net.peers().await.map(|p| p.len()).unwrap_or(0);
        NodeInfo {
            node_id: self.key.node_id(),
            network: self.network_name.to_string(),
            version: env!("CARGO_PKG_VERSION").into(),
            listen_addrs: listen.iter().map(ToString::to_string).collect(),
            provider: self.provider.is_some(),
            wallet_identity: Some(self.wallet_identity.clone()),
            peers,
            offers_known: self.book.len(),
            started_at: self.started_at,
        }
    }
}

impl Service {
    fn gpus_view(&self) -> GpusView {
        let Some(p) = &self.provider else {
            return GpusView {
                probe: "none".into(),
                reason: Some(self.gpu_note.clone().unwrap_or_else(|| {
                    "this node is not a provider; start it with --provider".into()
                })),
                gpus: Vec::new(),
            };
        };
        let probe = p.probe();
        let allocated: std::collections::HashMap<&String, AgreementId> = self
            .desk
            .reservations()
            .iter()
            .flat_map(|(id, r)| r.gpus.iter().map(move |g| (g, *id)))
            .collect();
        let gpus = probe
            .devices()
            .iter()
            .map(|d| GpuInfo {
                index: d.index,
                uuid: d.uuid.clone(),
                model: d.model.clone(),
                vram_mib: d.vram_mib,
                driver_version: d.driver_version.clone(),
                cuda_version: d.cuda_version.to_string(),
                compute_capability: d.compute_capability.to_string(),
                simulated: d.simulated,
                allocated_to: allocated.get(&d.uuid).copied(),
            })
            .collect();
        GpusView {
            probe: probe.kind().into(),
            reason: self.runtime_down().map(|why| {
                format!(
                    "nothing is offered: jobs cannot run until the container engine answers ({why})"
                )
            }),
            gpus,
        }
    }

    fn provider_job_list(&self) -> Vec<ProviderJob> {
        let mut jobs: Vec<ProviderJob> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.role == Role::Provider)
            .filter_map(|(id, j)| {
                let terms = j.terms(&self.network_name).ok()?;
                let t = terms.payload();
                let image = t
                    .open_request(&self.network_name)
                    .ok()?
                    .payload()
                    .image
                    .clone();
                Some(ProviderJob {
                    id: *id,
                    consumer: t.consumer,
                    state: j.state,
                    image,
                    gpus: t.gpus,
                    price_per_gpu_hour: t.price_per_gpu_hour,
                    earned: j.spent,
                    created_at: j.created_at,
                    reason: j.reason,
                })
            })
            .collect();
        jobs.sort_by_key(|j| std::cmp::Reverse(j.created_at));
        jobs
    }
}
