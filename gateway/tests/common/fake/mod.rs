//! `FakeNode`: an in-memory `NodeApi` for router and console tests. It keeps state in a
//! mutex, follows the instance lifecycle (stop/start/restart/terminate with `wrong_state`),
//! checks funds, and broadcasts events, logs and metrics on small bounded channels so tests
//! can provoke lag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use qubix_gateway::ApiResult;
use qubix_protocol::api::{
    ApiError, Billing, ErrorCode, Event, Instance, LaunchRequest, LogLine, MetricsSample,
    OfferView, Progress, ProviderPricing, WithdrawRequest,
};
use qubix_protocol::control::{EndReason, JobState};
use qubix_protocol::{AgreementId, Qu, UnixMillis};
use tokio::sync::broadcast;

use super::{data, query};

mod node_api;

/// Capacity of every feed: small, so a test can overflow it.
pub const FEED_CAPACITY: usize = 16;

struct State {
    offers: Vec<OfferView>,
    instances: Vec<Instance>,
    billing: Billing,
    pricing: ProviderPricing,
    launches: Vec<LaunchRequest>,
    withdrawals: Vec<WithdrawRequest>,
    next_id: u8,
}

/// The in-memory node.
pub struct FakeNode {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Event>,
    logs: broadcast::Sender<LogLine>,
    metrics: broadcast::Sender<MetricsSample>,
    provider: bool,
    stall_node_info: AtomicBool,
    billing_fault: Mutex<Option<ApiError>>,
    slow_calls: Mutex<Option<std::time::Duration>>,
    slowed_now: std::sync::atomic::AtomicUsize,
}

impl FakeNode {
    /// A provider node with the sample data.
    pub fn new() -> Self {
        Self::with_provider(true)
    }

    /// A node that is (or is not) a provider.
    pub fn with_provider(provider: bool) -> Self {
        let state = State {
            offers: data::offers(),
            instances: vec![data::running_instance()],
            billing: data::billing(),
            pricing: data::pricing(),
            launches: Vec::new(),
            withdrawals: Vec::new(),
            next_id: 0xc0,
        };
        Self {
            state: Arc::new(Mutex::new(state)),
            events: broadcast::channel(FEED_CAPACITY).0,
            logs: broadcast::channel(FEED_CAPACITY).0,
            metrics: broadcast::channel(FEED_CAPACITY).0,
            provider,
            stall_node_info: AtomicBool::new(false),
            billing_fault: Mutex::new(None),
            slow_calls: Mutex::new(None),
            slowed_now: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Makes `node_info` never answer (to provoke the gateway's timeout).
    pub fn stall_node_info(&self) {
        self.stall_node_info.store(true, Ordering::SeqCst);
    }

    /// Makes `launch` and `withdraw` take `delay` before they act (to outlast the gateway's
    /// timeout).
    pub fn slow_down_calls(&self, delay: std::time::Duration) {
        *self.slow_calls.lock().unwrap() = Some(delay);
    }

    /// Waits the delay set by [`FakeNode::slow_down_calls`], if any.
    async fn maybe_slow(&self) {
        let delay = *self.slow_calls.lock().unwrap();
        if let Some(delay) = delay {
            self.slowed_now.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            self.slowed_now.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Calls waiting in [`FakeNode::slow_down_calls`]'s delay now.
    pub fn slowed_now(&self) -> usize {
        self.slowed_now.load(Ordering::SeqCst)
    }

    /// The withdrawals made, in order.
    pub fn withdrawals(&self) -> Vec<WithdrawRequest> {
        self.lock().withdrawals.clone()
    }

    /// Makes `billing` fail with `error`.
    pub fn fail_billing_with(&self, error: ApiError) {
        *self.billing_fault.lock().unwrap() = Some(error);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Broadcasts an event; returns how many clients listen.
    pub fn send_event(&self, event: Event) -> usize {
        self.events.send(event).unwrap_or(0)
    }

    /// Writes a log line of the running instance.
    pub fn push_log(&self, line: &str) -> usize {
        let line = LogLine {
            at: UnixMillis::now(),
            stream: qubix_protocol::api::LogStream::Stdout,
            line: line.into(),
        };
        self.logs.send(line).unwrap_or(0)
    }

    /// Takes a metrics sample of the running instance.
    pub fn push_metrics(&self, i: u64) -> usize {
        self.metrics.send(data::metrics_sample(i)).unwrap_or(0)
    }

    /// How many clients follow the logs.
    pub fn log_followers(&self) -> usize {
        self.logs.receiver_count()
    }

    /// Every launch request received.
    pub fn launches(&self) -> Vec<LaunchRequest> {
        self.lock().launches.clone()
    }

    /// The state of an instance.
    pub fn state_of(&self, id: AgreementId) -> Option<JobState> {
        self.lock()
            .instances
            .iter()
            .find(|i| i.id == id)
            .map(|i| i.state)
    }

    /// Adds an offer and announces it.
    pub fn add_offer(&self, offer: OfferView) {
        self.lock().offers.push(offer.clone());
        self.send_event(Event::OfferUpdated {
            offer: Box::new(offer),
        });
    }

    fn provider_only(&self) -> ApiResult<()> {
        if self.provider {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::NotEnabled,
                "this node is not a provider; start it with --provider",
            ))
        }
    }

    fn find(&self, id: AgreementId) -> ApiResult<Instance> {
        self.lock()
            .instances
            .iter()
            .find(|i| i.id == id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    fn set_state(
        &self,
        id: AgreementId,
        state: JobState,
        reason: Option<EndReason>,
    ) -> ApiResult<Instance> {
        let mut s = self.lock();
        let instance = s
            .instances
            .iter_mut()
            .find(|i| i.id == id)
            .ok_or_else(|| not_found(id))?;
        instance.state = state;
        instance.reason = reason;
        let instance = instance.clone();
        drop(s);
        self.send_event(Event::InstanceState { id, state });
        Ok(instance)
    }

    fn pick_offer(&self, request: &LaunchRequest) -> ApiResult<OfferView> {
        let offers = self.lock().offers.clone();
        if let Some(id) = request.offer_id {
            return offers
                .into_iter()
                .find(|o| match id.provider {
                    Some(_) => o.id == id,
                    None => o.offer.offer_id == id.offer_id,
                })
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::NotFound,
                        format!("no offer {id}; it may have expired"),
                    )
                    .with_field("offer_id")
                });
        }
        let query = query::parse_for(request.query.as_deref().unwrap_or_default(), "query")?;
        offers
            .into_iter()
            .filter(|o| query::matches(&query, o))
            .min_by_key(|o| o.offer.price_per_gpu_hour)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NoMatch,
                    "no offer matches the query; POST /api/v1/offers/explain tells why",
                )
            })
    }

    fn new_instance(&self, request: &LaunchRequest, offer: &OfferView) -> ApiResult<Instance> {
        let price = offer.offer.price_per_gpu_hour;
        let budget = price
            .cost_for(request.gpus, request.duration_secs * 1000)
            .unwrap_or(Qu(u64::MAX));
        let mut s = self.lock();
        if budget > s.billing.available {
            let message = format!(
                "the rental needs {budget} but {} is available; deposit QU to {}",
                s.billing.available,
                data::IDENTITY
            );
            return Err(ApiError::new(ErrorCode::InsufficientFunds, message));
        }
        s.billing.available = s.billing.available.saturating_sub(budget);
        s.next_id += 1;
        let mut instance = data::running_instance();
        instance.id = AgreementId::from_bytes([s.next_id; 16]);
        instance.provider = offer.offer.provider;
        instance.offer_id = offer.offer.offer_id;
        instance.state = JobState::Negotiated;
        instance.image = request.image.clone();
        instance.gpus = request.gpus;
        instance.gpu_model = offer.offer.gpu.model.clone();
        instance.price_per_gpu_hour = price;
        instance.duration_secs = request.duration_secs;
        instance.budget = budget;
        instance.paid = Qu(0);
        instance.spent = Qu(0);
        instance.started_at = None;
        instance.progress = Some(progress("negotiating", "agreement signed"));
        s.instances.insert(0, instance.clone());
        s.launches.push(request.clone());
        Ok(instance)
    }

    /// Walks a new instance through payment, pull and start, as events.
    fn advance(&self, id: AgreementId) {
        let (state, events) = (Arc::clone(&self.state), self.events.clone());
        tokio::spawn(async move {
            for (phase, detail) in [
                ("paying", "first window paid"),
                ("pulling", "pulling image"),
                ("starting", "starting container"),
            ] {
                let _ = events.send(Event::InstanceProgress {
                    id,
                    progress: progress(phase, detail),
                });
                tokio::task::yield_now().await;
            }
            let mut s = state.lock().unwrap();
            if let Some(i) = s.instances.iter_mut().find(|i| i.id == id) {
                i.state = JobState::Running;
                i.progress = None;
                i.started_at = Some(UnixMillis::now());
            }
            drop(s);
            let _ = events.send(Event::InstanceState {
                id,
                state: JobState::Running,
            });
        });
    }
}

fn progress(phase: &str, detail: &str) -> Progress {
    Progress::text(phase, detail)
}

fn not_found(id: AgreementId) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no instance {id}; GET /api/v1/instances lists them"),
    )
}

fn wrong_state(instance: &Instance, action: &str) -> ApiError {
    ApiError::new(
        ErrorCode::WrongState,
        format!(
            "cannot {action} an instance that is {}",
            instance.state.as_str()
        ),
    )
}
