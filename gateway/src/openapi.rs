//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document, generated from the handlers'
//! `#[utoipa::path]` attributes and the API types' `ToSchema` derives. The error responses
//! that every route can give (401, 403, 413, 500, 504…) are added by [`CommonErrors`] so
//! each handler lists only its own.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use qubix_protocol::api::ApiError;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes::{instances, market, money, provider, session};

#[derive(OpenApi)]
#[openapi(
    info(title = "Qubix gateway API", description = "REST and WebSocket API of a Qubix node. \
        Authenticate with `Authorization: Bearer <token>` (the token is in `<data-dir>/api-token`). \
        Every failure is `{ \"error\": { \"code\", \"message\", \"field\"? } }`."),
    paths(
        market::health, session::login, session::logout, session::session,
        market::node, market::peers, market::offers, market::explain, market::gpus, market::events,
        instances::launch, instances::list, instances::get_one, instances::act, instances::terminate,
        instances::logs, instances::metrics,
        money::billing, money::ledger_entries, money::receipts, money::wallet, money::withdraw,
        provider::pricing, provider::set_pricing, provider::jobs, provider::earnings, provider::status,
        serve_document, crate::metrics::prometheus,
    ),
    components(schemas(ApiError)),
    modifiers(&Security, &CommonErrors),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "node", description = "This node"),
        (name = "market", description = "Offers and the query language"),
        (name = "instances", description = "GPUs this node rents"),
        (name = "streams", description = "Live data over WebSocket"),
        (name = "money", description = "Billing, ledger and wallet"),
        (name = "provider", description = "Renting out this node's GPUs"),
        (name = "session", description = "Console login"),
    )
)]
struct ApiDoc;

/// The OpenAPI document of the API this crate serves.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| {
    document()
        .to_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
});

/// `GET /api/v1/openapi.json`
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "node",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
pub(crate) async fn serve_document() -> Response {
    let mut response = DOCUMENT_JSON.as_str().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The two ways to authenticate.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The token in `<data-dir>/api-token`."))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let mut cookie = ApiKeyValue::new("qubix_session");
        cookie.description = Some(
            "Console session from `POST /api/v1/login`; POST, PUT and DELETE also need the \
             `X-Qubix-CSRF` header with the session's CSRF value."
                .into(),
        );
        components.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(cookie)));
    }
}

/// Adds the failures any route can produce, without overriding a route's own description.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for (index, op) in ops.into_iter().enumerate() {
                if let Some(op) = op {
                    add_common(op, index > 0);
                }
            }
        }
    }
}

fn add_common(op: &mut Operation, changes_state: bool) {
    let public = op
        .security
        .as_ref()
        .is_some_and(|s| s.iter().all(|r| *r == Default::default()));
    let mut add = |status: &str, what: &str| {
        let response = ResponseBuilder::new()
            .description(what)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name(ApiError::name()))),
            )
            .build();
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert(response.into());
    };
    if !public {
        add(
            "401",
            "`unauthorized`: no or wrong token, or the session expired",
        );
        if changes_state {
            add(
                "403",
                "`forbidden`: a session request without the right `X-Qubix-CSRF` header",
            );
        }
    }
    if op.request_body.is_some() {
        add(
            "400",
            "`invalid_json` (bad JSON, unknown or missing field) or `invalid_value` (out of range)",
        );
        add("413", "`payload_too_large`: the body is over 64 KiB");
    }
    if op.parameters.is_some() {
        add("400", "`invalid_value`: a bad or unknown parameter");
    }
    add("500", "`internal`: a bug; the node logged the details");
    add(
        "503",
        "`unavailable`: the node is busy or a dependency is down",
    );
    add("504", "`timeout`: the node did not answer in time");
}
