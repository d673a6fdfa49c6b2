//! Random sequences of ledger operations, including replays and altered replays, keep every
//! invariant: each transaction sums to zero, no bucket goes negative, no escrow exceeds its
//! budget, stored balances equal the log's, refusals and replays change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;

use common::{at, keypair, receipt, terms};
use qubix_ledger::book::{AgreementInfo, Operation, Side};
use qubix_ledger::qubic::TxId;
use qubix_ledger::{Ledger, LedgerError};
use qubix_protocol::api::LedgerEntry;
use qubix_protocol::job::AgreementTerms;
use qubix_protocol::{AgreementId, Envelope, Qu};

#[derive(Debug, Clone)]
enum Step {
    Deposit {
        tx: u8,
        amount: u64,
    },
    Lock {
        agreement: usize,
    },
    Pay {
        agreement: usize,
        window: u32,
        amount: u64,
        tx: u8,
    },
    Receive {
        window: u32,
        amount: u64,
        tx: u8,
    },
    Receipt {
        agreement: usize,
        sequence: u64,
        amount: u64,
    },
    End {
        agreement: usize,
    },
    RefundReceived {
        agreement: usize,
        amount: u64,
        tx: u8,
    },
    RefundPaid {
        amount: u64,
        tx: u8,
    },
    Withdraw {
        id: u8,
        amount: u64,
    },
    Settle {
        id: u8,
        ok: bool,
        tx: u8,
    },
    Replay {
        pick: usize,
    },
    ReplayAltered {
        pick: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..20, 1u64..2_000).prop_map(|(tx, amount)| Step::Deposit { tx, amount }),
        2 => (0usize..2).prop_map(|agreement| Step::Lock { agreement }),
        3 => (0usize..2, 0u32..4, 1u64..500, 20u8..40)
            .prop_map(|(agreement, window, amount, tx)| Step::Pay { agreement, window, amount, tx }),
        2 => (0u32..4, 1u64..400, 40u8..60).prop_map(|(window, amount, tx)| Step::Receive { window, amount, tx }),
        3 => (0usize..3, 1u64..8, 0u64..1_300)
            .prop_map(|(agreement, sequence, amount)| Step::Receipt { agreement, sequence, amount }),
        1 => (0usize..3).prop_map(|agreement| Step::End { agreement }),
        1 => (0usize..2, 1u64..300, 60u8..70)
            .prop_map(|(agreement, amount, tx)| Step::RefundReceived { agreement, amount, tx }),
        1 => (1u64..300, 70u8..80).prop_map(|(amount, tx)| Step::RefundPaid { amount, tx }),
        2 => (0u8..4, 1u64..1_000).prop_map(|(id, amount)| Step::Withdraw { id, amount }),
        2 => (0u8..4, any::<bool>(), 80u8..90).prop_map(|(id, ok, tx)| Step::Settle { id, ok, tx }),
        2 => any::<usize>().prop_map(|pick| Step::Replay { pick }),
        2 => any::<usize>().prop_map(|pick| Step::ReplayAltered { pick }),
    ]
}

/// Two consumer-side agreements (budgets 1,200 and 600) and one provider-side.
fn agreements() -> Vec<AgreementTerms> {
    let base = terms(&keypair('p').identity(), &keypair('c').identity());
    (0..3u8)
        .map(|i| {
            let mut t = base.clone();
            t.agreement_id = AgreementId::from_bytes([i + 1; 16]);
            if i == 1 {
                t.budget = Qu(600);
            }
            t
        })
        .collect()
}

/// Something applied successfully, kept for replays.
#[derive(Debug, Clone)]
enum Applied {
    Op(Operation),
    Receipt(Envelope),
}

struct World {
    ledger: Ledger,
    terms: Vec<AgreementTerms>,
    withdraw_to: String,
    applied: Vec<(Applied, LedgerEntry)>,
}

fn tx(n: u8) -> String {
    TxId::from_hash([n; 32]).to_string()
}

impl World {
    fn operation(&self, step: &Step) -> Option<Applied> {
        let id = |i: usize| self.terms[i].agreement_id;
        let op = match step.clone() {
            Step::Deposit { tx: t, amount } => Operation::Deposit {
                tx_id: tx(t),
                amount: Qu(amount),
            },
            Step::Lock { agreement } => Operation::LockEscrow {
                agreement: AgreementInfo::from_terms(&self.terms[agreement], Side::Consumer),
            },
            Step::Pay {
                agreement,
                window,
                amount,
                tx: t,
            } => Operation::PayWindow {
                agreement: id(agreement),
                window,
                amount: Qu(amount),
                tx_id: tx(t),
            },
            Step::Receive {
                window,
                amount,
                tx: t,
            } => Operation::ReceiveWindow {
                agreement: AgreementInfo::from_terms(&self.terms[2], Side::Provider),
                window,
                amount: Qu(amount),
                tx_id: tx(t),
            },
            Step::Receipt {
                agreement,
                sequence,
                amount,
            } => {
                return Some(Applied::Receipt(receipt(
                    &self.terms[agreement],
                    sequence,
                    amount,
                )));
            }
            Step::End { agreement } => Operation::EndAgreement {
                agreement: id(agreement),
                unacknowledged: Qu(0),
            },
            Step::RefundReceived {
                agreement,
                amount,
                tx: t,
            } => Operation::RefundReceived {
                agreement: id(agreement),
                amount: Qu(amount),
                tx_id: tx(t),
            },
            Step::RefundPaid { amount, tx: t } => Operation::RefundPaid {
                agreement: id(2),
                amount: Qu(amount),
                tx_id: tx(t),
                n: 0,
            },
            Step::Withdraw { id, amount } => Operation::Withdraw {
                withdrawal: format!("w{id}"),
                to: self.withdraw_to.clone(),
                amount: Qu(amount),
            },
            Step::Settle {
                id,
                ok: true,
                tx: t,
            } => Operation::WithdrawalFinal {
                withdrawal: format!("w{id}"),
                tx_id: tx(t),
            },
            Step::Settle { id, ok: false, .. } => Operation::WithdrawalFailed {
                withdrawal: format!("w{id}"),
                reason: "test".into(),
            },
            Step::Replay { .. } | Step::ReplayAltered { .. } => return None,
        };
        Some(Applied::Op(op))
    }

    fn apply(&self, what: &Applied, minute: u64) -> Result<LedgerEntry, LedgerError> {
        match what {
            Applied::Op(op) => self.ledger.apply(op.clone(), at(minute)),
            Applied::Receipt(envelope) => self.ledger.record_receipt(
                envelope,
                &qubix_protocol::testing::network(),
                at(minute),
            ),
        }
    }

    fn snapshot(&self) -> (BTreeMap<String, i64>, u64) {
        (
            self.ledger.balances().unwrap(),
            self.ledger.transaction_count().unwrap(),
        )
    }

    /// The cheap invariants, from the balances alone.
    fn check_buckets(&self) -> Result<(), TestCaseError> {
        for (name, balance) in self.ledger.balances().unwrap() {
            prop_assert!(name == "external" || balance >= 0, "{name} = {balance}");
        }
        for t in &self.terms[..2] {
            let escrow = self
                .ledger
                .balance(&qubix_ledger::Account::Escrow(t.agreement_id))
                .unwrap();
            prop_assert!(
                escrow <= t.budget.0 as i64,
                "escrow {escrow} above budget {}",
                t.budget.0
            );
        }
        Ok(())
    }
}

/// The same id with different content (or `None` when the original has no such twin).
fn altered(what: &Applied) -> Option<Applied> {
    let Applied::Op(op) = what else { return None };
    let bump = |q: &Qu| Qu(q.0 + 1);
    let op = match op.clone() {
        Operation::Deposit { tx_id, amount } => Operation::Deposit {
            tx_id,
            amount: bump(&amount),
        },
        Operation::PayWindow {
            agreement,
            window,
            amount,
            tx_id,
        } => Operation::PayWindow {
            agreement,
            window,
            amount: bump(&amount),
            tx_id,
        },
        Operation::Withdraw {
            withdrawal,
            to,
            amount,
        } => Operation::Withdraw {
            withdrawal,
            to,
            amount: bump(&amount),
        },
        Operation::RefundPaid {
            agreement,
            amount,
            tx_id,
            n,
        } => Operation::RefundPaid {
            agreement,
            amount: bump(&amount),
            tx_id,
            n,
        },
        Operation::WithdrawalFinal { withdrawal, .. } => Operation::WithdrawalFailed {
            withdrawal,
            reason: "x".into(),
        },
        _ => return None,
    };
    Some(Applied::Op(op))
}

fn run(steps: &[Step]) -> Result<(), TestCaseError> {
    let world = &mut World {
        ledger: common::ledger(),
        terms: agreements(),
        withdraw_to: keypair('w').identity().to_string(),
        applied: Vec::new(),
    };
    for (minute, step) in steps.iter().enumerate() {
        let before = world.snapshot();
        let minute = minute as u64;
        match step {
            Step::Replay { pick } if !world.applied.is_empty() => {
                let (what, original) = world.applied[pick % world.applied.len()].clone();
                let again = world
                    .apply(&what, minute + 1_000)
                    .expect("a replay succeeds");
                prop_assert_eq!(again, original, "a replay returns the original entry");
                prop_assert_eq!(world.snapshot(), before, "a replay changed nothing");
            }
            Step::ReplayAltered { pick } if !world.applied.is_empty() => {
                let (what, _) = world.applied[pick % world.applied.len()].clone();
                if let Some(changed) = altered(&what) {
                    let result = world.apply(&changed, minute);
                    let conflict = matches!(result, Err(LedgerError::ConflictingReplay { .. }));
                    prop_assert!(conflict, "{result:?}");
                    prop_assert_eq!(world.snapshot(), before);
                }
            }
            _ => {
                let Some(what) = world.operation(step) else {
                    continue;
                };
                match world.apply(&what, minute) {
                    Ok(entry) => {
                        prop_assert_eq!(entry.postings.iter().map(|p| p.delta).sum::<i64>(), 0);
                        world.applied.push((what, entry));
                    }
                    Err(_) => {
                        prop_assert_eq!(world.snapshot(), before, "a refusal changed nothing")
                    }
                }
            }
        }
        world.check_buckets()?;
        if minute % 8 == 0 {
            let audit = world.ledger.audit().unwrap();
            prop_assert!(audit.is_clean(), "{:?} after {:?}", audit.problems, step);
        }
    }
    let audit = world.ledger.audit().unwrap();
    prop_assert!(audit.is_clean(), "{:?}", audit.problems);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_every_invariant(steps in proptest::collection::vec(step(), 1..45)) {
        run(&steps)?;
    }
}

#[test]
fn a_busy_fixed_sequence_keeps_every_invariant() {
    let mut steps = vec![
        Step::Deposit {
            tx: 1,
            amount: 1_999,
        },
        Step::Lock { agreement: 0 },
    ];
    for w in 0..4 {
        steps.push(Step::Pay {
            agreement: 0,
            window: w,
            amount: 200,
            tx: 20 + w as u8,
        });
        steps.push(Step::Receipt {
            agreement: 0,
            sequence: u64::from(w) + 1,
            amount: 150 * (u64::from(w) + 1),
        });
        steps.push(Step::Replay { pick: w as usize });
    }
    steps.extend([
        Step::End { agreement: 0 },
        Step::Withdraw { id: 0, amount: 900 },
        Step::Settle {
            id: 0,
            ok: false,
            tx: 80,
        },
    ]);
    run(&steps).unwrap();
}
