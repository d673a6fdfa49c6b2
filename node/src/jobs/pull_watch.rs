//! Following an image pull on the provider: every update from the runtime becomes the job's
//! latest pull figures (which the consumer polls while the job is `Pulling`), and a few of
//! them become lines of the job's log: when a layer finishes or appears, every 100 MB, and
//! at the end. A many-gigabyte pull then writes a few dozen lines, not thousands.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::books::{LogBook, system_line};
use crate::runtime::PullProgress;

/// A log line at least every this many downloaded bytes.
const LOG_EVERY_BYTES: u64 = 100_000_000;

/// Drains `updates` into `latest` and the log until the pull ends.
pub async fn follow(
    mut updates: mpsc::Receiver<PullProgress>,
    logs: Arc<LogBook>,
    latest: Arc<Mutex<Option<PullProgress>>>,
) {
    let mut logged: Option<PullProgress> = None;
    while let Some(p) = updates.recv().await {
        if let Some(line) = log_line(&p, logged.as_ref()) {
            system_line(&logs, line);
            logged = Some(p.clone());
        }
        if let Ok(mut latest) = latest.lock() {
            *latest = Some(p);
        }
    }
}

/// The log line `p` deserves after the last one logged, if any.
pub fn log_line(p: &PullProgress, last: Option<&PullProgress>) -> Option<String> {
    let news = match last {
        None => true,
        Some(l) => {
            p.complete != l.complete
                || p.layers_done != l.layers_done
                || p.layers_total != l.layers_total
                || p.bytes_done / LOG_EVERY_BYTES != l.bytes_done / LOG_EVERY_BYTES
        }
    };
    if !news {
        return None;
    }
    let summary = p.summary();
    Some(if p.complete {
        format!("pull complete: {summary}")
    } else {
        format!("pull: {summary}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(layers_done: u32, bytes_done: u64) -> PullProgress {
        PullProgress {
            status: "Downloading".into(),
            layers_done,
            layers_total: 4,
            bytes_done,
            bytes_total: Some(450_000_000),
            complete: false,
        }
    }

    #[test]
    fn only_layer_changes_hundred_megabyte_steps_and_the_end_are_logged() {
        let first = at(0, 1_000);
        assert_eq!(
            log_line(&first, None).as_deref(),
            Some("pull: layers 0/4, 0.0 of 450.0 MB")
        );
        assert_eq!(log_line(&at(0, 99_000_000), Some(&first)), None);
        assert_eq!(
            log_line(&at(0, 100_000_000), Some(&first)).as_deref(),
            Some("pull: layers 0/4, 100.0 of 450.0 MB")
        );
        assert!(log_line(&at(1, 2_000), Some(&first)).is_some());
        let done = PullProgress {
            complete: true,
            ..at(4, 450_000_000)
        };
        assert_eq!(
            log_line(&done, Some(&at(4, 450_000_000))).as_deref(),
            Some("pull complete: layers 4/4, 450.0 of 450.0 MB")
        );
    }

    #[test]
    fn a_present_image_says_so() {
        let present = PullProgress {
            status: "image present locally".into(),
            complete: true,
            ..Default::default()
        };
        assert_eq!(
            log_line(&present, None).as_deref(),
            Some("pull complete: image present on the provider")
        );
    }

    #[tokio::test]
    async fn every_update_becomes_the_latest_and_few_reach_the_log() {
        let (tx, rx) = mpsc::channel(16);
        let logs = super::super::books::Book::new(100);
        let latest = Arc::new(Mutex::new(None));
        let task = tokio::spawn(follow(rx, logs.clone(), latest.clone()));
        for bytes in (0..50).map(|i| i * 1_000_000) {
            tx.send(at(0, bytes)).await.unwrap();
        }
        drop(tx);
        task.await.unwrap();
        assert_eq!(
            latest.lock().unwrap().as_ref().map(|p| p.bytes_done),
            Some(49_000_000)
        );
        assert_eq!(logs.tail_and_follow(100).0.len(), 1);
    }
}
