//! Funding is a signed faucet transfer the archive lists.

use super::*;
use qubix_ledger::devnet::{Devnet, DevnetConfig};
use qubix_ledger::rpc::IdentityQuery;

#[tokio::test]
async fn funding_is_an_included_transfer_from_the_faucet() {
    let b = keypair('b');
    let net = devnet_with(&[], None).await;
    let rpc = RpcClient::new(rpc_config(net.url())).unwrap();
    let tick = net.tick();
    let id = net.fund(&b.identity(), 500).expect("a transfer");
    let again = net.fund(&b.identity(), 500).expect("a second transfer");
    assert_ne!(
        id, again,
        "the same funding twice in a tick is two transactions"
    );
    assert_eq!(net.fund(&b.identity(), 0), None);
    // Like any transfer, a funding counts once its tick is processed: the balance and the
    // archive never disagree about it.
    assert_eq!(net.balance(&b.identity()), 0, "not before its tick");
    let query = IdentityQuery::new(b.identity());
    let before = rpc.transactions_for_identity(&query).await.unwrap();
    assert!(
        before.transactions.is_empty(),
        "tick {tick} is not processed yet"
    );
    net.advance();
    assert_eq!(net.balance(&b.identity()), 1000);
    let balance = rpc.balance(&b.identity()).await.unwrap();
    assert_eq!(
        (balance.balance, balance.number_of_incoming_transfers),
        (1000, 2)
    );
    assert_eq!(
        balance.valid_for_tick, tick,
        "the balance holds tick {tick}"
    );
    let tx = rpc.transaction(&id).await.unwrap().expect("included");
    assert_eq!(tx.source, net.faucet().to_string());
    assert_eq!(tx.destination, b.identity().to_string());
    assert!(tx.money_flew && tx.input_type == 0 && tx.amount == 500);
    assert_eq!(tx.tick_number, tick);
    let after = rpc.transactions_for_identity(&query).await.unwrap();
    let mut ids: Vec<_> = after.transactions.iter().map(|t| t.hash.clone()).collect();
    ids.sort();
    let mut want = vec![id.to_string(), again.to_string()];
    want.sort();
    assert_eq!(ids, want);
    net.shutdown();
}

#[tokio::test]
async fn fundings_survive_a_save_and_restore() {
    let (a, b) = (keypair('a'), keypair('b'));
    let dir = tempfile::tempdir().unwrap();
    let config = DevnetConfig {
        tick_period: None,
        funded: vec![(a.identity(), 100)],
        state: Some(dir.path().join("devnet.json")),
        ..DevnetConfig::default()
    };
    let first = Devnet::start(config.clone()).await.unwrap();
    let funded = first.fund(&b.identity(), 40).unwrap();
    first.advance();
    first.save().unwrap();
    first.shutdown();
    let second = Devnet::start(config).await.unwrap();
    assert!(second.restored());
    assert_eq!(
        (second.balance(&a.identity()), second.balance(&b.identity())),
        (100, 40)
    );
    let rpc = RpcClient::new(rpc_config(second.url())).unwrap();
    let page = rpc
        .transactions_for_identity(&IdentityQuery::new(a.identity()))
        .await
        .unwrap();
    assert_eq!(page.transactions.len(), 1, "the start funding is listed");
    assert_eq!(page.transactions[0].source, second.faucet().to_string());
    let kept = rpc.transaction(&funded).await.unwrap().unwrap();
    assert!(kept.money_flew);
    // The faucet still pays after a restart, with fresh ids.
    let more = second.fund(&b.identity(), 40).unwrap();
    assert_ne!(more, funded);
    second.advance();
    assert_eq!(second.balance(&b.identity()), 80);
    second.shutdown();
}
