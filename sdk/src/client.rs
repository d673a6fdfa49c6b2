//! [`Client`]: one method per route of the gateway API.

use std::time::Duration;

use qubix_protocol::AgreementId;
use qubix_protocol::api::{
    ApiError, Billing, Earnings, ExplainRequest, Explanation, GpusView, Health, Instance,
    InstanceAction, LaunchRequest, LedgerEntry, LogLine, MetricsSample, NodeInfo, OffersPage,
    PeerInfo, ProviderJob, ProviderPricing, ProviderStatus, SignedReceipt, Transfer, Wallet,
    WithdrawRequest,
};
use qubix_protocol::control::JobState;
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;

use crate::error::SdkError;

/// Builds a [`Client`] with timeouts and retries.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    token: String,
    timeout: Duration,
    retries: u32,
}

impl ClientBuilder {
    /// Per-request timeout (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often an idempotent call is retried on a transient failure (default 2).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client, SdkError> {
        let url = self.url.trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(SdkError::Config(format!(
                "API URL {url:?} must start with http:// or https:// (set QUBIX_API)"
            )));
        }
        if self.token.trim().is_empty() {
            return Err(SdkError::Config(
                "no API token: set QUBIX_TOKEN or point at the node's data dir".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| SdkError::Config(e.to_string()))?;
        Ok(Client {
            http,
            url,
            token: self.token,
            retries: self.retries,
        })
    }
}

/// The header that makes a launch or a withdrawal safe to retry.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// A fresh `Idempotency-Key`: 128 random bits in hex.
pub fn new_idempotency_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn keys_are_checked_before_anything_is_sent() {
        assert!(check_key(&new_idempotency_key()).is_ok());
        assert_eq!(new_idempotency_key().len(), 32);
        assert_ne!(new_idempotency_key(), new_idempotency_key());
        for bad in ["", "with space", "tab\t", "é"] {
            assert!(
                matches!(check_key(bad), Err(SdkError::Config(_))),
                "{bad:?}"
            );
        }
        assert!(check_key(&"k".repeat(256)).is_err());
    }
}

/// An `Idempotency-Key` the node accepts: 1 to 255 visible ASCII characters.
fn check_key(key: &str) -> Result<(), SdkError> {
    let ok = !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(SdkError::Config(format!(
            "idempotency key {key:?} must be 1 to 255 visible ASCII characters (no spaces)"
        )))
    }
}

/// A typed client of one node's API.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
    retries: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Client {
    /// A client of the node at `url` (e.g. `http://127.0.0.1:8080`) with its API token.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Result<Self, SdkError> {
        Self::builder(url, token).build()
    }

    /// A builder with defaults.
    pub fn builder(url: impl Into<String>, token: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            token: token.into(),
            timeout: Duration::from_secs(30),
            retries: 2,
        }
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}/api/v1/{path}", self.url))
            .bearer_auth(&self.token)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        what: &str,
        idempotent: bool,
        make: impl Fn() -> RequestBuilder,
    ) -> Result<T, SdkError> {
        let mut attempt = 0;
        loop {
            let result = self.send_once(what, make()).await;
            match result {
                Err(e) if idempotent && e.is_transient() && attempt < self.retries => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                other => return other,
            }
        }
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        what: &str,
        request: RequestBuilder,
    ) -> Result<T, SdkError> {
        let response = request.send().await.map_err(|e| SdkError::Transport {
            url: self.url.clone(),
            message: e.to_string(),
        })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| SdkError::Transport {
            url: self.url.clone(),
            message: e.to_string(),
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| SdkError::Decode {
                what: what.into(),
                message: e.to_string(),
            });
        }
        match serde_json::from_slice::<ApiError>(&bytes) {
            Ok(body) => Err(SdkError::from_api(status.as_u16(), body)),
            Err(_) => Err(SdkError::Decode {
                what: what.into(),
                message: format!("HTTP {status} without an error body"),
            }),
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, SdkError> {
        self.send(path, true, || self.request(Method::GET, path).query(query))
            .await
    }

    /// `GET health` (no token needed by the node, but sent anyway).
    pub async fn health(&self) -> Result<Health, SdkError> {
        self.get("health", &[]).await
    }

    /// `GET node`.
    pub async fn node(&self) -> Result<NodeInfo, SdkError> {
        self.get("node", &[]).await
    }

    /// `GET peers`.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, SdkError> {
        self.get("peers", &[]).await
    }

    /// `GET offers`: a page of offers matching a query (`""` for all).
    pub async fn offers(
        &self,
        q: &str,
        sort: Option<&str>,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> Result<OffersPage, SdkError> {
        let mut query = vec![("q", q.to_owned())];
        if let Some(s) = sort {
            query.push(("sort", s.to_owned()));
        }
        if let Some(l) = limit {
            query.push(("limit", l.to_string()));
        }
        if let Some(o) = offset {
            query.push(("offset", o.to_string()));
        }
        self.get("offers", &query).await
    }

    /// `POST offers/explain`: why a query matches what it matches.
    pub async fn explain(&self, q: &str) -> Result<Explanation, SdkError> {
        self.send("offers/explain", true, || {
            self.request(Method::POST, "offers/explain")
                .json(&ExplainRequest { q: q.into() })
        })
        .await
    }

    /// `GET gpus`.
    pub async fn gpus(&self) -> Result<GpusView, SdkError> {
        self.get("gpus", &[]).await
    }

    /// `POST instances`: rent GPUs and run a container.
    ///
    /// Sends a fresh `Idempotency-Key` and retries with it when the node is unreachable or
    /// times out, so a retry never rents twice. Use [`Client::launch_with_key`] to retry
    /// across processes (keep the key until the launch is answered).
    pub async fn launch(&self, request: &LaunchRequest) -> Result<Instance, SdkError> {
        self.launch_with_key(request, &new_idempotency_key()).await
    }

    /// `POST instances` with the caller's `Idempotency-Key` (1 to 255 visible ASCII
    /// characters): the node answers every call with the same key and body with the first
    /// call's answer, and rents once.
    pub async fn launch_with_key(
        &self,
        request: &LaunchRequest,
        key: &str,
    ) -> Result<Instance, SdkError> {
        check_key(key)?;
        self.send("instances", true, || {
            self.request(Method::POST, "instances")
                .header(IDEMPOTENCY_KEY, key)
                .json(request)
        })
        .await
    }

    /// `GET instances`.
    pub async fn instances(&self) -> Result<Vec<Instance>, SdkError> {
        self.get("instances", &[]).await
    }

    /// `GET instances/{id}`.
    pub async fn instance(&self, id: AgreementId) -> Result<Instance, SdkError> {
        self.get(&format!("instances/{id}"), &[]).await
    }

    /// `POST instances/{id}/{stop|start|restart}`.
    pub async fn act(&self, id: AgreementId, action: InstanceAction) -> Result<Instance, SdkError> {
        let name = match action {
            InstanceAction::Stop => "stop",
            InstanceAction::Start => "start",
            InstanceAction::Restart => "restart",
        };
        let path = format!("instances/{id}/{name}");
        self.send(&path, false, || self.request(Method::POST, &path))
            .await
    }

    /// `DELETE instances/{id}`: terminate (idempotent).
    pub async fn terminate(&self, id: AgreementId) -> Result<Instance, SdkError> {
        let path = format!("instances/{id}");
        self.send(&path, true, || self.request(Method::DELETE, &path))
            .await
    }

    /// `GET instances/{id}/logs`: the last `tail` lines.
    pub async fn logs(&self, id: AgreementId, tail: u32) -> Result<Vec<LogLine>, SdkError> {
        self.get(
            &format!("instances/{id}/logs"),
            &[("tail", tail.to_string())],
        )
        .await
    }

    /// `GET instances/{id}/metrics`: the last `history` samples.
    pub async fn metrics(
        &self,
        id: AgreementId,
        history: u32,
    ) -> Result<Vec<MetricsSample>, SdkError> {
        self.get(
            &format!("instances/{id}/metrics"),
            &[("history", history.to_string())],
        )
        .await
    }

    /// `GET billing`.
    pub async fn billing(&self) -> Result<Billing, SdkError> {
        self.get("billing", &[]).await
    }

    /// `GET ledger/entries`.
    pub async fn ledger_entries(
        &self,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<LedgerEntry>, SdkError> {
        self.get(
            "ledger/entries",
            &[("limit", limit.to_string()), ("offset", offset.to_string())],
        )
        .await
    }

    /// `GET ledger/receipts/{id}`: the consumer's signed receipts for agreement `id`, oldest
    /// first. Each carries its wire envelope (hex); check it with
    /// [`qubix_protocol::Envelope::open`] to trust a receipt without trusting the node.
    pub async fn receipts(&self, id: AgreementId) -> Result<Vec<SignedReceipt>, SdkError> {
        self.get(&format!("ledger/receipts/{id}"), &[]).await
    }

    /// `GET wallet`.
    pub async fn wallet(&self) -> Result<Wallet, SdkError> {
        self.get("wallet", &[]).await
    }

    /// `POST wallet/withdraw`.
    ///
    /// Sends a fresh `Idempotency-Key` and retries with it, as [`Client::launch`] does: a
    /// retry never withdraws twice.
    pub async fn withdraw(&self, request: &WithdrawRequest) -> Result<Transfer, SdkError> {
        self.withdraw_with_key(request, &new_idempotency_key())
            .await
    }

    /// `POST wallet/withdraw` with the caller's `Idempotency-Key`.
    pub async fn withdraw_with_key(
        &self,
        request: &WithdrawRequest,
        key: &str,
    ) -> Result<Transfer, SdkError> {
        check_key(key)?;
        self.send("wallet/withdraw", true, || {
            self.request(Method::POST, "wallet/withdraw")
                .header(IDEMPOTENCY_KEY, key)
                .json(request)
        })
        .await
    }

    /// `GET provider/pricing`.
    pub async fn pricing(&self) -> Result<ProviderPricing, SdkError> {
        self.get("provider/pricing", &[]).await
    }

    /// `PUT provider/pricing` (idempotent).
    pub async fn set_pricing(
        &self,
        pricing: &ProviderPricing,
    ) -> Result<ProviderPricing, SdkError> {
        self.send("provider/pricing", true, || {
            self.request(Method::PUT, "provider/pricing").json(pricing)
        })
        .await
    }

    /// `GET provider/jobs`.
    pub async fn provider_jobs(&self) -> Result<Vec<ProviderJob>, SdkError> {
        self.get("provider/jobs", &[]).await
    }

    /// `GET provider/earnings`.
    pub async fn earnings(&self) -> Result<Earnings, SdkError> {
        self.get("provider/earnings", &[]).await
    }

    /// `GET provider/status`.
    pub async fn provider_status(&self) -> Result<ProviderStatus, SdkError> {
        self.get("provider/status", &[]).await
    }

    /// Polls an instance until it runs, calling `progress` on every change; fails when it
    /// ends first or `timeout` passes.
    pub async fn wait_until_running(
        &self,
        id: AgreementId,
        timeout: Duration,
        mut progress: impl FnMut(&Instance),
    ) -> Result<Instance, SdkError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last: Option<(JobState, Option<String>)> = None;
        loop {
            let instance = self.instance(id).await?;
            let now = (
                instance.state,
                instance.progress.as_ref().map(|p| p.detail.clone()),
            );
            if last.as_ref() != Some(&now) {
                progress(&instance);
                last = Some(now);
            }
            if instance.state == JobState::Running {
                return Ok(instance);
            }
            if instance.state.is_final() {
                let why = instance
                    .reason
                    .map(|r| format!("{r:?}"))
                    .unwrap_or_else(|| "no reason given".into());
                return Err(SdkError::Api {
                    status: 409,
                    code: qubix_protocol::api::ErrorCode::WrongState,
                    message: format!(
                        "instance {id} ended as {} ({why}) before it ran",
                        instance.state.as_str()
                    ),
                    field: None,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SdkError::Timeout {
                    what: format!("instance {id} to run"),
                    secs: timeout.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
