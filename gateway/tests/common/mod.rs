//! Shared by the router and console tests: the in-memory node ([`fake::FakeNode`]), its
//! sample data, and [`Harness`], which calls the router without a network.

#![allow(dead_code, unreachable_pub)]

pub mod data;
pub mod fake;
pub mod query;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use qubix_gateway::{ApiToken, GatewayConfig, router};
use serde_json::Value;
use tower::ServiceExt;

use self::fake::FakeNode;

/// How a test request authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No credentials.
    None,
    /// `Authorization: Bearer` with the right token.
    Bearer,
    /// A raw `Authorization` value.
    Header(String),
    /// A session cookie, with an optional CSRF value.
    Session {
        cookie: String,
        csrf: Option<String>,
    },
}

/// A response as tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an ApiError: {}", self.text))
    }

    /// The field of an error body.
    pub fn field(&self) -> Option<&str> {
        self.body["error"]["field"].as_str()
    }
}

/// The router over a fresh [`FakeNode`].
pub struct Harness {
    pub fake: Arc<FakeNode>,
    pub token: ApiToken,
    pub app: Router,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(FakeNode::new(), GatewayConfig::default())
    }

    pub fn with(fake: FakeNode, config: GatewayConfig) -> Self {
        let fake = Arc::new(fake);
        let token = ApiToken::generate();
        let app = router(Arc::clone(&fake), token.clone(), config);
        Self { fake, token, app }
    }

    /// Sends a request with a raw body and content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        auth: Auth,
        body: Option<(&str, Vec<u8>)>,
    ) -> Reply {
        self.raw_with(method, path, auth, body, &[]).await
    }

    /// A JSON request with the bearer token and an `Idempotency-Key`.
    pub async fn keyed(&self, method: Method, path: &str, json: Value, key: &str) -> Reply {
        let body = Some(("application/json", serde_json::to_vec(&json).unwrap()));
        self.raw_with(
            method,
            path,
            Auth::Bearer,
            body,
            &[("idempotency-key", key)],
        )
        .await
    }

    /// Sends a request with a raw body, content type and extra headers.
    pub async fn raw_with(
        &self,
        method: Method,
        path: &str,
        auth: Auth,
        body: Option<(&str, Vec<u8>)>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "127.0.0.1:8080");
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request = match auth {
            Auth::None => request,
            Auth::Bearer => request.header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.token.expose()),
            ),
            Auth::Header(value) => request.header(header::AUTHORIZATION, value),
            Auth::Session { cookie, csrf } => {
                let request = request.header(header::COOKIE, cookie);
                match csrf {
                    Some(csrf) => request.header("x-qubix-csrf", csrf),
                    None => request,
                }
            }
        };
        let body = match body {
            Some((content_type, bytes)) => {
                request = request.header(header::CONTENT_TYPE, content_type);
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
            text,
        }
    }

    /// A request with a JSON body (or none) and the given credentials.
    pub async fn call(&self, method: Method, path: &str, auth: Auth, json: Option<Value>) -> Reply {
        let body = json.map(|v| ("application/json", serde_json::to_vec(&v).unwrap()));
        self.raw(method, path, auth, body).await
    }

    /// `GET` with the bearer token.
    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, Auth::Bearer, None).await
    }

    /// A JSON request with the bearer token.
    pub async fn send(&self, method: Method, path: &str, json: Value) -> Reply {
        self.call(method, path, Auth::Bearer, Some(json)).await
    }

    /// Logs in as the console does; returns the cookie and CSRF value.
    pub async fn login(&self) -> (String, String) {
        let body = serde_json::json!({ "token": self.token.expose() });
        let reply = self
            .call(Method::POST, "/api/v1/login", Auth::None, Some(body))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let set_cookie = reply.headers[header::SET_COOKIE].to_str().unwrap();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        (cookie, reply.body["csrf"].as_str().unwrap().to_owned())
    }
}

/// The id of the instance that runs in the fake from the start.
pub fn running_id() -> String {
    data::running_id().to_string()
}
