//! Application penalties on peers (floods, for now), as gossipsub's application score: they
//! add up while a peer misbehaves and decay by half every [`HALF_LIFE`] once it stops, so a
//! peer that was briefly over its rate is not shunned for ever, and one that keeps flooding
//! stays graylisted. Pure: the time is passed in.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use qubix_protocol::UnixMillis;

/// How long a penalty takes to halve.
pub const HALF_LIFE: Duration = Duration::from_secs(60);
/// Penalties below this are forgotten.
const FORGOTTEN: f64 = 0.5;
/// The most penalties held; past it the smallest go first.
const MAX_PEERS: usize = 10_000;
/// The largest penalty one peer can hold.
const CAP: f64 = 10_000.0;

/// Each peer's penalty and when it was last decayed.
#[derive(Debug)]
pub struct Penalties<K> {
    held: HashMap<K, (f64, UnixMillis)>,
}

impl<K> Default for Penalties<K> {
    fn default() -> Self {
        Self {
            held: HashMap::new(),
        }
    }
}

fn decayed(amount: f64, from: UnixMillis, now: UnixMillis) -> f64 {
    let halves = now.since(from).as_secs_f64() / HALF_LIFE.as_secs_f64();
    amount * 0.5f64.powf(halves)
}

impl<K: Eq + Hash + Clone> Penalties<K> {
    /// Adds `amount` to `peer`'s penalty at `now`; returns its application score (the
    /// penalty, negated).
    pub fn add(&mut self, peer: &K, amount: f64, now: UnixMillis) -> f64 {
        if !self.held.contains_key(peer) && self.held.len() >= MAX_PEERS {
            self.forget_smallest(now);
        }
        let (held, at) = self.held.entry(peer.clone()).or_insert((0.0, now));
        *held = (decayed(*held, *at, now) + amount.max(0.0)).min(CAP);
        *at = now;
        -*held
    }

    /// Every penalised peer's score at `now`; peers whose penalty faded away come out with
    /// 0 and are forgotten.
    pub fn decay(&mut self, now: UnixMillis) -> Vec<(K, f64)> {
        let mut scores = Vec::with_capacity(self.held.len());
        self.held.retain(|peer, (held, at)| {
            *held = decayed(*held, *at, now);
            *at = now;
            let faded = *held < FORGOTTEN;
            scores.push((peer.clone(), if faded { 0.0 } else { -*held }));
            !faded
        });
        scores
    }

    fn forget_smallest(&mut self, now: UnixMillis) {
        let smallest = self
            .held
            .iter()
            .map(|(k, (held, at))| (k.clone(), decayed(*held, *at, now)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((k, _)) = smallest {
            self.held.remove(&k);
        }
    }

    /// How many peers hold a penalty.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no peer holds a penalty.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixMillis = UnixMillis(1_000_000);

    fn at(secs: u64) -> UnixMillis {
        T0.saturating_add(Duration::from_secs(secs))
    }

    #[test]
    fn penalties_add_up_while_a_peer_floods() {
        let mut p = Penalties::default();
        assert_eq!(p.add(&"a", 50.0, T0), -50.0);
        assert_eq!(p.add(&"a", 50.0, T0), -100.0);
        assert_eq!(p.add(&"b", 50.0, T0), -50.0, "others are their own");
        for _ in 0..1_000 {
            p.add(&"a", 50.0, T0);
        }
        assert_eq!(p.add(&"a", 50.0, T0), -CAP, "capped");
    }

    #[test]
    fn penalties_halve_every_half_life_and_are_then_forgotten() {
        let mut p = Penalties::default();
        p.add(&"a", 80.0, T0);
        let scores = p.decay(at(60));
        assert_eq!(scores, vec![("a", -40.0)]);
        assert!((p.add(&"a", 0.0, at(120)) + 20.0).abs() < 1e-9);
        // After long enough it fades away: reported once as 0, then forgotten.
        assert_eq!(p.decay(at(1_200)), vec![("a", 0.0)]);
        assert!(p.is_empty());
        assert!(p.decay(at(1_300)).is_empty());
    }

    #[test]
    fn the_number_of_peers_held_is_bounded() {
        let mut p = Penalties::default();
        for i in 0..(MAX_PEERS + 10) {
            p.add(&i, 1.0 + i as f64, T0);
        }
        assert_eq!(p.len(), MAX_PEERS);
        // The smallest went first.
        assert!(p.held.contains_key(&(MAX_PEERS + 9)));
        assert!(!p.held.contains_key(&0));
    }
}
