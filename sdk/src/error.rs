//! [`SdkError`]: what went wrong, separated by where, with messages that say what to do.

use qubix_protocol::api::{ApiError, ErrorCode};

/// Why an SDK call failed.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The node could not be reached or the connection broke.
    #[error(
        "cannot reach the Qubix node at {url}: {message}; is `qubix node --gateway` running there? (set QUBIX_API)"
    )]
    Transport {
        /// The URL called.
        url: String,
        /// What the transport said.
        message: String,
    },
    /// The node answered with an error.
    #[error("{}", describe(*status, *code, message, field.as_deref()))]
    Api {
        /// HTTP status.
        status: u16,
        /// Machine-readable code.
        code: ErrorCode,
        /// The node's message.
        message: String,
        /// The request field at fault.
        field: Option<String>,
    },
    /// The answer did not have the expected shape (version mismatch?).
    #[error(
        "unexpected answer from the node for {what}: {message}; are the CLI and node the same version?"
    )]
    Decode {
        /// What was being read.
        what: String,
        /// The decoder's message.
        message: String,
    },
    /// The client is misconfigured.
    #[error("{0}")]
    Config(String),
    /// A wait ran out of time.
    #[error("timed out after {secs} s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        secs: u64,
    },
}

fn describe(status: u16, code: ErrorCode, message: &str, field: Option<&str>) -> String {
    let hint = match code {
        ErrorCode::Unauthorized => " (check QUBIX_TOKEN or the node's api-token file)",
        ErrorCode::InsufficientFunds => " (deposit QU to your wallet identity: `qubix wallet`)",
        ErrorCode::Unavailable => " (try again in a moment)",
        _ => "",
    };
    match field {
        Some(f) => format!(
            "{message} [{}, field {f}, HTTP {status}]{hint}",
            code.as_str()
        ),
        None => format!("{message} [{}, HTTP {status}]{hint}", code.as_str()),
    }
}

impl SdkError {
    /// The API error code, when the node answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether retrying the same idempotent call may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Api { status, .. } => *status == 503 || *status == 504 || *status == 502,
            _ => false,
        }
    }

    pub(crate) fn from_api(status: u16, body: ApiError) -> Self {
        Self::Api {
            status,
            code: body.error.code,
            message: body.error.message,
            field: body.error.field,
        }
    }
}
