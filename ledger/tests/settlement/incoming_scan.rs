//! `incoming_since`: the transfers that reached us, resumable from `through_tick`.

use super::*;
use std::collections::HashSet;

use axum::Router;
use axum::routing::{get, post};
use qubix_ledger::qubic::build_transfer;
use qubix_ledger::rpc::ChainTransaction;
use qubix_ledger::{ChainTransferIn, IncomingScan};
use serde_json::{Value, json};

fn ids(scan: &IncomingScan) -> Vec<TxId> {
    scan.transfers.iter().map(|t| t.tx_id.clone()).collect()
}

#[tokio::test]
async fn scans_resume_from_through_tick_and_miss_nothing() {
    let (payer, me, broke) = (keypair('a'), keypair('m'), keypair('c'));
    let net = devnet_with(&[(&payer, 1_000)], None).await;
    let (s, _db) = settlement(&net, &me);
    let start = net.tick();
    let nothing_yet = s.incoming_since(start, 10).await.unwrap();
    assert_eq!(
        (nothing_yet.transfers.len(), nothing_yet.through_tick),
        (0, start - 1)
    );

    let funded = net.fund(&me.identity(), 100).unwrap();
    net.advance();
    let paid = build_transfer(&payer, me.public_key(), 25, start + 2).unwrap();
    let moved_nothing = build_transfer(&broke, me.public_key(), 5, start + 2).unwrap();
    for tx in [&paid, &moved_nothing] {
        s.rpc().broadcast(tx).await.unwrap();
    }
    net.advance_by(2);
    let scan = s.incoming_since(start, 10).await.unwrap();
    assert_eq!(ids(&scan), [funded.clone(), paid.id()]);
    assert_eq!(scan.through_tick, start + 2);
    assert_eq!(
        scan.transfers[0],
        ChainTransferIn {
            tx_id: funded.clone(),
            from: net.faucet(),
            amount: Qu(100),
            tick: start,
        }
    );
    assert_eq!(
        (scan.transfers[1].from.clone(), scan.transfers[1].amount),
        (payer.identity(), Qu(25))
    );
    let again = s.incoming_since(scan.through_tick + 1, 10).await.unwrap();
    assert!(again.transfers.is_empty());
    assert_eq!(again.through_tick, start + 2, "nothing new: the same point");

    // Paying out is not incoming.
    let out = build_transfer(&me, payer.public_key(), 10, start + 4).unwrap();
    s.rpc().broadcast(&out).await.unwrap();
    let second = net.fund(&me.identity(), 7).unwrap();
    net.advance();
    let third = net.fund(&me.identity(), 8).unwrap();
    net.advance_by(2);
    let part = s.incoming_since(again.through_tick + 1, 1).await.unwrap();
    assert_eq!(ids(&part), [second]);
    assert_eq!(
        part.through_tick,
        start + 3,
        "stopped at max, after a whole tick"
    );
    let rest = s.incoming_since(part.through_tick + 1, 1).await.unwrap();
    assert_eq!(ids(&rest), [third]);
    assert_eq!(rest.through_tick, start + 5);
    assert_eq!(net.balance(&me.identity()), 100 + 25 + 7 + 8 - 10);
    s.shutdown().await;
}

/// An archive with `per_tick[i]` transfers to `me` in tick `FIRST + i` (plus, in the
/// first tick, one that moved nothing and one contract call), answering like the real
/// service: newest first, pages of at most 1,000, totals capped at 10,000.
fn busy_archive(me: &str, payer: &str, per_tick: &[u32]) -> Router {
    let mut all = Vec::new();
    for (i, n) in per_tick.iter().enumerate() {
        let tick = FIRST + i as u32;
        for k in 0..*n {
            all.push(transfer(me, payer, tick, k, true, 0));
        }
    }
    all.push(transfer(me, payer, FIRST, 90_000, false, 0));
    all.push(transfer(me, payer, FIRST, 90_001, true, 1));
    all.sort_by(|a, b| (b.tick_number, &a.hash).cmp(&(a.tick_number, &b.hash)));
    let last = FIRST + per_tick.len() as u32 - 1;
    let all = std::sync::Arc::new(all);
    Router::new()
        .route(
            "/query/v1/getLastProcessedTick",
            get(move || async move { axum::Json(json!({"tickNumber": last})) }),
        )
        .route(
            "/query/v1/getTransactionsForIdentity",
            post(move |axum::Json(q): axum::Json<Value>| {
                let all = all.clone();
                async move {
                    let bound = |k: &str| q["ranges"]["tickNumber"][k].as_str().unwrap();
                    let (gte, lte): (u32, u32) =
                        (bound("gte").parse().unwrap(), bound("lte").parse().unwrap());
                    let hits: Vec<&ChainTransaction> = all
                        .iter()
                        .filter(|t| (gte..=lte).contains(&t.tick_number))
                        .collect();
                    let offset = q["pagination"]["offset"].as_u64().unwrap() as usize;
                    let size = q["pagination"]["size"].as_u64().unwrap().min(1000) as usize;
                    let page: Vec<_> = hits.iter().skip(offset).take(size).collect();
                    axum::Json(json!({
                        "validForTick": last,
                        "hits": {"total": hits.len().min(10_000), "from": offset, "size": size},
                        "transactions": page,
                    }))
                }
            }),
        )
}

const FIRST: u32 = 30_000_000;

fn transfer(me: &str, payer: &str, tick: u32, k: u32, flew: bool, input: u32) -> ChainTransaction {
    let mut hash = [0u8; 32];
    hash[..4].copy_from_slice(&tick.to_be_bytes());
    hash[4..8].copy_from_slice(&k.to_be_bytes());
    ChainTransaction {
        hash: TxId::from_hash(hash).to_string(),
        amount: 1,
        source: payer.to_owned(),
        destination: me.to_owned(),
        tick_number: tick,
        money_flew: flew,
        input_type: input,
        ..ChainTransaction::default()
    }
}

#[tokio::test]
async fn a_busy_archive_is_scanned_in_windows_each_transfer_once() {
    let (payer, me) = (keypair('a'), keypair('n'));
    let per_tick = [3, 0, 1_100, 600, 600, 600];
    let router = busy_archive(me.identity().as_str(), payer.identity().as_str(), &per_tick);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let db = common::temp_db();
    let s = QubicSettlement::start(settlement_config(&url), me.clone(), &db).unwrap();

    let everything = s.incoming_since(FIRST, 100_000).await.unwrap();
    assert_eq!(
        everything.transfers.len(),
        2_903,
        "contract calls and failures left out"
    );
    assert_eq!(everything.through_tick, FIRST + 5);
    let unique: HashSet<_> = ids(&everything).into_iter().collect();
    assert_eq!(unique.len(), 2_903);
    assert!(
        everything
            .transfers
            .windows(2)
            .all(|w| w[0].tick <= w[1].tick)
    );

    // Small steps: whole ticks at a time, resuming after each, add up to the same.
    let (mut seen, mut from, mut steps) = (Vec::new(), FIRST, Vec::new());
    while from <= FIRST + 5 {
        let scan = s.incoming_since(from, 5).await.unwrap();
        steps.push((scan.transfers.len(), scan.through_tick - FIRST));
        seen.extend(ids(&scan));
        from = scan.through_tick + 1;
    }
    assert_eq!(steps[..3], [(3, 1), (1_100, 2), (600, 3)]);
    assert_eq!(seen, ids(&everything), "nothing missed, nothing twice");
    s.shutdown().await;
}
