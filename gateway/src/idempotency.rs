//! `Idempotency-Key` for the routes that move money or rent GPUs (`POST /api/v1/instances`,
//! `POST /api/v1/wallet/withdraw`).
//!
//! Those calls may outlast the gateway's request timeout, which tells the client to retry;
//! the node keeps working on the first call meanwhile. With a key, the work runs in a task of
//! its own that no timeout or disconnect cancels, and its answer is kept: a retry with the
//! same key (and the same body) waits for that answer or returns it, and never makes a second
//! rental or a second withdrawal.
//!
//! - Keys are scoped per caller and route. The caller is the API's owner, the holder of the
//!   node's token, whether it calls with the token or through a console session: a console
//!   that logs in again after its session expired must find the key its launch used.
//! - A key is kept [`KEY_TTL`] (24 h) after its first use; at most `capacity` keys are kept.
//!   When full, expired keys go first, then the oldest answered ones (a retry of a key
//!   forgotten that way runs again); if every kept key is still running, the request is
//!   refused as `unavailable` (nothing is done). A key still running at its TTL is kept.
//! - The same key with a different body is refused with 422 `idempotency_key_reused`.
//! - A success, and a failure that may have had effects, is what every retry gets; use a new
//!   key to try again. A refusal the route knows changed nothing (see [`Route`]) is not kept:
//!   a retry runs anew. Requests refused before reaching the node keep no key.
//! - Work that panics answers `internal` and its key is kept, answered, like any failure.

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

    /// The work panicked: our own words (not redacted), since what to do matters here.
    fn panicked() -> Self {
        let error = ApiError::new(
            ErrorCode::Internal,
            "the request with this Idempotency-Key failed inside the node (its log has the \
             details); check the instances or the wallet before retrying with a new key",
        );
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: serde_json::to_vec(&error).unwrap_or_default().into(),
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
    /// Answered, or its task is gone (it cannot answer any more).
    fn answered(&self) -> bool {
        self.answer.borrow().is_some() || self.answer.has_changed().is_err()
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
            if now.duration_since(entry.first_used) < self.ttl || !entry.answered() {
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
            entries.retain(|_, e| now.duration_since(e.first_used) < ttl || !e.answered());
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

    /// Drops `scope`'s key, so that a retry runs anew.
    fn forget(&self, scope: &Scope) {
        self.lock().remove(scope);
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

/// A keyed route: its name (keys are per route) and which of its refusals changed nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    /// The route's name.
    pub(crate) name: &'static str,
    /// Whether a failure certainly had no effect, so its key need not be kept.
    pub(crate) no_effect: fn(&ApiError) -> bool,
}

/// Runs `work` once per key. Without a key, runs it in the request as any other call. With
/// one, runs it in a task of its own (so the request timeout does not cancel it) and keeps
/// its answer for retries; `request` is the parsed body, whose digest a retry must match.
pub(crate) async fn once<R, T, F>(
    keys: &Arc<IdempotencyKeys>,
    route: Route,
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
        route: route.name,
        caller: caller_digest(caller),
        key,
    };
    let answer = match keys.begin(scope.clone(), body, Instant::now()) {
        Ok(Begin::Run(sender)) => {
            let answer = sender.subscribe();
            let keys = Arc::clone(keys);
            tokio::spawn(async move {
                // In a task of its own, so that a panic is an answer too.
                let done = match tokio::spawn(work).await {
                    Ok(Err(error)) if (route.no_effect)(&error) => {
                        keys.forget(&scope);
                        Answer::of(success, Err::<T, _>(error))
                    }
                    Ok(result) => Answer::of(success, result),
                    Err(_) => Answer::panicked(),
                };
                let _ = sender.send(Some(done));
            });
            // The first call is not a replay; it waits for the task as a retry would.
            return wait(answer, false).await;
        }
        Ok(Begin::Replay(answer)) => answer,
        Err(refusal) => return refusal.into_response(),
    };
    tracing::info!(
        route = route.name,
        "request replayed from its Idempotency-Key"
    );
    wait(answer, true).await
}

async fn wait(mut answer: watch::Receiver<Option<Answer>>, replayed: bool) -> Response {
    match answer.wait_for(Option::is_some).await {
        Ok(done) => done.as_ref().map_or_else(
            || Answer::panicked().response(replayed),
            |a| a.response(replayed),
        ),
        Err(_) => Answer::panicked().response(replayed),
    }
}

/// The caller a key belongs to: the API's owner (the token's holder), whichever way it
/// authenticated. (With several users, each would be its own caller.)
fn caller_digest(caller: &Caller) -> [u8; 32] {
    match caller {
        Caller::Bearer | Caller::Session { .. } => Sha256::digest(b"owner").into(),
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
        let Ok(Begin::Run(b)) = keys.begin(scope("b"), [0; 32], t0) else {
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
        // A task that ended without answering (it panicked) counts as answered: its key
        // does not hold a slot as if it were running.
        drop(b);
        assert!(keys.lock().get(&scope("b")).unwrap().answered());
    }

    #[test]
    fn past_the_ttl_an_answered_key_is_new_again_and_a_running_one_is_kept() {
        let keys = IdempotencyKeys::new(4, Duration::from_secs(60));
        let t0 = Instant::now();
        let Ok(Begin::Run(_running)) = keys.begin(scope("r"), [0; 32], t0) else {
            panic!("a new key must run");
        };
        let Ok(Begin::Run(done)) = keys.begin(scope("d"), [0; 32], t0) else {
            panic!("a new key must run");
        };
        answer(&done);
        let later = t0 + Duration::from_secs(61);
        assert!(matches!(
            keys.begin(scope("r"), [0; 32], later),
            Ok(Begin::Replay(_))
        ));
        assert!(matches!(
            keys.begin(scope("d"), [0; 32], later),
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
        let console = Scope {
            caller: caller_digest(&Caller::Session { id: "s".into() }),
            ..scope("k")
        };
        assert!(
            matches!(keys.begin(console, [1; 32], now), Ok(Begin::Replay(_))),
            "a console session is the same owner as the token"
        );
        let other_route = Scope {
            route: "withdraw",
            ..scope("k")
        };
        assert!(matches!(
            keys.begin(other_route, [2; 32], now),
            Ok(Begin::Run(_))
        ));
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
