//! The offer book: verified, unexpired offers, keyed by `(provider, offer id)` so sync pages
//! are stable, replaced only by a higher sequence, bounded per provider and in total. An
//! offer id is the provider's own name for its offer: two providers may use the same id, and
//! neither hides the other. When the book is full, the offer that expires first makes room
//! for one that lives longer. Withdrawals leave a tombstone only where they removed an offer,
//! so a stranger cannot fill the tombstones.
//! Offers live in slots; the key map and the secondary indexes ([`super::index`]) point at
//! them, and every change to an offer goes through one place that keeps them in step.
//! Searches read the indexes ([`super::plan`]); explain reads every offer.
//! Pure data structure: no IO, time passed in.

use std::collections::{BTreeMap, HashMap};

use qubix_protocol::market::SYNC_PAGE_MAX;
use qubix_protocol::offer::{Offer, OfferWithdrawal};
use qubix_protocol::query::{Explanation, OfferFacts, Page, Query};
use qubix_protocol::{Envelope, NodeId, OfferId, Signed, UnixMillis};

use super::index::{Indexes, Slot};
use super::plan::{SlotSet, price_leads};

/// Matches from which a page ordered by price is read off the price index rather than
/// selected from all the matches.
const PRICE_WALK_MIN: usize = 512;

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
    /// The book is full of offers that live at least as long.
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
    /// The offers; `None` marks a free slot (listed in `free`).
    slots: Vec<Option<Signed<Offer>>>,
    free: Vec<Slot>,
    keys: BTreeMap<OfferKey, Slot>,
    index: Indexes,
    /// The providers that publish each offer id (usually one).
    by_id: HashMap<OfferId, Vec<NodeId>>,
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
        self.keys.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn slot(&self, slot: Slot) -> Option<&Signed<Offer>> {
        self.slots.get(slot as usize)?.as_ref()
    }

    /// Every offer, in storage order: the fastest way through the whole book.
    fn stored(&self) -> impl Iterator<Item = &Signed<Offer>> {
        self.slots.iter().flatten()
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
        if let Some(&slot) = self.keys.get(&key) {
            return self.replace(slot, offer);
        }
        let count = self.per_provider.get(&o.provider).copied().unwrap_or(0);
        if count >= self.limits.per_provider {
            return Inserted::ProviderFull;
        }
        if self.keys.len() >= self.limits.total && !self.evict_for(o.expires_at) {
            return Inserted::BookFull;
        }
        self.by_id.entry(o.offer_id).or_default().push(o.provider);
        *self.per_provider.entry(o.provider).or_default() += 1;
        let slot = self.store(offer);
        self.keys.insert(key, slot);
        Inserted::Added
    }

    /// Makes room for an offer expiring at `expires_at` by removing the offer that expires
    /// first, if it expires sooner; whether there is room now.
    fn evict_for(&mut self, expires_at: UnixMillis) -> bool {
        let Some((soonest, slot)) = self.index.soonest_expiry() else {
            return false;
        };
        if soonest >= expires_at {
            return false;
        }
        let Some(key) = self
            .slot(slot)
            .map(|o| (o.payload().provider, o.payload().offer_id))
        else {
            return false;
        };
        self.remove(&key).is_some()
    }

    /// Puts a newer sequence of the offer in `slot` in its place.
    fn replace(&mut self, slot: Slot, offer: Signed<Offer>) -> Inserted {
        let Some(held) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return Inserted::Stale;
        };
        if held.payload().sequence >= offer.payload().sequence {
            return Inserted::Stale;
        }
        self.index.remove(slot, held.payload());
        self.index.add(slot, offer.payload());
        *held = offer;
        Inserted::Replaced
    }

    /// Stores and indexes an offer in a free slot.
    fn store(&mut self, offer: Signed<Offer>) -> Slot {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                // The book holds far fewer than 2^32 offers (`BookLimits::total`).
                Slot::try_from(self.slots.len() - 1).unwrap_or(Slot::MAX)
            }
        };
        self.index.add(slot, offer.payload());
        if let Some(place) = self.slots.get_mut(slot as usize) {
            *place = Some(offer);
        }
        slot
    }

    /// Applies a verified withdrawal; returns whether an offer was removed.
    pub fn withdraw(&mut self, w: &OfferWithdrawal) -> bool {
        let key = (w.provider, w.offer_id);
        let newer_than_held = self
            .keys
            .get(&key)
            .and_then(|slot| self.slot(*slot))
            .is_none_or(|o| o.payload().sequence < w.sequence);
        if !newer_than_held {
            return false;
        }
        let removed = self.remove(&key).is_some();
        // Remember the withdrawal where it removed an offer (or raises a tombstone already
        // kept): a stale copy of that offer arriving later stays out.
        let known = removed || self.tombstones.contains_key(&key);
        if known && (self.tombstones.len() < self.limits.tombstones || !removed) {
            self.tombstones.insert(key, (w.sequence, w.issued_at));
        }
        removed
    }

    fn remove(&mut self, key: &OfferKey) -> Option<Signed<Offer>> {
        let slot = self.keys.remove(key)?;
        let removed = self.slots.get_mut(slot as usize)?.take()?;
        self.index.remove(slot, removed.payload());
        self.free.push(slot);
        if let Some(providers) = self.by_id.get_mut(&key.1) {
            providers.retain(|p| *p != key.0);
            if providers.is_empty() {
                self.by_id.remove(&key.1);
            }
        }
        if let Some(n) = self.per_provider.get_mut(&key.0) {
            *n -= 1;
            if *n == 0 {
                self.per_provider.remove(&key.0);
            }
        }
        Some(removed)
    }

    /// Removes offers expired at `now` and forgets tombstones older than `horizon`. Returns
    /// the removed offers' keys in key order.
    pub fn sweep(&mut self, now: UnixMillis, horizon: UnixMillis) -> Vec<OfferKey> {
        let mut expired: Vec<OfferKey> = self
            .index
            .expired(now)
            .into_iter()
            .filter_map(|slot| self.slot(slot))
            .map(|o| (o.payload().provider, o.payload().offer_id))
            .collect();
        expired.sort_unstable();
        for key in &expired {
            self.remove(key);
        }
        self.tombstones.retain(|_, (_, at)| *at >= horizon);
        expired
    }

    /// An offer by its key.
    pub fn get(&self, key: &OfferKey) -> Option<&Signed<Offer>> {
        self.slot(*self.keys.get(key)?)
    }

    /// The offers published under `id`, by whichever providers use it.
    pub fn with_offer_id(&self, id: &OfferId) -> Vec<&Signed<Offer>> {
        self.by_id
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|provider| self.get(&(*provider, *id)))
            .collect()
    }

    /// Every offer, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &Signed<Offer>> {
        self.keys.values().filter_map(|slot| self.slot(*slot))
    }

    /// Offers of one provider.
    pub fn of_provider(&self, provider: &NodeId) -> impl Iterator<Item = &Signed<Offer>> {
        let start = (*provider, OfferId::from_bytes([0; 16]));
        self.keys
            .range(start..)
            .take_while(move |(k, _)| k.0 == *provider)
            .filter_map(|(_, slot)| self.slot(*slot))
    }

    /// The page of offers `query` selects: what [`Query::page`] over every offer gives,
    /// found through the indexes. Only offers no index rules out meet the matcher, and when
    /// price leads the query's order and many offers match, the page is read off the price
    /// index instead of being selected from all of them. `reliability` gives a provider's
    /// reliability, `None` without a record.
    pub fn search<'a>(
        &'a self,
        query: &Query,
        reliability: impl Fn(&NodeId) -> Option<f64>,
    ) -> Page<'a> {
        self.search_with(query, &reliability, PRICE_WALK_MIN)
    }

    /// [`OfferBook::search`], reading the page off the price index from `price_walk_min`
    /// matches on (tests set 0 to take that path on small books).
    pub(super) fn search_with<'a>(
        &'a self,
        query: &Query,
        reliability: &dyn Fn(&NodeId) -> Option<f64>,
        price_walk_min: usize,
    ) -> Page<'a> {
        let facts =
            |o: &'a Signed<Offer>| OfferFacts::new(o.payload(), reliability(&o.payload().provider));
        let matched = self.matching(query, facts);
        match price_leads(query) {
            Some(descending) if matched.len() >= price_walk_min => {
                self.page_by_price(query, &matched, descending, facts)
            }
            _ => query.page(matched.iter().filter_map(|s| self.slot(s)).map(facts)),
        }
    }

    /// The slots of the offers that match `query`.
    fn matching<'a>(
        &'a self,
        query: &Query,
        facts: impl Fn(&'a Signed<Offer>) -> OfferFacts<'a>,
    ) -> SlotSet {
        let mut matched = SlotSet::new(self.slots.len());
        let mut check = |slot: Slot| {
            if self.slot(slot).is_some_and(|o| query.matches(&facts(o))) {
                matched.insert(slot);
            }
        };
        match self.index.candidates(query, self.slots.len(), self.len()) {
            Some(candidates) => candidates.iter().for_each(&mut check),
            None => (0..self.slots.len())
                .filter_map(|s| Slot::try_from(s).ok())
                .for_each(&mut check),
        }
        matched
    }

    /// The page when price leads the order: walk the price index and keep the matches up to
    /// the page's end and those tied with the last of them on price, which the query's
    /// further keys order.
    fn page_by_price<'a>(
        &'a self,
        query: &Query,
        matched: &SlotSet,
        descending: bool,
        facts: impl Fn(&'a Signed<Offer>) -> OfferFacts<'a>,
    ) -> Page<'a> {
        let limit = query.page_size();
        let end = (query.offset as usize).saturating_add(limit as usize);
        let mut head = Vec::with_capacity(end.min(matched.len()));
        let mut boundary = None;
        for (price, slot) in self.index.by_price(query, descending) {
            if !matched.contains(slot) {
                continue;
            }
            if boundary.is_some_and(|b| b != price) {
                break;
            }
            head.extend(self.slot(slot).map(&facts));
            if head.len() == end {
                boundary = Some(price);
            }
        }
        head.sort_unstable_by(|a, b| query.compare(a, b));
        Page {
            total_matched: matched.len(),
            offset: query.offset,
            limit,
            items: head
                .into_iter()
                .skip(query.offset as usize)
                .take(limit as usize)
                .collect(),
        }
    }

    /// What each constraint of `query` excluded. Explain needs every offer's verdict, so it
    /// reads the whole book.
    pub fn explain(
        &self,
        query: &Query,
        reliability: impl Fn(&NodeId) -> Option<f64>,
    ) -> Explanation {
        query.explain(
            self.stored()
                .map(|o| OfferFacts::new(o.payload(), reliability(&o.payload().provider))),
        )
    }

    /// A page of signed offers after `after`, for `offer-sync`.
    pub fn page(&self, after: Option<OfferKey>, limit: u16) -> (Vec<Envelope>, Option<OfferKey>) {
        use std::ops::Bound::{Excluded, Unbounded};
        let limit = usize::from(limit.clamp(1, SYNC_PAGE_MAX));
        let start = after.map_or(Unbounded, Excluded);
        let mut page = Vec::with_capacity(limit.min(self.keys.len()));
        let mut last = None;
        for (key, slot) in self.keys.range((start, Unbounded)).take(limit) {
            if let Some(offer) = self.slot(*slot) {
                page.push(offer.envelope().clone());
                last = Some(*key);
            }
        }
        let more = last.is_some_and(|k| self.keys.range((Excluded(k), Unbounded)).next().is_some());
        (page, if more { last } else { None })
    }
}

#[cfg(test)]
impl OfferBook {
    /// Panics unless slots, keys, counts and indexes agree, and the indexes hold exactly what
    /// a rebuild from the stored offers would.
    pub(crate) fn assert_consistent(&self) {
        let mut rebuilt = Indexes::default();
        for (slot, held) in self.slots.iter().enumerate() {
            let slot = Slot::try_from(slot).unwrap();
            match held {
                Some(o) => {
                    let key = (o.payload().provider, o.payload().offer_id);
                    assert_eq!(self.keys.get(&key), Some(&slot));
                    rebuilt.add(slot, o.payload());
                }
                None => assert!(self.free.contains(&slot), "slot {slot} is lost"),
            }
        }
        assert_eq!(self.keys.len() + self.free.len(), self.slots.len());
        assert!(rebuilt == self.index, "the indexes differ from a rebuild");
        assert_eq!(
            self.by_id.values().map(Vec::len).sum::<usize>(),
            self.keys.len()
        );
        assert_eq!(self.per_provider.values().sum::<usize>(), self.keys.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qubix_protocol::testing::{key, node, offer};

    fn signed(mut o: Offer, seq: u64, seed: u8) -> Signed<Offer> {
        o.sequence = seq;
        Signed::sign(o, &key(seed), &qubix_protocol::testing::network()).unwrap()
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
        assert!(book.with_offer_id(&offer(1).offer_id).is_empty());
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

    #[test]
    fn a_second_provider_using_the_same_offer_id_shadows_nothing() {
        let mut book = OfferBook::default();
        let honest = offer(1);
        let mut shadow = offer(2);
        shadow.offer_id = honest.offer_id;
        shadow.price_per_gpu_hour = qubix_protocol::Qu(1);
        // The stranger publishes first: the honest offer still gets in.
        assert_eq!(book.insert(signed(shadow.clone(), 1, 2)), Inserted::Added);
        assert_eq!(book.insert(signed(honest.clone(), 1, 1)), Inserted::Added);
        let both = book.with_offer_id(&honest.offer_id);
        assert_eq!(both.len(), 2);
        let key = (honest.provider, honest.offer_id);
        assert_eq!(book.get(&key).unwrap().payload(), &honest);
        // Withdrawing one leaves the other.
        let w = OfferWithdrawal {
            provider: shadow.provider,
            offer_id: shadow.offer_id,
            sequence: 2,
            issued_at: shadow.issued_at,
        };
        assert!(book.withdraw(&w));
        assert_eq!(book.with_offer_id(&honest.offer_id).len(), 1);
        assert!(book.get(&key).is_some());
        book.assert_consistent();
    }

    #[test]
    fn a_full_book_makes_room_for_a_longer_lived_offer() {
        let mut book = OfferBook::new(BookLimits {
            per_provider: 10,
            total: 2,
            tombstones: 10,
        });
        let at = |seed: u8, secs: u64| {
            let mut o = offer(seed);
            o.expires_at = UnixMillis(o.issued_at.0 + secs * 1000);
            o
        };
        assert_eq!(book.insert(signed(at(1, 600), 1, 1)), Inserted::Added);
        assert_eq!(book.insert(signed(at(2, 900), 1, 2)), Inserted::Added);
        // One expiring sooner than everything held does not get in…
        assert_eq!(book.insert(signed(at(3, 300), 1, 3)), Inserted::BookFull);
        // …one living longer replaces the one expiring first.
        assert_eq!(book.insert(signed(at(4, 1200), 1, 4)), Inserted::Added);
        assert_eq!(book.len(), 2);
        assert!(book.with_offer_id(&offer(1).offer_id).is_empty());
        book.assert_consistent();
    }

    #[test]
    fn withdrawals_of_nothing_leave_no_tombstone() {
        let mut book = OfferBook::new(BookLimits {
            per_provider: 10,
            total: 10,
            tombstones: 1,
        });
        // A stranger withdraws offers it never published: nothing is remembered.
        for i in 0..5u8 {
            let w = OfferWithdrawal {
                provider: node(9),
                offer_id: OfferId::from_bytes([i; 16]),
                sequence: 9,
                issued_at: offer(9).issued_at,
            };
            assert!(!book.withdraw(&w));
        }
        assert!(book.tombstones.is_empty());
        // A real withdrawal is remembered, so an older copy cannot come back.
        book.insert(signed(offer(1), 5, 1));
        let w = OfferWithdrawal {
            provider: node(1),
            offer_id: offer(1).offer_id,
            sequence: 6,
            issued_at: offer(1).issued_at,
        };
        assert!(book.withdraw(&w));
        assert_eq!(book.insert(signed(offer(1), 5, 1)), Inserted::Stale);
    }
}
