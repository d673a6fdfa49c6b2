//! Evaluation, sorting and paging over the fixture market (table in `tests/mod.rs`).

use std::collections::BTreeSet;

use crate::offer::Offer;

use super::super::{DEFAULT_LIMIT, OfferFacts, Query};
use super::{facts, market, node, number, offer, query};

fn matching(text: &str) -> BTreeSet<u8> {
    let market = market();
    let q = query(text);
    facts(&market)
        .iter()
        .filter(|f| q.matches(f))
        .map(number)
        .collect()
}

#[test]
fn constraints_select_the_expected_offers() {
    let all: &[u8] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    let cases: &[(&str, &[u8])] = &[
        ("", all),
        ("gpu_name=RTX_4090", &[1, 2, 3, 8, 10]),
        ("gpu_name=RTX_409", &[]),
        ("gpu=\"rtx 4090 d\"", &[3]),
        ("model=geforce-rtx-4090", &[1, 2, 3, 8, 10]),
        ("gpu_name!=RTX_4090", &[4, 5, 6, 7, 9]),
        ("gpu in [A100, H100]", &[5, 6]),
        ("gpu notin [rtx, tesla]", &[5, 6]),
        ("gpu=tesla_t4", &[9]),
        ("num_gpus>=2", &[1, 3, 4, 5, 6, 8, 10]),
        ("num_gpus in [1,4]", &[2, 3, 7, 9]),
        ("gpu_ram>=24", &[1, 2, 3, 4, 5, 6, 8, 10]),
        ("gpu_ram>24", &[5, 6]),
        ("gpu_ram=15", &[9]),
        ("price<=1500", &[1, 2, 4, 7, 8, 9, 10]),
        ("price>1500", &[3, 5, 6]),
        ("total_price<=2400", &[1, 2, 4, 7, 9, 10]),
        ("cuda>=12.2", &[1, 2, 3, 5, 6, 7, 8, 10]),
        ("cuda>12.4", &[3, 6]),
        ("cuda=12.1", &[4]),
        ("compute_cap>=8.9", &[1, 2, 3, 6, 7, 8, 10]),
        ("location in [DE,FR]", &[1, 2, 4, 7, 8, 10]),
        ("country=de", &[1, 4, 7, 8]),
        ("location notin [DE,FR,US]", &[6, 9]),
        ("region=eu_central", &[1]),
        ("region=EU-Central", &[1]),
        ("region=eu", &[]),
        ("region!=eu_central", &[5]),
        ("reliability>=0.95", &[1, 4, 5, 6, 8, 10]),
        ("reliability<0.95", &[2, 9]),
        ("reliability!=0.99", &[2, 4, 5, 6, 8, 9]),
        ("simulated=false", &[1, 2, 3, 4, 5, 6, 8, 9, 10]),
        ("simulated=true", &[7]),
        ("cpu_cores>=32", &[1, 5]),
        ("ram>=128", &[1, 5]),
        ("ram<64", &[9]),
        ("disk>=500", &[1, 5]),
        ("max_duration>=72", &[1, 5]),
        ("max_duration=0.5", &[9]),
        ("driver=550", &[1, 2, 3, 4, 6, 7, 8, 10]),
        ("driver=550.54", &[1, 2, 3, 4, 7, 8, 10]),
        ("driver=55", &[]),
        ("driver!=535", &[1, 2, 3, 4, 6, 7, 8, 10]),
        ("pcie>=4", &[1, 6]),
        ("pcie<4", &[9]),
        ("nvlink=true", &[5, 6]),
        ("nvlink=false", &[1]),
        ("nvlink!=true", &[1]),
        (
            "gpu_name=RTX_4090 num_gpus>=2 gpu_ram>=24 price<=1500 cuda>=12.2 \
             location in [DE,FR] reliability>=0.95 simulated=false",
            &[1, 8, 10],
        ),
    ];
    for &(text, expected) in cases {
        let expected: BTreeSet<u8> = expected.iter().copied().collect();
        assert_eq!(matching(text), expected, "{text}");
    }
}

#[test]
fn provider_matches_by_node_id() {
    assert_eq!(
        matching(&format!("provider={}", node(1))),
        BTreeSet::from([1, 10])
    );
    assert_eq!(
        matching(&format!("provider notin [{},{}]", node(1), node(2))).len(),
        7
    );
}

#[test]
fn gpu_names_match_whole_words_in_any_script_and_case() {
    let o = offer(1, "Ａ100 Größe-X", 1, |_| {});
    let facts = OfferFacts::new(&o, None);
    for (text, expected) in [
        ("gpu=größe", true),
        ("gpu=GRÖSSE", false),
        ("gpu=\"Größe x\"", true),
        ("gpu=ａ100", true),
    ] {
        assert_eq!(query(text).matches(&facts), expected, "{text}");
    }
}

fn order(text: &str) -> Vec<u8> {
    let market = market();
    query(text)
        .page(facts(&market))
        .items
        .iter()
        .map(number)
        .collect()
}

#[test]
fn default_order_is_cheapest_then_most_reliable_then_provider_and_id() {
    // 1 and 10 tie on price and reliability and share a provider: offer id decides.
    assert_eq!(order(""), [9, 4, 7, 2, 1, 10, 8, 3, 5, 6]);
}

#[test]
fn sort_keys_come_first_and_unknown_reliability_sorts_last_either_way() {
    assert_eq!(order("sort=-reliability"), [5, 1, 10, 4, 8, 6, 2, 9, 7, 3]);
    assert_eq!(order("sort=reliability"), [9, 2, 8, 6, 4, 1, 10, 5, 7, 3]);
    assert_eq!(
        order("sort=-gpu_ram,price"),
        [5, 6, 4, 2, 1, 10, 8, 3, 7, 9]
    );
    assert_eq!(order("sort=-cuda"), [3, 6, 7, 1, 10, 5, 2, 8, 4, 9]);
    assert_eq!(order("sort=location"), [4, 7, 1, 8, 2, 10, 9, 6, 3, 5]);
    assert_eq!(order("sort=-total_price"), [6, 5, 3, 8, 1, 10, 4, 2, 7, 9]);
    assert_eq!(order("sort=-price"), [6, 5, 3, 8, 1, 10, 2, 7, 4, 9]);
}

#[test]
fn pages_are_windows_of_the_sorted_matches() {
    let market = market();
    let page = |text: &str| query(text).page(facts(&market));
    let numbers = |text: &str| page(text).items.iter().map(number).collect::<Vec<_>>();
    assert_eq!(numbers("limit=3"), [9, 4, 7]);
    assert_eq!(numbers("limit=3 offset=3"), [2, 1, 10]);
    assert_eq!(numbers("offset=8"), [5, 6]);
    assert_eq!(numbers("offset=20"), Vec::<u8>::new());
    let p = page("price<=1500 limit=2 offset=1");
    assert_eq!((p.total_matched, p.offset, p.limit), (7, 1, 2));
    assert_eq!(p.items.iter().map(number).collect::<Vec<_>>(), [4, 7]);
    assert_eq!(page("offset=20").total_matched, 10);
}

#[test]
fn a_page_holds_the_default_limit_unless_told_otherwise() {
    let offers: Vec<Offer> = (0..150u8)
        .map(|n| offer(n, "RTX 4090", 1000 + u64::from(n % 7), |_| {}))
        .collect();
    let facts: Vec<OfferFacts<'_>> = offers.iter().map(|o| OfferFacts::new(o, None)).collect();
    let page = Query::default().page(facts.iter().copied());
    assert_eq!(
        (page.total_matched, page.items.len()),
        (150, DEFAULT_LIMIT as usize)
    );
    assert!(
        page.items
            .windows(2)
            .all(|w| Query::default().compare(&w[0], &w[1]).is_lt())
    );
    let everything = query("limit=1000").page(facts.iter().copied());
    assert_eq!(&everything.items[..100], &page.items[..]);
    // A hand-built limit above the maximum is capped, and zero gives an empty page.
    let capped = Query {
        limit: Some(5000),
        ..Query::default()
    };
    assert_eq!(capped.page(facts.iter().copied()).limit, 1000);
    let empty = Query {
        limit: Some(0),
        ..Query::default()
    }
    .page(facts.iter().copied());
    assert_eq!((empty.total_matched, empty.items.len()), (150, 0));
}
