//! Live streams over WebSocket: logs, metrics and node events. Each reconnects on a dropped
//! connection (resuming with a fresh tail) until the caller drops the stream.

use futures::{SinkExt, Stream, StreamExt};
use qubix_protocol::AgreementId;
use qubix_protocol::api::{Event, LogEvent, MetricsEvent};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::client::Client;
use crate::error::SdkError;

/// Items buffered between the socket and the caller.
const STREAM_BUFFER: usize = 256;

impl Client {
    fn ws_url(&self, path: &str) -> String {
        let base = self
            .url()
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        format!("{base}/api/v1/{path}")
    }

    async fn connect(
        &self,
        url: &str,
    ) -> Result<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        SdkError,
    > {
        let mut request = url
            .into_client_request()
            .map_err(|e| SdkError::Config(e.to_string()))?;
        let auth = format!("Bearer {}", self.token())
            .parse()
            .map_err(|_| SdkError::Config("token is not a valid header value".into()))?;
        request.headers_mut().insert("authorization", auth);
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| SdkError::Transport {
                url: url.into(),
                message: e.to_string(),
            })?;
        Ok(ws)
    }

    fn stream<T: DeserializeOwned + Send + 'static>(
        &self,
        path: String,
        reconnect: bool,
    ) -> impl Stream<Item = Result<T, SdkError>> + Send + 'static {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let client = self.clone();
        tokio::spawn(async move {
            let url = client.ws_url(&path);
            loop {
                let mut ws = match client.connect(&url).await {
                    Ok(ws) => ws,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                while let Some(msg) = ws.next().await {
                    let item = match msg {
                        Ok(Message::Text(text)) => {
                            serde_json::from_str::<T>(&text).map_err(|e| SdkError::Decode {
                                what: path.clone(),
                                message: e.to_string(),
                            })
                        }
                        Ok(Message::Ping(p)) => {
                            let _ = ws.send(Message::Pong(p)).await;
                            continue;
                        }
                        Ok(Message::Close(_)) => break,
                        Ok(_) => continue,
                        Err(e) => Err(SdkError::Transport {
                            url: url.clone(),
                            message: e.to_string(),
                        }),
                    };
                    let failed = item.is_err();
                    if tx.send(item).await.is_err() {
                        return; // the caller dropped the stream
                    }
                    if failed {
                        break;
                    }
                }
                if !reconnect || tx.is_closed() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        });
        tokio_stream_from(rx)
    }

    /// Live log lines of an instance, after the last `tail` lines. Ends when the instance's
    /// log ends.
    pub fn log_stream(
        &self,
        id: AgreementId,
        tail: u32,
    ) -> impl Stream<Item = Result<LogEvent, SdkError>> + Send + 'static {
        self.stream(format!("instances/{id}/logs?tail={tail}"), false)
    }

    /// Live metrics samples of an instance, after the last `history` samples.
    pub fn metrics_stream(
        &self,
        id: AgreementId,
        history: u32,
    ) -> impl Stream<Item = Result<MetricsEvent, SdkError>> + Send + 'static {
        self.stream(format!("instances/{id}/metrics?history={history}"), false)
    }

    /// The node's live events (offers, instance states, billing, peers); reconnects.
    pub fn events(&self) -> impl Stream<Item = Result<Event, SdkError>> + Send + 'static {
        self.stream("events".into(), true)
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
