//! Live streams over WebSocket: a history, then a `broadcast` feed, as JSON text messages.
//!
//! Each client reads from its own bounded `broadcast` receiver, so the node's sender never
//! waits; a client that falls behind loses the oldest items and is sent one `lagged`
//! message with the count. A client that stops reading altogether is disconnected when a
//! send waits longer than `stream_send_timeout`. The number of open streams is capped.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use qubix_protocol::api::ErrorCode;
use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::broadcast::{self, error::RecvError};
use tracing::Instrument;

use crate::auth::Caller;
use crate::config::AppState;
use crate::error::api_error;
use crate::session::SessionWatch;

/// Largest message a client may send us (we expect none but pings and close).
const MAX_INCOMING: usize = 4 * 1024;

/// Close code of a stream whose console session ended (an application code, 4000–4999,
/// modelled on HTTP 401).
pub const SESSION_ENDED: u16 = 4401;

/// What a stream sends: `history` first, then every item of `live` wrapped by `wrap`, and
/// `lagged(n)` whenever `n` items were dropped for this client.
pub(crate) struct Feed<T, M> {
    pub(crate) history: Vec<M>,
    pub(crate) live: broadcast::Receiver<T>,
    pub(crate) wrap: fn(T) -> M,
    pub(crate) lagged: fn(u64) -> M,
}

/// Accepts the upgrade and runs the stream in its own task; refuses it with `unavailable`
/// when the stream cap is reached. A stream opened by a console session ends with the
/// session (logout, eviction or expiry), closed with code 4401; one opened with the bearer
/// token lives until the client or the gateway ends it.
pub(crate) fn open<A, T, M>(
    state: &AppState<A>,
    caller: &Caller,
    upgrade: WebSocketUpgrade,
    what: &'static str,
    feed: Feed<T, M>,
) -> Response
where
    A: Send + Sync + 'static,
    T: Clone + Send + 'static,
    M: Serialize + Send + Sync + 'static,
{
    let session = match caller {
        Caller::Bearer => None,
        Caller::Session { id } => match state.auth.sessions.watch(id, Instant::now()) {
            Some(watch) => Some(watch),
            None => {
                return api_error(
                    ErrorCode::Unauthorized,
                    "your console session has expired; log in again",
                )
                .into_response();
            }
        },
    };
    let Ok(permit) = state.streams.clone().try_acquire_owned() else {
        return api_error(
            ErrorCode::Unavailable,
            "too many live streams are open; close a console tab or a client and retry",
        )
        .into_response();
    };
    let state = state.clone();
    upgrade
        .max_message_size(MAX_INCOMING)
        .max_frame_size(MAX_INCOMING)
        .on_upgrade(move |socket| {
            let span = tracing::debug_span!("stream", stream = what);
            async move {
                tracing::debug!("stream opened");
                pump(socket, feed, &state, session, permit).await;
                tracing::debug!("stream closed");
            }
            .instrument(span)
        })
}

async fn pump<A, T, M>(
    mut socket: WebSocket,
    mut feed: Feed<T, M>,
    state: &AppState<A>,
    mut session: Option<SessionWatch>,
    _permit: OwnedSemaphorePermit,
) where
    T: Clone + Send,
    M: Serialize + Send + Sync,
{
    let _open = state.metrics.stream_opened();
    let timeout = state.config.stream_send_timeout;
    let mut shutdown = state.shutdown.clone();
    for item in std::mem::take(&mut feed.history) {
        if send(&mut socket, &item, timeout).await.is_err() {
            return;
        }
    }
    loop {
        let item = tokio::select! {
            biased;
            () = shutdown.wait() => return close(socket, close_code::AWAY, "the gateway is shutting down").await,
            () = session_ended(&mut session) => {
                tracing::debug!("the session that opened the stream ended");
                return close(socket, SESSION_ENDED, "the console session ended; log in again").await;
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
            next = feed.live.recv() => match next {
                Ok(value) => (feed.wrap)(value),
                Err(RecvError::Lagged(missed)) => {
                    state.metrics.stream_lagged();
                    tracing::debug!(missed, "stream client lagged");
                    (feed.lagged)(missed)
                }
                Err(RecvError::Closed) => return close(socket, close_code::NORMAL, "the stream ended").await,
            },
        };
        if send(&mut socket, &item, timeout).await.is_err() {
            return;
        }
    }
}

/// Completes when the console session behind a stream ends; never for bearer streams.
async fn session_ended(session: &mut Option<SessionWatch>) {
    match session {
        Some(watch) => watch.ended().await,
        None => std::future::pending().await,
    }
}

/// Sends one JSON message; fails when the client is gone or does not read within `timeout`.
async fn send<M: Serialize>(socket: &mut WebSocket, item: &M, timeout: Duration) -> Result<(), ()> {
    let text = serde_json::to_string(item)
        .map_err(|e| tracing::error!(error = %e, "stream item did not serialize"))?;
    match tokio::time::timeout(timeout, socket.send(Message::Text(text.into()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(()),
        Err(_) => {
            tracing::info!(
                timeout_ms = timeout.as_millis() as u64,
                "stream client stopped reading; disconnected"
            );
            Err(())
        }
    }
}

async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}
