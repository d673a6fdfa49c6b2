//! Who may call the API. Programs send `Authorization: Bearer <token>`; the console sends its
//! session cookie, plus `X-Qubix-CSRF` on every POST, PUT and DELETE, and its WebSocket
//! upgrades must come from the gateway's own origin. A bearer request cannot be forged by
//! another site (a browser never adds that header by itself), so it needs no CSRF value.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use qubix_protocol::api::ErrorCode;

use crate::error::{ApiErrorResponse, api_error};
use crate::session::{CSRF_HEADER, SessionStore, session_id_from_cookies};
use crate::token::ApiToken;

/// The token and the sessions opened with it.
#[derive(Debug)]
pub(crate) struct Auth {
    pub(crate) token: ApiToken,
    pub(crate) sessions: SessionStore,
}

/// How the caller of a request proved who it is (a request extension set by
/// [`require_auth`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// `Authorization: Bearer` with the right token.
    Bearer,
    /// A live console session.
    Session {
        /// The session id from the cookie.
        id: String,
    },
}

/// Middleware: refuses the request unless [`authenticate`] accepts it, and records the
/// [`Caller`] for the handler.
pub(crate) async fn require_auth(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    match authenticate(&auth, request.headers(), request.method(), Instant::now()) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// Decides whether a request's credentials are good enough for its method.
pub(crate) fn authenticate(
    auth: &Auth,
    headers: &HeaderMap,
    method: &Method,
    now: Instant,
) -> Result<Caller, ApiErrorResponse> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let presented = value.to_str().ok().and_then(bearer_token);
        return match presented {
            Some(token) if auth.token.matches(token) => Ok(Caller::Bearer),
            _ => Err(api_error(
                ErrorCode::Unauthorized,
                "the bearer token is wrong; send `Authorization: Bearer <token>` with the token from <data-dir>/api-token",
            )),
        };
    }
    let cookies = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(id) = session_id_from_cookies(cookies) else {
        return Err(api_error(
            ErrorCode::Unauthorized,
            "log in: send `Authorization: Bearer <token>` with the token from <data-dir>/api-token, or open the console's login URL",
        ));
    };
    if auth.sessions.get(id, now).is_none() {
        return Err(api_error(
            ErrorCode::Unauthorized,
            "your console session has expired; log in again",
        ));
    }
    check_session_request(auth, headers, method, id, now)?;
    Ok(Caller::Session { id: id.to_owned() })
}

/// CSRF value on state-changing methods; same origin on WebSocket upgrades.
fn check_session_request(
    auth: &Auth,
    headers: &HeaderMap,
    method: &Method,
    id: &str,
    now: Instant,
) -> Result<(), ApiErrorResponse> {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let csrf = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !auth.sessions.csrf_matches(id, csrf, now) {
            return Err(api_error(
                ErrorCode::Forbidden,
                "missing or wrong X-Qubix-CSRF header; reload the console (programs should use the bearer token)",
            ));
        }
    }
    if is_websocket_upgrade(headers) && !same_origin(headers) {
        return Err(api_error(
            ErrorCode::Forbidden,
            "WebSocket connections must come from the console's own origin",
        ));
    }
    Ok(())
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether the request asks to become a WebSocket.
pub(crate) fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Whether `Origin`, when present, names the host the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    !host.is_empty() && origin_host.trim_end_matches('/').eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::HeaderValue;

    use super::*;

    fn auth() -> Auth {
        Auth {
            token: ApiToken::generate(),
            sessions: SessionStore::new(8, Duration::from_secs(60)),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn code(result: Result<Caller, ApiErrorResponse>) -> ErrorCode {
        result.unwrap_err().0.error.code
    }

    #[test]
    fn bearer_token_is_checked() {
        let auth = auth();
        let now = Instant::now();
        let good = format!("Bearer {}", auth.token.expose());
        assert_eq!(
            authenticate(
                &auth,
                &headers(&[("authorization", &good)]),
                &Method::POST,
                now
            )
            .unwrap(),
            Caller::Bearer
        );
        let bad = headers(&[("authorization", "Bearer nope")]);
        assert_eq!(
            code(authenticate(&auth, &bad, &Method::GET, now)),
            ErrorCode::Unauthorized
        );
        assert_eq!(
            code(authenticate(&auth, &HeaderMap::new(), &Method::GET, now)),
            ErrorCode::Unauthorized
        );
    }

    #[test]
    fn session_needs_csrf_for_state_changes_only() {
        let auth = auth();
        let now = Instant::now();
        let s = auth.sessions.open(now);
        let cookie = format!("qubix_session={}", s.id);
        assert!(authenticate(&auth, &headers(&[("cookie", &cookie)]), &Method::GET, now).is_ok());
        let no_csrf = headers(&[("cookie", &cookie)]);
        assert_eq!(
            code(authenticate(&auth, &no_csrf, &Method::DELETE, now)),
            ErrorCode::Forbidden
        );
        let with_csrf = headers(&[("cookie", &cookie), ("x-qubix-csrf", &s.csrf)]);
        assert!(authenticate(&auth, &with_csrf, &Method::DELETE, now).is_ok());
        let stale = headers(&[("cookie", "qubix_session=0000")]);
        assert_eq!(
            code(authenticate(&auth, &stale, &Method::GET, now)),
            ErrorCode::Unauthorized
        );
    }

    #[test]
    fn websocket_upgrades_with_a_cookie_must_be_same_origin() {
        let auth = auth();
        let now = Instant::now();
        let s = auth.sessions.open(now);
        let cookie = format!("qubix_session={}", s.id);
        let ws = |origin: &str| {
            headers(&[
                ("cookie", &cookie),
                ("upgrade", "websocket"),
                ("host", "127.0.0.1:8080"),
                ("origin", origin),
            ])
        };
        assert!(authenticate(&auth, &ws("http://127.0.0.1:8080"), &Method::GET, now).is_ok());
        assert_eq!(
            code(authenticate(
                &auth,
                &ws("http://evil.example"),
                &Method::GET,
                now
            )),
            ErrorCode::Forbidden
        );
    }
}
