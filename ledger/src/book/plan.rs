//! Planning: what postings and record changes an [`Operation`] means, given the current
//! balances and records. Pure decisions over reads; [`Store::commit`] then checks that the
//! plan balances and leaves no bucket below zero, and writes it atomically.

use qubix_protocol::amount::MAX_QU;
use qubix_protocol::{AgreementId, Qu, UnixMillis};

use super::account::Account;
use super::error::LedgerError;
use super::operation::{AgreementInfo, Operation, Side};
use super::store::{AgreementRecord, Plan, Store, WithdrawalRecord, WithdrawalState};

/// Plans `op`. `receipt` carries the signed receipt bytes of a [`Operation::Receipt`].
pub(crate) fn plan(
    store: &Store,
    op: &Operation,
    at: UnixMillis,
    receipt: Option<Vec<u8>>,
) -> Result<Plan, LedgerError> {
    match op {
        Operation::Deposit { amount, .. } => {
            let a = positive(*amount)?;
            Ok(moves(vec![
                (Account::External, -a),
                (Account::Available, a),
            ]))
        }
        Operation::LockEscrow { agreement } => lock_escrow(store, agreement, at),
        Operation::PayWindow {
            agreement, amount, ..
        } => pay_window(store, agreement, *amount),
        Operation::ReceiveWindow {
            agreement, amount, ..
        } => receive_window(store, agreement, *amount, at),
        Operation::Receipt {
            agreement,
            sequence,
            amount,
        } => record_receipt(store, agreement, *sequence, *amount, receipt),
        Operation::EndAgreement {
            agreement,
            unacknowledged,
        } => end_agreement(store, agreement, *unacknowledged, at),
        Operation::RefundReceived {
            agreement, amount, ..
        } => refund_received(store, agreement, *amount),
        Operation::RefundPaid {
            agreement, amount, ..
        } => refund_paid(store, agreement, *amount),
        Operation::Withdraw {
            withdrawal,
            to,
            amount,
        } => withdraw(store, withdrawal, to, *amount),
        Operation::WithdrawalFinal { withdrawal, tx_id } => {
            let state = WithdrawalState::Final {
                tx_id: tx_id.clone(),
            };
            settle_withdrawal(store, withdrawal, state)
        }
        Operation::WithdrawalFailed { withdrawal, reason } => {
            let state = WithdrawalState::Failed {
                reason: reason.clone(),
            };
            settle_withdrawal(store, withdrawal, state)
        }
    }
}

fn moves(postings: Vec<(Account, i64)>) -> Plan {
    Plan {
        postings,
        ..Plan::default()
    }
}

/// An amount one transfer can carry, above zero, as a posting delta.
fn positive(amount: Qu) -> Result<i64, LedgerError> {
    let why = match amount.0 {
        0 => "it must be above zero",
        a if a > MAX_QU => "it is above the 10^15 QU a Qubic transfer can carry",
        a => {
            return i64::try_from(a).map_err(|_| LedgerError::Overflow {
                account: "amount".into(),
            });
        }
    };
    Err(LedgerError::InvalidAmount {
        amount: amount.0,
        why,
    })
}

fn qu(balance: i64) -> Qu {
    Qu(u64::try_from(balance).unwrap_or(0))
}

fn add(a: Qu, b: Qu) -> Result<Qu, LedgerError> {
    a.checked_add(b).map_err(|_| LedgerError::Overflow {
        account: "agreement totals".into(),
    })
}

/// The agreement's record, which must exist, be on `side` and (unless `ended_ok`) be open.
fn open_record(
    store: &Store,
    id: &AgreementId,
    side: Side,
    ended_ok: bool,
) -> Result<AgreementRecord, LedgerError> {
    let record = store
        .agreement(id)?
        .ok_or(LedgerError::UnknownAgreement { agreement: *id })?;
    if record.info.side != side {
        return Err(LedgerError::WrongSide {
            agreement: *id,
            side: record.info.side,
        });
    }
    if record.ended_at.is_some() && !ended_ok {
        return Err(LedgerError::AgreementEnded { agreement: *id });
    }
    Ok(record)
}

fn lock_escrow(store: &Store, info: &AgreementInfo, at: UnixMillis) -> Result<Plan, LedgerError> {
    if info.side != Side::Consumer {
        return Err(LedgerError::WrongSide {
            agreement: info.id,
            side: info.side,
        });
    }
    if let Some(existing) = store.agreement(&info.id)? {
        return Err(LedgerError::WrongSide {
            agreement: info.id,
            side: existing.info.side,
        });
    }
    let budget = positive(info.budget)?;
    let record = AgreementRecord {
        info: info.clone(),
        opened_at: at,
        paid: Qu::ZERO,
        receipt_sequence: None,
        receipt_amount: Qu::ZERO,
        refunded: Qu::ZERO,
        ended_at: None,
    };
    Ok(Plan {
        postings: vec![
            (Account::Available, -budget),
            (Account::Escrow(info.id), budget),
        ],
        agreement: Some(record),
        ..Plan::default()
    })
}

fn pay_window(store: &Store, id: &AgreementId, amount: Qu) -> Result<Plan, LedgerError> {
    let a = positive(amount)?;
    let mut record = open_record(store, id, Side::Consumer, false)?;
    record.paid = add(record.paid, amount)?;
    Ok(Plan {
        postings: vec![(Account::Escrow(*id), -a), (Account::Prepaid(*id), a)],
        agreement: Some(record),
        ..Plan::default()
    })
}

fn receive_window(
    store: &Store,
    info: &AgreementInfo,
    amount: Qu,
    at: UnixMillis,
) -> Result<Plan, LedgerError> {
    let a = positive(amount)?;
    let mut record = match store.agreement(&info.id)? {
        Some(record) if record.info.side != Side::Provider || info.side != Side::Provider => {
            return Err(LedgerError::WrongSide {
                agreement: info.id,
                side: record.info.side,
            });
        }
        Some(record) if record.info != *info => {
            return Err(LedgerError::ConflictingReplay {
                id: format!("agreement/{}", info.id),
            });
        }
        Some(record) => record,
        None if info.side != Side::Provider => {
            return Err(LedgerError::WrongSide {
                agreement: info.id,
                side: info.side,
            });
        }
        None => AgreementRecord {
            info: info.clone(),
            opened_at: at,
            paid: Qu::ZERO,
            receipt_sequence: None,
            receipt_amount: Qu::ZERO,
            refunded: Qu::ZERO,
            ended_at: None,
        },
    };
    record.paid = add(record.paid, amount)?;
    // Money for an ended rental is owed straight back.
    let bucket = match record.ended_at {
        Some(_) => Account::RefundsDue(info.id),
        None => Account::PrepaidHeld(info.id),
    };
    Ok(Plan {
        postings: vec![(Account::External, -a), (bucket, a)],
        agreement: Some(record),
        ..Plan::default()
    })
}

fn record_receipt(
    store: &Store,
    id: &AgreementId,
    sequence: u64,
    amount: Qu,
    bytes: Option<Vec<u8>>,
) -> Result<Plan, LedgerError> {
    let mut record = store
        .agreement(id)?
        .ok_or(LedgerError::UnknownAgreement { agreement: *id })?;
    if record.ended_at.is_some() {
        return Err(LedgerError::AgreementEnded { agreement: *id });
    }
    if let Some(last) = record.receipt_sequence.filter(|last| sequence <= *last) {
        return Err(LedgerError::StaleReceipt {
            agreement: *id,
            sequence,
            last,
        });
    }
    let delta = amount
        .checked_sub(record.receipt_amount)
        .map_err(|_| LedgerError::ReceiptRegresses { agreement: *id })?;
    let d = i64::try_from(delta.0).map_err(|_| LedgerError::Overflow {
        account: "receipt".into(),
    })?;
    let postings = match record.info.side {
        Side::Consumer => vec![(Account::Prepaid(*id), -d), (Account::Spent(*id), d)],
        Side::Provider => vec![(Account::PrepaidHeld(*id), -d), (Account::Earned, d)],
    };
    record.receipt_sequence = Some(sequence);
    record.receipt_amount = amount;
    Ok(Plan {
        postings,
        agreement: Some(record),
        receipt: bytes.map(|b| (*id, sequence, b)),
        ..Plan::default()
    })
}

fn end_agreement(
    store: &Store,
    id: &AgreementId,
    unacknowledged: Qu,
    at: UnixMillis,
) -> Result<Plan, LedgerError> {
    let mut record = store
        .agreement(id)?
        .ok_or(LedgerError::UnknownAgreement { agreement: *id })?;
    if record.ended_at.is_some() {
        return Err(LedgerError::AgreementEnded { agreement: *id });
    }
    let (prepaid, used) = match record.info.side {
        Side::Consumer => (Account::Prepaid(*id), Account::Spent(*id)),
        Side::Provider => (Account::PrepaidHeld(*id), Account::Earned),
    };
    let held = store.balance(&prepaid)?.max(0);
    let unacked = i64::try_from(unacknowledged.0)
        .map_err(|_| LedgerError::Overflow {
            account: "unacknowledged".into(),
        })?
        .min(held);
    let unused = held - unacked;
    let mut postings = vec![(prepaid, -unacked), (used, unacked)];
    match record.info.side {
        Side::Consumer => {
            let escrow = store.balance(&Account::Escrow(*id))?;
            postings.extend([
                (Account::Escrow(*id), -escrow),
                (Account::Available, escrow),
                (prepaid, -unused),
                (Account::RefundReceivable(*id), unused),
            ]);
        }
        Side::Provider => {
            postings.extend([(prepaid, -unused), (Account::RefundsDue(*id), unused)]);
        }
    }
    record.ended_at = Some(at);
    Ok(Plan {
        postings,
        agreement: Some(record),
        ..Plan::default()
    })
}

fn refund_received(store: &Store, id: &AgreementId, amount: Qu) -> Result<Plan, LedgerError> {
    let a = positive(amount)?;
    let mut record = open_record(store, id, Side::Consumer, true)?;
    let owed = store.balance(&Account::RefundReceivable(*id))?.max(0);
    // A provider refunding more than it owes is still money in: the excess is a deposit.
    let settled = a.min(owed);
    record.refunded = add(record.refunded, amount)?;
    Ok(Plan {
        postings: vec![
            (Account::RefundReceivable(*id), -settled),
            (Account::External, settled - a),
            (Account::Available, a),
        ],
        agreement: Some(record),
        ..Plan::default()
    })
}

fn refund_paid(store: &Store, id: &AgreementId, amount: Qu) -> Result<Plan, LedgerError> {
    let a = positive(amount)?;
    let mut record = open_record(store, id, Side::Provider, true)?;
    record.refunded = add(record.refunded, amount)?;
    Ok(Plan {
        postings: vec![(Account::RefundsDue(*id), -a), (Account::External, a)],
        agreement: Some(record),
        ..Plan::default()
    })
}

fn withdraw(store: &Store, id: &str, to: &str, amount: Qu) -> Result<Plan, LedgerError> {
    let a = positive(amount)?;
    let available = store.balance(&Account::Available)?.max(0);
    let earned = store.balance(&Account::Earned)?.max(0);
    if available.saturating_add(earned) < a {
        return Err(LedgerError::InsufficientFunds {
            account: "available + earned".into(),
            balance: available.saturating_add(earned),
            needed: a,
        });
    }
    let from_available = a.min(available);
    let from_earned = a - from_available;
    let record = WithdrawalRecord {
        id: id.to_owned(),
        to: to.to_owned(),
        amount,
        from_available: qu(from_available),
        from_earned: qu(from_earned),
        state: WithdrawalState::Pending,
    };
    Ok(Plan {
        postings: vec![
            (Account::Available, -from_available),
            (Account::Earned, -from_earned),
            (Account::WithdrawalsPending, a),
        ],
        withdrawal: Some(record),
        ..Plan::default()
    })
}

/// Final or failed; a failed withdrawal's QU return to `available`.
fn settle_withdrawal(store: &Store, id: &str, state: WithdrawalState) -> Result<Plan, LedgerError> {
    let mut record = store
        .withdrawal(id)?
        .ok_or_else(|| LedgerError::UnknownWithdrawal { id: id.to_owned() })?;
    if record.state != WithdrawalState::Pending {
        return Err(LedgerError::WithdrawalSettled { id: id.to_owned() });
    }
    let a = positive(record.amount)?;
    let destination = match state {
        WithdrawalState::Failed { .. } => Account::Available,
        _ => Account::External,
    };
    record.state = state;
    Ok(Plan {
        postings: vec![(Account::WithdrawalsPending, -a), (destination, a)],
        withdrawal: Some(record),
        ..Plan::default()
    })
}
