//! Explain over the fixture market (table in `tests/mod.rs`).

use crate::amount::Qu;

use super::super::{ConstraintReport, Explanation, Failure, Query, explain};
use super::{facts, market, query};

fn report(constraint: &str, excluded: usize, only_blocker: usize) -> ConstraintReport {
    ConstraintReport {
        constraint: constraint.to_owned(),
        excluded,
        only_blocker,
    }
}

fn numbers(e: &Explanation) -> Vec<u8> {
    e.near_misses
        .iter()
        .map(|m| m.offer_id.as_bytes()[0])
        .collect()
}

#[test]
fn counts_what_each_constraint_excluded_and_alone_blocked() {
    let market = market();
    let e = explain(
        &query("gpu=RTX_4090 price<=1100 cuda>=12.4"),
        facts(&market),
    );
    assert_eq!((e.total, e.matched), (10, 0));
    assert_eq!(
        e.constraints,
        [
            report("gpu_name=RTX_4090", 5, 1),
            report("price<=1100", 6, 3),
            report("cuda>=12.4", 4, 1)
        ]
    );
    // Offers failing one constraint, cheapest first; 1 and 10 tie on price, id decides.
    assert_eq!(numbers(&e), [7, 2, 1, 10, 3]);
    assert!(e.near_misses.iter().all(|m| m.failed.len() == 1));
    let two = &e.near_misses[1];
    assert_eq!(
        (two.gpu_model.as_str(), two.price),
        ("NVIDIA GeForce RTX 4090", Qu(1000))
    );
    assert_eq!(
        two.failed,
        [Failure {
            constraint: "cuda>=12.4".into(),
            actual: "12.2".into(),
            reason: "cuda is 12.2, wanted >= 12.4".into(),
        }]
    );
    assert_eq!(
        e.near_misses[2].failed[0].reason,
        "price is 1200 QU, wanted <= 1100"
    );
    assert_eq!(
        e.near_misses[0].failed[0].reason,
        "gpu_name is NVIDIA GeForce RTX 4080, wanted RTX_4090"
    );
    assert_eq!(
        e.summary(),
        "No offer matched: price<=1100 excluded 6 of 10 offers; 3 offers missed only on price<=1100"
    );
}

#[test]
fn near_misses_fall_back_to_the_fewest_failures() {
    let market = market();
    let e = explain(
        &query("gpu=RTX_4090 price<=100 location=IN"),
        facts(&market),
    );
    assert_eq!(e.matched, 0);
    // 9 (T4, IN, 200) fails gpu and price; every RTX 4090 fails price and location.
    assert_eq!(numbers(&e), [9, 2, 1, 10, 8]);
    assert_eq!(
        e.near_misses
            .iter()
            .map(|m| m.failed.len())
            .collect::<Vec<_>>(),
        [2; 5]
    );
    assert!(
        e.summary()
            .ends_with("every offer failed more than one constraint"),
        "{}",
        e.summary()
    );
}

#[test]
fn unknown_reliability_is_explained_as_no_record() {
    let market = market();
    let e = explain(&query("reliability>=0.95 gpu=rtx_4090_d"), facts(&market));
    assert_eq!(
        e.constraints,
        [
            report("reliability>=0.95", 4, 1),
            report("gpu_name=rtx_4090_d", 9, 6)
        ]
    );
    assert_eq!(numbers(&e), [4, 1, 10, 8, 3]);
    let failure = &e.near_misses[4].failed[0];
    assert_eq!(
        (failure.actual.as_str(), failure.reason.as_str()),
        ("unknown", "no reliability record yet")
    );
    assert_eq!(
        e.summary(),
        "No offer matched: gpu_name=rtx_4090_d excluded 9 of 10 offers; \
         6 offers missed only on gpu_name=rtx_4090_d"
    );
    let e = explain(&query("nvlink=true"), facts(&market));
    let unknown = e
        .near_misses
        .iter()
        .find(|m| m.offer_id.as_bytes()[0] == 9)
        .unwrap();
    assert_eq!(unknown.failed[0].reason, "the offer does not give nvlink");
}

#[test]
fn summaries_cover_matches_and_empty_books() {
    let market = market();
    let e = explain(&query("price<=1500 sort=-price limit=1"), facts(&market));
    assert_eq!((e.matched, e.constraints[0].excluded), (7, 3));
    assert_eq!(
        e.summary(),
        "7 of 10 offers matched; price<=1500 excluded the most (3)"
    );
    assert_eq!(
        query("price>0").explain(facts(&market)).summary(),
        "10 of 10 offers matched"
    );
    let all = Query::default().explain(facts(&market));
    assert_eq!((all.matched, all.near_misses.len()), (10, 0));
    assert_eq!(
        all.summary(),
        "All 10 offers matched: the query has no constraints"
    );
    let none = explain(&query("price<=1"), []);
    assert_eq!(
        (none.total, none.matched, none.constraints[0].excluded),
        (0, 0, 0)
    );
    assert_eq!(
        none.summary(),
        "No offers to search: the offer book is empty"
    );
}

#[test]
fn explanation_has_the_json_shape_the_api_returns() {
    let market = market();
    let e = explain(&query("price<=1100 cuda>=12.4"), facts(&market));
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["total"], 10);
    assert_eq!(json["constraints"][0]["constraint"], "price<=1100");
    assert_eq!(json["constraints"][0]["excluded"], 6);
    assert_eq!(json["constraints"][1]["only_blocker"], 3);
    let miss = &json["near_misses"][0];
    assert_eq!(miss["offer_id"], "09".repeat(16));
    assert_eq!(miss["gpu_model"], "Tesla T4");
    assert_eq!(miss["price"], 200);
    assert_eq!(miss["failed"][0]["actual"], "11.8");
    assert!(miss["provider"].as_str().unwrap().starts_with("12D3KooW"));
    assert_eq!(serde_json::from_value::<Explanation>(json).unwrap(), e);
}
