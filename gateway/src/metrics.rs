//! The gateway's own Prometheus figures (requests by route and status, their latency, open
//! streams, sessions) and `GET /metrics`, which appends the node's figures to them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::config::AppState;
use crate::node_api::NodeApi;

/// Most distinct (method, route, status) series kept; requests beyond it are counted under
/// one `other` series. The labels are already finite (methods outside [`METHODS`] are
/// `other`, routes are templates or `unmatched`, statuses are those the gateway sends), so
/// this is a second bound, not the first.
const MAX_SERIES: usize = 512;

/// Methods counted under their own name; any other method string is `other`.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// Counters keyed by (method, route template, status): a bounded set, since methods are
/// one of [`METHODS`] or `other`, routes are templates and unmatched requests share one key.
#[derive(Debug, Default)]
pub(crate) struct GatewayMetrics {
    requests: Mutex<BTreeMap<(&'static str, String, u16), RequestFigures>>,
    streams_open: AtomicU64,
    streams_total: AtomicU64,
    streams_lagged: AtomicU64,
}

#[derive(Debug, Default, Clone, Copy)]
struct RequestFigures {
    count: u64,
    seconds: f64,
}

impl GatewayMetrics {
    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = METHODS
            .iter()
            .find(|known| **known == method)
            .copied()
            .unwrap_or("other");
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut key = (method, route.to_owned(), status);
        if !requests.contains_key(&key) && requests.len() >= MAX_SERIES - 1 {
            key = ("other", "other".to_owned(), 0);
        }
        let figures = requests.entry(key).or_default();
        figures.count += 1;
        figures.seconds += seconds;
    }

    /// A WebSocket stream opened; the guard counts it closed when dropped.
    pub(crate) fn stream_opened(&self) -> StreamGuard<'_> {
        self.streams_open.fetch_add(1, Ordering::Relaxed);
        self.streams_total.fetch_add(1, Ordering::Relaxed);
        StreamGuard(self)
    }

    /// A stream client fell behind and was told so.
    pub(crate) fn stream_lagged(&self) {
        self.streams_lagged.fetch_add(1, Ordering::Relaxed);
    }

    /// The figures in Prometheus text format.
    pub(crate) fn render(&self, sessions: usize) -> String {
        let mut out = String::new();
        self.render_requests(&mut out);
        let gauges = [
            (
                "qubix_gateway_streams_open",
                "gauge",
                "WebSocket streams open now.",
                self.streams_open.load(Ordering::Relaxed),
            ),
            (
                "qubix_gateway_streams_total",
                "counter",
                "WebSocket streams opened.",
                self.streams_total.load(Ordering::Relaxed),
            ),
            (
                "qubix_gateway_stream_lags_total",
                "counter",
                "Times a stream client fell behind.",
                self.streams_lagged.load(Ordering::Relaxed),
            ),
            (
                "qubix_gateway_sessions",
                "gauge",
                "Console sessions held.",
                sessions as u64,
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }

    fn render_requests(&self, out: &mut String) {
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.push_str("# HELP qubix_gateway_requests_total HTTP requests served.\n");
        out.push_str("# TYPE qubix_gateway_requests_total counter\n");
        for ((method, route, status), f) in requests.iter() {
            let _ = writeln!(
                out,
                "qubix_gateway_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}",
                f.count
            );
        }
        out.push_str("# HELP qubix_gateway_request_seconds_sum Time spent serving requests.\n");
        out.push_str("# TYPE qubix_gateway_request_seconds_sum counter\n");
        for ((method, route, status), f) in requests.iter() {
            let _ = writeln!(
                out,
                "qubix_gateway_request_seconds_sum{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {:.6}",
                f.seconds
            );
        }
    }
}

/// Counts a stream closed when dropped.
#[derive(Debug)]
pub(crate) struct StreamGuard<'a>(&'a GatewayMetrics);

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        self.0.streams_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Middleware: records every request's route template, status and duration.
pub(crate) async fn track<A: NodeApi>(
    State(state): State<AppState<A>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::debug_span!("request", %method, %route);
    let response = next.run(request).instrument(span).await;
    let seconds = started.elapsed().as_secs_f64();
    state
        .metrics
        .record(&method, &route, response.status().as_u16(), seconds);
    tracing::debug!(%method, %route, status = response.status().as_u16(), ms = seconds * 1e3, "request served");
    response
}

/// `GET /metrics`: the gateway's figures, then the node's.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "node",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String))
)]
pub(crate) async fn prometheus<A: NodeApi>(State(state): State<AppState<A>>) -> Response {
    let mut text = state.metrics.render(state.auth.sessions.len());
    text.push_str(&state.api.prometheus().await);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_render_as_prometheus_text() {
        let m = GatewayMetrics::default();
        m.record("GET", "/api/v1/node", 200, 0.5);
        m.record("GET", "/api/v1/node", 200, 0.25);
        let guard = m.stream_opened();
        let text = m.render(3);
        assert!(text.contains("qubix_gateway_requests_total{method=\"GET\",route=\"/api/v1/node\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("qubix_gateway_streams_open 1"));
        assert!(text.contains("qubix_gateway_sessions 3"));
        drop(guard);
        assert!(m.render(0).contains("qubix_gateway_streams_open 0"));
    }

    #[test]
    fn unknown_methods_are_other_and_series_are_bounded() {
        let m = GatewayMetrics::default();
        for i in 0..10_000 {
            m.record(&format!("M{i}"), "unmatched", 404, 0.0);
        }
        m.record("GET", "/api/v1/node", 200, 0.0);
        let text = m.render(0);
        assert!(
            text.contains("method=\"other\",route=\"unmatched\",status=\"404\"} 10000"),
            "{text}"
        );
        assert!(!text.contains("M1"), "a method string became a label");
        for status in 0..2_000 {
            m.record("GET", &format!("/route/{status}"), status, 0.0);
        }
        let series = m.requests.lock().unwrap().len();
        assert_eq!(series, MAX_SERIES);
        assert!(m.render(0).contains(
            "qubix_gateway_requests_total{method=\"other\",route=\"other\",status=\"0\"}"
        ));
    }
}
