//! A client of Qubic's HTTP RPC (SPEC §6): the Live API (`/live/v1`: tick info, balances,
//! broadcast) and the Query API (`/query/v1`: the archive's processed ticks and
//! transactions).
//!
//! Every call has a timeout. Transient failures (connection errors, timeouts, 5xx, 429) are
//! retried a bounded number of times with exponential backoff; broadcasting the same bytes
//! again is safe because the network identifies a transaction by its hash. Everything else
//! comes back as a typed [`RpcError`] whose message says what to do.
//!
//! * [`types`]: the JSON bodies, tolerant on input (64-bit numbers as strings or numbers,
//!   bare or wrapped transaction bodies), exact on output.
//! * `error`: [`RpcError`].

mod error;
pub mod types;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::qubic::{Identity, SignedTransaction, TxId};

pub use error::RpcError;
pub use types::{
    Balance, Broadcast, ChainTransaction, ErrorBody, LastProcessedTick, TickInfo, TickInterval,
};
use types::{BalanceBody, IntervalsBody, TickInfoBody, TransactionBody};

/// The public Qubic RPC.
pub const MAINNET_RPC: &str = "https://rpc.qubic.org";

/// How the client talks to the RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// Base URL; the client appends `/live/v1/…` and `/query/v1/…`. A base that already ends
    /// in `/live/v1`, `/query/v1` or `/v1` is accepted and trimmed.
    pub base_url: String,
    /// Limit for one HTTP attempt.
    pub timeout: Duration,
    /// Retries after the first attempt, for transient failures.
    pub retries: u32,
    /// Delay before the first retry; doubles each time.
    pub backoff: Duration,
    /// The longest delay between retries.
    pub max_backoff: Duration,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            base_url: MAINNET_RPC.to_owned(),
            timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

impl RpcConfig {
    /// The default configuration with another base URL.
    pub fn with_base_url(base_url: impl Into<String>) -> RpcConfig {
        RpcConfig {
            base_url: base_url.into(),
            ..RpcConfig::default()
        }
    }
}

/// The RPC client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RpcClient {
    http: reqwest::Client,
    base: String,
    config: RpcConfig,
}

/// One HTTP failure, before retry accounting.
enum Failure {
    Transient(RpcError),
    Final(RpcError),
}

impl RpcClient {
    /// A client for `config`; fails only on an unusable base URL.
    pub fn new(config: RpcConfig) -> Result<RpcClient, RpcError> {
        let base = normalize_base(&config.base_url)?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| RpcError::BadBaseUrl {
                url: config.base_url.clone(),
                reason: format!("HTTP client: {e}"),
            })?;
        Ok(RpcClient { http, base, config })
    }

    /// The normalised base URL (without `/live/v1`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /live/v1/tick-info`.
    pub async fn tick_info(&self) -> Result<TickInfo, RpcError> {
        let body: TickInfoBody = self.call(Method::GET, "/live/v1/tick-info", None).await?;
        Ok(body.tick_info)
    }

    /// `GET /live/v1/balances/{identity}`.
    pub async fn balance(&self, identity: &Identity) -> Result<Balance, RpcError> {
        let path = format!("/live/v1/balances/{identity}");
        let body: BalanceBody = self.call(Method::GET, &path, None).await?;
        Ok(body.balance)
    }

    /// `POST /live/v1/broadcast-transaction` with the transaction's base64.
    pub async fn broadcast(&self, tx: &SignedTransaction) -> Result<Broadcast, RpcError> {
        self.broadcast_base64(&tx.to_base64()).await
    }

    /// Broadcasts already-encoded bytes (e.g. a persisted transaction after a restart).
    pub async fn broadcast_base64(&self, encoded: &str) -> Result<Broadcast, RpcError> {
        let body = serde_json::json!({ "encodedTransaction": encoded });
        self.call(Method::POST, "/live/v1/broadcast-transaction", Some(body))
            .await
    }

    /// `GET /query/v1/getLastProcessedTick`.
    pub async fn last_processed_tick(&self) -> Result<LastProcessedTick, RpcError> {
        self.call(Method::GET, "/query/v1/getLastProcessedTick", None)
            .await
    }

    /// `GET /query/v1/getProcessedTickIntervals`, oldest first.
    pub async fn processed_tick_intervals(&self) -> Result<Vec<TickInterval>, RpcError> {
        let path = "/query/v1/getProcessedTickIntervals";
        Ok(match self.call(Method::GET, path, None).await? {
            IntervalsBody::Wrapped(w) => w.processed_tick_intervals,
            IntervalsBody::Bare(v) => v,
        })
    }

    /// `POST /query/v1/getTransactionByHash`: `None` on 404 (not included, or not yet
    /// processed by the archive).
    pub async fn transaction(&self, id: &TxId) -> Result<Option<ChainTransaction>, RpcError> {
        let body = serde_json::json!({ "hash": id.as_str() });
        let path = "/query/v1/getTransactionByHash";
        match self
            .call::<TransactionBody>(Method::POST, path, Some(body))
            .await
        {
            Ok(tx) => Ok(Some(tx.into_inner())),
            Err(RpcError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One call with bounded retries for transient failures.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, RpcError> {
        let url = format!("{}{path}", self.base);
        let attempts = self.config.retries.saturating_add(1);
        let mut delay = self.config.backoff;
        for attempt in 1..=attempts {
            match self.once(&method, &url, body.as_ref()).await {
                Ok(value) => return Ok(value),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient(e)) if attempt == attempts => {
                    return Err(with_attempts(e, attempts));
                }
                Err(Failure::Transient(e)) => {
                    tracing::debug!(url = %url, attempt, error = %e, "Qubic RPC call failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.config.max_backoff);
                }
            }
        }
        Err(RpcError::Unreachable {
            url,
            attempts,
            reason: "no attempt was made".into(),
        })
    }

    async fn once<T: DeserializeOwned>(
        &self,
        method: &Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, Failure> {
        let mut request = self.http.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport(url, &e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport(url, &e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                Failure::Final(RpcError::Decode {
                    url: url.to_owned(),
                    reason: e.to_string(),
                })
            });
        }
        Err(classify(url, status, &bytes))
    }

    fn transport(&self, url: &str, e: &reqwest::Error) -> Failure {
        let url = url.to_owned();
        if e.is_timeout() {
            return Failure::Transient(RpcError::Timeout {
                url,
                attempts: 1,
                timeout: self.config.timeout,
            });
        }
        Failure::Transient(RpcError::Unreachable {
            url,
            attempts: 1,
            reason: error_chain(e),
        })
    }
}

/// Maps an HTTP error status and body to a failure.
fn classify(url: &str, status: StatusCode, body: &[u8]) -> Failure {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).chars().take(300).collect());
    let url = url.to_owned();
    let code = status.as_u16();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Failure::Transient(RpcError::Server {
            url,
            status: code,
            attempts: 1,
            message,
        });
    }
    Failure::Final(match status {
        StatusCode::NOT_FOUND => RpcError::NotFound { url, message },
        StatusCode::BAD_REQUEST if message.contains("should be greater than max tick") => {
            RpcError::TargetTickPassed { message }
        }
        _ => RpcError::Rejected {
            url,
            status: code,
            message,
        },
    })
}

fn with_attempts(e: RpcError, n: u32) -> RpcError {
    match e {
        RpcError::Unreachable { url, reason, .. } => RpcError::Unreachable {
            url,
            attempts: n,
            reason,
        },
        RpcError::Timeout { url, timeout, .. } => RpcError::Timeout {
            url,
            attempts: n,
            timeout,
        },
        RpcError::Server {
            url,
            status,
            message,
            ..
        } => RpcError::Server {
            url,
            status,
            attempts: n,
            message,
        },
        other => other,
    }
}

/// The error and its causes, joined (reqwest's top-level message alone is vague).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Trims a base URL to scheme, host and any path prefix, without the API suffixes.
pub fn normalize_base(url: &str) -> Result<String, RpcError> {
    let bad = |reason: &str| RpcError::BadBaseUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(bad("it must be an http:// or https:// URL with a host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("it must not carry a query or fragment"));
    }
    let mut base = parsed.as_str().trim_end_matches('/').to_owned();
    for suffix in ["/live/v1", "/query/v1", "/v1"] {
        if let Some(stripped) = base.strip_suffix(suffix) {
            base = stripped.to_owned();
            break;
        }
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised() {
        for (given, want) in [
            ("https://rpc.qubic.org", "https://rpc.qubic.org"),
            ("https://rpc.qubic.org/", "https://rpc.qubic.org"),
            ("https://rpc.qubic.org/live/v1", "https://rpc.qubic.org"),
            ("https://rpc.qubic.org/live/v1/", "https://rpc.qubic.org"),
            ("https://rpc.qubic.org/query/v1", "https://rpc.qubic.org"),
            ("https://rpc.qubic.org/v1", "https://rpc.qubic.org"),
            ("http://127.0.0.1:8080/proxy", "http://127.0.0.1:8080/proxy"),
        ] {
            assert_eq!(normalize_base(given).unwrap(), want, "{given}");
        }
        for bad in ["rpc.qubic.org", "ftp://x", "https://x/?a=1", ""] {
            let err = normalize_base(bad).unwrap_err().to_string();
            assert!(err.contains("https://rpc.qubic.org"), "{err}");
        }
    }
}
