//! Console sessions: a random id in an HttpOnly, SameSite=Strict cookie, and a CSRF value the
//! console sends back as `X-Qubix-CSRF` with every state-changing request. The store is
//! bounded (the oldest session is evicted when full) and sessions expire. Ids are kept only
//! as SHA-256 digests, so the store never holds a usable cookie.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::watch;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "qubix_session";
/// The header that carries the CSRF value.
pub const CSRF_HEADER: &str = "x-qubix-csrf";

/// A new session as the client receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewSession {
    /// The cookie value (secret).
    pub(crate) id: String,
    /// The CSRF value.
    pub(crate) csrf: String,
    /// How long it lives.
    pub(crate) ttl: Duration,
}

#[derive(Debug)]
struct Session {
    csrf: String,
    expires: Instant,
    /// Dropped with the session (logout, eviction, expiry), which ends every
    /// [`SessionWatch`] of it.
    alive: watch::Sender<()>,
}

/// What a live stream opened by a console session watches: it must end when the session
/// does.
#[derive(Debug)]
pub(crate) struct SessionWatch {
    alive: watch::Receiver<()>,
    expires: Instant,
}

impl SessionWatch {
    /// Completes when the session is closed, evicted or expired.
    pub(crate) async fn ended(&mut self) {
        let expiry = tokio::time::Instant::from_std(self.expires);
        tokio::select! {
            () = tokio::time::sleep_until(expiry) => {}
            // Only the sender's drop completes this: the value never changes.
            _ = self.alive.changed() => {}
        }
    }
}

/// Bounded, expiring sessions keyed by the digest of their id.
#[derive(Debug)]
pub(crate) struct SessionStore {
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    capacity: usize,
    ttl: Duration,
}

impl SessionStore {
    /// A store of at most `capacity` sessions that live `ttl` each.
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// Opens a session, evicting expired ones and then, if still full, the oldest.
    pub(crate) fn open(&self, now: Instant) -> NewSession {
        let id = random_hex();
        let csrf = random_hex();
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > now);
        while sessions.len() >= self.capacity {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| *k);
            match oldest {
                Some(key) => sessions.remove(&key),
                None => break,
            };
        }
        sessions.insert(
            digest(&id),
            Session {
                csrf: csrf.clone(),
                expires: now + self.ttl,
                alive: watch::channel(()).0,
            },
        );
        tracing::info!(sessions = sessions.len(), "console session opened");
        NewSession {
            id,
            csrf,
            ttl: self.ttl,
        }
    }

    /// The CSRF value and remaining lifetime of a live session.
    pub(crate) fn get(&self, id: &str, now: Instant) -> Option<(String, Duration)> {
        let mut sessions = self.lock();
        let key = digest(id);
        match sessions.get(&key) {
            Some(s) if s.expires > now => Some((s.csrf.clone(), s.expires - now)),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// A watch on the live session `id`, for a stream that must end with it.
    pub(crate) fn watch(&self, id: &str, now: Instant) -> Option<SessionWatch> {
        let sessions = self.lock();
        sessions
            .get(&digest(id))
            .filter(|s| s.expires > now)
            .map(|s| SessionWatch {
                alive: s.alive.subscribe(),
                expires: s.expires,
            })
    }

    /// Whether `candidate` is the CSRF value of the live session `id` (constant time).
    pub(crate) fn csrf_matches(&self, id: &str, candidate: &str, now: Instant) -> bool {
        self.get(id, now)
            .is_some_and(|(csrf, _)| csrf.as_bytes().ct_eq(candidate.as_bytes()).into())
    }

    /// Ends a session.
    pub(crate) fn close(&self, id: &str) {
        self.lock().remove(&digest(id));
    }

    /// Live and expired-but-not-yet-evicted sessions.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The `Set-Cookie` value that stores a session.
pub(crate) fn session_cookie(id: &str, ttl: Duration) -> String {
    format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        ttl.as_secs()
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// The session id in a `Cookie` header, if any.
pub(crate) fn session_id_from_cookies(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire() {
        let store = SessionStore::new(4, Duration::from_secs(60));
        let t0 = Instant::now();
        let s = store.open(t0);
        assert!(store.get(&s.id, t0 + Duration::from_secs(59)).is_some());
        assert!(store.get(&s.id, t0 + Duration::from_secs(60)).is_none());
        assert_eq!(store.len(), 0, "an expired session is dropped when seen");
    }

    #[test]
    fn a_full_store_evicts_the_oldest() {
        let store = SessionStore::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        let a = store.open(t0);
        let b = store.open(t0 + Duration::from_secs(1));
        let c = store.open(t0 + Duration::from_secs(2));
        let now = t0 + Duration::from_secs(3);
        assert!(store.get(&a.id, now).is_none());
        assert!(store.get(&b.id, now).is_some());
        assert!(store.get(&c.id, now).is_some());
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn csrf_must_match_the_session() {
        let store = SessionStore::new(4, Duration::from_secs(60));
        let now = Instant::now();
        let a = store.open(now);
        let b = store.open(now);
        assert!(store.csrf_matches(&a.id, &a.csrf, now));
        assert!(!store.csrf_matches(&a.id, &b.csrf, now));
        assert!(!store.csrf_matches(&a.id, "", now));
        store.close(&a.id);
        assert!(!store.csrf_matches(&a.id, &a.csrf, now));
    }

    #[tokio::test]
    async fn a_watch_ends_at_close_and_at_eviction() {
        let store = SessionStore::new(1, Duration::from_secs(60));
        let now = Instant::now();
        let a = store.open(now);
        let mut watch = store.watch(&a.id, now).unwrap();
        let ended = tokio::time::timeout(Duration::from_millis(50), watch.ended()).await;
        assert!(ended.is_err(), "a live session's watch ended");
        store.close(&a.id);
        tokio::time::timeout(Duration::from_secs(5), watch.ended())
            .await
            .expect("the watch outlived the session's close");
        let b = store.open(now);
        let mut watch = store.watch(&b.id, now).unwrap();
        let _c = store.open(now);
        tokio::time::timeout(Duration::from_secs(5), watch.ended())
            .await
            .expect("the watch outlived the session's eviction");
        assert!(store.watch(&b.id, now).is_none());
    }

    #[tokio::test]
    async fn a_watch_ends_at_expiry_not_before() {
        let ttl = Duration::from_millis(200);
        let store = SessionStore::new(4, ttl);
        let now = Instant::now();
        let a = store.open(now);
        let mut watch = store.watch(&a.id, now).unwrap();
        tokio::time::timeout(Duration::from_secs(5), watch.ended())
            .await
            .expect("the watch outlived the session's expiry");
        assert!(Instant::now() >= now + ttl, "the watch ended before expiry");
    }

    #[test]
    fn cookie_header_parsing_finds_our_cookie_only() {
        assert_eq!(
            session_id_from_cookies("a=1; qubix_session=abc; b=2"),
            Some("abc")
        );
        assert_eq!(session_id_from_cookies("qubix_session_x=abc"), None);
        assert_eq!(session_id_from_cookies("qubix_session="), None);
        let cookie = session_cookie("abc", Duration::from_secs(10));
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Strict")
                && cookie.contains("Path=/")
        );
    }
}
