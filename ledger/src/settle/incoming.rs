//! Checking a payment to this node by its transaction id: the provider's proof that a
//! consumer paid, before it starts (or keeps running) a job.

use qubix_protocol::Qu;

use super::SettlementError;
use super::transfer::IncomingTransfer;
use crate::qubic::{Identity, TxId};
use crate::rpc::{ChainTransaction, RpcClient};

/// What the payer promised.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    pub(crate) to: &'a Identity,
    pub(crate) from: Option<&'a Identity>,
    pub(crate) min_amount: Qu,
}

/// Looks the transaction up and checks it.
pub(crate) async fn verify(
    rpc: &RpcClient,
    tx_id: &TxId,
    expected: Expected<'_>,
) -> Result<IncomingTransfer, SettlementError> {
    let tx = rpc
        .transaction(tx_id)
        .await?
        .ok_or_else(|| SettlementError::IncomingNotFound {
            tx_id: tx_id.clone(),
        })?;
    check(tx_id, &tx, expected)
}

/// The pure check of an archive transaction against what was expected.
pub(crate) fn check(
    tx_id: &TxId,
    tx: &ChainTransaction,
    expected: Expected<'_>,
) -> Result<IncomingTransfer, SettlementError> {
    let mismatch = |problem: String| SettlementError::IncomingMismatch {
        tx_id: tx_id.clone(),
        problem,
    };
    if tx.hash != tx_id.as_str() {
        return Err(mismatch(format!(
            "the archive returned transaction {}",
            tx.hash
        )));
    }
    if !tx.money_flew {
        return Err(mismatch(format!(
            "it was included in tick {} but moved no QU (the payer's balance was too low)",
            tx.tick_number
        )));
    }
    if tx.destination != expected.to.as_str() {
        return Err(mismatch(format!(
            "it pays {}, not {}",
            tx.destination, expected.to
        )));
    }
    let from: Identity = tx.source.parse().map_err(|e| {
        mismatch(format!(
            "its source {:?} is not an identity: {e}",
            tx.source
        ))
    })?;
    if let Some(want) = expected.from.filter(|want| **want != from) {
        return Err(mismatch(format!("it comes from {from}, not {want}")));
    }
    if tx.input_type != 0 {
        return Err(mismatch(format!(
            "it is a contract call (input type {}), not a plain transfer",
            tx.input_type
        )));
    }
    if tx.amount < expected.min_amount.0 {
        return Err(mismatch(format!(
            "it pays {} QU, less than the {} QU due",
            tx.amount, expected.min_amount.0
        )));
    }
    Ok(IncomingTransfer {
        tx_id: tx_id.clone(),
        from,
        to: expected.to.clone(),
        amount: Qu(tx.amount),
        tick: tx.tick_number,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qubic::KeyPair;

    fn ids() -> (Identity, Identity, TxId) {
        let a = KeyPair::from_seed_str(&"a".repeat(55)).unwrap().identity();
        let b = KeyPair::from_seed_str(&"b".repeat(55)).unwrap().identity();
        (a, b, TxId::from_hash([9; 32]))
    }

    fn tx(from: &Identity, to: &Identity, id: &TxId) -> ChainTransaction {
        ChainTransaction {
            hash: id.to_string(),
            amount: 100,
            source: from.to_string(),
            destination: to.to_string(),
            tick_number: 7,
            money_flew: true,
            ..ChainTransaction::default()
        }
    }

    #[test]
    fn accepts_a_matching_transfer_and_names_each_mismatch() {
        let (a, b, id) = ids();
        let want = Expected {
            to: &b,
            from: Some(&a),
            min_amount: Qu(100),
        };
        let ok = check(&id, &tx(&a, &b, &id), want).unwrap();
        assert_eq!(
            (ok.amount, ok.tick, ok.from.clone()),
            (Qu(100), 7, a.clone())
        );
        let cases: Vec<(ChainTransaction, &str)> = vec![
            (
                ChainTransaction {
                    money_flew: false,
                    ..tx(&a, &b, &id)
                },
                "moved no QU",
            ),
            (tx(&a, &a, &id), "it pays"),
            (tx(&b, &b, &id), "it comes from"),
            (
                ChainTransaction {
                    amount: 99,
                    ..tx(&a, &b, &id)
                },
                "less than",
            ),
            (
                ChainTransaction {
                    input_type: 1,
                    ..tx(&a, &b, &id)
                },
                "contract call",
            ),
            (
                ChainTransaction {
                    hash: "x".into(),
                    ..tx(&a, &b, &id)
                },
                "returned transaction",
            ),
        ];
        for (bad, words) in cases {
            let err = check(&id, &bad, want).unwrap_err().to_string();
            assert!(err.contains(words), "{err}");
        }
    }
}
