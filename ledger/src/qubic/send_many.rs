//! QUtil `SendToManyV1` (contract 4, input type 1): one transaction paying up to 25
//! destinations (SPEC §4 "Send-many payload").
//!
//! The payload is 25 destination keys followed by 25 i64 LE amounts, 1000 bytes, unused
//! slots zero. The transaction amount must be exactly the sum plus the fee: the contract
//! refunds everything, paying nobody, if it is short *or over*.

use super::keys::PublicKey;
use super::tx::{MAX_AMOUNT, SignedTransaction, TxError, UnsignedTransaction};
use super::wallet::KeyPair;

/// QUtil's contract index; its address is [`PublicKey::contract`]`(4)`.
pub const QUTIL_CONTRACT_INDEX: u32 = 4;
/// QUtil's procedure number for `SendToManyV1`.
pub const SEND_TO_MANY_V1_INPUT_TYPE: u16 = 1;
/// Size of the `SendToManyV1` payload.
pub const SEND_TO_MANY_V1_INPUT_SIZE: usize = 1000;
/// Number of payee slots in one call.
pub const SEND_TO_MANY_V1_MAX_PAYEES: usize = 25;
/// The invocation fee at the time of writing (`QUTIL_STM1_INVOCATION_FEE`). The live value
/// comes from `GetSendToManyV1Fee`; pass that to [`send_to_many_v1`] when available.
pub const SEND_TO_MANY_V1_FEE: u64 = 10;

const AMOUNTS_OFFSET: usize = SEND_TO_MANY_V1_MAX_PAYEES * 32;

/// One destination and the QU it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payee {
    /// The receiving key.
    pub destination: PublicKey,
    /// The amount in QU; must be below [`MAX_AMOUNT`].
    pub amount: u64,
}

/// Why a send-many transaction could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendManyError {
    /// No payees were given.
    #[error("send-many needs at least one payee")]
    NoPayees,
    /// More payees than slots.
    #[error("send-many pays at most 25 destinations per transaction; got {got}, split the batch")]
    TooManyPayees {
        /// The number of payees given.
        got: usize,
    },
    /// A payee amount the contract would refuse (it must be below 10^15).
    #[error(
        "payee {index} amount {amount} QU is not below 10^15; the contract would refund the batch"
    )]
    PayeeAmountTooLarge {
        /// 0-based index of the payee.
        index: usize,
        /// The amount given.
        amount: u64,
    },
    /// The sum of the amounts plus the fee exceeds what one transaction can carry.
    #[error("send-many total (amounts plus fee) exceeds 10^15 QU; split the batch")]
    TotalTooLarge,
    /// A payload that is not exactly 1000 bytes.
    #[error("a SendToManyV1 payload is 1000 bytes; got {got}")]
    WrongPayloadSize {
        /// The payload size received.
        got: usize,
    },
    /// A negative amount in a payload being read.
    #[error("payload slot {index} has the negative amount {raw}")]
    NegativeAmount {
        /// 0-based slot index.
        index: usize,
        /// The raw amount.
        raw: i64,
    },
    /// Building or signing the transaction failed.
    #[error(transparent)]
    Tx(#[from] TxError),
}

/// Encodes payees into the 1000-byte payload, validating count and amounts.
pub fn send_to_many_v1_payload(payees: &[Payee]) -> Result<Vec<u8>, SendManyError> {
    check_payees(payees)?;
    let mut payload = vec![0u8; SEND_TO_MANY_V1_INPUT_SIZE];
    for (slot, payee) in payees.iter().enumerate() {
        payload[slot * 32..(slot + 1) * 32].copy_from_slice(payee.destination.as_bytes());
        let at = AMOUNTS_OFFSET + slot * 8;
        // amount < MAX_AMOUNT < i64::MAX, so the u64 and i64 encodings agree.
        payload[at..at + 8].copy_from_slice(&payee.amount.to_le_bytes());
    }
    Ok(payload)
}

/// Reads a payload back into its used slots (a slot is unused when both its key and its
/// amount are zero).
pub fn decode_send_to_many_v1_payload(payload: &[u8]) -> Result<Vec<Payee>, SendManyError> {
    if payload.len() != SEND_TO_MANY_V1_INPUT_SIZE {
        return Err(SendManyError::WrongPayloadSize { got: payload.len() });
    }
    let mut payees = Vec::new();
    for index in 0..SEND_TO_MANY_V1_MAX_PAYEES {
        let mut key = [0u8; 32];
        key.copy_from_slice(&payload[index * 32..(index + 1) * 32]);
        let mut raw = [0u8; 8];
        let at = AMOUNTS_OFFSET + index * 8;
        raw.copy_from_slice(&payload[at..at + 8]);
        let raw = i64::from_le_bytes(raw);
        let amount =
            u64::try_from(raw).map_err(|_| SendManyError::NegativeAmount { index, raw })?;
        if amount != 0 || key != [0u8; 32] {
            payees.push(Payee {
                destination: PublicKey(key),
                amount,
            });
        }
    }
    Ok(payees)
}

/// The exact transaction amount for these payees: their sum plus `fee`.
pub fn send_to_many_v1_total(payees: &[Payee], fee: u64) -> Result<u64, SendManyError> {
    check_payees(payees)?;
    payees
        .iter()
        .try_fold(fee, |sum, p| sum.checked_add(p.amount))
        .filter(|&total| total <= MAX_AMOUNT)
        .ok_or(SendManyError::TotalTooLarge)
}

/// Builds and signs a `SendToManyV1` call paying `payees`, with amount = sum + `fee`
/// (use [`SEND_TO_MANY_V1_FEE`] unless the live fee says otherwise).
pub fn send_to_many_v1(
    key_pair: &KeyPair,
    payees: &[Payee],
    fee: u64,
    tick: u32,
) -> Result<SignedTransaction, SendManyError> {
    let total = send_to_many_v1_total(payees, fee)?;
    let body = UnsignedTransaction::with_input(
        key_pair.public_key(),
        PublicKey::contract(QUTIL_CONTRACT_INDEX),
        total,
        tick,
        SEND_TO_MANY_V1_INPUT_TYPE,
        send_to_many_v1_payload(payees)?,
    )?;
    Ok(body.sign(key_pair)?)
}

fn check_payees(payees: &[Payee]) -> Result<(), SendManyError> {
    if payees.is_empty() {
        return Err(SendManyError::NoPayees);
    }
    if payees.len() > SEND_TO_MANY_V1_MAX_PAYEES {
        return Err(SendManyError::TooManyPayees { got: payees.len() });
    }
    match payees.iter().position(|p| p.amount >= MAX_AMOUNT) {
        Some(index) => Err(SendManyError::PayeeAmountTooLarge {
            index,
            amount: payees[index].amount,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payee(byte: u8, amount: u64) -> Payee {
        Payee {
            destination: PublicKey([byte; 32]),
            amount,
        }
    }

    #[test]
    fn payee_count_and_amounts_are_checked() {
        assert_eq!(send_to_many_v1_payload(&[]), Err(SendManyError::NoPayees));
        let many = vec![payee(1, 1); 26];
        assert_eq!(
            send_to_many_v1_payload(&many),
            Err(SendManyError::TooManyPayees { got: 26 })
        );
        assert_eq!(
            send_to_many_v1_payload(&[payee(1, 1), payee(2, MAX_AMOUNT)]),
            Err(SendManyError::PayeeAmountTooLarge {
                index: 1,
                amount: MAX_AMOUNT
            })
        );
    }

    #[test]
    fn total_includes_fee_and_is_bounded() {
        assert_eq!(
            send_to_many_v1_total(&[payee(1, 500), payee(2, 300)], 10),
            Ok(810)
        );
        let near = [payee(1, MAX_AMOUNT - 1), payee(2, MAX_AMOUNT - 1)];
        assert_eq!(
            send_to_many_v1_total(&near, 10),
            Err(SendManyError::TotalTooLarge)
        );
    }

    #[test]
    fn payload_round_trips_and_rejects_bad_input() {
        let payees = vec![payee(9, 5), payee(8, 0), payee(0, 7)];
        let payload = send_to_many_v1_payload(&payees).unwrap();
        assert_eq!(payload.len(), SEND_TO_MANY_V1_INPUT_SIZE);
        assert_eq!(decode_send_to_many_v1_payload(&payload), Ok(payees));
        assert_eq!(
            decode_send_to_many_v1_payload(&payload[1..]),
            Err(SendManyError::WrongPayloadSize { got: 999 })
        );
        let mut negative = payload;
        negative[AMOUNTS_OFFSET..AMOUNTS_OFFSET + 8].copy_from_slice(&(-3i64).to_le_bytes());
        assert_eq!(
            decode_send_to_many_v1_payload(&negative),
            Err(SendManyError::NegativeAmount { index: 0, raw: -3 })
        );
    }
}
