//! Whether this provider can run a job at all. A provider whose Docker engine does not
//! answer offers nothing and says why (in its GPU view and its log); the engine is asked
//! again every [`CHECK_EVERY`] and before every admission while it is down, and its offers
//! come back once it answers. Jobs never fall back to host processes unless the operator
//! asked for that (`--unsafe-local-jobs`, testnets with simulated GPUs only).

use std::time::Duration;

use qubix_protocol::UnixMillis;
use tracing::{info, warn};

use super::{Internal, Service};

/// How often the engine is asked whether it answers.
const CHECK_EVERY: Duration = Duration::from_secs(10);
/// How long one check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the provider knows of its container engine.
#[derive(Debug, Default)]
pub(crate) struct RuntimeHealth {
    /// Why jobs cannot run now, while they cannot.
    pub(super) down: Option<String>,
    /// When the engine was last asked.
    checked_at: UnixMillis,
    /// Whether a check is under way.
    checking: bool,
}

impl RuntimeHealth {
    /// Health as found at start: `down` says why jobs cannot run, if they cannot.
    pub(crate) fn at_start(down: Option<String>) -> Self {
        Self {
            down,
            checked_at: UnixMillis::now(),
            checking: false,
        }
    }
}

impl Service {
    /// Asks the engine whether it answers, when a check is due.
    pub(super) fn check_runtime_if_due(&mut self, now: UnixMillis) {
        if self.provider.is_none()
            || self.runtime_health.checking
            || now.since(self.runtime_health.checked_at) < CHECK_EVERY
        {
            return;
        }
        self.check_runtime(now);
    }

    /// Asks the engine now, in a task; the answer comes back as `Internal::RuntimeChecked`.
    pub(super) fn check_runtime(&mut self, now: UnixMillis) {
        let Some(runtime) = self.runtime.clone() else {
            return;
        };
        if self.runtime_health.checking {
            return;
        }
        self.runtime_health.checking = true;
        self.runtime_health.checked_at = now;
        let internal = self.internal_tx.clone();
        self.spawn(async move {
            let down = match tokio::time::timeout(CHECK_TIMEOUT, runtime.probe()).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!(
                    "the container engine did not answer within {} s",
                    CHECK_TIMEOUT.as_secs()
                )),
            };
            let _ = internal.send(Internal::RuntimeChecked { down }).await;
        });
    }

    /// The engine's answer: offers go when it stops answering and come back when it does.
    pub(super) async fn on_runtime_checked(&mut self, down: Option<String>) {
        self.runtime_health.checking = false;
        let was_down = self.runtime_health.down.is_some();
        match (&down, was_down) {
            (Some(reason), false) => {
                warn!(%reason, "the container engine stopped answering: offers withdrawn until it answers again");
                self.runtime_health.down = down;
                self.withdraw_offers().await;
            }
            (None, true) => {
                info!("the container engine answers again: offering");
                self.runtime_health.down = None;
                self.publish_offers().await;
            }
            _ => self.runtime_health.down = down,
        }
    }

    /// Why jobs cannot run now, for the GPU view and refusals.
    pub(super) fn runtime_down(&self) -> Option<&str> {
        self.runtime_health.down.as_deref()
    }
}
