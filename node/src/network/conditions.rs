//! Emulated link conditions for tests and benchmarks on loopback, which has neither latency
//! nor loss: every event the network hands to the service arrives `latency` later (one way,
//! in arrival order), and so does every answer to this node's own requests (offer sync,
//! negotiation, `job/2`); a share `loss` of gossip messages is dropped (reported `Ignore` to
//! gossipsub, as a stale message would be). The node's own logic, timeouts included, feels
//! them as it would feel a slow, lossy link.
//!
//! ```text
//! event loop ──events──▶ stamp (arrival time; drop lost gossip) ──▶ delay (until due) ──▶ service
//! ```

use std::time::Duration;

use libp2p::gossipsub::MessageAcceptance;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{EVENT_QUEUE, NetworkEvent, NetworkHandle};

/// Latency and loss to emulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConditions {
    /// One-way delay of every inbound event.
    pub latency: Duration,
    /// Share of inbound gossip messages dropped, in `[0, 1)`.
    pub loss: f64,
}

impl LinkConditions {
    /// Checks the values; the error says which and why.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..1.0).contains(&self.loss) {
            return Err(format!(
                "loss {} is not a share in [0, 1): 0.1 drops one gossip message in ten",
                self.loss
            ));
        }
        if self.latency > Duration::from_secs(10) {
            return Err(format!(
                "latency {:?} is above 10 s; requests would time out before anything arrives",
                self.latency
            ));
        }
        Ok(())
    }
}

/// Puts `conditions` between the event loop's `inner` events and the returned receiver.
pub(crate) fn apply(
    conditions: LinkConditions,
    handle: NetworkHandle,
    mut inner: mpsc::Receiver<NetworkEvent>,
    shutdown: CancellationToken,
) -> mpsc::Receiver<NetworkEvent> {
    let (stamped_tx, mut stamped_rx) = mpsc::channel::<(Instant, NetworkEvent)>(EVENT_QUEUE);
    let (out_tx, out_rx) = mpsc::channel(EVENT_QUEUE);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = inner.recv() => match event {
                    Some(event) => event,
                    None => return,
                },
            };
            if let NetworkEvent::Gossip {
                propagation_source,
                message_id,
                ..
            } = &event
                && conditions.loss > 0.0
                && rand::rng().random_bool(conditions.loss)
            {
                let _ = handle
                    .report(
                        message_id.clone(),
                        *propagation_source,
                        MessageAcceptance::Ignore,
                    )
                    .await;
                continue;
            }
            if stamped_tx.send((Instant::now(), event)).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let (arrived, event) = tokio::select! {
                () = shutdown.cancelled() => return,
                next = stamped_rx.recv() => match next {
                    Some(next) => next,
                    None => return,
                },
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep_until(arrived + conditions.latency) => {}
            }
            if out_tx.send(event).await.is_err() {
                return;
            }
        }
    });
    out_rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_checked() {
        let ok = LinkConditions {
            latency: Duration::from_millis(50),
            loss: 0.1,
        };
        assert!(ok.validate().is_ok());
        let lossy = LinkConditions { loss: 1.0, ..ok };
        assert!(lossy.validate().unwrap_err().contains("loss"));
        let slow = LinkConditions {
            latency: Duration::from_secs(11),
            ..ok
        };
        assert!(slow.validate().unwrap_err().contains("latency"));
    }
}
