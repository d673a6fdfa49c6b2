//! Secondary indexes of the offer book. The book stores offers in slots; each index maps a
//! value to the slots holding it: the words of the GPU model, the country and the provider
//! (posting lists), and price, GPU count, VRAM and expiry (ordered). The book updates them on
//! every insert, replacement, withdrawal and expiry; [`super::plan`] reads them for queries.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use qubix_protocol::offer::Offer;
use qubix_protocol::{NodeId, UnixMillis};

/// Where an offer lives in the book's storage.
pub(crate) type Slot = u32;

/// Slots by a value that is equal or not (a word, a country, a provider).
#[derive(Debug)]
pub(super) struct Postings<K>(HashMap<K, BTreeSet<Slot>>);

impl<K> Default for Postings<K> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

#[cfg(test)]
impl<K: Eq + Hash> PartialEq for Postings<K> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K: Eq + Hash> Postings<K> {
    fn add(&mut self, key: K, slot: Slot) {
        self.0.entry(key).or_default().insert(slot);
    }

    fn remove(&mut self, key: &K, slot: Slot) {
        if let Some(slots) = self.0.get_mut(key) {
            slots.remove(&slot);
            if slots.is_empty() {
                self.0.remove(key);
            }
        }
    }

    pub(super) fn get(&self, key: &K) -> Option<&BTreeSet<Slot>> {
        self.0.get(key)
    }
}

/// Slots in the order of an integer value (price, GPU count, VRAM).
#[derive(Debug, Default)]
#[cfg_attr(test, derive(PartialEq))]
pub(super) struct Ordered(BTreeSet<(u64, Slot)>);

/// An inclusive range of values; empty when `lo > hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Range {
    pub(super) lo: u64,
    pub(super) hi: u64,
}

impl Range {
    pub(super) const ALL: Range = Range {
        lo: 0,
        hi: u64::MAX,
    };

    pub(super) const EMPTY: Range = Range { lo: 1, hi: 0 };

    pub(super) fn intersect(self, other: Range) -> Range {
        Range {
            lo: self.lo.max(other.lo),
            hi: self.hi.min(other.hi),
        }
    }
}

impl Ordered {
    /// The entries with a value in `r`, smallest value first.
    pub(super) fn range(&self, r: Range) -> impl DoubleEndedIterator<Item = (u64, Slot)> + '_ {
        let bounds = (r.lo <= r.hi).then_some((r.lo, Slot::MIN)..=(r.hi, Slot::MAX));
        bounds
            .map(|b| self.0.range(b))
            .into_iter()
            .flatten()
            .copied()
    }

    /// Whether every entry has a value in `r`.
    pub(super) fn within(&self, r: Range) -> bool {
        let inside =
            |entry: Option<&(u64, Slot)>| entry.is_none_or(|(v, _)| r.lo <= *v && *v <= r.hi);
        inside(self.0.first()) && inside(self.0.last())
    }
}

/// The words of an offer's GPU model as the query language reads them: runs of letters and
/// digits, lower-cased.
fn model_words(offer: &Offer) -> impl Iterator<Item = String> + '_ {
    offer
        .gpu
        .model
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().flat_map(char::to_lowercase).collect())
}

fn country(offer: &Offer) -> String {
    offer.location.country.to_ascii_uppercase()
}

/// The secondary indexes, kept in step with the book's slots.
#[derive(Debug, Default)]
#[cfg_attr(test, derive(PartialEq))]
pub(crate) struct Indexes {
    pub(super) model_words: Postings<String>,
    pub(super) country: Postings<String>,
    pub(super) provider: Postings<NodeId>,
    pub(super) price: Ordered,
    pub(super) gpus: Ordered,
    pub(super) vram_mib: Ordered,
    expiry: BTreeSet<(UnixMillis, Slot)>,
}

impl Indexes {
    /// Indexes `offer`, stored in `slot`.
    pub(crate) fn add(&mut self, slot: Slot, offer: &Offer) {
        for word in model_words(offer) {
            self.model_words.add(word, slot);
        }
        self.country.add(country(offer), slot);
        self.provider.add(offer.provider, slot);
        self.price.0.insert((offer.price_per_gpu_hour.0, slot));
        self.gpus.0.insert((u64::from(offer.gpu_count), slot));
        self.vram_mib.0.insert((offer.gpu.vram_mib, slot));
        self.expiry.insert((offer.expires_at, slot));
    }

    /// Forgets `offer`, which was stored in `slot`.
    pub(crate) fn remove(&mut self, slot: Slot, offer: &Offer) {
        for word in model_words(offer) {
            self.model_words.remove(&word, slot);
        }
        self.country.remove(&country(offer), slot);
        self.provider.remove(&offer.provider, slot);
        self.price.0.remove(&(offer.price_per_gpu_hour.0, slot));
        self.gpus.0.remove(&(u64::from(offer.gpu_count), slot));
        self.vram_mib.0.remove(&(offer.gpu.vram_mib, slot));
        self.expiry.remove(&(offer.expires_at, slot));
    }

    /// The offer that expires first, with its expiry.
    pub(crate) fn soonest_expiry(&self) -> Option<(UnixMillis, Slot)> {
        self.expiry.first().copied()
    }

    /// Slots of the offers expired at `now`, soonest expiry first.
    pub(crate) fn expired(&self, now: UnixMillis) -> Vec<Slot> {
        self.expiry
            .range(..=(now, Slot::MAX))
            .map(|&(_, slot)| slot)
            .collect()
    }
}
