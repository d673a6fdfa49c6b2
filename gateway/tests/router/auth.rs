//! Authentication everywhere but health and login; console sessions; CSRF.

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use qubix_gateway::route_table;
use qubix_gateway::routes::Access;

use crate::common::fake::FakeNode;
use crate::common::{Auth, Harness, running_id};

/// Every route that needs credentials, from the table the router itself is built from.
fn operations() -> Vec<(Method, String)> {
    route_table::<FakeNode>()
        .into_iter()
        .filter(|r| r.access == Access::Owner)
        .map(|r| {
            let concrete = r
                .path
                .replace("{id}", &running_id())
                .replace("{action}", "stop");
            (r.method, concrete)
        })
        .collect()
}

#[test]
fn only_health_and_login_are_public() {
    let public: Vec<(Method, &str)> = route_table::<FakeNode>()
        .into_iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        public,
        [
            (Method::GET, "/api/v1/health"),
            (Method::POST, "/api/v1/login")
        ]
    );
}

#[tokio::test]
async fn every_route_but_health_and_login_needs_credentials() {
    let h = Harness::new();
    let ops = operations();
    assert!(ops.len() >= 25, "{ops:?}");
    for (method, path) in ops {
        for auth in [
            Auth::None,
            Auth::Header("Bearer 0123".into()),
            Auth::Header("Basic abc".into()),
        ] {
            let reply = h.call(method.clone(), &path, auth.clone(), None).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {auth:?}: {}",
                reply.text
            );
            assert_eq!(reply.code(), "unauthorized");
            assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
        }
    }
    assert_eq!(h.fake.launches().len(), 0);
}

#[tokio::test]
async fn a_wrong_token_does_not_log_in() {
    let h = Harness::new();
    let reply = h
        .call(
            Method::POST,
            "/api/v1/login",
            Auth::None,
            Some(json!({ "token": "f".repeat(64) })),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    assert!(reply.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_that_is_not_the_token() {
    let h = Harness::new();
    let body = json!({ "token": h.token.expose() });
    let reply = h
        .call(Method::POST, "/api/v1/login", Auth::None, Some(body))
        .await;
    let cookie = reply.headers[header::SET_COOKIE].to_str().unwrap();
    for attribute in [
        "qubix_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains(h.token.expose()));
    assert_eq!(reply.body["csrf"].as_str().unwrap().len(), 64);
}

#[tokio::test]
async fn a_session_reads_freely_but_changes_state_only_with_csrf() {
    let h = Harness::new();
    let (cookie, csrf) = h.login().await;
    let session = |csrf: Option<&str>| Auth::Session {
        cookie: cookie.clone(),
        csrf: csrf.map(str::to_owned),
    };
    assert_eq!(
        h.call(Method::GET, "/api/v1/node", session(None), None)
            .await
            .status,
        StatusCode::OK
    );
    let stop = format!("/api/v1/instances/{}/stop", running_id());
    let forged = h.call(Method::POST, &stop, session(None), None).await;
    assert_eq!(
        (forged.status, forged.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let wrong = h
        .call(Method::POST, &stop, session(Some("abc")), None)
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let ok = h
        .call(Method::POST, &stop, session(Some(&csrf)), None)
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let again = h
        .call(Method::GET, "/api/v1/session", session(None), None)
        .await;
    assert_eq!(
        again.body["csrf"],
        csrf.as_str(),
        "a reloaded console gets its CSRF value back"
    );
}

#[tokio::test]
async fn bearer_requests_need_no_csrf() {
    let h = Harness::new();
    let stop = format!("/api/v1/instances/{}/stop", running_id());
    assert_eq!(
        h.call(Method::POST, &stop, Auth::Bearer, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let h = Harness::new();
    let (cookie, csrf) = h.login().await;
    let auth = Auth::Session {
        cookie: cookie.clone(),
        csrf: Some(csrf),
    };
    let reply = h
        .call(Method::POST, "/api/v1/logout", auth.clone(), None)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(
        reply.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = h.call(Method::GET, "/api/v1/node", auth, None).await;
    assert_eq!(
        (after.status, after.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
}
