//! A response body is read up to `max_body_bytes`, never further.

use super::*;
use std::sync::atomic::AtomicU64;

use axum::body::{Body, Bytes};
use futures::StreamExt as _;
use qubix_ledger::rpc::{BodySize, DEFAULT_MAX_BODY_BYTES};

const TWO_MIB: usize = 2 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

#[tokio::test]
async fn a_declared_two_mib_body_is_refused_before_reading() {
    let router = Router::new().route("/live/v1/tick-info", get(|| async { vec![b' '; TWO_MIB] }));
    let rpc = client(&serve(router).await);
    let err = rpc.tick_info().await.unwrap_err();
    assert!(
        matches!(
            err,
            RpcError::BodyTooLarge {
                size: BodySize::Declared(n),
                limit: DEFAULT_MAX_BODY_BYTES,
                ..
            } if n == TWO_MIB as u64
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("2097152 bytes") && text.contains("1048576"),
        "{text}"
    );
    assert!(
        !err.is_transient(),
        "a larger body will not shrink on retry"
    );
}

#[tokio::test]
async fn a_streamed_body_is_cut_off_once_past_the_limit() {
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    // 2 MiB in 64 KiB chunks, no Content-Length (chunked encoding).
    let router = Router::new().route(
        "/query/v1/getLastProcessedTick",
        get(move || {
            let counter = counter.clone();
            let chunks = futures::stream::iter(0..TWO_MIB / CHUNK).map(move |_| {
                counter.fetch_add(CHUNK as u64, Ordering::SeqCst);
                Ok::<_, std::io::Error>(Bytes::from(vec![b'0'; CHUNK]))
            });
            async move { Body::from_stream(chunks) }
        }),
    );
    let rpc = client(&serve(router).await);
    let err = rpc.last_processed_tick().await.unwrap_err();
    let RpcError::BodyTooLarge {
        size: BodySize::AtLeast(read),
        limit,
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(limit, DEFAULT_MAX_BODY_BYTES);
    assert!(read > limit && read <= limit + CHUNK as u64, "read {read}");
}

#[tokio::test]
async fn an_endless_body_ends_the_call_at_the_limit() {
    let router = Router::new().route(
        "/live/v1/tick-info",
        get(|| async {
            let endless = futures::stream::repeat_with(|| {
                Ok::<_, std::io::Error>(Bytes::from(vec![b'0'; CHUNK]))
            });
            Body::from_stream(endless)
        }),
    );
    let small = RpcClient::new(RpcConfig {
        max_body_bytes: 4096,
        ..rpc_config(&serve(router).await)
    })
    .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), small.tick_info())
        .await
        .expect("the call stops reading at the limit instead of waiting for the end")
        .unwrap_err();
    assert!(
        matches!(err, RpcError::BodyTooLarge { limit: 4096, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_body_within_the_limit_is_read() {
    let router = Router::new().route(
        "/live/v1/tick-info",
        get(|| async { axum::Json(json!({"tickInfo": {"tick": 9, "filler": "x".repeat(900)}})) }),
    );
    let rpc = RpcClient::new(RpcConfig {
        max_body_bytes: 1024,
        ..rpc_config(&serve(router).await)
    })
    .unwrap();
    assert_eq!(rpc.tick_info().await.unwrap().tick, 9);
}
