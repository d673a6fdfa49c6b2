//! [`RpcError`]: what went wrong talking to the Qubic RPC, and what to do about it.

use std::fmt;
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
    /// Plain http to a host other than this machine.
    #[error(
        "the Qubic RPC must use https unless it is on this machine (loopback): {url} is plain \
         http to another host; use an https:// URL (with ca_pem for a private CA), or an RPC on \
         127.0.0.1, [::1] or localhost"
    )]
    InsecureUrl {
        /// The URL given.
        url: String,
    },
    /// The extra root certificate cannot be used.
    #[error(
        "the extra CA certificate for the Qubic RPC (ca_pem) is not usable ({reason}); pass the \
         PEM file (-----BEGIN CERTIFICATE-----) of the CA that signed the RPC's certificate"
    )]
    BadCertificate {
        /// What is wrong with it.
        reason: String,
    },
    /// Another setting cannot be used.
    #[error("the Qubic RPC settings are not usable: {reason}")]
    BadConfig {
        /// What is wrong.
        reason: String,
    },
    /// The TLS handshake failed (certificate not trusted, wrong name, expired, …): retrying
    /// will not help.
    #[error(
        "the TLS connection to the Qubic RPC at {url} failed ({reason}); if the RPC uses a \
         private CA, set ca_pem to that CA's certificate, otherwise check the URL's host name \
         and this machine's clock"
    )]
    Tls {
        /// The URL called.
        url: String,
        /// The TLS error.
        reason: String,
    },
    /// The response body is larger than [`RpcConfig::max_body_bytes`](super::RpcConfig);
    /// the rest was not read.
    #[error(
        "the Qubic RPC at {url} answered with a body of {size}, more than the limit of {limit} \
         bytes; check that the base URL is a Qubic RPC service, or raise max_body_bytes if it \
         is and the answer is expected to be this large"
    )]
    BodyTooLarge {
        /// The URL called.
        url: String,
        /// How large it is, or at least was.
        size: BodySize,
        /// The limit.
        limit: u64,
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

/// The size of an oversized body: announced up front, or counted until the limit passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodySize {
    /// The `Content-Length` the service announced (nothing was read).
    Declared(u64),
    /// The bytes received before reading stopped (the body is at least this large).
    AtLeast(u64),
}

impl fmt::Display for BodySize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodySize::Declared(n) => write!(f, "{n} bytes (Content-Length)"),
            BodySize::AtLeast(n) => write!(f, "at least {n} bytes"),
        }
    }
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
