//! Reading the indexes for a query: which offers can match it, and the order in which the
//! price index hands out the matches when price leads the query's order.
//!
//! An index only narrows: every candidate still goes through the query's own matcher, so a
//! bound drawn from a constraint may be loose (more candidates) but never tight enough to
//! miss a match. Constraints an index cannot read (`!=`, `notin`, unindexed fields) are left
//! to the matcher alone. The candidates of all the indexes a query can use are intersected
//! as bit sets, one bit per slot, and read back in slot order, so the offers behind them are
//! read front to back.

use std::collections::BTreeSet;

use qubix_protocol::query::{Constraint, DEFAULT_SORT, Field, Op, Query, Value};

use super::index::{Indexes, Ordered, Range, Slot};

/// A set of slots, one bit each: filled in any order, read back in slot order.
#[derive(Debug, Clone)]
pub(crate) struct SlotSet {
    words: Vec<u64>,
    len: usize,
}

impl SlotSet {
    /// An empty set for slots below `slots`.
    pub(crate) fn new(slots: usize) -> Self {
        Self {
            words: vec![0; slots.div_ceil(64)],
            len: 0,
        }
    }

    /// Adds `slot`; slots beyond the set's size are ignored.
    pub(crate) fn insert(&mut self, slot: Slot) {
        let (word, bit) = (slot as usize / 64, 1u64 << (slot % 64));
        if let Some(w) = self.words.get_mut(word) {
            self.len += usize::from(*w & bit == 0);
            *w |= bit;
        }
    }

    pub(crate) fn contains(&self, slot: Slot) -> bool {
        let (word, bit) = (slot as usize / 64, 1u64 << (slot % 64));
        self.words.get(word).is_some_and(|w| w & bit != 0)
    }

    /// How many slots are in the set.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn intersect(&mut self, other: &SlotSet) {
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w &= o;
        }
        self.len = self.words.iter().map(|w| w.count_ones() as usize).sum();
    }

    /// The slots, smallest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Slot> + '_ {
        self.words.iter().zip(0u32..).flat_map(|(&word, i)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                let bit = (rest != 0).then(|| rest.trailing_zeros())?;
                rest &= rest - 1;
                Some(i * 64 + bit)
            })
        })
    }
}

impl Indexes {
    /// The slots that can match `query`, among `slots` slots holding `total` offers; `None`
    /// when no index narrows it and every offer must be matched.
    pub(crate) fn candidates(&self, query: &Query, slots: usize, total: usize) -> Option<SlotSet> {
        let mut narrowed: Option<SlotSet> = None;
        for source in self.sources(query) {
            if source.covers_all(total) {
                continue;
            }
            let set = source.slot_set(slots);
            narrowed = Some(match narrowed {
                Some(mut so_far) => {
                    so_far.intersect(&set);
                    so_far
                }
                None => set,
            });
        }
        narrowed
    }

    /// The price index within the query's price bounds, in the direction price leads the
    /// query's order (see [`price_leads`]).
    pub(crate) fn by_price(
        &self,
        query: &Query,
        descending: bool,
    ) -> Box<dyn Iterator<Item = (u64, Slot)> + '_> {
        let range = bounds(on_field(query, Field::Price)).unwrap_or(Range::ALL);
        let entries = self.price.range(range);
        if descending {
            Box::new(entries.rev())
        } else {
            Box::new(entries)
        }
    }

    /// Every index some constraint of `query` can read.
    fn sources<'a>(&'a self, query: &Query) -> Vec<Source<'a>> {
        let mut sources: Vec<Source<'a>> = query
            .constraints
            .iter()
            .filter(|c| matches!(c.op(), Op::Eq | Op::In))
            .filter_map(|c| self.postings(c))
            .collect();
        for (field, index) in [
            (Field::Price, &self.price),
            (Field::NumGpus, &self.gpus),
            (Field::GpuRam, &self.vram_mib),
        ] {
            if let Some(range) = bounds(on_field(query, field)) {
                sources.push(Source::Ranges(index, vec![range]));
            }
            sources.extend(
                on_field(query, field)
                    .filter(|c| c.op() == Op::In)
                    .filter_map(|c| points(c).map(|p| Source::Ranges(index, p))),
            );
        }
        sources
    }

    /// The union of the posting lists an `=` or `in` constraint can match.
    fn postings(&self, c: &Constraint) -> Option<Source<'_>> {
        let sets = c.values().iter().map(|v| match (c.field(), v) {
            (Field::GpuName, Value::Text(t)) if !t.words().is_empty() => {
                Some(self.rarest_word(t.words()))
            }
            (Field::Location, Value::Country(code)) => Some(self.country.get(code)),
            (Field::Provider, Value::Node(id)) => Some(self.provider.get(id)),
            _ => None,
        });
        // A value no index can read leaves the constraint to the matcher alone.
        let sets: Option<Vec<_>> = sets.collect();
        Some(Source::Sets(sets?.into_iter().flatten().collect()))
    }

    /// The smallest posting list of `words`, all of which a matching model holds; `None`
    /// when some word is in no model at all.
    fn rarest_word(&self, words: &[String]) -> Option<&BTreeSet<Slot>> {
        let mut sets = words.iter().map(|w| self.model_words.get(w));
        let first = sets.next()??;
        sets.try_fold(first, |rarest, set| {
            set.map(|s| if s.len() < rarest.len() { s } else { rarest })
        })
    }
}

/// `Some(descending)` when price is the first key of the query's order.
pub(crate) fn price_leads(query: &Query) -> Option<bool> {
    let lead = query.sort.first().unwrap_or(&DEFAULT_SORT[0]);
    (lead.field == Field::Price).then_some(lead.descending)
}

fn on_field(query: &Query, field: Field) -> impl Iterator<Item = &Constraint> {
    query.constraints.iter().filter(move |c| c.field() == field)
}

/// The range of values all ordering and `=` constraints of one ordered field allow, or
/// `None` when none of them constrains it.
fn bounds<'c>(constraints: impl Iterator<Item = &'c Constraint>) -> Option<Range> {
    constraints
        .filter(|c| c.op().is_ordering() || c.op() == Op::Eq)
        .filter_map(range_of)
        .reduce(Range::intersect)
}

/// The values an `in` constraint on an ordered field allows, as disjoint ranges.
fn points(c: &Constraint) -> Option<Vec<Range>> {
    let mut values: Vec<Range> = c
        .values()
        .iter()
        .map(|v| range_of_value(c.field(), Op::Eq, v))
        .collect::<Option<_>>()?;
    values.sort_unstable_by_key(|r| (r.lo, r.hi));
    values.dedup();
    Some(values)
}

fn range_of(c: &Constraint) -> Option<Range> {
    c.values()
        .iter()
        .map(|v| range_of_value(c.field(), c.op(), v))
        .try_fold(Range::ALL, |acc, r| Some(acc.intersect(r?)))
}

/// The indexed values that can satisfy `op value` on `field`. Integer fields are exact.
/// `gpu_ram` is VRAM in MiB divided by 1024 as a double: the bounds widen by one MiB each
/// way, so rounding can only add candidates.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn range_of_value(field: Field, op: Op, value: &Value) -> Option<Range> {
    let (lo, hi) = match (field, value) {
        (Field::Price | Field::NumGpus, Value::Integer(v)) => (*v, *v),
        (Field::GpuRam, Value::Decimal(gib)) => {
            let mib = gib * 1024.0;
            // `as` saturates: negative to 0, beyond u64 to u64::MAX.
            (
                (mib.floor() as u64).saturating_sub(1),
                (mib.ceil() as u64).saturating_add(1),
            )
        }
        _ => return None,
    };
    let loose = field == Field::GpuRam;
    let range = match op {
        Op::Eq | Op::In => Range { lo, hi },
        Op::Le => Range { lo: 0, hi },
        Op::Ge => Range { lo, hi: u64::MAX },
        Op::Lt if loose => Range { lo: 0, hi },
        Op::Gt if loose => Range { lo, hi: u64::MAX },
        Op::Lt => hi
            .checked_sub(1)
            .map_or(Range::EMPTY, |hi| Range { lo: 0, hi }),
        Op::Gt => lo
            .checked_add(1)
            .map_or(Range::EMPTY, |lo| Range { lo, hi: u64::MAX }),
        Op::Ne | Op::NotIn => return None,
    };
    Some(range)
}

/// What one index allows of a query.
enum Source<'a> {
    /// The union of posting lists.
    Sets(Vec<&'a BTreeSet<Slot>>),
    /// The union of ranges of an ordered index.
    Ranges(&'a Ordered, Vec<Range>),
}

impl Source<'_> {
    /// Whether it is known at once to rule out nothing among `total` offers.
    fn covers_all(&self, total: usize) -> bool {
        match self {
            Source::Sets(sets) => sets.iter().map(|s| s.len()).sum::<usize>() >= total,
            Source::Ranges(index, ranges) => ranges.iter().any(|r| index.within(*r)),
        }
    }

    fn slot_set(&self, slots: usize) -> SlotSet {
        let mut set = SlotSet::new(slots);
        match self {
            Source::Sets(sets) => sets
                .iter()
                .flat_map(|s| s.iter())
                .for_each(|s| set.insert(*s)),
            Source::Ranges(index, ranges) => ranges
                .iter()
                .flat_map(|r| index.range(*r))
                .for_each(|(_, s)| set.insert(s)),
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_sets_read_back_in_order_and_intersect() {
        let mut a = SlotSet::new(200);
        for s in [130, 3, 64, 3, 199, 0, 63] {
            a.insert(s);
        }
        a.insert(500);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![0, 3, 63, 64, 130, 199]);
        assert_eq!(a.len(), 6);
        let mut b = SlotSet::new(200);
        [3, 64, 65, 199].into_iter().for_each(|s| b.insert(s));
        a.intersect(&b);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![3, 64, 199]);
        assert_eq!(a.len(), 3);
        assert!(a.contains(64) && !a.contains(65) && !a.contains(10_000));
    }

    #[test]
    fn integer_bounds_are_exact_and_decimal_ones_loose() {
        let range = |text: &str| {
            let q = Query::parse(text).unwrap();
            bounds(q.constraints.iter())
        };
        let r = |lo, hi| Some(Range { lo, hi });
        assert_eq!(range("price<1500"), r(0, 1499));
        assert_eq!(range("price<=1500 price>900"), r(901, 1500));
        assert_eq!(range("price<0"), Some(Range::EMPTY));
        assert_eq!(range("num_gpus=2"), r(2, 2));
        assert_eq!(range("gpu_ram>=24"), r(24 * 1024 - 1, u64::MAX));
        assert_eq!(range("price!=5"), None);
    }
}
