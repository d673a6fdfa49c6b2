//! `getTransactionsForIdentity`: the request in the documented shape, the page parsed
//! tolerantly.

use super::*;
use std::sync::Mutex;

use qubix_ledger::rpc::IdentityQuery;

#[tokio::test]
async fn sends_the_documented_request_and_reads_the_page() {
    let seen: Arc<Mutex<Option<Value>>> = Arc::default();
    let keep = seen.clone();
    let router = Router::new().route(
        "/query/v1/getTransactionsForIdentity",
        post(move |axum::Json(body): axum::Json<Value>| {
            *keep.lock().unwrap() = Some(body);
            async {
                axum::Json(json!({
                    "validForTick": 20000300,
                    "hits": {"total": "2", "from": 0, "size": 10},
                    "transactions": [tx_json(json!("250")), tx_json(json!(7))]
                }))
            }
        }),
    );
    let rpc = client(&serve(router).await);
    let me = keypair('b').identity();
    let query = IdentityQuery {
        destination: Some(me.clone()),
        from_tick: Some(20_000_000),
        to_tick: Some(20_000_300),
        size: 10,
        ..IdentityQuery::new(me.clone())
    };
    let page = rpc.transactions_for_identity(&query).await.unwrap();
    assert_eq!(
        (
            page.valid_for_tick,
            page.hits.total,
            page.transactions.len()
        ),
        (20_000_300, 2, 2)
    );
    assert_eq!(
        (page.transactions[0].amount, page.transactions[1].amount),
        (250, 7)
    );
    let request = seen.lock().unwrap().take().unwrap();
    assert_eq!(
        request,
        json!({
            "identity": me.to_string(),
            "filters": {"destination": me.to_string()},
            "ranges": {"tickNumber": {"gte": "20000000", "lte": "20000300"}},
            "pagination": {"offset": 0, "size": 10}
        })
    );
}

#[tokio::test]
async fn a_missing_or_null_list_is_an_empty_page() {
    let router = Router::new().route(
        "/query/v1/getTransactionsForIdentity",
        post(|| async { axum::Json(json!({"validForTick": 5, "transactions": null})) }),
    );
    let rpc = client(&serve(router).await);
    let page = rpc
        .transactions_for_identity(&IdentityQuery::new(keypair('a').identity()))
        .await
        .unwrap();
    assert!(page.transactions.is_empty());
    assert_eq!((page.valid_for_tick, page.hits.total), (5, 0));
}
