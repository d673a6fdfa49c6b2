//! [`GatewayConfig`]: the gateway's limits, and [`AppState`], what every handler shares.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use crate::auth::Auth;
use crate::idempotency::IdempotencyKeys;
use crate::metrics::GatewayMetrics;

/// Limits of the gateway. `Default` is what a node uses unless told otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Largest request body, bytes.
    pub body_limit: usize,
    /// Longest a request (not a WebSocket stream) may take.
    pub request_timeout: Duration,
    /// How long a console session lives.
    pub session_ttl: Duration,
    /// Most console sessions at once; the oldest is dropped beyond it.
    pub max_sessions: usize,
    /// Most WebSocket streams open at once.
    pub max_streams: usize,
    /// Longest one WebSocket message may wait on a client before it is disconnected.
    pub stream_send_timeout: Duration,
    /// Log lines sent before the live feed when the client asks for none (`tail`).
    pub default_log_tail: usize,
    /// Metrics samples sent before the live feed when the client asks for none (`history`).
    pub default_metrics_history: usize,
    /// Most `Idempotency-Key`s kept (each 24 h) for launches and withdrawals.
    pub max_idempotency_keys: usize,
    /// Most expensive requests (`offers/explain`, which reads the whole offer book) served
    /// at once; more are refused as `unavailable`.
    pub max_expensive: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            session_ttl: Duration::from_secs(12 * 3600),
            max_sessions: 64,
            max_streams: 128,
            stream_send_timeout: Duration::from_secs(10),
            default_log_tail: 200,
            default_metrics_history: 120,
            max_idempotency_keys: 4096,
            max_expensive: 4,
        }
    }
}

/// Why a [`GatewayConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gateway setting {setting}: {problem}")]
pub struct ConfigError {
    /// The setting.
    pub setting: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl GatewayConfig {
    /// Checks that every limit is usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |setting, problem| Err(ConfigError { setting, problem });
        if self.body_limit < 1024 {
            return fail("body_limit", "must be at least 1 KiB");
        }
        if self.request_timeout.is_zero() || self.stream_send_timeout.is_zero() {
            return fail("request_timeout", "timeouts must be above zero");
        }
        if self.max_sessions == 0
            || self.max_streams == 0
            || self.max_idempotency_keys == 0
            || self.max_expensive == 0
        {
            return fail("max_sessions", "limits must be at least 1");
        }
        Ok(())
    }
}

/// A signal that the gateway is shutting down, for the WebSocket streams (which outlive
/// the request that opened them).
#[derive(Debug, Clone)]
pub(crate) struct Shutdown(Option<watch::Receiver<bool>>);

impl Shutdown {
    /// A signal that never fires (routers built for tests).
    pub(crate) fn never() -> Self {
        Self(None)
    }

    /// A signal and the switch that fires it.
    pub(crate) fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(Some(rx)))
    }

    /// Completes once shutdown begins (or the switch is dropped).
    pub(crate) async fn wait(&mut self) {
        match &mut self.0 {
            Some(rx) => {
                let _ = rx.wait_for(|down| *down).await;
            }
            None => std::future::pending().await,
        }
    }
}

/// What every handler shares.
pub(crate) struct AppState<A> {
    pub(crate) api: Arc<A>,
    pub(crate) auth: Arc<Auth>,
    pub(crate) metrics: Arc<GatewayMetrics>,
    pub(crate) config: Arc<GatewayConfig>,
    pub(crate) streams: Arc<Semaphore>,
    pub(crate) idempotency: Arc<IdempotencyKeys>,
    pub(crate) expensive: Arc<Semaphore>,
    pub(crate) shutdown: Shutdown,
}

impl<A> Clone for AppState<A> {
    fn clone(&self) -> Self {
        Self {
            api: Arc::clone(&self.api),
            auth: Arc::clone(&self.auth),
            metrics: Arc::clone(&self.metrics),
            config: Arc::clone(&self.config),
            streams: Arc::clone(&self.streams),
            idempotency: Arc::clone(&self.idempotency),
            expensive: Arc::clone(&self.expensive),
            shutdown: self.shutdown.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_limits_are_named() {
        GatewayConfig::default().validate().unwrap();
        let bad = GatewayConfig {
            body_limit: 10,
            ..GatewayConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().setting, "body_limit");
    }
}
