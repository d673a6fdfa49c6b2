//! Money at rest: deposits adopted once each, whatever scans them and however often (13),
//! a refund recorded as a refund, not a deposit (13), and escrow locked by a launch that
//! never became an instance released at the next start (14).

use qubix_ledger::{Account, Ledger, LedgerConfig};
use qubix_protocol::Qu;
use qubix_testnet::wait_until;

use crate::common::{Arena, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_count_once_and_locked_escrow_comes_back() {
    let mut arena = Arena::start("hostile-accounts").await;
    let honest = arena.honest_rental().await;
    let devnet = arena.net.devnet().unwrap().clone();
    let me = arena.identity(arena.consumer);
    let c = arena.net.nodes[arena.consumer].handle().clone();
    let ledger = arena.net.nodes[arena.consumer].ledger().clone();

    // 13. Two deposits arrive; three scans run at once and again: each counts once.
    c.refresh_deposits().await.unwrap();
    let before = ledger.balance(&Account::Available).unwrap();
    let tick = devnet.tick();
    devnet.fund(&me, 1_234);
    devnet.fund(&me, 4_321);
    devnet.wait_for_tick(tick + 1, WAIT).await.unwrap();
    let (a, b, d) = tokio::join!(
        c.refresh_deposits(),
        c.refresh_deposits(),
        c.refresh_deposits()
    );
    let adopted = a.unwrap().0 + b.unwrap().0 + d.unwrap().0;
    assert_eq!(adopted, 5_555, "the two deposits, once");
    assert_eq!(c.refresh_deposits().await.unwrap(), Qu(0));
    assert_eq!(ledger.balance(&Account::Available).unwrap() - before, 5_555);

    // 13. The rental's refund arrives from the provider while its refund is owed: it is
    //     recorded against the agreement, never adopted as a deposit.
    arena.finish_honest_rental(honest).await;
    c.refresh_deposits().await.unwrap();
    let entries = ledger.entries(1000, 0).unwrap();
    let refunds: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == "refund_received")
        .collect();
    assert_eq!(refunds.len(), 1, "{entries:?}");
    let refund_tx = refunds[0].id.clone();
    assert!(
        entries.iter().filter(|e| e.id == refund_tx).count() == 1,
        "the refund's transaction is recorded once, as a refund"
    );

    // 14. The node stopped between locking a launch's budget and recording its instance:
    //     at the next start, the escrow returns to available.
    let data = arena.net.nodes[arena.consumer].data_dir.clone();
    drop((c, ledger)); // they hold the store open
    arena.net.stop(arena.consumer).await;
    let orphan = {
        let books = Ledger::open_path(&data.join("node.db"), LedgerConfig::default()).unwrap();
        let mut terms = qubix_protocol::testing::agreement_terms(2, 1).unwrap();
        terms.agreement_id = qubix_protocol::AgreementId::random();
        books
            .lock_escrow(&terms, qubix_protocol::UnixMillis::now())
            .unwrap();
        assert!(books.balance(&Account::Escrow(terms.agreement_id)).unwrap() > 0);
        terms.agreement_id
    };
    arena.net.restart(arena.consumer).await.unwrap();
    let ledger = arena.net.nodes[arena.consumer].ledger().clone();
    wait_until(WAIT, "the orphaned escrow to return to available", || {
        let ledger = ledger.clone();
        async move {
            let a = ledger.agreement(&orphan).ok()??;
            let escrow = ledger.balance(&Account::Escrow(orphan)).ok()?;
            (a.ended_at.is_some() && escrow == 0).then_some(())
        }
    })
    .await
    .unwrap();

    // The provider's and consumer's books close on the chain.
    arena
        .books_reconcile(&[arena.provider, arena.consumer])
        .await;
    arena.net.shutdown().await;
}
