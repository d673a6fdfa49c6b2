//! `getTransactionsForIdentity` on the devnet: filters, tick ranges, pages, limits.

use super::*;
use qubix_ledger::rpc::IdentityQuery;

#[tokio::test]
async fn filters_ranges_and_pages_over_included_transactions() {
    let (a, b, c) = (keypair('a'), keypair('b'), keypair('c'));
    let net = devnet_with(&[(&a, 1_000)], None).await;
    let rpc = RpcClient::new(rpc_config(net.url())).unwrap();
    let start = net.tick();
    let a_to_b = build_transfer(&a, b.public_key(), 10, start + 1).unwrap();
    let a_to_c = build_transfer(&a, c.public_key(), 20, start + 2).unwrap();
    let broke = build_transfer(&b, a.public_key(), 99, start + 3).unwrap();
    let pending = build_transfer(&a, b.public_key(), 5, start + 50).unwrap();
    for tx in [&a_to_b, &a_to_c, &broke, &pending] {
        rpc.broadcast(tx).await.unwrap();
    }
    net.drop_next(1);
    let dropped = build_transfer(&a, b.public_key(), 6, start + 2).unwrap();
    rpc.broadcast(&dropped).await.unwrap();
    net.advance_by(4);

    let all = IdentityQuery::new(a.identity());
    let page = rpc.transactions_for_identity(&all).await.unwrap();
    let ids: Vec<&str> = page.transactions.iter().map(|t| t.hash.as_str()).collect();
    // The start funding, then three transfers; newest tick first; no pending, no dropped.
    let want = [broke.id(), a_to_c.id(), a_to_b.id()].map(|id| id.to_string());
    assert_eq!(
        &ids[..3],
        want.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(page.hits.total, 4);
    assert_eq!(page.valid_for_tick, start + 3);
    assert!(
        !page.transactions[0].money_flew,
        "included without money moving"
    );

    let to_b = IdentityQuery {
        destination: Some(b.identity()),
        ..IdentityQuery::new(a.identity())
    };
    let page = rpc.transactions_for_identity(&to_b).await.unwrap();
    assert_eq!(page.transactions.len(), 1);
    assert_eq!(page.transactions[0].hash, a_to_b.id().to_string());

    let from_b = IdentityQuery {
        source: Some(b.identity()),
        ..IdentityQuery::new(a.identity())
    };
    let page = rpc.transactions_for_identity(&from_b).await.unwrap();
    assert_eq!(page.transactions[0].hash, broke.id().to_string());

    let window = IdentityQuery {
        from_tick: Some(start + 1),
        to_tick: Some(start + 2),
        ..IdentityQuery::new(a.identity())
    };
    let page = rpc.transactions_for_identity(&window).await.unwrap();
    assert_eq!(page.hits.total, 2);

    let second = IdentityQuery {
        offset: 1,
        size: 2,
        ..IdentityQuery::new(a.identity())
    };
    let page = rpc.transactions_for_identity(&second).await.unwrap();
    let ids: Vec<&str> = page.transactions.iter().map(|t| t.hash.as_str()).collect();
    assert_eq!(ids, [a_to_c.id().to_string(), a_to_b.id().to_string()]);
    assert_eq!((page.hits.total, page.hits.from, page.hits.size), (4, 1, 2));
    net.shutdown();
}

#[tokio::test]
async fn limits_and_bad_requests_are_answered_like_the_real_service() {
    let a = keypair('a');
    let net = devnet_with(&[(&a, 1)], None).await;
    net.advance();
    let rpc = RpcClient::new(rpc_config(net.url())).unwrap();
    let huge = IdentityQuery {
        size: 5_000,
        ..IdentityQuery::new(a.identity())
    };
    let page = rpc.transactions_for_identity(&huge).await.unwrap();
    assert_eq!(page.hits.size, 1_000, "size is capped");
    let far = IdentityQuery {
        offset: 10_001,
        ..IdentityQuery::new(a.identity())
    };
    let err = rpc.transactions_for_identity(&far).await.unwrap_err();
    assert!(
        matches!(err, RpcError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    let url = format!("{}/query/v1/getTransactionsForIdentity", net.url());
    for body in [
        json!({"identity": "nope"}),
        json!({"identity": a.identity().to_string(), "filters": {"colour": "red"}}),
        json!({"identity": a.identity().to_string(), "filters": {"source": "x"}}),
        json!({"identity": a.identity().to_string(),
               "ranges": {"tickNumber": {"gt": "1", "gte": "2"}}}),
        json!({"identity": a.identity().to_string(), "ranges": {"hash": {"gt": "1"}}}),
    ] {
        let (status, answer) = post(url.clone(), body.clone()).await;
        assert_eq!((status, answer["code"].as_i64()), (400, Some(3)), "{body}");
    }
    let (status, answer) = post(
        url,
        json!({"identity": a.identity().to_string(), "pagination": {"size": 0}}),
    )
    .await;
    assert_eq!((status, answer["hits"]["size"].as_i64()), (200, Some(10)));
    assert_eq!(answer["transactions"][0]["amount"], json!("1"));
    net.shutdown();
}
