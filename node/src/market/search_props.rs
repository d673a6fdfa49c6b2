//! Properties of the book's indexes: after any sequence of inserts, replacements by
//! sequence, withdrawals and expiry sweeps, every index holds exactly what a rebuild from the
//! stored offers would, and [`OfferBook::search`] (both ways it can read a page) and
//! [`OfferBook::explain`] give what [`Query::page`] and [`Query::explain`] give over every
//! offer.

use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::select;
use qubix_protocol::offer::{Offer, OfferWithdrawal, PcieLink, Version};
use qubix_protocol::query::{OfferFacts, Query};
use qubix_protocol::testing::{NOW, key, node, offer};
use qubix_protocol::{NodeId, OfferId, Qu, Signed, UnixMillis};

use super::book::OfferBook;

const MODELS: &[&str] = &[
    "NVIDIA GeForce RTX 4090",
    "NVIDIA RTX A6000",
    "NVIDIA A100-SXM4-80GB",
    "NVIDIA H100 80GB HBM3",
    "AMD Instinct MI300X",
    "GeForce RTX 3090 Ti",
    "Ünïcode GPU 4090",
];
const COUNTRIES: &[&str] = &["DE", "FR", "us", "Nl"];
const PROVIDERS: u8 = 4;

/// What the offers of one generated book vary in.
#[derive(Debug, Clone)]
struct OfferSpec {
    provider: u8,
    id: u8,
    sequence: u64,
    model: usize,
    country: usize,
    price: u64,
    gpus: u32,
    vram_mib: u64,
    cuda_minor: u16,
    lifetime_s: u64,
    region: bool,
    pcie: bool,
    simulated: bool,
}

fn offer_spec() -> impl Strategy<Value = OfferSpec> {
    (
        (
            1..=PROVIDERS,
            0u8..6,
            1u64..6,
            0..MODELS.len(),
            0..COUNTRIES.len(),
        ),
        (
            select(vec![100u64, 500, 999, 1000, 1001, 1500, 2999]),
            1u32..9,
            select(vec![8_192u64, 16_384, 24_000, 24_576, 40_960, 81_920]),
            0u16..12,
            1u64..8,
        ),
        (any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(|(a, b, c)| OfferSpec {
            provider: a.0,
            id: a.1,
            sequence: a.2,
            model: a.3,
            country: a.4,
            price: b.0,
            gpus: b.1,
            vram_mib: b.2,
            cuda_minor: b.3,
            lifetime_s: b.4,
            region: c.0,
            pcie: c.1,
            simulated: c.2,
        })
}

impl OfferSpec {
    fn signed(&self) -> Signed<Offer> {
        let mut o = offer(self.provider);
        o.offer_id = offer_id(self.provider, self.id);
        o.sequence = self.sequence;
        o.gpu.model = MODELS[self.model].into();
        o.location.country = COUNTRIES[self.country].into();
        o.location.region = self.region.then(|| "eu-central".into());
        o.price_per_gpu_hour = Qu(self.price);
        o.gpu_count = self.gpus;
        o.gpu.vram_mib = self.vram_mib;
        o.gpu.cuda_version = Version::new(12, self.cuda_minor);
        o.gpu.pcie = self.pcie.then_some(PcieLink {
            generation: 4,
            width: 16,
        });
        o.simulated = self.simulated;
        o.expires_at = NOW.saturating_add(Duration::from_secs(self.lifetime_s));
        Signed::sign(o, &key(self.provider), &qubix_protocol::testing::network()).unwrap()
    }
}

fn offer_id(provider: u8, id: u8) -> OfferId {
    let mut bytes = [provider; 16];
    bytes[15] = id;
    OfferId::from_bytes(bytes)
}

/// One step of a book's life.
#[derive(Debug, Clone)]
enum Step {
    Insert(OfferSpec),
    Withdraw { provider: u8, id: u8, sequence: u64 },
    Sweep { after_s: u64 },
    Search(String),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => offer_spec().prop_map(Step::Insert),
        1 => (1..=PROVIDERS, 0u8..6, 1u64..7)
            .prop_map(|(provider, id, sequence)| Step::Withdraw { provider, id, sequence }),
        1 => (0u64..9).prop_map(|after_s| Step::Sweep { after_s }),
        3 => query_text().prop_map(Step::Search),
    ]
}

fn fixed(values: &[&'static str]) -> BoxedStrategy<String> {
    select(values.to_vec()).prop_map(str::to_owned).boxed()
}

fn providers() -> BoxedStrategy<String> {
    (1..=PROVIDERS + 1)
        .prop_map(|seed| node(seed).to_string())
        .boxed()
}

/// `field op value` or `field in [a,b]` for one field of the fixture domain.
fn clause(
    name: &'static str,
    ordered: bool,
    value: BoxedStrategy<String>,
) -> BoxedStrategy<String> {
    let ops = if ordered {
        vec!["=", "!=", "<", "<=", ">", ">="]
    } else {
        vec!["=", "!="]
    };
    let single = (select(ops), value.clone()).prop_map(move |(op, v)| format!("{name}{op}{v}"));
    let list = (
        select(vec!["in", "notin"]),
        proptest::collection::vec(value, 1..4),
    )
        .prop_map(move |(op, vs)| format!("{name} {op} [{}]", vs.join(",")));
    prop_oneof![3 => single, 1 => list].boxed()
}

fn constraint() -> BoxedStrategy<String> {
    let words = &[
        "RTX_4090",
        "rtx",
        "4090",
        "A100",
        "h100",
        "\"RTX A6000\"",
        "MI300X",
        "nvidia",
        "3090",
        "ti",
        "ünïcode",
        "80gb",
        "absent",
    ];
    let prices = &[
        "99", "100", "500", "999", "1000", "1001", "1500", "2999", "3000", "0",
    ];
    let vram = &["7.99", "8", "16", "23.4375", "23.5", "24", "40", "80", "0"];
    prop_oneof![
        3 => clause("gpu_name", false, fixed(words)),
        2 => clause("location", false, fixed(&["DE", "fr", "US", "nl", "GB"])),
        3 => clause("price", true, fixed(prices)),
        2 => clause("num_gpus", true, fixed(&["0", "1", "2", "4", "8", "9"])),
        2 => clause("gpu_ram", true, fixed(vram)),
        1 => clause("provider", false, providers()),
        1 => clause("cuda", true, fixed(&["12", "12.2", "12.10", "13"])),
        1 => clause("reliability", true, fixed(&["0.5", "0.9", "1"])),
        1 => clause("total_price", true, fixed(&["1000", "4000"])),
        1 => clause("simulated", false, fixed(&["true", "false"])),
        1 => clause("region", false, fixed(&["eu_central", "us"])),
        1 => clause("pcie", true, fixed(&["3", "4"])),
    ]
    .boxed()
}

fn query_text() -> impl Strategy<Value = String> {
    let sort = fixed(&[
        "",
        "sort=price",
        "sort=-price",
        "sort=-reliability",
        "sort=num_gpus,-gpu_ram",
        "sort=location",
        "sort=-total_price,cuda",
    ]);
    (
        proptest::collection::vec(constraint(), 0..4),
        sort,
        proptest::option::of(1u32..12),
        0u32..6,
    )
        .prop_map(|(constraints, sort, limit, offset)| {
            let mut parts = constraints;
            parts.push(sort);
            parts.extend(limit.map(|l| format!("limit={l}")));
            parts.push(format!("offset={offset}"));
            parts.join(" ")
        })
}

/// Reliability known for some providers only, so `reliability` tests and sorts see both.
fn reliability(provider: &NodeId) -> Option<f64> {
    (1..=PROVIDERS)
        .find(|seed| node(*seed) == *provider)
        .and_then(|seed| [None, Some(0.95), Some(0.5), Some(1.0)].get(usize::from(seed) - 1))
        .copied()
        .flatten()
}

fn keys(items: &[OfferFacts<'_>]) -> Vec<(NodeId, OfferId)> {
    items
        .iter()
        .map(|f| (f.offer.provider, f.offer.offer_id))
        .collect()
}

fn assert_search_equals_scan(book: &OfferBook, text: &str) -> Result<(), TestCaseError> {
    let query = Query::parse(text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
    let all = || {
        book.iter()
            .map(|o| OfferFacts::new(o.payload(), reliability(&o.payload().provider)))
    };
    let scanned = query.page(all());
    let searches = [
        book.search(&query, reliability),
        book.search_with(&query, &reliability, 0),
    ];
    for indexed in searches {
        prop_assert_eq!(indexed.total_matched, scanned.total_matched, "{}", text);
        prop_assert_eq!(keys(&indexed.items), keys(&scanned.items), "{}", text);
        prop_assert_eq!(
            (indexed.offset, indexed.limit),
            (scanned.offset, scanned.limit)
        );
    }
    prop_assert_eq!(
        book.explain(&query, reliability),
        query.explain(all()),
        "{}",
        text
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn indexed_search_equals_a_full_scan(steps in proptest::collection::vec(step(), 1..48)) {
        let mut book = OfferBook::default();
        let mut now = NOW;
        for step in steps {
            match step {
                Step::Insert(spec) => {
                    book.insert(spec.signed());
                }
                Step::Withdraw { provider, id, sequence } => {
                    book.withdraw(&OfferWithdrawal {
                        provider: node(provider),
                        offer_id: offer_id(provider, id),
                        sequence,
                        issued_at: now,
                    });
                }
                Step::Sweep { after_s } => {
                    now = now.saturating_add(Duration::from_secs(after_s));
                    let removed = book.sweep(now, UnixMillis(now.0.saturating_sub(2_000)));
                    prop_assert!(book.iter().all(|o| !o.payload().is_expired(now)));
                    prop_assert!(removed.windows(2).all(|w| w[0] < w[1]));
                }
                Step::Search(text) => assert_search_equals_scan(&book, &text)?,
            }
            book.assert_consistent();
        }
        assert_search_equals_scan(&book, "")?;
    }
}
