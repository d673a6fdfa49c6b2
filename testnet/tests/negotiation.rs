//! Negotiation over the network: a consumer rents from a provider, and the refusals a user
//! can meet arrive as coded, explained errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use qubix_node::service::ServiceError;
use qubix_protocol::Qu;
use qubix_protocol::api::{ErrorCode, LaunchRequest};
use qubix_protocol::control::JobState;
use qubix_testnet::{NodeSpec, Testnet, wait_until};

fn launch(gpus: u32, query: &str) -> LaunchRequest {
    LaunchRequest {
        offer_id: None,
        query: Some(query.into()),
        image: "qubix/test:latest".into(),
        command: vec!["sh".into(), "-c".into(), "echo hi".into()],
        env: Default::default(),
        ports: vec![],
        gpus,
        duration_secs: 3600,
        max_price_per_gpu_hour: None,
        cpu_cores: None,
        ram_mib: None,
        disk_gib: None,
        capabilities: Vec::new(),
    }
}

async fn market(gpus: &str) -> Testnet {
    let mut net = Testnet::with_devnet("negotiation-test", Duration::from_millis(200))
        .await
        .unwrap();
    net.add(NodeSpec::provider("provider", gpus, 1_200, "DE"))
        .await
        .unwrap();
    net.add(NodeSpec::consumer("alice")).await.unwrap();
    net.add(NodeSpec::consumer("bob")).await.unwrap();
    // Carol's wallet holds less than an hour of one GPU.
    net.add(NodeSpec {
        funds: 1_000,
        ..NodeSpec::consumer("carol")
    })
    .await
    .unwrap();
    for i in 1..4 {
        let h = net.nodes[i].handle().clone();
        wait_until(
            Duration::from_secs(20),
            "the offer to reach the consumers",
            || {
                let h = h.clone();
                async move {
                    (h.offers(String::new(), None, None, None).await.ok()?.total == 1).then_some(())
                }
            },
        )
        .await
        .unwrap();
    }
    net
}

fn code(e: ServiceError) -> (ErrorCode, String) {
    match e {
        ServiceError::Api(code, message, _) => (code, message),
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_rents_and_both_sides_record_the_agreement() {
    let mut net = market("RTX 4090:24:2").await;
    let instance = net.nodes[1]
        .handle()
        .launch(launch(1, "gpu_name=RTX_4090"))
        .await
        .unwrap();
    assert_eq!(instance.state, JobState::Negotiated);
    assert_eq!(instance.price_per_gpu_hour, Qu(1_200));
    assert_eq!(instance.budget, Qu(1_200));
    assert!(instance.simulated);
    assert_eq!(net.nodes[1].handle().instances().await.unwrap().len(), 1);
    // The provider republishes with one GPU fewer.
    let bob = net.nodes[2].handle().clone();
    wait_until(
        Duration::from_secs(20),
        "the offer to show one free GPU",
        || {
            let bob = bob.clone();
            async move {
                (bob.offers(String::new(), None, None, None)
                    .await
                    .ok()?
                    .offers
                    .first()?
                    .offer
                    .gpu_count
                    == 1)
                    .then_some(())
            }
        },
    )
    .await
    .unwrap();
    // The agreement survives a restart of the consumer.
    net.restart(1).await.unwrap();
    let again = net.nodes[1].handle().instance(instance.id).await.unwrap();
    assert_eq!(again.id, instance.id);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_coded_and_explained() {
    let net = market("RTX 4090:24:1").await;
    let alice = net.nodes[1].handle();
    let mut cheap = launch(1, "");
    cheap.max_price_per_gpu_hour = Some(Qu(1_000));
    let (c, message) = code(alice.launch(cheap).await.unwrap_err());
    assert_eq!(c, ErrorCode::ProviderRefused);
    assert!(message.contains("above your maximum"), "{message}");
    let (c, message) = code(alice.launch(launch(4, "")).await.unwrap_err());
    assert_eq!(c, ErrorCode::NoMatch, "{message}");
    assert!(message.contains("num_gpus>=4"), "{message}");
    let (c, _) = code(alice.launch(launch(1, "price<=")).await.unwrap_err());
    assert_eq!(c, ErrorCode::InvalidQuery);
    // A wallet that cannot cover the budget: refused before any provider is asked, with
    // where to deposit, and nothing locked.
    let carol = &net.nodes[3];
    let (c, message) = code(carol.handle().launch(launch(1, "")).await.unwrap_err());
    assert_eq!(c, ErrorCode::InsufficientFunds, "{message}");
    assert!(
        message.contains("1,200 QU needed but only 1,000 QU available"),
        "{message}"
    );
    assert!(message.contains("deposit QU to"), "{message}");
    let billing = carol.ledger().billing(None).unwrap();
    assert_eq!((billing.available, billing.escrow), (Qu(1_000), Qu::ZERO));
    assert!(carol.handle().instances().await.unwrap().is_empty());
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_race_for_the_last_gpu_and_exactly_one_wins() {
    let net = market("RTX 4090:24:1").await;
    let offer = net.nodes[1]
        .handle()
        .offers(String::new(), None, None, None)
        .await
        .unwrap()
        .offers[0]
        .id;
    let mut a = launch(1, "");
    a.offer_id = Some(offer);
    let b = a.clone();
    let (ra, rb) = tokio::join!(
        net.nodes[1].handle().launch(a),
        net.nodes[2].handle().launch(b)
    );
    let wins = [ra.is_ok(), rb.is_ok()].iter().filter(|w| **w).count();
    assert_eq!(wins, 1, "exactly one consumer must win: {ra:?} / {rb:?}");
    let loser = match (ra, rb) {
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => e,
        _ => unreachable!("exactly one won"),
    };
    let (c, message) = code(loser);
    assert!(
        matches!(c, ErrorCode::ProviderRefused | ErrorCode::NotFound),
        "{c:?}: {message}"
    );
    // The winner's budget is in escrow; the loser's is not (released if it was locked).
    let escrows: Vec<Qu> = [1, 2]
        .iter()
        .map(|i| net.nodes[*i].ledger().billing(None).unwrap().escrow)
        .collect();
    assert_eq!(
        {
            let mut e = escrows.clone();
            e.sort();
            e
        },
        vec![Qu::ZERO, Qu(1_200)],
        "{escrows:?}"
    );
    net.shutdown().await;
}
