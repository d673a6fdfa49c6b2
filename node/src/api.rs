//! The node's implementation of the gateway's [`NodeApi`]: each route answered from the
//! node service (through its handle), the settlement (wallet, withdrawals) or the container
//! runtime (provider checklist). Errors carry the API's codes and say what to do.

use std::collections::BTreeMap;
use std::sync::Arc;

use qubix_gateway::{ApiResult, LogFeed, MetricsFeed, NodeApi};
use qubix_ledger::qubic::Identity;
use qubix_ledger::settle::{PaymentPurpose, QubicSettlement, Settlement};
use qubix_ledger::{Ledger, LedgerError};
use qubix_protocol::api::{
    ApiError, Billing, CheckKind, Earnings, ErrorCode, Event, Explanation, GpusView, Health,
    Instance, InstanceAction, LaunchRequest, LedgerEntry, NodeInfo, OfferView, OffersPage,
    PeerInfo, ProviderCheck, ProviderJob, ProviderPricing, ProviderStatus, SignedReceipt, Transfer,
    Wallet, WithdrawRequest,
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
    ledger: Ledger,
    runtime: Option<Arc<dyn ContainerRuntime>>,
    rpc_url: String,
    store: crate::store::Store,
}

impl std::fmt::Debug for NodeApiImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeApiImpl")
            .field("node", &self.handle.node_id())
            .finish_non_exhaustive()
    }
}

impl NodeApiImpl {
    /// The API of `handle`, paying through `settlement` and keeping the books in `ledger`.
    pub fn new(
        handle: NodeHandle,
        settlement: QubicSettlement,
        ledger: Ledger,
        runtime: Option<Arc<dyn ContainerRuntime>>,
        rpc_url: String,
        store: crate::store::Store,
    ) -> Self {
        Self {
            handle,
            settlement,
            ledger,
            runtime,
            rpc_url,
            store,
        }
    }

    async fn balance(&self) -> Result<Qu, ApiError> {
        self.settlement
            .balance(&self.settlement.identity())
            .await
            .map_err(|e| rpc_unavailable("the wallet's balance", &e))
    }
}

fn explanation(
    e: qubix_protocol::query::Explanation,
    views: &BTreeMap<qubix_protocol::OfferRef, OfferView>,
) -> Explanation {
    Explanation::of(e, |r| views.get(&r).cloned())
}

/// A URL as clients may see it: without credentials (`user:key@`) or a query string, which
/// some RPC providers use to carry an access key.
fn shown_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

/// The Qubic RPC failed: the client is told so; the error (which may name the RPC's URL,
/// and a URL may carry credentials) goes to the node's log only.
fn rpc_unavailable(what: &str, e: &dyn std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "{what}: the Qubic RPC did not answer");
    ApiError::new(
        ErrorCode::Unavailable,
        format!("{what}: the Qubic RPC did not answer; retry later (the node's log says why)"),
    )
}

fn ledger_error(e: LedgerError) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("escrow ledger: {e}"))
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
            views.extend(page.offers.into_iter().map(|v| (v.id, v)));
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
        self.ledger
            .billing(Some(self.settlement.identity().to_string()))
            .map_err(ledger_error)
    }

    async fn ledger_entries(&self, limit: u32, offset: u32) -> ApiResult<Vec<LedgerEntry>> {
        self.ledger
            .entries(limit as usize, offset as usize)
            .map_err(ledger_error)
    }

    async fn receipts(&self, id: AgreementId) -> ApiResult<Vec<SignedReceipt>> {
        if self.ledger.agreement(&id).map_err(ledger_error)?.is_none() {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!(
                    "this node's ledger has no agreement {id}; GET /api/v1/instances (or \
                     provider/jobs on a provider) lists the ones it has"
                ),
            ));
        }
        self.ledger
            .signed_receipts(&id, self.handle.network())
            .map_err(ledger_error)
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
            rpc: shown_url(&self.rpc_url),
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
        let id = format!(
            "{}-{}",
            UnixMillis::now().0,
            qubix_protocol::Nonce::random()
        );
        let record = |ledger: Ledger, id: String, to: Identity, amount: Qu| async move {
            tokio::task::spawn_blocking(move || {
                ledger.withdraw(&id, &to, amount, UnixMillis::now())
            })
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
        };
        let mut booked =
            record(self.ledger.clone(), id.clone(), to.clone(), request.amount).await?;
        if matches!(booked, Err(LedgerError::InsufficientFunds { .. })) {
            // QU may have arrived that the ledger has not seen yet.
            self.handle
                .refresh_deposits()
                .await
                .map_err(ApiError::from)?;
            booked = record(self.ledger.clone(), id.clone(), to.clone(), request.amount).await?;
        }
        booked.map_err(|e| match e {
            LedgerError::InsufficientFunds { balance, .. } => ApiError::new(
                ErrorCode::InsufficientFunds,
                format!(
                    "only {balance} QU are free to withdraw (the rest is locked in escrow or \
                     prepaid to running rentals)"
                ),
            )
            .with_field("amount"),
            e => ledger_error(e),
        })?;
        let purpose = PaymentPurpose::Withdrawal { id: id.clone() };
        let paid = self.settlement.pay(&to, request.amount, purpose).await;
        // Whatever `pay` answered, the transfer may have been queued before it failed; the
        // follower returns the QU to `available` only once it cannot go out.
        if let Err(e) = self.handle.follow_withdrawal(id.clone()).await {
            // The node is stopping: its next start follows the withdrawal.
            tracing::warn!(withdrawal = %id, error = %e, "withdrawal booked; its outcome is recorded at the next start");
        }
        let transfer = paid.map_err(|e| {
            tracing::warn!(error = %e, "the withdrawal could not be queued");
            ApiError::new(
                ErrorCode::Unavailable,
                "the withdrawal could not be queued (the node's log says why); its QU return to \
                 available once the node is sure no transfer went out",
            )
        })?;
        // The transfer is queued and the ledger has booked it: whatever its status lookup
        // says, the answer is that it is on its way, never "retry" (that would send twice).
        match self.settlement.transfer_status(&transfer).await {
            Ok(status) => Ok(status.to_api()),
            Err(e) => {
                tracing::warn!(error = %e, "a queued withdrawal's status could not be read");
                Ok(Transfer {
                    tx_id: String::new(),
                    to: to.to_string(),
                    amount: request.amount,
                    target_tick: 0,
                    status: "pending".into(),
                })
            }
        }
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
        // `not_enabled` on a node that is not a provider.
        self.handle.provider_jobs().await?;
        self.ledger.earnings().map_err(ledger_error)
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
        out.push_str(&format!(
            "# HELP qubix_store_flushes_total Flushes (fsyncs) of the node's job store.\n# TYPE qubix_store_flushes_total counter\nqubix_store_flushes_total {}\n",
            self.store.flushes()
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_rpc_url_carries_no_credentials() {
        assert_eq!(
            shown_url("https://user:key@rpc.example:8443/v1?apikey=s#f"),
            "https://rpc.example:8443/v1"
        );
        assert_eq!(shown_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
    }
}
