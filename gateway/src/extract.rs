//! Extractors whose failures are API errors, not axum's plain-text rejections:
//! [`ApiJson`] (JSON bodies, with the field at fault), [`Params`] (query parameters, unknown
//! ones refused), [`InstanceId`] (the `{id}` path segment) and [`MaybeUpgrade`] (a WebSocket
//! upgrade when the client asks for one).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use qubix_protocol::AgreementId;
use qubix_protocol::api::{ApiError, ErrorCode, InstanceAction};
use serde::de::DeserializeOwned;

use crate::auth::is_websocket_upgrade;
use crate::error::{ApiErrorResponse, api_error};

/// A JSON body of type `T`. Refuses a wrong content type, a body over the limit, bad JSON,
/// unknown or missing fields (`invalid_json`) and out-of-range values (`invalid_value`),
/// naming the field.
#[derive(Debug, Clone)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiErrorResponse;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return Err(api_error(
                ErrorCode::InvalidJson,
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    api_error(
                        ErrorCode::PayloadTooLarge,
                        "the request body is larger than the gateway accepts (64 KiB by default)",
                    )
                } else {
                    api_error(
                        ErrorCode::InvalidJson,
                        format!("could not read the body: {rejection}"),
                    )
                }
            })?;
        decode_json(&bytes).map(ApiJson).map_err(ApiErrorResponse)
    }
}

/// Decodes a JSON document, classifying failures by what the client must fix.
pub(crate) fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| classify(&e))?;
    deserializer.end().map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body has text after the JSON value: {e}"),
        )
    })?;
    Ok(value)
}

fn classify(error: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = error.inner();
    let path = error.path().to_string();
    let text = inner.to_string();
    if !inner.is_data() {
        return ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {text}"),
        );
    }
    let named =
        quoted_name(&text, "unknown field `").or_else(|| quoted_name(&text, "missing field `"));
    let field = match (named, path.as_str()) {
        (Some(name), "." | "") => name.to_owned(),
        (Some(name), path) if path == name || path.ends_with(&format!(".{name}")) => {
            path.to_owned()
        }
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, path) => path.to_owned(),
    };
    let shape = [
        "unknown field",
        "missing field",
        "invalid type",
        "invalid length",
        "unknown variant",
    ]
    .iter()
    .any(|p| text.starts_with(p));
    let code = if shape {
        ErrorCode::InvalidJson
    } else {
        ErrorCode::InvalidValue
    };
    let message = strip_position(&text);
    let error = ApiError::new(code, message);
    if field.is_empty() || field == "." {
        error
    } else {
        error.with_field(field)
    }
}

/// The name in "prefix`name`…".
fn quoted_name<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// serde_json's " at line 1 column 9" helps nobody reading one-line API bodies.
fn strip_position(text: &str) -> String {
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

/// Query parameters, each parsed on demand; a parameter the route does not know is refused
/// (it is usually a typo).
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiErrorResponse;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                api_error(
                    ErrorCode::InvalidValue,
                    format!("the query string is malformed: {e}"),
                )
            })?;
        Ok(Self(map))
    }
}

impl Params {
    /// Refuses parameters other than `known`.
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), ApiErrorResponse> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(unknown) => Err(ApiErrorResponse(
                ApiError::new(
                    ErrorCode::InvalidValue,
                    format!(
                        "unknown query parameter `{unknown}`; this route takes: {}",
                        known.join(", ")
                    ),
                )
                .with_field(unknown.clone()),
            )),
        }
    }

    /// A text parameter.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    /// A whole-number parameter at most `max`.
    pub(crate) fn number(&self, name: &str, max: u32) -> Result<Option<u32>, ApiErrorResponse> {
        let Some(raw) = self.0.get(name) else {
            return Ok(None);
        };
        match raw.parse::<u32>() {
            Ok(n) if n <= max => Ok(Some(n)),
            _ => Err(ApiErrorResponse(
                ApiError::new(
                    ErrorCode::InvalidValue,
                    format!("`{name}` must be a whole number from 0 to {max}"),
                )
                .with_field(name),
            )),
        }
    }
}

/// The `{id}` of an instance route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InstanceId(pub(crate) AgreementId);

impl<S: Send + Sync> FromRequestParts<S> for InstanceId {
    type Rejection = ApiErrorResponse;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(segments) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| api_error(ErrorCode::InvalidValue, format!("bad path: {e}")))?;
        let raw = segments.get("id").map(String::as_str).unwrap_or_default();
        raw.parse().map(InstanceId).map_err(|_| {
            ApiErrorResponse(
                ApiError::new(
                    ErrorCode::InvalidValue,
                    "instance ids are 32 hexadecimal characters, as GET /api/v1/instances lists them",
                )
                .with_field("id"),
            )
        })
    }
}

/// The `{action}` of `POST /api/v1/instances/{id}/{action}`; any other word is `not_found`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActionSegment(pub(crate) InstanceAction);

impl<S: Send + Sync> FromRequestParts<S> for ActionSegment {
    type Rejection = ApiErrorResponse;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(segments) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| api_error(ErrorCode::InvalidValue, format!("bad path: {e}")))?;
        match segments.get("action").map(String::as_str) {
            Some("stop") => Ok(Self(InstanceAction::Stop)),
            Some("start") => Ok(Self(InstanceAction::Start)),
            Some("restart") => Ok(Self(InstanceAction::Restart)),
            _ => Err(ApiErrorResponse(
                ApiError::new(
                    ErrorCode::NotFound,
                    "no such instance action; use stop, start or restart (DELETE the instance to terminate it)",
                )
                .with_field("action"),
            )),
        }
    }
}

/// A WebSocket upgrade when the request asks for one (`Upgrade: websocket`), else `None`,
/// so one route can serve both a live stream and a JSON snapshot.
#[derive(Debug)]
pub(crate) struct MaybeUpgrade(pub(crate) Option<WebSocketUpgrade>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUpgrade {
    type Rejection = ApiErrorResponse;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if !is_websocket_upgrade(&parts.headers) {
            return Ok(Self(None));
        }
        let upgrade = WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                api_error(
                    ErrorCode::InvalidValue,
                    format!("bad WebSocket upgrade: {e}"),
                )
            })?;
        Ok(Self(Some(upgrade)))
    }
}

#[cfg(test)]
mod tests {
    use qubix_protocol::api::{LaunchRequest, WithdrawRequest};

    use super::*;

    fn err<T: DeserializeOwned + std::fmt::Debug>(json: &str) -> ApiError {
        decode_json::<T>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn unknown_field_is_named() {
        let e = err::<WithdrawRequest>(r#"{"to":"A","amount":1,"memo":"x"}"#);
        assert_eq!(
            (e.error.code, e.error.field.as_deref()),
            (ErrorCode::InvalidJson, Some("memo"))
        );
    }

    #[test]
    fn out_of_range_value_is_invalid_value_with_its_path() {
        let e = err::<LaunchRequest>(r#"{"image":"x","gpus":-1,"duration_secs":60}"#);
        assert_eq!(
            (e.error.code, e.error.field.as_deref()),
            (ErrorCode::InvalidValue, Some("gpus"))
        );
        let e =
            err::<LaunchRequest>(r#"{"image":"x","gpus":1,"duration_secs":60,"offer_id":"zz"}"#);
        assert_eq!(
            (e.error.code, e.error.field.as_deref()),
            (ErrorCode::InvalidValue, Some("offer_id"))
        );
    }

    #[test]
    fn syntax_and_shape_errors_are_invalid_json() {
        assert_eq!(
            err::<WithdrawRequest>("{").error.code,
            ErrorCode::InvalidJson
        );
        assert_eq!(
            err::<WithdrawRequest>(r#"{"to":"A"} x"#).error.code,
            ErrorCode::InvalidJson
        );
        let e = err::<WithdrawRequest>(r#"{"to":"A"}"#);
        assert_eq!(
            (e.error.code, e.error.field.as_deref()),
            (ErrorCode::InvalidJson, Some("amount"))
        );
        let e = err::<WithdrawRequest>(r#"{"to":5,"amount":1}"#);
        assert_eq!(
            (e.error.code, e.error.field.as_deref()),
            (ErrorCode::InvalidJson, Some("to"))
        );
    }
}
