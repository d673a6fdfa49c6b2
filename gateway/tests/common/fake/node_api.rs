//! The [`NodeApi`] methods of [`FakeNode`]: the routes' behaviour, in memory.

use qubix_gateway::{ApiResult, LogFeed, MetricsFeed, NodeApi};
use qubix_protocol::api::{
    ApiError, Billing, Earnings, ErrorCode, Event, Explanation, GpusView, Health, Instance,
    InstanceAction, LaunchRequest, LedgerEntry, NodeInfo, OfferView, OffersPage, PeerInfo,
    ProviderJob, ProviderPricing, ProviderStatus, SignedReceipt, Transfer, Wallet, WithdrawRequest,
};
use qubix_protocol::control::{EndReason, JobState};
use qubix_protocol::{AgreementId, Qu};
use std::sync::atomic::Ordering;
use tokio::sync::broadcast;

use super::{FakeNode, wrong_state};
use crate::common::{data, query};

impl NodeApi for FakeNode {
    async fn health(&self) -> ApiResult<Health> {
        Ok(Health {
            status: "ok".into(),
            version: "0.1.0".into(),
        })
    }

    async fn node_info(&self) -> ApiResult<NodeInfo> {
        if self.stall_node_info.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(data::node_info(self.provider))
    }

    async fn peers(&self) -> ApiResult<Vec<PeerInfo>> {
        Ok(data::peers())
    }

    async fn offers(
        &self,
        q: String,
        sort: Option<String>,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> ApiResult<OffersPage> {
        let query = query::parse(&q)?;
        let mut offers: Vec<OfferView> = self
            .lock()
            .offers
            .iter()
            .filter(|o| query::matches(&query, o))
            .cloned()
            .collect();
        match sort.as_deref().unwrap_or("price") {
            "price" => offers.sort_by_key(|o| o.offer.price_per_gpu_hour),
            "-price" => offers.sort_by_key(|o| std::cmp::Reverse(o.offer.price_per_gpu_hour)),
            "-reliability" => {
                offers.sort_by(|a, b| b.reliability.partial_cmp(&a.reliability).unwrap())
            }
            "reliability" => {
                offers.sort_by(|a, b| a.reliability.partial_cmp(&b.reliability).unwrap())
            }
            other => {
                return Err(ApiError::new(
                    ErrorCode::InvalidValue,
                    format!("cannot sort by `{other}`"),
                )
                .with_field("sort"));
            }
        }
        let (limit, offset) = (limit.unwrap_or(50), offset.unwrap_or(0));
        let total = offers.len();
        let page = offers
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
        Ok(OffersPage {
            total,
            offset,
            limit,
            offers: page,
        })
    }

    async fn explain(&self, q: String) -> ApiResult<Explanation> {
        self.maybe_slow().await;
        query::explain(&self.lock().offers, &q)
    }

    async fn gpus(&self) -> ApiResult<GpusView> {
        Ok(data::gpus())
    }

    async fn launch(&self, request: LaunchRequest) -> ApiResult<Instance> {
        self.maybe_slow().await;
        let offer = self.pick_offer(&request)?;
        if request.gpus > offer.offer.gpu_count {
            return Err(ApiError::new(
                ErrorCode::ProviderRefused,
                "the provider has no free capacity for this request",
            ));
        }
        let instance = self.new_instance(&request, &offer)?;
        self.advance(instance.id);
        Ok(instance)
    }

    async fn instances(&self) -> ApiResult<Vec<Instance>> {
        Ok(self.lock().instances.clone())
    }

    async fn instance(&self, id: AgreementId) -> ApiResult<Instance> {
        self.find(id)
    }

    async fn instance_action(
        &self,
        id: AgreementId,
        action: InstanceAction,
    ) -> ApiResult<Instance> {
        let instance = self.find(id)?;
        let (allowed, next, verb) = match action {
            InstanceAction::Stop => (
                instance.state == JobState::Running,
                JobState::Stopped,
                "stop",
            ),
            InstanceAction::Start => (
                instance.state == JobState::Stopped,
                JobState::Running,
                "start",
            ),
            InstanceAction::Restart => (
                instance.state == JobState::Running,
                JobState::Running,
                "restart",
            ),
        };
        if !allowed {
            return Err(wrong_state(&instance, verb));
        }
        self.set_state(id, next, None)
    }

    async fn terminate(&self, id: AgreementId) -> ApiResult<Instance> {
        let instance = self.find(id)?;
        if instance.state.is_final() {
            return Err(wrong_state(&instance, "terminate"));
        }
        self.set_state(
            id,
            JobState::Terminated,
            Some(EndReason::ConsumerTerminated),
        )
    }

    async fn logs(&self, id: AgreementId, tail: usize) -> ApiResult<LogFeed> {
        self.find(id)?;
        let live = self.logs.subscribe();
        let history = data::log_history();
        let skip = history.len().saturating_sub(tail);
        Ok(LogFeed {
            history: history.into_iter().skip(skip).collect(),
            live,
        })
    }

    async fn metrics(&self, id: AgreementId, history: usize) -> ApiResult<MetricsFeed> {
        self.find(id)?;
        let live = self.metrics.subscribe();
        let samples = data::metrics_history();
        let skip = samples.len().saturating_sub(history);
        Ok(MetricsFeed {
            history: samples.into_iter().skip(skip).collect(),
            live,
        })
    }

    async fn billing(&self) -> ApiResult<Billing> {
        if let Some(error) = self.billing_fault.lock().unwrap().clone() {
            return Err(error);
        }
        Ok(self.lock().billing.clone())
    }

    async fn ledger_entries(&self, limit: u32, offset: u32) -> ApiResult<Vec<LedgerEntry>> {
        Ok(data::ledger()
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect())
    }

    async fn receipts(&self, id: AgreementId) -> ApiResult<Vec<SignedReceipt>> {
        if self.lock().billing.instances.iter().any(|i| i.id == id) {
            Ok(data::receipts(id))
        } else {
            Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no agreement {id} in this node's ledger"),
            ))
        }
    }

    async fn wallet(&self) -> ApiResult<Wallet> {
        Ok(data::wallet())
    }

    async fn withdraw(&self, request: WithdrawRequest) -> ApiResult<Transfer> {
        self.maybe_slow().await;
        let mut state = self.lock();
        let available = state.billing.available;
        if request.amount > available {
            let message = format!("{} requested but {available} is available", request.amount);
            return Err(ApiError::new(ErrorCode::InsufficientFunds, message).with_field("amount"));
        }
        state.billing.available = Qu(available.0 - request.amount.0);
        state.withdrawals.push(request.clone());
        drop(state);
        Ok(Transfer {
            tx_id: "a".repeat(60),
            to: request.to,
            amount: request.amount,
            target_tick: 18_000_130,
            status: "pending".into(),
        })
    }

    async fn pricing(&self) -> ApiResult<ProviderPricing> {
        self.provider_only()?;
        Ok(self.lock().pricing.clone())
    }

    async fn set_pricing(&self, pricing: ProviderPricing) -> ApiResult<ProviderPricing> {
        self.provider_only()?;
        self.lock().pricing = pricing.clone();
        Ok(pricing)
    }

    async fn provider_jobs(&self) -> ApiResult<Vec<ProviderJob>> {
        self.provider_only()?;
        Ok(data::provider_jobs())
    }

    async fn earnings(&self) -> ApiResult<Earnings> {
        self.provider_only()?;
        Ok(data::earnings())
    }

    async fn provider_status(&self) -> ApiResult<ProviderStatus> {
        Ok(data::provider_status(self.provider))
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    async fn prometheus(&self) -> String {
        "# TYPE qubix_node_peers gauge\nqubix_node_peers 4\n".into()
    }
}
