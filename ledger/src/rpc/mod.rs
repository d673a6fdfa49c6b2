//! A client of Qubic's HTTP RPC (SPEC §6): the Live API (`/live/v1`: tick info, balances,
//! broadcast) and the Query API (`/query/v1`: the archive's processed ticks and
//! transactions).
//!
//! Every call has a timeout and reads at most [`RpcConfig::max_body_bytes`] of an answer.
//! Transient failures (connection errors, timeouts, 5xx, 429) are retried a bounded number
//! of times with exponential backoff; broadcasting the same bytes again is safe because the
//! network identifies a transaction by its hash. Everything else comes back as a typed
//! [`RpcError`] whose message says what to do. Plain http is refused unless the RPC is on
//! this machine.
//!
//! * `config`: [`RpcConfig`] and its rules ([`normalize_base`], https off loopback).
//! * [`types`]: the JSON bodies, tolerant on input (64-bit numbers as strings or numbers,
//!   bare or wrapped transaction bodies), exact on output.
//! * [`identity_query`]: `getTransactionsForIdentity`, its query and its pages.
//! * `response`: bounded body reads and the mapping of failures to [`RpcError`].
//! * `error`: [`RpcError`].

mod config;
mod error;
pub mod identity_query;
mod response;
pub mod types;

use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::qubic::{Identity, SignedTransaction, TxId};

pub use config::{DEFAULT_MAX_BODY_BYTES, MAINNET_RPC, RpcConfig, normalize_base};
pub use error::{BodySize, RpcError};
pub use identity_query::{IdentityQuery, IdentityTransactions};
use response::{Failure, classify, read_limited, transport, with_attempts};
pub use types::{
    Balance, Broadcast, ChainTransaction, ErrorBody, LastProcessedTick, TickInfo, TickInterval,
};
use types::{BalanceBody, IntervalsBody, TickInfoBody, TransactionBody};

/// The RPC client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RpcClient {
    http: reqwest::Client,
    base: String,
    config: RpcConfig,
}

impl RpcClient {
    /// A client for `config`; fails when the configuration breaks a rule of
    /// [`RpcConfig::validate`].
    pub fn new(config: RpcConfig) -> Result<RpcClient, RpcError> {
        config.validate()?;
        let base = normalize_base(&config.base_url)?;
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout);
        for certificate in config.root_certificates()? {
            builder = builder.add_root_certificate(certificate);
        }
        let http = builder.build().map_err(|e| RpcError::BadConfig {
            reason: format!("the HTTP client cannot be built: {e}"),
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

    /// `POST /query/v1/getTransactionsForIdentity`: one page of the transactions
    /// `query.identity` sent or received, newest tick first.
    pub async fn transactions_for_identity(
        &self,
        query: &IdentityQuery,
    ) -> Result<IdentityTransactions, RpcError> {
        let body = serde_json::to_value(query.request()).map_err(|e| RpcError::BadConfig {
            reason: format!("the query cannot be encoded: {e}"),
        })?;
        let path = "/query/v1/getTransactionsForIdentity";
        self.call(Method::POST, path, Some(body)).await
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
        let timeout = self.config.timeout;
        let mut request = self.http.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport(url, &e, timeout))?;
        let status = response.status();
        let bytes = read_limited(response, url, self.config.max_body_bytes, timeout).await?;
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
}
