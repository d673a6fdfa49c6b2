//! Live streams over a real socket: events, logs and metrics, lag reporting, the stream cap,
//! shutdown, and binding errors.

use std::sync::Arc;

use futures::StreamExt;
use qubix_gateway::{ApiToken, Gateway, GatewayConfig, GatewayError, serve_with};
use qubix_protocol::api::{Event, LogEvent, MetricsEvent};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::common::fake::{FEED_CAPACITY, FakeNode};
use crate::common::running_id;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Server {
    fake: Arc<FakeNode>,
    token: ApiToken,
    gateway: Gateway,
    stop: oneshot::Sender<()>,
}

async fn start(config: GatewayConfig) -> Server {
    let fake = Arc::new(FakeNode::new());
    let token = ApiToken::generate();
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let addr = "127.0.0.1:0".parse().unwrap();
    let gateway = serve_with(addr, Arc::clone(&fake), token.clone(), config, shutdown)
        .await
        .unwrap();
    Server {
        fake,
        token,
        gateway,
        stop,
    }
}

impl Server {
    async fn connect(&self, path: &str) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
        let url = format!("ws://{}{path}", self.gateway.local_addr());
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.token.expose()).parse().unwrap(),
        );
        connect_async(request).await.map(|(socket, _)| socket)
    }
}

async fn next_json(socket: &mut Socket) -> Value {
    let waited = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next()).await;
    match waited.expect("no stream message within 5 s") {
        Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a JSON text message, got {other:?}"),
    }
}

#[tokio::test]
async fn events_arrive_and_a_slow_client_is_told_it_lagged() {
    let server = start(GatewayConfig::default()).await;
    let mut socket = server.connect("/api/v1/events").await.unwrap();
    // Without yielding, the stream task cannot read: the bounded feed overflows.
    for _ in 0..FEED_CAPACITY + 24 {
        server.fake.send_event(Event::Peer {
            node_id: crate::common::data::node(5),
            connected: true,
        });
    }
    let first: Event = serde_json::from_value(next_json(&mut socket).await).unwrap();
    assert_eq!(first, Event::Lagged { missed: 24 });
    for _ in 0..FEED_CAPACITY {
        assert_eq!(next_json(&mut socket).await["type"], "peer");
    }
    server
        .fake
        .add_offer(crate::common::data::offers()[2].clone());
    assert_eq!(next_json(&mut socket).await["type"], "offer_updated");
}

#[tokio::test]
async fn logs_stream_history_then_live_lines() {
    let server = start(GatewayConfig::default()).await;
    let mut socket = server
        .connect(&format!("/api/v1/instances/{}/logs?tail=5", running_id()))
        .await
        .unwrap();
    for i in 15..20 {
        let event: LogEvent = serde_json::from_value(next_json(&mut socket).await).unwrap();
        let LogEvent::Line(line) = event else {
            panic!("expected a line")
        };
        assert!(line.line.starts_with(&format!("epoch {i}:")), "{line:?}");
    }
    assert_eq!(server.fake.push_log("live line"), 1);
    assert_eq!(next_json(&mut socket).await["line"], "live line");
    for i in 0..FEED_CAPACITY + 3 {
        server.fake.push_log(&format!("burst {i}"));
    }
    assert_eq!(
        next_json(&mut socket).await,
        serde_json::json!({ "type": "lagged", "missed": 3 })
    );
}

#[tokio::test]
async fn metrics_stream_history_then_live_samples() {
    let server = start(GatewayConfig::default()).await;
    let mut socket = server
        .connect(&format!(
            "/api/v1/instances/{}/metrics?history=3",
            running_id()
        ))
        .await
        .unwrap();
    for _ in 0..3 {
        let event: MetricsEvent = serde_json::from_value(next_json(&mut socket).await).unwrap();
        assert!(
            matches!(event, MetricsEvent::Sample(ref s) if s.simulated),
            "{event:?}"
        );
    }
    server.fake.push_metrics(99);
    let live = next_json(&mut socket).await;
    assert_eq!(
        (live["type"].as_str(), live["at"].as_u64()),
        (
            Some("sample"),
            Some(crate::common::data::metrics_sample(99).at.0)
        )
    );
}

#[tokio::test]
async fn unknown_instance_streams_are_refused_before_the_upgrade() {
    let server = start(GatewayConfig::default()).await;
    let err = server
        .connect(&format!("/api/v1/instances/{}/logs", "0".repeat(32)))
        .await
        .unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
        panic!("expected an HTTP refusal: {err}")
    };
    assert_eq!(response.status(), 404);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn streams_beyond_the_cap_are_refused_as_unavailable() {
    let server = start(GatewayConfig {
        max_streams: 1,
        ..GatewayConfig::default()
    })
    .await;
    let _first = server.connect("/api/v1/events").await.unwrap();
    let err = server.connect("/api/v1/events").await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
        panic!("expected an HTTP refusal: {err}")
    };
    assert_eq!(response.status(), 503);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
}

#[tokio::test]
async fn a_cross_site_websocket_with_the_session_cookie_is_forbidden() {
    let server = start(GatewayConfig::default()).await;
    let addr = server.gateway.local_addr();
    let client = reqwest_free_login(addr, &server.token).await;
    let mut request = format!("ws://{addr}/api/v1/events")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", client.parse().unwrap());
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    let err = connect_async(request).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
        panic!("expected an HTTP refusal: {err}")
    };
    assert_eq!(response.status(), 403);
}

/// Logs in over a raw HTTP/1.1 exchange and returns the `name=value` of the session cookie.
async fn reqwest_free_login(addr: std::net::SocketAddr, token: &ApiToken) -> String {
    let body = serde_json::json!({ "token": token.expose() }).to_string();
    cookie_of(&raw_http(addr, "POST /api/v1/login HTTP/1.1", &body).await)
}

/// A raw HTTP/1.1 exchange; returns the whole response text.
async fn raw_http(addr: std::net::SocketAddr, head: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!(
        "{head}\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// Opens the events stream as the console does: the session cookie, the gateway's origin.
async fn session_stream(addr: std::net::SocketAddr, cookie: &str) -> Socket {
    let mut request = format!("ws://{addr}/api/v1/events")
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("cookie", cookie.parse().unwrap());
    headers.insert("origin", format!("http://{addr}").parse().unwrap());
    connect_async(request).await.unwrap().0
}

/// Waits for the close frame of a stream whose session ended.
async fn closed_for_the_session(socket: &mut Socket) {
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next())
            .await
            .expect("the stream outlived its session");
        match next {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), qubix_gateway::SESSION_ENDED);
                return;
            }
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn logout_closes_the_sessions_streams_and_a_bearer_stream_stays() {
    let server = start(GatewayConfig::default()).await;
    let addr = server.gateway.local_addr();
    let body = serde_json::json!({ "token": server.token.expose() }).to_string();
    let login = raw_http(addr, "POST /api/v1/login HTTP/1.1", &body).await;
    let cookie = cookie_of(&login);
    let json: Value = serde_json::from_str(login.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let csrf = json["csrf"].as_str().unwrap().to_owned();
    let mut console = session_stream(addr, &cookie).await;
    let mut program = server.connect("/api/v1/events").await.unwrap();
    let logout = raw_http(
        addr,
        &format!("POST /api/v1/logout HTTP/1.1\r\nCookie: {cookie}\r\nX-Qubix-CSRF: {csrf}"),
        "",
    )
    .await;
    assert!(logout.starts_with("HTTP/1.1 204"), "{logout}");
    closed_for_the_session(&mut console).await;
    server.fake.send_event(Event::Peer {
        node_id: crate::common::data::node(5),
        connected: true,
    });
    assert_eq!(next_json(&mut program).await["type"], "peer");
}

#[tokio::test]
async fn a_sessions_stream_closes_when_the_session_expires() {
    let server = start(GatewayConfig {
        session_ttl: std::time::Duration::from_secs(2),
        ..GatewayConfig::default()
    })
    .await;
    let addr = server.gateway.local_addr();
    let cookie = reqwest_free_login(addr, &server.token).await;
    let mut console = session_stream(addr, &cookie).await;
    closed_for_the_session(&mut console).await;
}

fn cookie_of(response: &str) -> String {
    let line = response
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect(response);
    line.split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn shutdown_closes_open_streams() {
    let server = start(GatewayConfig::default()).await;
    let mut socket = server.connect("/api/v1/events").await.unwrap();
    server.stop.send(()).unwrap();
    let closing = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next())
        .await
        .expect("no close within 5 s");
    match closing {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a close frame, got {other:?}"),
    }
    tokio::time::timeout(std::time::Duration::from_secs(5), server.gateway.wait())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_busy_address_says_what_to_do() {
    let server = start(GatewayConfig::default()).await;
    let addr = server.gateway.local_addr();
    let err = serve_with(
        addr,
        Arc::new(FakeNode::new()),
        ApiToken::generate(),
        GatewayConfig::default(),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, GatewayError::AddrInUse { .. }));
    assert_eq!(
        err.to_string(),
        format!("gateway address {addr} is in use; pass --gateway with another port")
    );
}

#[tokio::test]
async fn events_without_an_upgrade_is_a_clear_error() {
    let h = crate::common::Harness::new();
    let reply = h.get("/api/v1/events").await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (400, "invalid_value")
    );
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("WebSocket")
    );
}
