//! A job's output for the local-process runtime: the last N lines in a ring, plus a
//! bounded broadcast of new lines for followers. Taking the snapshot and subscribing
//! happen under one lock, so a follower sees every line once, in order.

use std::collections::VecDeque;
use std::sync::Mutex;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use qubix_protocol::api::{LogLine, LogStream};
use qubix_protocol::time::UnixMillis;
use tokio::sync::broadcast;

use crate::runtime::error::RuntimeError;

/// New lines a follower may fall behind by before it is told it lost some.
const FOLLOW_QUEUE: usize = 1024;

/// Lines kept, and the live feed while a process runs.
pub(crate) struct LogRing {
    inner: Mutex<Ring>,
}

struct Ring {
    lines: VecDeque<LogLine>,
    capacity: usize,
    /// Present while a process runs; dropping it ends every follower's stream.
    live: Option<broadcast::Sender<LogLine>>,
}

impl LogRing {
    /// An empty ring keeping at most `capacity` lines.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Ring {
                lines: VecDeque::with_capacity(capacity.min(1024)),
                capacity: capacity.max(1),
                live: None,
            }),
        }
    }

    /// Appends a line, evicting the oldest when full, and feeds followers.
    pub(crate) fn push(&self, line: LogLine) {
        let mut ring = self.lock();
        if ring.lines.len() == ring.capacity {
            ring.lines.pop_front();
        }
        if let Some(live) = &ring.live {
            // No follower is not an error.
            let _ = live.send(line.clone());
        }
        ring.lines.push_back(line);
    }

    /// A line from the node itself (stream `system`).
    pub(crate) fn system(&self, text: impl Into<String>) {
        self.push(LogLine {
            at: UnixMillis::now(),
            stream: LogStream::System,
            line: text.into(),
        });
    }

    /// Opens the live feed for a new run.
    pub(crate) fn open_live(&self) {
        self.lock().live = Some(broadcast::channel(FOLLOW_QUEUE).0);
    }

    /// Closes the live feed: followers' streams end after what they have.
    pub(crate) fn close_live(&self) {
        self.lock().live = None;
    }

    /// The last `tail` lines (all when `None`), then with `follow` the lines of the
    /// current run until it ends.
    pub(crate) fn stream(
        &self,
        follow: bool,
        tail: Option<usize>,
    ) -> BoxStream<'static, Result<LogLine, RuntimeError>> {
        let ring = self.lock();
        let skip = tail.map_or(0, |n| ring.lines.len().saturating_sub(n));
        let past: Vec<_> = ring.lines.iter().skip(skip).cloned().map(Ok).collect();
        let live = ring
            .live
            .as_ref()
            .filter(|_| follow)
            .map(broadcast::Sender::subscribe);
        drop(ring);
        let past = stream::iter(past);
        match live {
            Some(rx) => past.chain(follow_stream(rx)).boxed(),
            None => past.boxed(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding the lock leaves a valid ring; keep using it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// New lines until the run ends; a follower that lags is told how many lines it missed.
fn follow_stream(
    rx: broadcast::Receiver<LogLine>,
) -> impl futures::Stream<Item = Result<LogLine, RuntimeError>> + Send + 'static {
    stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(line) => Some((Ok(line), rx)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                let note = LogLine {
                    at: UnixMillis::now(),
                    stream: LogStream::System,
                    line: format!("qubix: {missed} log lines skipped: the reader fell behind"),
                };
                Some((Ok(note), rx))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LogLine {
        LogLine {
            at: UnixMillis(1),
            stream: LogStream::Stdout,
            line: text.into(),
        }
    }

    async fn texts(s: BoxStream<'static, Result<LogLine, RuntimeError>>) -> Vec<String> {
        s.map(|l| l.unwrap().line).collect().await
    }

    #[tokio::test]
    async fn the_ring_keeps_the_newest_lines() {
        let ring = LogRing::new(3);
        for i in 0..5 {
            ring.push(line(&i.to_string()));
        }
        assert_eq!(texts(ring.stream(false, None)).await, ["2", "3", "4"]);
        assert_eq!(texts(ring.stream(false, Some(2))).await, ["3", "4"]);
    }

    #[tokio::test]
    async fn followers_get_past_and_new_lines_until_the_run_ends() {
        let ring = LogRing::new(10);
        ring.open_live();
        ring.push(line("old"));
        let follower = ring.stream(true, None);
        ring.push(line("new"));
        ring.close_live();
        assert_eq!(texts(follower).await, ["old", "new"]);
    }
}
