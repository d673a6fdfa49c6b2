//! Errors: [`GatewayError`] for the operator (starting the gateway, the token file) and
//! [`ApiErrorResponse`], the one shape every failed HTTP request gets:
//! `{ "error": { "code", "message", "field"? } }` with the code's HTTP status.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use qubix_protocol::api::{ApiError, ErrorCode};

/// Why the gateway could not start or stopped. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// Another program listens on the address.
    #[error("gateway address {addr} is in use; pass --gateway with another port")]
    AddrInUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address could not be bound for another reason.
    #[error("cannot listen on {addr}: {source}; pass --gateway with an address of this machine")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The token file could not be read or written.
    #[error(
        "cannot read or create the API token {path}: {source}; check that the data directory exists and is writable"
    )]
    TokenIo {
        /// The token file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The token file is missing, or not safe to hold a token (a symbolic link, another
    /// user's, or readable by others).
    #[error("API token: {0}")]
    TokenUnsafe(#[source] qubix_protocol::secret_file::SecretFileError),
    /// The token file does not hold a token.
    #[error(
        "{path} does not hold an API token (64 hexadecimal characters); delete it and start again to create a new one"
    )]
    TokenMalformed {
        /// The token file.
        path: PathBuf,
    },
    /// A gateway setting is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The server stopped with an error.
    #[error("the gateway stopped: {0}; restart the node")]
    Serve(#[source] std::io::Error),
}

/// An [`ApiError`] as an HTTP response: the code's status, the JSON body, and
/// `WWW-Authenticate` on 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiErrorResponse(pub ApiError);

impl From<ApiError> for ApiErrorResponse {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl IntoResponse for ApiErrorResponse {
    fn into_response(self) -> Response {
        let code = self.0.error.code;
        let status = status_of(code);
        if code != ErrorCode::Internal {
            tracing::debug!(code = code.as_str(), field = ?self.0.error.field, "request refused");
        }
        let mut response = (status, Json(redact(self.0))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// What a client may see of an error: an `internal` error's message (a database's or a
/// dependency's words, paths, URLs) is logged here under a reference and replaced by that
/// reference; every other code's message is written for the client and goes as it is.
pub(crate) fn redact(error: ApiError) -> ApiError {
    if error.error.code != ErrorCode::Internal {
        return error;
    }
    let reference = format!("{:08x}", rand::random::<u32>());
    tracing::error!(%reference, message = %error.error.message, "internal error");
    let shown = ApiError::new(
        ErrorCode::Internal,
        format!("internal error (reference {reference}); the node's log has the details"),
    );
    match error.error.field {
        Some(field) => shown.with_field(field),
        None => shown,
    }
}

/// The HTTP status of an error code.
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The error code that best describes a failure status produced outside our handlers
/// (axum's router, tower layers).
pub(crate) fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        408 | 504 => ErrorCode::Timeout,
        413 => ErrorCode::PayloadTooLarge,
        415 | 422 => ErrorCode::InvalidJson,
        429 | 503 => ErrorCode::Unavailable,
        400..=499 => ErrorCode::InvalidValue,
        _ => ErrorCode::Internal,
    }
}

/// A sentence for a failure status produced outside our handlers.
pub(crate) fn message_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "no such route; GET /api/v1/openapi.json lists them all",
        405 => {
            "this route does not take that HTTP method; the Allow header lists the ones it takes"
        }
        408 | 504 => "the request took too long; retry later",
        413 => "the request body is larger than the gateway accepts (64 KiB by default)",
        415 => "send the body as JSON with Content-Type: application/json",
        429 | 503 => "the gateway is busy; retry later",
        400..=499 => "the request is malformed",
        _ => "the gateway failed; the node's log has the details",
    }
}

/// Shorthand for an error response.
pub(crate) fn api_error(code: ErrorCode, message: impl Into<String>) -> ApiErrorResponse {
    ApiErrorResponse(ApiError::new(code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_stay_in_the_log() {
        let leaky = ApiError::new(
            ErrorCode::Internal,
            "escrow ledger: sled: IO error at /var/lib/qubix/db/conf: https://user:key@rpc.example",
        );
        let shown = redact(leaky);
        assert_eq!(shown.error.code, ErrorCode::Internal);
        let m = &shown.error.message;
        assert!(
            m.starts_with("internal error (reference ") && m.contains("log"),
            "{m}"
        );
        assert!(!m.contains("sled") && !m.contains("rpc.example") && !m.contains("/var/"));
        let refused = ApiError::new(ErrorCode::NotFound, "no such instance");
        assert_eq!(redact(refused.clone()), refused);
    }

    #[test]
    fn every_failure_status_maps_to_a_code_with_that_status_family() {
        for status in [400u16, 401, 403, 404, 405, 413, 415, 422, 500, 503, 504] {
            let status = StatusCode::from_u16(status).unwrap();
            let code = code_for_status(status);
            assert_eq!(
                status.is_client_error(),
                status_of(code).is_client_error(),
                "{status} → {code:?}"
            );
            assert!(!message_for_status(status).is_empty());
        }
    }

    #[test]
    fn addr_in_use_says_what_to_do() {
        let err = GatewayError::AddrInUse {
            addr: "127.0.0.1:8080".parse().unwrap(),
        };
        assert_eq!(
            err.to_string(),
            "gateway address 127.0.0.1:8080 is in use; pass --gateway with another port"
        );
    }
}
