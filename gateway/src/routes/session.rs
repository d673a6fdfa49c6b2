//! Console login: the token is traded for a session cookie (HttpOnly, SameSite=Strict; the
//! token itself never goes into a cookie) and a CSRF value the console keeps in memory.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use qubix_protocol::UnixMillis;
use qubix_protocol::api::{ApiError, ErrorCode, LoginRequest, SessionInfo};

use crate::auth::Caller;
use crate::config::AppState;
use crate::error::{ApiErrorResponse, api_error};
use crate::extract::ApiJson;
use crate::node_api::NodeApi;
use crate::session::{clear_cookie, session_cookie};

/// `POST /api/v1/login`
#[utoipa::path(post, path = "/api/v1/login", tag = "session", security(()), request_body = LoginRequest,
    responses((status = 200, description = "Logged in; the session cookie is set", body = SessionInfo,
            headers(("set-cookie" = String, description = "`qubix_session=…; HttpOnly; SameSite=Strict; Path=/`"))),
        (status = 401, description = "`unauthorized`: wrong token", body = ApiError)))]
pub(crate) async fn login<A: NodeApi>(
    State(s): State<AppState<A>>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response, ApiErrorResponse> {
    if !s.auth.token.matches(&request.token) {
        tracing::warn!("console login with a wrong token");
        return Err(api_error(
            ErrorCode::Unauthorized,
            "wrong token; copy it from <data-dir>/api-token or open the login URL the node printed",
        ));
    }
    let session = s.auth.sessions.open(Instant::now());
    let cookie = HeaderValue::from_str(&session_cookie(&session.id, session.ttl))
        .map_err(|_| api_error(ErrorCode::Internal, "the session cookie could not be built"))?;
    let info = SessionInfo {
        csrf: session.csrf,
        expires_at: expiry(session.ttl),
    };
    let mut response = Json(info).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

/// `POST /api/v1/logout`
#[utoipa::path(post, path = "/api/v1/logout", tag = "session",
    responses((status = 204, description = "The session is closed and its cookie cleared")))]
pub(crate) async fn logout<A: NodeApi>(
    State(s): State<AppState<A>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if let Caller::Session { id } = caller {
        s.auth.sessions.close(&id);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(cookie) = HeaderValue::from_str(&clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `GET /api/v1/session`
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    description = "The CSRF value of the console session the cookie names (after a page reload).",
    responses((status = 200, description = "The session", body = SessionInfo),
        (status = 404, description = "`not_found`: bearer clients have no session and need no CSRF value", body = ApiError)))]
pub(crate) async fn session<A: NodeApi>(
    State(s): State<AppState<A>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<SessionInfo>, ApiErrorResponse> {
    let no_session = || {
        ApiErrorResponse(ApiError::new(
            ErrorCode::NotFound,
            "no console session: bearer-authenticated clients need no CSRF value",
        ))
    };
    let Caller::Session { id } = caller else {
        return Err(no_session());
    };
    let (csrf, left) = s
        .auth
        .sessions
        .get(&id, Instant::now())
        .ok_or_else(no_session)?;
    Ok(Json(SessionInfo {
        csrf,
        expires_at: expiry(left),
    }))
}

fn expiry(left: Duration) -> UnixMillis {
    UnixMillis::now().saturating_add(left)
}
