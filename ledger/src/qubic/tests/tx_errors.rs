//! Error paths of transaction building and parsing (the happy paths are the §9 E vectors).

use super::super::tx::{MAX_AMOUNT, MAX_INPUT_SIZE};
use super::super::*;

fn pair() -> KeyPair {
    KeyPair::from_seed_str(&"a".repeat(55)).unwrap()
}

#[test]
fn builder_rejects_out_of_range_fields() {
    let pk = pair().public_key();
    assert_eq!(
        UnsignedTransaction::transfer(pk, pk, MAX_AMOUNT + 1, 1),
        Err(TxError::AmountTooLarge {
            amount: MAX_AMOUNT + 1
        })
    );
    assert!(UnsignedTransaction::transfer(pk, pk, MAX_AMOUNT, 1).is_ok());
    let big = vec![0u8; MAX_INPUT_SIZE + 1];
    assert_eq!(
        UnsignedTransaction::with_input(pk, pk, 0, 1, 7, big),
        Err(TxError::InputTooLarge { size: 1025 })
    );
}

#[test]
fn signing_with_another_key_is_refused() {
    let other = KeyPair::from_seed_str(&"b".repeat(55)).unwrap();
    let tx = UnsignedTransaction::transfer(pair().public_key(), PublicKey::default(), 1, 1);
    let err = tx.unwrap().sign(&other).unwrap_err();
    assert!(matches!(err, TxError::WrongSigner { .. }));
    assert!(err.to_string().contains("sign with the source's seed"));
}

#[test]
fn parse_checks_lengths_before_anything_else() {
    assert_eq!(
        SignedTransaction::parse(&[0u8; 143]),
        Err(TxError::TooShort { got: 143 })
    );
    let mut bytes = [0u8; 145];
    assert_eq!(
        SignedTransaction::parse(&bytes),
        Err(TxError::LengthMismatch {
            input_size: 0,
            expected: 144,
            got: 145
        })
    );
    bytes[78..80].copy_from_slice(&1025u16.to_le_bytes());
    assert_eq!(
        SignedTransaction::parse(&bytes),
        Err(TxError::InputTooLarge { size: 1025 })
    );
}

#[test]
fn parse_rejects_negative_and_huge_amounts() {
    let tx = build_transfer(&pair(), PublicKey::default(), 5, 9).unwrap();
    for raw in [-1i64, i64::MIN, 1_000_000_000_000_001] {
        let mut bytes = tx.to_bytes();
        bytes[64..72].copy_from_slice(&raw.to_le_bytes());
        assert_eq!(
            SignedTransaction::parse(&bytes),
            Err(TxError::AmountOutOfRange { raw })
        );
    }
}

#[test]
fn base64_length_is_bounded() {
    let long = "A".repeat(1564);
    assert!(matches!(
        SignedTransaction::from_base64(&long),
        Err(TxError::Base64TooLong { .. })
    ));
    assert!(matches!(
        SignedTransaction::from_base64("@@@@"),
        Err(TxError::Base64(_))
    ));
}
