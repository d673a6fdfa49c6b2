//! Per-peer rate limits: a token bucket per peer, bounded in the number of peers tracked.

use std::collections::HashMap;
use std::hash::Hash;

use qubix_protocol::UnixMillis;

/// A token bucket per key.
#[derive(Debug)]
pub struct RateLimiter<K> {
    buckets: HashMap<K, (f64, UnixMillis)>,
    per_second: f64,
    burst: f64,
    max_keys: usize,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// `per_second` sustained, `burst` at once, at most `max_keys` tracked.
    pub fn new(per_second: f64, burst: f64, max_keys: usize) -> Self {
        Self {
            buckets: HashMap::new(),
            per_second,
            burst,
            max_keys,
        }
    }

    /// Takes a token for `key` at `now`; false when the key is over its rate.
    pub fn allow(&mut self, key: &K, now: UnixMillis) -> bool {
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.max_keys {
            self.forget_full(now);
            if self.buckets.len() >= self.max_keys {
                return false;
            }
        }
        let (tokens, last) = self.buckets.entry(key.clone()).or_insert((self.burst, now));
        let refill = now.since(*last).as_secs_f64() * self.per_second;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes up to `n` tokens for `key` at `now`; returns how many it got.
    pub fn take_up_to(&mut self, key: &K, n: usize, now: UnixMillis) -> usize {
        let mut got = 0;
        while got < n && self.allow(key, now) {
            got += 1;
        }
        got
    }

    /// Forgets keys whose bucket has refilled: they carry no state worth keeping.
    fn forget_full(&mut self, now: UnixMillis) {
        let (rate, burst) = (self.per_second, self.burst);
        self.buckets
            .retain(|_, (tokens, last)| *tokens + now.since(*last).as_secs_f64() * rate < burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let mut r = RateLimiter::new(2.0, 3.0, 10);
        let t = UnixMillis(1_000);
        assert!((0..3).all(|_| r.allow(&"a", t)));
        assert!(!r.allow(&"a", t));
        assert!(r.allow(&"b", t), "other peers are unaffected");
        assert!(
            r.allow(&"a", UnixMillis(1_500)),
            "half a second refills one token"
        );
        assert!(!r.allow(&"a", UnixMillis(1_500)));
    }

    #[test]
    fn tracked_keys_are_bounded() {
        let mut r = RateLimiter::new(1.0, 1.0, 2);
        let t = UnixMillis(0);
        assert!(r.allow(&1, t));
        assert!(r.allow(&2, t));
        assert!(
            !r.allow(&3, t),
            "a third key is refused while both buckets are drained"
        );
        assert!(
            r.allow(&3, UnixMillis(5_000)),
            "refilled buckets are forgotten to make room"
        );
    }
}
