//! What an answer (or its absence) means: the body read up to a limit, never further; HTTP
//! statuses and transport errors mapped to [`RpcError`], each either worth retrying
//! (`Failure::Transient`) or not (`Failure::Final`).

use std::error::Error;
use std::time::Duration;

use reqwest::{Response, StatusCode};

use super::error::BodySize;
use super::{ErrorBody, RpcError};

/// One HTTP failure, before retry accounting.
pub(super) enum Failure {
    Transient(RpcError),
    Final(RpcError),
}

/// Reads the body of `response`, refusing one over `limit` bytes: by its `Content-Length`
/// before reading anything, else as soon as the chunks received pass the limit.
pub(super) async fn read_limited(
    mut response: Response,
    url: &str,
    limit: u64,
    timeout: Duration,
) -> Result<Vec<u8>, Failure> {
    let too_large = |size| {
        Failure::Final(RpcError::BodyTooLarge {
            url: url.to_owned(),
            size,
            limit,
        })
    };
    let declared = response.content_length();
    if let Some(declared) = declared.filter(|n| *n > limit) {
        return Err(too_large(BodySize::Declared(declared)));
    }
    let expected = declared.unwrap_or(0).min(limit);
    let mut body = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport(url, &e, timeout))?
    {
        let received = (body.len() as u64).saturating_add(chunk.len() as u64);
        if received > limit {
            return Err(too_large(BodySize::AtLeast(received)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A failure to send or to receive: a TLS failure is final (trying again meets the same
/// certificate); timeouts and connection errors are transient.
pub(super) fn transport(url: &str, e: &reqwest::Error, timeout: Duration) -> Failure {
    let url = url.to_owned();
    if let Some(reason) = tls_cause(e) {
        return Failure::Final(RpcError::Tls { url, reason });
    }
    if e.is_timeout() {
        return Failure::Transient(RpcError::Timeout {
            url,
            attempts: 1,
            timeout,
        });
    }
    Failure::Transient(RpcError::Unreachable {
        url,
        attempts: 1,
        reason: error_chain(e),
    })
}

/// The TLS error behind a transport error, if one is. rustls reports through an
/// `io::Error` (which hyper-rustls wraps in another), and `io::Error::source()` skips the
/// error it wraps, so each one is opened.
fn tls_cause(e: &(dyn Error + 'static)) -> Option<String> {
    let mut cause = Some(e);
    while let Some(current) = cause {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        let wrapped = current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        cause = match wrapped {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => current.source(),
        };
    }
    None
}

/// Maps an HTTP error status and body to a failure.
pub(super) fn classify(url: &str, status: StatusCode, body: &[u8]) -> Failure {
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

/// A transient error after `n` attempts.
pub(super) fn with_attempts(e: RpcError, n: u32) -> RpcError {
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
fn error_chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
