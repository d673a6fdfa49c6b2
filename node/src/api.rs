//! The node's implementation of the gateway's [`NodeApi`]: each route answered from the
//! node service (through its handle), the settlement (wallet, withdrawals) or the container
//! runtime (provider checklist). Errors carry the API's codes and say what to do.

use std::collections::BTreeMap;
use std::sync::Arc;

use qubix_gateway::{ApiResult, LogFeed, MetricsFeed, NodeApi};
use qubix_ledger::qubic::Identity;
use qubix_ledger::settle::{PaymentPurpose, QubicSettlement, Settlement, TransferState};
use qubix_protocol::api::{
    ApiError, Billing, CheckKind, ConstraintReport, Earnings, ErrorCode, Event, Explanation,
    GpusView, Health, Instance, InstanceAction, InstanceBilling, LaunchRequest, LedgerEntry,
    NearMiss, NodeInfo, OfferView, OffersPage, PeerInfo, Posting, ProviderCheck, ProviderJob,
    ProviderPricing, ProviderStatus, Transfer, Wallet, WithdrawRequest,
};
use qubix_protocol::control::{JobAction, JobState};
use qubix_protocol::{AgreementId, Qu, UnixMillis};
use tokio::sync::broadcast;

use crate::runtime::ContainerRuntime;
use crate::service::NodeHandle;

/// The gateway's view of a running node.
#[derive(Clone)]
pub struct NodeApiImpl {
    handle: NodeHandle,
    settlement: QubicSettlement,
    runtime: Option<Arc<dyn ContainerRuntime>>,
    rpc_url: String,
}

impl std::fmt::Debug for NodeApiImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeApiImpl")
            .field("node", &self.handle.node_id())
            .finish_non_exhaustive()
    }
}

impl NodeApiImpl {
    /// The API of `handle`, paying through `settlement`.
    pub fn new(
        handle: NodeHandle,
        settlement: QubicSettlement,
        runtime: Option<Arc<dyn ContainerRuntime>>,
        rpc_url: String,
    ) -> Self {
        Self {
            handle,
            settlement,
            runtime,
            rpc_url,
        }
    }

    async fn balance(&self) -> Result<Qu, ApiError> {
        self.settlement
            .balance(&self.settlement.identity())
            .await
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::Unavailable,
                    format!("the Qubic RPC at {} did not answer: {e}", self.rpc_url),
                )
            })
    }

    /// QU committed to live rentals and not yet paid out: it may not be withdrawn.
    async fn committed(&self) -> ApiResult<Qu> {
        let instances = self.handle.instances().await?;
        Ok(instances
            .iter()
            .filter(|i| !i.state.is_final())
            .map(|i| i.budget.saturating_sub(i.paid))
            .fold(Qu::ZERO, |a, b| a.checked_add(b).unwrap_or(a)))
    }
}

fn explanation(
    e: qubix_protocol::query::Explanation,
    views: &BTreeMap<String, OfferView>,
) -> Explanation {
    let summary = e.summary();
    Explanation {
        total: e.total,
        matched: e.matched,
        constraints: e
            .constraints
            .into_iter()
            .map(|c| ConstraintReport {
                constraint: c.constraint,
                excluded: c.excluded,
                only_blocker: c.only_blocker,
            })
            .collect(),
        near_misses: e
            .near_misses
            .into_iter()
            .filter_map(|m| {
                Some(NearMiss {
                    offer: views.get(&m.offer_id.to_string())?.clone(),
                    failed: m
                        .failed
                        .into_iter()
                        .map(|f| format!("{}: {}", f.constraint, f.reason))
                        .collect(),
                })
            })
            .collect(),
        summary,
    }
}

fn sum(values: impl Iterator<Item = Qu>) -> Qu {
    values.fold(Qu::ZERO, |a, b| a.checked_add(b).unwrap_or(a))
}

fn day_of(at: UnixMillis) -> String {
    let days = at.0 / 86_400_000;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

impl NodeApi for NodeApiImpl {
    async fn health(&self) -> ApiResult<Health> {
        Ok(Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        })
    }

    async fn node_info(&self) -> ApiResult<NodeInfo> {
        Ok(self.handle.info().await?)
    }

    async fn peers(&self) -> ApiResult<Vec<PeerInfo>> {
        Ok(self.handle.peers().await?)
    }

    async fn offers(
        &self,
        q: String,
        sort: Option<String>,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> ApiResult<OffersPage> {
        Ok(self.handle.offers(q, sort, limit, offset).await?)
    }

    async fn explain(&self, q: String) -> ApiResult<Explanation> {
        let e = self.handle.explain(q).await?;
        let mut views = BTreeMap::new();
        if !e.near_misses.is_empty() {
            let page = self
                .handle
                .offers(String::new(), None, Some(1000), None)
                .await?;
            views.extend(
                page.offers
                    .into_iter()
                    .map(|v| (v.offer.offer_id.to_string(), v)),
            );
        }
        Ok(explanation(e, &views))
    }

    async fn gpus(&self) -> ApiResult<GpusView> {
        Ok(self.handle.gpus().await?)
    }

    async fn launch(&self, request: LaunchRequest) -> ApiResult<Instance> {
        Ok(self.handle.launch(request).await?)
    }

    async fn instances(&self) -> ApiResult<Vec<Instance>> {
        Ok(self.handle.instances().await?)
    }

    async fn instance(&self, id: AgreementId) -> ApiResult<Instance> {
        Ok(self.handle.instance(id).await?)
    }

    async fn instance_action(
        &self,
        id: AgreementId,
        action: InstanceAction,
    ) -> ApiResult<Instance> {
        let action = match action {
            InstanceAction::Stop => JobAction::Stop,
            InstanceAction::Start => JobAction::Start,
            InstanceAction::Restart => JobAction::Restart,
        };
        Ok(self.handle.act(id, action).await?)
    }

    async fn terminate(&self, id: AgreementId) -> ApiResult<Instance> {
        Ok(self.handle.act(id, JobAction::Terminate).await?)
    }

    async fn logs(&self, id: AgreementId, tail: usize) -> ApiResult<LogFeed> {
        let (history, live) = self.handle.logs(id, tail).await?;
        Ok(LogFeed { history, live })
    }

    async fn metrics(&self, id: AgreementId, history: usize) -> ApiResult<MetricsFeed> {
        let (history, live) = self.handle.metrics(id, history).await?;
        Ok(MetricsFeed { history, live })
    }

    async fn billing(&self) -> ApiResult<Billing> {
        let instances = self.handle.instances().await?;
        let live = |i: &&Instance| !i.state.is_final();
        let escrow = sum(instances
            .iter()
            .filter(live)
            .map(|i| i.budget.saturating_sub(i.paid)));
        let prepaid = sum(instances
            .iter()
            .filter(live)
            .map(|i| i.paid.saturating_sub(i.spent)));
        let spent = sum(instances.iter().map(|i| i.spent));
        let available = self
            .balance()
            .await
            .map(|b| b.saturating_sub(escrow))
            .unwrap_or(Qu::ZERO);
        Ok(Billing {
            deposit_identity: Some(self.settlement.identity().to_string()),
            available,
            escrow,
            prepaid,
            spent,
            instances: instances
                .iter()
                .map(|i| InstanceBilling {
                    id: i.id,
                    budget: i.budget,
                    escrow: if i.state.is_final() {
                        Qu::ZERO
                    } else {
                        i.budget.saturating_sub(i.paid)
                    },
                    paid: i.paid,
                    spent: i.spent,
                    refunded: if i.state.is_final() {
                        i.paid.saturating_sub(i.spent)
                    } else {
                        Qu::ZERO
                    },
                })
                .collect(),
        })
    }

    async fn ledger_entries(&self, limit: u32, offset: u32) -> ApiResult<Vec<LedgerEntry>> {
        let transfers = self
            .settlement
            .transfers()
            .await
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
        let entries = transfers
            .into_iter()
            .filter(|t| matches!(t.state, TransferState::Final { .. }))
            .map(|t| {
                let id = t.id.to_string();
                let kind = id.split('/').next().unwrap_or("transfer").to_owned();
                let agreement_id = id.split('/').nth(1).and_then(|a| a.parse().ok());
                let amount = i64::try_from(t.amount.0).unwrap_or(i64::MAX);
                LedgerEntry {
                    id,
                    at: UnixMillis::now(),
                    kind,
                    agreement_id,
                    postings: vec![
                        Posting {
                            account: "available".into(),
                            delta: -amount,
                        },
                        Posting {
                            account: format!("chain/{}", t.to),
                            delta: amount,
                        },
                    ],
                }
            })
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
        Ok(entries)
    }

    async fn wallet(&self) -> ApiResult<Wallet> {
        let identity = Some(self.settlement.identity().to_string());
        let (balance, error) = match self.balance().await {
            Ok(b) => (Some(b), None),
            Err(e) => (None, Some(e.error.message)),
        };
        let tick = self.settlement.tick().await.ok().map(|t| t.tick);
        Ok(Wallet {
            identity,
            balance,
            tick,
            rpc: self.rpc_url.clone(),
            error,
        })
    }

    async fn withdraw(&self, request: WithdrawRequest) -> ApiResult<Transfer> {
        let to: Identity = request.to.parse().map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidValue,
                format!("not a Qubic identity: {e}"),
            )
            .with_field("to")
        })?;
        if request.amount.0 == 0 {
            return Err(
                ApiError::new(ErrorCode::InvalidValue, "amount must be above 0 QU")
                    .with_field("amount"),
            );
        }
        let available = self
            .balance()
            .await?
            .saturating_sub(self.committed().await?);
        if request.amount > available {
            return Err(ApiError::new(
                ErrorCode::InsufficientFunds,
                format!(
                    "only {available} are available (the rest is committed to running rentals)"
                ),
            )
            .with_field("amount"));
        }
        let purpose = PaymentPurpose::Withdrawal {
            id: format!(
                "{}-{}",
                UnixMillis::now().0,
                qubix_protocol::Nonce::random()
            ),
        };
        let id = self
            .settlement
            .pay(&to, request.amount, purpose)
            .await
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
        let status = self
            .settlement
            .transfer_status(&id)
            .await
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
        Ok(status.to_api())
    }

    async fn pricing(&self) -> ApiResult<ProviderPricing> {
        Ok(self.handle.pricing().await?)
    }

    async fn set_pricing(&self, pricing: ProviderPricing) -> ApiResult<ProviderPricing> {
        Ok(self.handle.set_pricing(pricing).await?)
    }

    async fn provider_jobs(&self) -> ApiResult<Vec<ProviderJob>> {
        Ok(self.handle.provider_jobs().await?)
    }

    async fn earnings(&self) -> ApiResult<Earnings> {
        let jobs = self.handle.provider_jobs().await?;
        let mut by_day: BTreeMap<String, Qu> = BTreeMap::new();
        for j in &jobs {
            let day = by_day.entry(day_of(j.created_at)).or_default();
            *day = day.checked_add(j.earned).unwrap_or(*day);
        }
        Ok(Earnings {
            earned: sum(jobs.iter().map(|j| j.earned)),
            prepaid_held: Qu::ZERO,
            refunds_due: Qu::ZERO,
            by_day: by_day.into_iter().collect(),
        })
    }

    async fn provider_status(&self) -> ApiResult<ProviderStatus> {
        let gpus = self.handle.gpus().await?;
        let info = match &self.runtime {
            Some(r) => r.probe().await.ok(),
            None => None,
        };
        let pricing = self.handle.pricing().await.ok();
        let balance = self.balance().await;
        let check = |kind, ok, detail: String| ProviderCheck { kind, ok, detail };
        let checks = vec![
            check(
                CheckKind::Gpu,
                !gpus.gpus.is_empty(),
                match gpus.gpus.first() {
                    Some(g) => format!(
                        "{} × {} ({}){}",
                        gpus.gpus.len(),
                        g.model,
                        gpus.probe,
                        if g.simulated { ", simulated" } else { "" }
                    ),
                    None => gpus
                        .reason
                        .clone()
                        .unwrap_or_else(|| "no GPU found; install the NVIDIA driver".into()),
                },
            ),
            check(
                CheckKind::Docker,
                info.is_some(),
                info.as_ref().map_or_else(
                    || "no container runtime; install docker.io and start dockerd".into(),
                    |i| format!("{} {}", i.kind, i.version),
                ),
            ),
            check(
                CheckKind::NvidiaRuntime,
                info.as_ref().is_some_and(|i| i.nvidia_runtime),
                if info.as_ref().is_some_and(|i| i.nvidia_runtime) {
                    "nvidia runtime registered".into()
                } else {
                    "install nvidia-container-toolkit and run `nvidia-ctk runtime configure --runtime=docker`".into()
                },
            ),
            check(
                CheckKind::Wallet,
                balance.is_ok(),
                match &balance {
                    Ok(b) => format!("{} holds {b}", self.settlement.identity()),
                    Err(e) => e.error.message.clone(),
                },
            ),
            check(
                CheckKind::Pricing,
                pricing.is_some(),
                pricing.map_or_else(
                    || "start the node with --provider to set prices".into(),
                    |p| format!("{} per GPU-hour by default", p.default_price_per_gpu_hour),
                ),
            ),
        ];
        Ok(ProviderStatus {
            provider: !gpus.gpus.is_empty() || gpus.probe != "none",
            checks,
        })
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.handle.subscribe()
    }

    async fn prometheus(&self) -> String {
        let mut out = String::new();
        if let Ok(info) = self.handle.info().await {
            out.push_str(&format!(
                "# HELP qubix_peers Connected peers.\n# TYPE qubix_peers gauge\nqubix_peers {}\n",
                info.peers
            ));
            out.push_str(&format!("# HELP qubix_offers_known Offers in the local book.\n# TYPE qubix_offers_known gauge\nqubix_offers_known {}\n", info.offers_known));
        }
        if let Ok(instances) = self.handle.instances().await {
            out.push_str("# HELP qubix_instances Instances rented by this node, by state.\n# TYPE qubix_instances gauge\n");
            for state in [
                JobState::Negotiated,
                JobState::Pulling,
                JobState::Running,
                JobState::Stopped,
                JobState::Terminated,
                JobState::Completed,
                JobState::Failed,
            ] {
                let n = instances.iter().filter(|i| i.state == state).count();
                out.push_str(&format!(
                    "qubix_instances{{state=\"{}\"}} {n}\n",
                    state.as_str()
                ));
            }
        }
        if let Ok(jobs) = self.handle.provider_jobs().await {
            out.push_str(&format!("# HELP qubix_provider_jobs Jobs run for others.\n# TYPE qubix_provider_jobs gauge\nqubix_provider_jobs {}\n", jobs.len()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_civil_dates() {
        assert_eq!(day_of(UnixMillis(0)), "1970-01-01");
        assert_eq!(day_of(UnixMillis(1_767_225_600_000)), "2026-01-01");
        assert_eq!(day_of(UnixMillis(1_709_164_800_000)), "2024-02-29");
    }
}
