//! The offer book: verified, unexpired offers, keyed by `(provider, offer id)` so sync pages
//! are stable, replaced only by a higher sequence, bounded per provider and in total.
//! Pure data structure: no IO, time passed in.

use std::collections::{BTreeMap, HashMap};

use qubix_protocol::market::SYNC_PAGE_MAX;
use qubix_protocol::offer::{Offer, OfferWithdrawal};
use qubix_protocol::{Envelope, NodeId, OfferId, Signed, UnixMillis};

/// Bounds of the book.
#[derive(Debug, Clone, Copy)]
pub struct BookLimits {
    /// Most offers one provider may have in the book.
    pub per_provider: usize,
    /// Most offers in the book.
    pub total: usize,
    /// Most withdrawal tombstones remembered.
    pub tombstones: usize,
}

impl Default for BookLimits {
    fn default() -> Self {
        Self {
            per_provider: 64,
            total: 250_000,
            tombstones: 100_000,
        }
    }
}

/// What inserting an offer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A new offer.
    Added,
    /// A newer sequence replaced the old offer.
    Replaced,
    /// The book has this sequence or a newer one (or a withdrawal at least as new).
    Stale,
    /// The provider already has the most offers allowed.
    ProviderFull,
    /// The book is full.
    BookFull,
}

impl Inserted {
    /// Whether the book changed.
    pub fn changed(self) -> bool {
        matches!(self, Self::Added | Self::Replaced)
    }
}

/// The key of an offer in the book.
pub type OfferKey = (NodeId, OfferId);

/// Verified offers.
#[derive(Debug, Default)]
pub struct OfferBook {
    offers: BTreeMap<OfferKey, Signed<Offer>>,
    by_id: HashMap<OfferId, NodeId>,
    per_provider: HashMap<NodeId, usize>,
    tombstones: HashMap<OfferKey, (u64, UnixMillis)>,
    limits: BookLimits,
}

impl OfferBook {
    /// An empty book with `limits`.
    pub fn new(limits: BookLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Number of offers.
    pub fn len(&self) -> usize {
        self.offers.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.offers.is_empty()
    }

    /// Inserts a verified, validated offer.
    pub fn insert(&mut self, offer: Signed<Offer>) -> Inserted {
        let o = offer.payload();
        let key = (o.provider, o.offer_id);
        if self
            .tombstones
            .get(&key)
            .is_some_and(|(seq, _)| *seq >= o.sequence)
        {
            return Inserted::Stale;
        }
        if let Some(existing) = self.offers.get_mut(&key) {
            if existing.payload().sequence >= o.sequence {
                return Inserted::Stale;
            }
            *existing = offer;
            return Inserted::Replaced;
        }
        let count = self.per_provider.get(&o.provider).copied().unwrap_or(0);
        if count >= self.limits.per_provider {
            return Inserted::ProviderFull;
        }
        if self.offers.len() >= self.limits.total {
            return Inserted::BookFull;
        }
        // An offer id belongs to one provider: a second provider reusing it is ignored.
        if self
            .by_id
            .get(&o.offer_id)
            .is_some_and(|p| *p != o.provider)
        {
            return Inserted::Stale;
        }
        self.by_id.insert(o.offer_id, o.provider);
        *self.per_provider.entry(o.provider).or_default() += 1;
        self.offers.insert(key, offer);
        Inserted::Added
    }

    /// Applies a verified withdrawal; returns whether an offer was removed.
    pub fn withdraw(&mut self, w: &OfferWithdrawal) -> bool {
        let key = (w.provider, w.offer_id);
        let newer_than_held = self
            .offers
            .get(&key)
            .is_none_or(|o| o.payload().sequence < w.sequence);
        if !newer_than_held {
            return false;
        }
        if self.tombstones.len() < self.limits.tombstones {
            self.tombstones.insert(key, (w.sequence, w.issued_at));
        }
        self.remove(&key).is_some()
    }

    fn remove(&mut self, key: &OfferKey) -> Option<Signed<Offer>> {
        let removed = self.offers.remove(key)?;
        self.by_id.remove(&key.1);
        if let Some(n) = self.per_provider.get_mut(&key.0) {
            *n -= 1;
            if *n == 0 {
                self.per_provider.remove(&key.0);
            }
        }
        Some(removed)
    }

    /// Removes offers expired at `now` and forgets tombstones older than `horizon`.
    pub fn sweep(&mut self, now: UnixMillis, horizon: UnixMillis) -> Vec<OfferKey> {
        let expired: Vec<OfferKey> = self
            .offers
            .iter()
            .filter(|(_, o)| o.payload().is_expired(now))
            .map(|(k, _)| *k)
            .collect();
        for key in &expired {
            self.remove(key);
        }
        self.tombstones.retain(|_, (_, at)| *at >= horizon);
        expired
    }

    /// An offer by id.
    pub fn get(&self, id: &OfferId) -> Option<&Signed<Offer>> {
        let provider = self.by_id.get(id)?;
        self.offers.get(&(*provider, *id))
    }

    /// Every offer, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &Signed<Offer>> {
        self.offers.values()
    }

    /// Offers of one provider.
    pub fn of_provider(&self, provider: &NodeId) -> impl Iterator<Item = &Signed<Offer>> {
        let start = (*provider, OfferId::from_bytes([0; 16]));
        self.offers
            .range(start..)
            .take_while(move |(k, _)| k.0 == *provider)
            .map(|(_, o)| o)
    }

    /// A page of signed offers after `after`, for `offer-sync`.
    pub fn page(&self, after: Option<OfferKey>, limit: u16) -> (Vec<Envelope>, Option<OfferKey>) {
        let limit = usize::from(limit.clamp(1, SYNC_PAGE_MAX));
        let range: Box<dyn Iterator<Item = (&OfferKey, &Signed<Offer>)>> = match after {
            Some(key) => Box::new(
                self.offers
                    .range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded)),
            ),
            None => Box::new(self.offers.iter()),
        };
        let mut page = Vec::with_capacity(limit.min(self.offers.len()));
        let mut last = None;
        for (key, offer) in range.take(limit) {
            page.push(offer.envelope().clone());
            last = Some(*key);
        }
        let more = last.is_some_and(|k| {
            self.offers
                .range((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))
                .next()
                .is_some()
        });
        (page, if more { last } else { None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qubix_protocol::testing::{key, node, offer};

    fn signed(mut o: Offer, seq: u64, seed: u8) -> Signed<Offer> {
        o.sequence = seq;
        Signed::sign(o, &key(seed)).unwrap()
    }

    #[test]
    fn higher_sequence_replaces_lower_and_stale_is_ignored() {
        let mut book = OfferBook::default();
        assert_eq!(book.insert(signed(offer(1), 2, 1)), Inserted::Added);
        assert_eq!(book.insert(signed(offer(1), 2, 1)), Inserted::Stale);
        assert_eq!(book.insert(signed(offer(1), 1, 1)), Inserted::Stale);
        let mut cheaper = offer(1);
        cheaper.price_per_gpu_hour = qubix_protocol::Qu(900);
        assert_eq!(book.insert(signed(cheaper, 3, 1)), Inserted::Replaced);
        assert_eq!(book.len(), 1);
        assert_eq!(
            book.iter().next().unwrap().payload().price_per_gpu_hour.0,
            900
        );
    }

    #[test]
    fn withdrawal_removes_and_blocks_older_republish() {
        let mut book = OfferBook::default();
        book.insert(signed(offer(1), 5, 1));
        let w = OfferWithdrawal {
            provider: node(1),
            offer_id: offer(1).offer_id,
            sequence: 6,
            issued_at: offer(1).issued_at,
        };
        assert!(book.withdraw(&w));
        assert!(book.is_empty());
        assert_eq!(book.insert(signed(offer(1), 6, 1)), Inserted::Stale);
        assert_eq!(book.insert(signed(offer(1), 7, 1)), Inserted::Added);
    }

    #[test]
    fn per_provider_and_total_limits_hold() {
        let mut book = OfferBook::new(BookLimits {
            per_provider: 2,
            total: 3,
            tombstones: 10,
        });
        for i in 0..3u8 {
            let mut o = offer(1);
            o.offer_id = OfferId::from_bytes([i; 16]);
            let expected = if i < 2 {
                Inserted::Added
            } else {
                Inserted::ProviderFull
            };
            assert_eq!(book.insert(signed(o, 1, 1)), expected);
        }
        assert_eq!(book.insert(signed(offer(2), 1, 2)), Inserted::Added);
        assert_eq!(book.insert(signed(offer(3), 1, 3)), Inserted::BookFull);
    }

    #[test]
    fn sweep_removes_expired() {
        let mut book = OfferBook::default();
        book.insert(signed(offer(1), 1, 1));
        let expiry = offer(1).expires_at;
        assert!(
            book.sweep(UnixMillis(expiry.0 - 1), UnixMillis(0))
                .is_empty()
        );
        assert_eq!(book.sweep(expiry, UnixMillis(0)).len(), 1);
        assert!(book.is_empty());
        assert!(book.get(&offer(1).offer_id).is_none());
    }

    #[test]
    fn pages_cover_the_book_exactly_once() {
        let mut book = OfferBook::default();
        for seed in 1..=5u8 {
            for i in 0..7u8 {
                let mut o = offer(seed);
                o.offer_id = OfferId::from_bytes([seed.wrapping_mul(16).wrapping_add(i); 16]);
                assert!(book.insert(signed(o, 1, seed)).changed());
            }
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = book.page(after, 4);
            seen.extend(page);
            match next {
                Some(k) => after = Some(k),
                None => break,
            }
        }
        assert_eq!(seen.len(), 35);
        let unique: std::collections::HashSet<_> =
            seen.iter().map(|e| e.as_bytes().to_vec()).collect();
        assert_eq!(unique.len(), 35);
    }
}
