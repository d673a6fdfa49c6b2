//! Properties: parsing never panics and points inside the input; canonical text parses
//! back to the same query; pages and explanations agree with direct counts.

use proptest::prelude::*;
use proptest::sample::select;

use crate::offer::{Offer, PcieLink, Version};

use super::super::{OfferFacts, Query, explain};
use super::{facts, node, offer, query};

/// A value strategy that mixes boundary values of the fixture domain with random ones.
fn number() -> BoxedStrategy<String> {
    prop_oneof![
        select(vec![
            "0", "1", "2", "4", "8", "15", "16", "24", "48", "80", "200", "1200", "1500"
        ])
        .prop_map(str::to_owned),
        (0u64..100_000).prop_map(|n| n.to_string()),
    ]
    .boxed()
}

fn decimal() -> BoxedStrategy<String> {
    prop_oneof![
        number(),
        (0u32..200, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
        select(vec!["0.5", "23.99", "24.0", "0.95", "0.9", "0.99"]).prop_map(str::to_owned),
    ]
    .boxed()
}

fn version() -> BoxedStrategy<String> {
    prop_oneof![
        select(vec![
            "12", "12.2", "12.4", "12.10", "11.8", "8.9", "9.0", "7.5"
        ])
        .prop_map(str::to_owned),
        (0u16..20, 0u16..20).prop_map(|(a, b)| format!("{a}.{b}")),
    ]
    .boxed()
}

fn fixed(values: &'static [&'static str]) -> BoxedStrategy<String> {
    select(values).prop_map(str::to_owned).boxed()
}

/// `field op value`, or `field in [values]`, with the given names and values.
fn clause(
    names: &'static [&'static str],
    ordered: bool,
    value: BoxedStrategy<String>,
) -> impl Strategy<Value = String> {
    let ops: &'static [&'static str] = if ordered {
        &["=", "!=", "<", "<=", ">", ">=", " == ", " >= "]
    } else {
        &["=", "!=", " = "]
    };
    let single =
        (select(names), select(ops), value.clone()).prop_map(|(n, o, v)| format!("{n}{o}{v}"));
    let list = (
        select(names),
        select(&["in", "notin", "IN", "=", "!="][..]),
        prop::collection::vec(value, 1..4),
    )
        .prop_map(|(n, o, vs)| format!("{n} {o} [{}]", vs.join(", ")));
    prop_oneof![3 => single, 1 => list]
}

fn constraint_text() -> impl Strategy<Value = String> {
    let providers: Vec<String> = (0..3).map(|n| node(n).to_string()).collect();
    prop_oneof![
        clause(
            &[
                "price",
                "total_price",
                "num_gpus",
                "gpu_count",
                "cpu_cores",
                "pcie",
                "PRICE"
            ],
            true,
            number()
        ),
        clause(
            &["gpu_ram", "vram", "ram", "disk", "max_duration"],
            true,
            decimal()
        ),
        clause(
            &["reliability"],
            true,
            fixed(&["0", "0.8", "0.9", "0.95", "0.99", "1", "0.123"])
        ),
        clause(&["cuda", "compute_cap", "Cuda_Version"], true, version()),
        clause(
            &["simulated", "nvlink"],
            false,
            fixed(&["true", "false", "TRUE"])
        ),
        clause(
            &["gpu_name", "gpu", "model"],
            false,
            fixed(&[
                "RTX_4090",
                "\"RTX 4090\"",
                "a100",
                "rtx-3090",
                "H100",
                "T4",
                "geforce",
                "\"x\\\"y\""
            ])
        ),
        clause(
            &["driver"],
            false,
            fixed(&["550", "535.104", "550.54.15", "5"])
        ),
        clause(
            &["region"],
            false,
            fixed(&["eu_central", "us-east", "\"North Rhine\""])
        ),
        clause(
            &["location", "country"],
            false,
            fixed(&["DE", "fr", "US", "nl", "IN"])
        ),
        clause(&["provider"], false, select(providers).boxed()),
    ]
}

/// Query text: constraints, then maybe sort keys, limit and offset.
fn query_text(constraints: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    let sortable = vec![
        "price",
        "total_price",
        "num_gpus",
        "gpu_ram",
        "reliability",
        "cuda",
        "compute_cap",
        "cpu_cores",
        "ram",
        "disk",
        "location",
        "max_duration",
    ];
    let sort = prop::sample::subsequence(sortable, 0..4)
        .prop_flat_map(|keys| {
            let n = keys.len();
            (Just(keys), prop::collection::vec(any::<bool>(), n))
        })
        .prop_map(|(keys, signs)| {
            let keys: Vec<String> = keys
                .iter()
                .zip(signs)
                .map(|(k, desc)| format!("{}{k}", if desc { "-" } else { "" }))
                .collect();
            if keys.is_empty() {
                String::new()
            } else {
                format!("sort={}", keys.join(","))
            }
        });
    let limit = prop::option::of(prop_oneof![1u32..12, 1u32..=1000]);
    let offset = prop::option::of(0u32..30);
    (
        prop::collection::vec(constraint_text(), constraints),
        sort,
        limit,
        offset,
    )
        .prop_map(|(cs, sort, limit, offset)| {
            let mut parts = cs;
            parts.push(sort);
            parts.extend(limit.map(|l| format!("limit={l}")));
            parts.extend(offset.map(|o| format!("offset={o}")));
            parts.retain(|p| !p.is_empty());
            parts.join(" ")
        })
}

type OfferParams = (
    (usize, u32, u64, u64),
    (Version, Version, usize, Option<usize>),
    (Option<f64>, bool, Option<u8>, Option<bool>),
    (u32, u64, u64, u64, usize),
);

const MODELS: &[&str] = &[
    "NVIDIA GeForce RTX 4090",
    "NVIDIA GeForce RTX 4090 D",
    "NVIDIA GeForce RTX 3090",
    "NVIDIA A100-SXM4-80GB",
    "NVIDIA H100 80GB HBM3",
    "Tesla T4",
];
const COUNTRIES: &[&str] = &["DE", "FR", "US", "NL", "IN"];
const REGIONS: &[&str] = &["eu-central", "us-east", "North Rhine"];
const DRIVERS: &[&str] = &["550.54.15", "535.104.05", "550.90.07"];

fn offer_params() -> impl Strategy<Value = OfferParams> {
    let versions = vec![
        Version::new(11, 8),
        Version::new(12, 2),
        Version::new(12, 4),
        Version::new(12, 10),
    ];
    let caps = vec![
        Version::new(7, 5),
        Version::new(8, 6),
        Version::new(8, 9),
        Version::new(9, 0),
    ];
    let reliability = vec![
        None,
        Some(0.8),
        Some(0.9),
        Some(0.95),
        Some(0.99),
        Some(1.0),
    ];
    (
        (
            0..MODELS.len(),
            1u32..=8,
            select(vec![
                8u64 * 1024,
                15 * 1024,
                16 * 1024,
                24 * 1024 - 10,
                24 * 1024,
                80 * 1024,
            ]),
            1u64..16,
        ),
        (
            select(versions),
            select(caps),
            0..COUNTRIES.len(),
            prop::option::of(0..REGIONS.len()),
        ),
        (
            select(reliability),
            any::<bool>(),
            prop::option::of(3u8..=5),
            prop::option::of(any::<bool>()),
        ),
        (
            1u32..=64,
            1u64..=512,
            1u64..=2000,
            1u64..=200,
            0..DRIVERS.len(),
        ),
    )
}

fn build(i: usize, params: &OfferParams) -> (Offer, Option<f64>) {
    let (
        (model, gpus, vram, price),
        (cuda, cap, country, region),
        (reliability, simulated, pcie, nvlink),
        rest,
    ) = *params;
    let (cpus, ram_gib, disk, hours, driver) = rest;
    let n = u8::try_from(i).unwrap();
    let o = offer(n, MODELS[model], price * 100, |o| {
        o.provider = node(n % 3);
        (
            o.gpu_count,
            o.gpu.vram_mib,
            o.gpu.cuda_version,
            o.gpu.compute_capability,
        ) = (gpus, vram, cuda, cap);
        o.location.country = COUNTRIES[country].to_owned();
        o.location.region = region.map(|r| REGIONS[r].to_owned());
        (o.simulated, o.gpu.nvlink) = (simulated, nvlink);
        o.gpu.pcie = pcie.map(|generation| PcieLink {
            generation,
            width: 16,
        });
        (o.cpu_cores, o.ram_mib, o.disk_gib, o.max_rental_secs) =
            (cpus, ram_gib * 1024, disk, hours * 1800);
        o.gpu.driver_version = DRIVERS[driver].to_owned();
    });
    (o, reliability)
}

/// Checks page and explain against direct counts for one query over one market.
fn check_against_direct_counts(q: &Query, all: &[OfferFacts<'_>]) -> Result<(), TestCaseError> {
    let matched: Vec<OfferFacts<'_>> = all.iter().copied().filter(|f| q.matches(f)).collect();
    let page = q.page(all.iter().copied());
    prop_assert_eq!(page.total_matched, matched.len());
    let mut sorted = matched.clone();
    sorted.sort_by(|a, b| q.compare(a, b));
    let window: Vec<_> = sorted
        .iter()
        .copied()
        .skip(q.offset as usize)
        .take(q.page_size() as usize)
        .collect();
    prop_assert!(
        page.items
            .windows(2)
            .all(|w| q.compare(&w[0], &w[1]).is_lt())
    );
    prop_assert_eq!(page.items, window);

    let e = explain(q, all.iter().copied());
    prop_assert_eq!((e.total, e.matched), (all.len(), matched.len()));
    prop_assert_eq!(e.constraints.len(), q.constraints.len());
    let fails = |f: &OfferFacts<'_>| q.constraints.iter().filter(|c| !c.check(f)).count();
    for (c, report) in q.constraints.iter().zip(&e.constraints) {
        prop_assert_eq!(&report.constraint, &c.to_string());
        prop_assert_eq!(report.excluded, all.iter().filter(|f| !c.check(f)).count());
        prop_assert_eq!(
            report.only_blocker,
            all.iter().filter(|f| !c.check(f) && fails(f) == 1).count()
        );
    }
    prop_assert_eq!(e.near_misses.len(), (all.len() - matched.len()).min(5));
    let counts: Vec<usize> = e.near_misses.iter().map(|m| m.failed.len()).collect();
    prop_assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "near misses best first: {:?}",
        counts
    );
    let fewest = all.iter().map(fails).filter(|&n| n > 0).min();
    prop_assert_eq!(counts.first().copied(), fewest);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsing_never_panics_and_errors_point_inside_the_input(
        input in prop_oneof![any::<String>(), "[a-zA-Z_=<>!\\[\\],\"\\\\ 0-9.\\-é]{0,40}"]
    ) {
        match Query::parse(&input) {
            Ok(q) => prop_assert_eq!(Query::parse(&q.to_string()), Ok(q)),
            Err(e) => {
                prop_assert!(e.start <= e.end && e.end <= input.len(), "{:?}", e);
                let boundaries = input.is_char_boundary(e.start) && input.is_char_boundary(e.end);
                prop_assert!(boundaries, "{:?}", e);
                let _ = e.render(&input);
            }
        }
    }

    #[test]
    fn canonical_text_parses_back_to_the_same_query(text in query_text(0..6)) {
        let q = Query::parse(&text).map_err(|e| TestCaseError::fail(e.render(&text)))?;
        let canonical = q.to_string();
        prop_assert_eq!(Query::parse(&canonical), Ok(q.clone()), "{}", canonical);
        prop_assert_eq!(query(&canonical).to_string(), canonical);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pages_and_explanations_agree_with_direct_counts(
        text in query_text(0..4),
        params in prop::collection::vec(offer_params(), 0..40),
    ) {
        let market: Vec<(Offer, Option<f64>)> =
            params.iter().enumerate().map(|(i, p)| build(i, p)).collect();
        let all = facts(&market);
        check_against_direct_counts(&query(&text), &all)?;
        for a in &all {
            for b in &all {
                let q = query(&text);
                prop_assert_eq!(q.compare(a, b), q.compare(b, a).reverse());
                prop_assert_eq!(q.compare(a, b).is_eq(), a.offer.offer_id == b.offer.offer_id);
            }
        }
    }
}
