//! `Idempotency-Key` for the routes that move money or rent GPUs (`POST /api/v1/instances`,
//! `POST /api/v1/wallet/withdraw`).
//!
//! Those calls may outlast the gateway's request timeout, which tells the client to retry;
//! the node keeps working on the first call meanwhile. With a key, the work runs in a task of
//! its own that no timeout or disconnect cancels, and its answer is kept: a retry with the
//! same key (and the same body) waits for that answer or returns it, and never makes a second
//! rental or a second withdrawal.
//!
//! - Keys are scoped per caller (the bearer token, or one console session) and per route.
//! - A key is kept [`KEY_TTL`] (24 h) after its first use; at most `capacity` keys are kept.
//!   When full, expired keys go first, then the oldest answered ones; if every kept key is
//!   still running, the request is refused as `unavailable` (nothing is done).
//! - The same key with a different body is refused with 422 `idempotency_key_reused`.
//! - Whatever the node answered the first time, success or failure, is what every retry gets
//!   (a failure may have had effects the gateway cannot see); use a new key to try again.
//!   Requests refused before reaching the node (bad shape, bad key) keep no key.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use qubix_protocol::api::{ApiError, ErrorCode};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::auth::Caller;
use crate::error::{ApiErrorResponse, api_error};

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header set on an answer replayed from a kept key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// How long a key is kept after its first use.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// An answer as it is kept and replayed.
#[derive(Debug, Clone)]
struct Answer {
    status: StatusCode,
    body: Bytes,
}

impl Answer {
    fn of<T: Serialize>(success: StatusCode, result: Result<T, ApiError>) -> Self {
        let (status, body) = match result {
            Ok(value) => (success, serde_json::to_vec(&value)),
            Err(error) => (
                StatusCode::from_u16(error.error.code.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                serde_json::to_vec(&crate::error::redact(error)),
            ),
        };
        match body {
            Ok(body) => Self {
                status,
                body: body.into(),
            },
            Err(e) => {
                tracing::error!(error = %e, "an answer did not serialize");
                let error = ApiError::new(ErrorCode::Internal, "the answer could not be encoded");
                Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: serde_json::to_vec(&error).unwrap_or_default().into(),
                }
            }
        }
    }

    fn response(&self, replayed: bool) -> Response {
        let mut response = Response::new(Body::from(self.body.clone()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if replayed {
            headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Who a key belongs to: the route and the caller (the session id is kept as a digest).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Scope {
    route: &'static str,
    caller: [u8; 32],
    key: String,
}

#[derive(Debug)]
struct Entry {
    body: [u8; 32],
    first_used: Instant,
    answer: watch::Receiver<Option<Answer>>,
}

impl Entry {
    fn answered(&self) -> bool {
        self.answer.borrow().is_some()
    }
}

/// The kept keys.
#[derive(Debug)]
pub(crate) struct IdempotencyKeys {
    entries: Mutex<HashMap<Scope, Entry>>,
    capacity: usize,
    ttl: Duration,
}

/// What [`IdempotencyKeys::begin`] decided.
enum Begin {
    /// A new key: run the work and send its answer.
    Run(watch::Sender<Option<Answer>>),
    /// A kept key: wait for (or take) its answer.
    Replay(watch::Receiver<Option<Answer>>),
}

impl IdempotencyKeys {
    /// At most `capacity` keys, each kept `ttl`.
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// Keys kept now (answered or running, expired ones not yet dropped included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn begin(&self, scope: Scope, body: [u8; 32], now: Instant) -> Result<Begin, ApiErrorResponse> {
        let mut entries = self.lock();
        if let Some(entry) = entries.get(&scope) {
            if now.duration_since(entry.first_used) < self.ttl {
                if entry.body != body {
                    return Err(api_error(
                        ErrorCode::IdempotencyKeyReused,
                        "this Idempotency-Key was used with a different request; send the same request to get its answer, or use a new key",
                    ));
                }
                return Ok(Begin::Replay(entry.answer.clone()));
            }
            entries.remove(&scope);
        }
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, e| now.duration_since(e.first_used) < ttl);
        }
        while entries.len() >= self.capacity {
            let oldest = entries
                .iter()
                .filter(|(_, e)| e.answered())
                .min_by_key(|(_, e)| e.first_used)
                .map(|(scope, _)| scope.clone());
            match oldest {
                Some(scope) => entries.remove(&scope),
                None => {
                    return Err(api_error(
                        ErrorCode::Unavailable,
                        "too many requests with an Idempotency-Key are still running; retry in a moment",
                    ));
                }
            };
        }
        let (sender, answer) = watch::channel(None);
        entries.insert(
            scope,
            Entry {
                body,
                first_used: now,
                answer,
            },
        );
        Ok(Begin::Run(sender))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Scope, Entry>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The `Idempotency-Key` of a request, if it sent one: 1 to 255 visible ASCII characters.
pub(crate) fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiErrorResponse> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bad = || {
        api_error(
            ErrorCode::InvalidValue,
            "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)",
        )
    };
    let key = value.to_str().map_err(|_| bad())?;
    let ok =
        !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(Some(key.to_owned()))
    } else {
        Err(bad())
    }
}

/// Runs `work` once per key. Without a key, runs it in the request as any other call. With
/// one, runs it in a task of its own (so the request timeout does not cancel it) and keeps
/// its answer for retries; `request` is the parsed body, whose digest a retry must match.
pub(crate) async fn once<R, T, F>(
    keys: &Arc<IdempotencyKeys>,
    route: &'static str,
    caller: &Caller,
    key: Option<String>,
    request: &R,
    success: StatusCode,
    work: F,
) -> Response
where
    R: Serialize,
    T: Serialize + Send + 'static,
    F: Future<Output = Result<T, ApiError>> + Send + 'static,
{
    let Some(key) = key else {
        return Answer::of(success, work.await).response(false);
    };
    let body = match serde_json::to_vec(request) {
        Ok(bytes) => Sha256::digest(&bytes).into(),
        Err(_) => {
            return api_error(ErrorCode::Internal, "the request could not be encoded")
                .into_response();
        }
    };
    let scope = Scope {
        route,
        caller: caller_digest(caller),
        key,
    };
    let mut answer = match keys.begin(scope, body, Instant::now()) {
        Ok(Begin::Run(sender)) => {
            let mut answer = sender.subscribe();
            tokio::spawn(async move {
                let result = work.await;
                let _ = sender.send(Some(Answer::of(success, result)));
            });
            // The first call is not a replay; wait for the task like a retry would.
            return match answer.wait_for(Option::is_some).await {
                Ok(done) => done.as_ref().map_or_else(gone, |a| a.response(false)),
                Err(_) => gone(),
            };
        }
        Ok(Begin::Replay(answer)) => answer,
        Err(refusal) => return refusal.into_response(),
    };
    tracing::info!(route, "request replayed from its Idempotency-Key");
    match answer.wait_for(Option::is_some).await {
        Ok(done) => done.as_ref().map_or_else(gone, |a| a.response(true)),
        Err(_) => gone(),
    }
}

/// The task that ran a keyed request ended without an answer (it panicked).
fn gone() -> Response {
    api_error(
        ErrorCode::Internal,
        "the request with this Idempotency-Key failed inside the node; check its state before retrying with a new key",
    )
    .into_response()
}

fn caller_digest(caller: &Caller) -> [u8; 32] {
    match caller {
        Caller::Bearer => Sha256::digest(b"bearer").into(),
        Caller::Session { id } => Sha256::digest(format!("session:{id}").as_bytes()).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(key: &str) -> Scope {
        Scope {
            route: "launch",
            caller: caller_digest(&Caller::Bearer),
            key: key.into(),
        }
    }

    fn answer(sender: &watch::Sender<Option<Answer>>) {
        let _ = sender.send(Some(Answer::of(StatusCode::OK, Ok::<_, ApiError>(1))));
    }

    #[test]
    fn a_full_store_drops_expired_then_oldest_answered_keys_and_never_a_running_one() {
        let keys = IdempotencyKeys::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        let Ok(Begin::Run(a)) = keys.begin(scope("a"), [0; 32], t0) else {
            panic!("a new key must run");
        };
        let Ok(Begin::Run(_b)) = keys.begin(scope("b"), [0; 32], t0) else {
            panic!("a new key must run");
        };
        // Both running: a third key is refused, nothing dropped.
        let refused = keys.begin(scope("c"), [0; 32], t0).err().unwrap();
        assert_eq!(refused.0.error.code, ErrorCode::Unavailable);
        answer(&a);
        assert!(matches!(
            keys.begin(scope("c"), [0; 32], t0),
            Ok(Begin::Run(_))
        ));
        assert_eq!(keys.len(), 2);
        assert!(
            matches!(keys.begin(scope("b"), [0; 32], t0), Ok(Begin::Replay(_))),
            "the running key was dropped"
        );
        // After the TTL every key is new again.
        let later = t0 + Duration::from_secs(61);
        assert!(matches!(
            keys.begin(scope("b"), [0; 32], later),
            Ok(Begin::Run(_))
        ));
    }

    #[test]
    fn the_same_key_with_another_body_is_refused() {
        let keys = IdempotencyKeys::new(8, KEY_TTL);
        let now = Instant::now();
        assert!(matches!(
            keys.begin(scope("k"), [1; 32], now),
            Ok(Begin::Run(_))
        ));
        let refused = keys.begin(scope("k"), [2; 32], now).err().unwrap();
        assert_eq!(refused.0.error.code, ErrorCode::IdempotencyKeyReused);
        assert_eq!(refused.0.error.code.http_status(), 422);
        let other_caller = Scope {
            caller: caller_digest(&Caller::Session { id: "s".into() }),
            ..scope("k")
        };
        assert!(
            matches!(keys.begin(other_caller, [2; 32], now), Ok(Begin::Run(_))),
            "keys are per caller"
        );
    }

    #[test]
    fn keys_must_be_short_visible_ascii() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(IDEMPOTENCY_KEY, HeaderValue::from_str(v).unwrap());
            key_of(&h)
        };
        assert_eq!(with("abc-123").unwrap().as_deref(), Some("abc-123"));
        assert!(with("").is_err());
        assert!(with("a b").is_err());
        assert!(with(&"k".repeat(256)).is_err());
        assert_eq!(key_of(&HeaderMap::new()).unwrap(), None);
    }
}
