//! [`RpcError`]: what went wrong talking to the Qubic RPC, and what to do about it.

use std::time::Duration;

/// Why an RPC call failed. Transient kinds ([`RpcError::is_transient`]) were already
/// retried with backoff before being returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The configured base URL cannot be used.
    #[error(
        "Qubic RPC base URL {url:?} is not usable ({reason}); pass an http(s) URL such as \
         https://rpc.qubic.org"
    )]
    BadBaseUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made.
    #[error(
        "could not reach the Qubic RPC at {url} after {attempts} attempts ({reason}); check \
         the network connection and the RPC URL"
    )]
    Unreachable {
        /// The URL called.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last transport error.
        reason: String,
    },
    /// No answer in time.
    #[error(
        "the Qubic RPC at {url} did not answer within {timeout:?} ({attempts} attempts); it may \
         be overloaded: retry later or raise the RPC timeout"
    )]
    Timeout {
        /// The URL called.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The per-attempt timeout.
        timeout: Duration,
    },
    /// The service failed (5xx or 429) on every attempt.
    #[error(
        "the Qubic RPC at {url} failed with HTTP {status} on all {attempts} attempts: {message}; \
         retry later"
    )]
    Server {
        /// The URL called.
        url: String,
        /// The last HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The service's message.
        message: String,
    },
    /// Broadcast refused because the target tick is not above the network's max tick.
    #[error(
        "the transaction's target tick has already been reached ({message}); it was not \
         accepted now, but an earlier broadcast may have been: wait until the tick is \
         processed before signing a new one"
    )]
    TargetTickPassed {
        /// The service's message.
        message: String,
    },
    /// The request was refused (400 and other 4xx): retrying the same request will not help.
    #[error("the Qubic RPC at {url} refused the request with HTTP {status}: {message}")]
    Rejected {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The service's message.
        message: String,
    },
    /// 404 where a resource must exist (the endpoint, usually).
    #[error("the Qubic RPC at {url} answered 404 ({message}); check the RPC base URL")]
    NotFound {
        /// The URL called.
        url: String,
        /// The service's message.
        message: String,
    },
    /// The body was not the expected JSON.
    #[error(
        "the Qubic RPC at {url} answered with an unexpected body ({reason}); is the base URL a \
         Qubic RPC service?"
    )]
    Decode {
        /// The URL called.
        url: String,
        /// What did not parse.
        reason: String,
    },
}

impl RpcError {
    /// Whether trying again later may succeed (connection, timeout, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RpcError::Unreachable { .. } | RpcError::Timeout { .. } | RpcError::Server { .. }
        )
    }
}
