//! A wallet's withdrawals across a restart, on the devnet: a withdrawal still pending when
//! the node dies is followed again after it starts and recorded final once the chain moves;
//! one the node booked but never got to send fails back to `available`, with nothing sent.
//! No Docker: a consumer node alone.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use qubix_ledger::book::{Account, WithdrawalState};
use qubix_protocol::api::WithdrawRequest;
use qubix_protocol::{Qu, UnixMillis};
use qubix_sdk::Client;
use qubix_testnet::harness::wallet_for;
use qubix_testnet::{NodeSpec, Testnet, wait_until};

const WAIT: Duration = Duration::from_secs(60);
const NETWORK: &str = "wallet-test";

fn client_of(net: &Testnet, i: usize) -> Client {
    let gw = net.nodes[i].gateway().expect("the node serves a gateway");
    Client::new(format!("http://{}", gw.addr), gw.token.clone()).unwrap()
}

fn state_of(net: &Testnet, i: usize, id: &str) -> WithdrawalState {
    net.nodes[i]
        .ledger()
        .withdrawal(id)
        .unwrap()
        .unwrap_or_else(|| panic!("withdrawal {id} is in the ledger"))
        .state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawals_pending_at_a_crash_are_settled_after_the_restart() {
    let mut net = Testnet::with_devnet(NETWORK, Duration::from_millis(200))
        .await
        .unwrap();
    let mut spec = NodeSpec::consumer("wallet");
    spec.gateway = Some(([127, 0, 0, 1], 0).into());
    let me = net.add(spec).await.unwrap();
    let devnet = net.devnet().unwrap().clone();
    let payee = wallet_for(NETWORK, 99, "payee").identity();

    // The chain stands still: the transfer is signed and queued, but cannot become final.
    devnet.set_stalled(true);
    let sent = client_of(&net, me)
        .withdraw(&WithdrawRequest {
            to: payee.to_string(),
            amount: Qu(7),
        })
        .await
        .unwrap();
    assert_eq!(sent.amount, Qu(7));
    let pending: Vec<String> = net.nodes[me]
        .ledger()
        .withdrawals()
        .unwrap()
        .into_iter()
        .filter(|w| w.state == WithdrawalState::Pending)
        .map(|w| w.id)
        .collect();
    assert_eq!(pending.len(), 1, "the API's withdrawal is pending");
    let queued = pending[0].clone();
    // A second one booked in the ledger but never handed to the settlement, as when the
    // process dies between the two steps.
    let available = |net: &Testnet| net.nodes[me].ledger().balance(&Account::Available);
    let before = available(&net).unwrap();
    net.nodes[me]
        .ledger()
        .withdraw("never-sent", &payee, Qu(5), UnixMillis::now())
        .unwrap();
    assert_eq!(available(&net).unwrap(), before - 5);

    net.kill(me).await;
    net.restart(me).await.unwrap();

    wait_until(WAIT, "the unsent withdrawal to fail back", || {
        let state = state_of(&net, me, "never-sent");
        async move { matches!(state, WithdrawalState::Failed { .. }).then_some(()) }
    })
    .await
    .unwrap();
    assert_eq!(
        available(&net).unwrap(),
        before,
        "its QU are available again"
    );
    let WithdrawalState::Failed { reason } = state_of(&net, me, "never-sent") else {
        unreachable!()
    };
    assert!(
        reason.contains("before the transfer was queued"),
        "the reason says why: {reason}"
    );
    assert_eq!(
        state_of(&net, me, &queued),
        WithdrawalState::Pending,
        "the queued one waits for the chain"
    );

    devnet.set_stalled(false);
    wait_until(WAIT, "the queued withdrawal to be recorded final", || {
        let state = state_of(&net, me, &queued);
        async move { matches!(state, WithdrawalState::Final { .. }).then_some(()) }
    })
    .await
    .unwrap();
    assert_eq!(devnet.balance(&payee), 7, "paid once, not twice");
    let ledger = net.nodes[me].ledger();
    assert!(ledger.audit().unwrap().is_clean());
    let wallet = devnet.balance(&wallet_for(NETWORK, me, "wallet").identity());
    assert_eq!(
        ledger.reconcile(Qu(wallet)).unwrap().difference,
        0,
        "the books match the chain"
    );
    net.shutdown().await;
}
