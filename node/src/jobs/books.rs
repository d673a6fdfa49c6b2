//! Bounded, sequence-numbered buffers of a job's log lines and metrics samples. Writers never
//! wait: when a buffer is full the oldest entry goes, and readers that asked for it learn how
//! many they missed. Local subscribers (the API's live feeds) get a broadcast that reports
//! lag instead of slowing anyone down.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use qubix_protocol::UnixMillis;
use qubix_protocol::api::{LogLine, LogStream, MetricsSample};
use tokio::sync::broadcast;

/// Log lines kept per job.
pub const LOG_LINES: usize = 5_000;
/// Metrics samples kept per job (10 minutes at one per 5 s).
pub const METRICS_SAMPLES: usize = 120;
/// Capacity of a live feed before a slow subscriber lags.
const FEED: usize = 512;

/// A bounded buffer of `T` with sequence numbers and a live feed.
#[derive(Debug)]
pub struct Book<T: Clone> {
    inner: Mutex<Inner<T>>,
    feed: broadcast::Sender<T>,
}

#[derive(Debug)]
struct Inner<T> {
    items: VecDeque<(u64, T)>,
    next: u64,
    capacity: usize,
}

impl<T: Clone> Book<T> {
    /// An empty book keeping at most `capacity` entries.
    pub fn new(capacity: usize) -> Arc<Self> {
        let (feed, _) = broadcast::channel(FEED);
        Arc::new(Self {
            inner: Mutex::new(Inner {
                items: VecDeque::with_capacity(capacity.min(1024)),
                next: 1,
                capacity,
            }),
            feed,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends an entry, dropping the oldest when full; returns its sequence number.
    pub fn push(&self, item: T) -> u64 {
        let mut inner = self.lock();
        let seq = inner.next;
        inner.next += 1;
        if inner.items.len() >= inner.capacity {
            inner.items.pop_front();
        }
        inner.items.push_back((seq, item.clone()));
        let _ = self.feed.send(item);
        seq
    }

    /// Entries after `after`, at most `max`, and how many after `after` were already dropped.
    pub fn after(&self, after: u64, max: usize) -> (Vec<(u64, T)>, u64) {
        let inner = self.lock();
        let oldest = inner.items.front().map_or(inner.next, |(s, _)| *s);
        let dropped = oldest.saturating_sub(after + 1);
        let items = inner
            .items
            .iter()
            .filter(|(s, _)| *s > after)
            .take(max)
            .cloned()
            .collect();
        (items, dropped)
    }

    /// The last `n` entries and a live feed of the ones after them, taken under one lock so
    /// that no entry is missed or seen twice.
    pub fn tail_and_follow(&self, n: usize) -> (Vec<T>, broadcast::Receiver<T>) {
        let inner = self.lock();
        let live = self.feed.subscribe();
        let skip = inner.items.len().saturating_sub(n);
        (
            inner
                .items
                .iter()
                .skip(skip)
                .map(|(_, t)| t.clone())
                .collect(),
            live,
        )
    }

    /// The highest sequence number written so far (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.lock().next - 1
    }
}

/// A job's log.
pub type LogBook = Book<LogLine>;
/// A job's metrics.
pub type MetricsBook = Book<MetricsSample>;

/// Writes a lifecycle message from the node into a job's log (stream `system`).
pub fn system_line(book: &LogBook, text: impl Into<String>) {
    book.push(LogLine {
        at: UnixMillis::now(),
        stream: LogStream::System,
        line: text.into(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_entries_go_and_readers_learn_how_many_they_missed() {
        let book = Book::<u32>::new(3);
        for i in 0..5 {
            book.push(i);
        }
        let (items, dropped) = book.after(0, 10);
        assert_eq!(items, vec![(3, 2), (4, 3), (5, 4)]);
        assert_eq!(dropped, 2);
        let (items, dropped) = book.after(4, 10);
        assert_eq!((items, dropped), (vec![(5, 4)], 0));
        assert_eq!(book.after(1, 1).0, vec![(3, 2)]);
    }

    #[test]
    fn tail_and_follow_neither_misses_nor_repeats() {
        let book = Book::<u32>::new(10);
        book.push(1);
        book.push(2);
        let (history, mut live) = book.tail_and_follow(1);
        book.push(3);
        assert_eq!(history, vec![2]);
        assert_eq!(live.try_recv().unwrap(), 3);
        assert!(live.try_recv().is_err());
    }
}
