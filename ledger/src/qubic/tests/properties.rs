//! Property tests. Cases that multiply points use 32 cases so the debug-build suite stays
//! fast; pure codec properties use proptest's default.

use proptest::prelude::*;

use super::super::fourq::decode;
use super::super::identity::{Case, decode as decode_identity, encode as encode_identity};
use super::super::k12::k12;
use super::super::schnorrq::{sign, verify};
use super::super::*;

fn scalar_mult_config() -> ProptestConfig {
    ProptestConfig::with_cases(32)
}

fn seed_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(b'a'..=b'z', 55).prop_map(|v| v.into_iter().map(char::from).collect())
}

proptest! {
    #![proptest_config(scalar_mult_config())]

    #[test]
    fn signatures_verify(subseed in any::<[u8; 32]>(), digest in any::<[u8; 32]>()) {
        let subseed = Subseed::from_bytes(subseed);
        let key = subseed.public_key();
        prop_assert_eq!(verify(&key, &digest, &sign(&subseed, &key, &digest)), Ok(()));
    }

    #[test]
    fn any_flipped_byte_breaks_verification(
        subseed in any::<[u8; 32]>(),
        digest in any::<[u8; 32]>(),
        index in 0usize..96,
        flip in 1u8..=255,
    ) {
        let subseed = Subseed::from_bytes(subseed);
        let key = subseed.public_key();
        let mut signature = sign(&subseed, &key, &digest);
        let mut digest = digest;
        if index < 64 {
            signature.0[index] ^= flip;
        } else {
            digest[index - 64] ^= flip;
        }
        prop_assert!(verify(&key, &digest, &signature).is_err());
    }

    #[test]
    fn transactions_round_trip(
        seed in seed_text(),
        destination in any::<[u8; 32]>(),
        amount in 0u64..=tx::MAX_AMOUNT,
        tick in any::<u32>(),
        input_type in any::<u16>(),
        input in proptest::collection::vec(any::<u8>(), 0..=tx::MAX_INPUT_SIZE),
    ) {
        let pair = KeyPair::from_seed_str(&seed).unwrap();
        let body = UnsignedTransaction::with_input(
            pair.public_key(), PublicKey(destination), amount, tick, input_type, input,
        ).unwrap();
        let tx = body.sign(&pair).unwrap();
        let wire = tx.to_bytes();
        prop_assert_eq!(wire.len(), tx::TRANSFER_SIZE + tx.body().input().len());
        let parsed = SignedTransaction::parse(&wire);
        prop_assert_eq!(parsed.as_ref(), Ok(&tx));
        let from_text = SignedTransaction::from_base64(&tx.to_base64());
        prop_assert_eq!(from_text.as_ref(), Ok(&tx));
        prop_assert_eq!(tx.id().as_str().parse::<TxId>().map(|id| id.hash()), Ok(tx.hash()));
    }

    #[test]
    fn verify_never_panics_on_arbitrary_input(
        key in any::<[u8; 32]>(),
        digest in any::<[u8; 32]>(),
        r in any::<[u8; 32]>(),
        s in any::<[u8; 32]>(),
    ) {
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&r);
        signature[32..].copy_from_slice(&s);
        // Random bytes essentially never verify; the point is that nothing panics.
        prop_assert!(verify(&PublicKey(key), &digest, &Signature(signature)).is_err());
    }
}

proptest! {
    #[test]
    fn identities_round_trip_in_both_cases(bytes in any::<[u8; 32]>()) {
        let upper = encode_identity(&bytes, Case::Upper);
        let lower = encode_identity(&bytes, Case::Lower);
        prop_assert_eq!(&lower, &upper.to_lowercase());
        prop_assert_eq!(decode_identity(&upper, Case::Upper), Ok(bytes));
        prop_assert_eq!(decode_identity(&lower, Case::Lower), Ok(bytes));
        let identity: Identity = upper.parse().unwrap();
        prop_assert_eq!(identity.public_key(), PublicKey(bytes));
        prop_assert_eq!(identity.to_string(), upper);
    }

    #[test]
    fn shorter_k12_output_is_a_prefix(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut long = [0u8; 64];
        let mut short = [0u8; 32];
        k12(&data, &mut long);
        k12(&data, &mut short);
        prop_assert_eq!(&long[..32], &short[..]);
    }

    #[test]
    fn decoders_never_panic(
        wire in proptest::collection::vec(any::<u8>(), 0..1300),
        text in ".{0,70}",
        point in any::<[u8; 32]>(),
    ) {
        let _ = SignedTransaction::parse(&wire);
        let _ = SignedTransaction::from_base64(&text);
        let _ = text.parse::<Identity>();
        let _ = text.parse::<TxId>();
        let _ = Seed::new(&text);
        let _ = decode(&point);
    }

    #[test]
    fn altered_identity_letters_are_caught(bytes in any::<[u8; 32]>(), index in 0usize..60, shift in 1u8..26) {
        let upper = encode_identity(&bytes, Case::Upper);
        let mut letters = upper.into_bytes();
        letters[index] = b'A' + (letters[index] - b'A' + shift) % 26;
        let altered: String = letters.into_iter().map(char::from).collect();
        // A single changed letter either overflows its group, breaks the checksum, or (for a
        // checksum letter) mismatches; it can never decode to the same key.
        prop_assert_ne!(decode_identity(&altered, Case::Upper), Ok(bytes));
    }
}
