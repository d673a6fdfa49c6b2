//! Router tests: every route against the in-memory node, every error code, auth, streams,
//! and the OpenAPI document checked against the responses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod errors;
mod idempotency;
mod openapi;
mod routes;
mod schema;
mod streams;
