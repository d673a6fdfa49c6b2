//! SPEC §9 E: full signed transactions T1, T2 and T3, byte for byte.

use super::super::k12::k12_32;
use super::super::send_many::{SEND_TO_MANY_V1_INPUT_SIZE, send_to_many_v1_total};
use super::super::*;

struct Expected {
    wire_hex: &'static str,
    body_digest: &'static str,
    tx_hash: &'static str,
    id: &'static str,
}

fn check(tx: &SignedTransaction, expected: &Expected) {
    let wire = tx.to_bytes();
    assert_eq!(hex::encode(&wire), expected.wire_hex);
    assert_eq!(hex::encode(tx.body().digest()), expected.body_digest);
    assert_eq!(hex::encode(tx.hash()), expected.tx_hash);
    assert_eq!(tx.id().as_str(), expected.id);
    assert_eq!(SignedTransaction::parse(&wire).as_ref(), Ok(tx));
}

const T1: Expected = Expected {
    wire_hex: concat!(
        "1f590d03e613bdded38b4c0820ac44615f91af12435980b3ede3c08c315a2544",
        "07df14985bf95e3177cb4b5e15e17f383568928a416cab8d0f41f7e39d3253bf",
        "e803000000000000002d310100000000",
        "124b3fc2f97d4d33f05b523e405caa4e5a9464c26d2c6608b33efcc9daead28a",
        "4ae8dc26415b12ac88ef7074d2b753387b8439a082ee3e6cd1680501f9ba1300",
    ),
    body_digest: "ec8d7e9b2c78b669f5f0d12f90c5f53410be86a17f930928235f63e388052cb5",
    tx_hash: "c23eed658adfc3f9ce5398e372a40df2b82692a394dc85403e2df36429de9fb3",
    id: "woiwlkvhzompghcowhtwzdkdcuahgrapkeeowetswbggdsihiqfwlqffrqbn",
};

#[test]
fn t1_plain_transfer_from_seed_a() {
    let pair = KeyPair::from_seed_str(&"a".repeat(55)).unwrap();
    let destination =
        PublicKey::from_identity("LSGSCFHDOAHHLBDMLYZRFKVSFRQBBUZNGANESCIZCETYXKCDHLJHEMOFXCWB")
            .unwrap();
    let tx = build_transfer(&pair, destination, 1000, 20_000_000).unwrap();
    check(&tx, &T1);
    assert_eq!(tx.to_bytes().len(), 144);
    assert_eq!(
        tx.to_base64(),
        "H1kNA+YTvd7Ti0wIIKxEYV+RrxJDWYCz7ePAjDFaJUQH3xSYW/leMXfLS14V4X84NWiSikFsq40PQffjnTJTv+gDAAAAAAAAAC0xAQAAAAASSz/C+X1NM/BbUj5AXKpOWpRkwm0sZgizPvzJ2urSikro3CZBWxKsiO9wdNK3Uzh7hDmggu4+bNFoBQH5uhMA"
    );
    assert_eq!(SignedTransaction::from_base64(&tx.to_base64()), Ok(tx));
}

#[test]
fn t2_plain_transfer_amount_one() {
    let pair =
        KeyPair::from_seed_str("lmujdbtiimznvyamoyjumfeiglauqfzsznisydmqrdyuwqydjpjixat").unwrap();
    let destination =
        PublicKey::from_identity("LZTPJBQKOYLBFEWWFVEFDFOOFEWCUSSNNKLOXGDQJGBTYUMJVAOSYHIGYDOM")
            .unwrap();
    let tx = build_transfer(&pair, destination, 1, 43_000_000).unwrap();
    check(
        &tx,
        &Expected {
            wire_hex: "e6fc3aad4b594d82bf3103a11016d80de883de873bcec48e90396286503b2613c966781fee7d6d90ee44910e134c3762c8d65976588356db0f99b76070e198d90100000000000000c020900200000000116bc982171187344407e32bf1f67037d50c526407a8e5b8477f09185048d0153ea68596c95e91265478a814221168bff72e7b88cd0fdaf7024f1fd960ac2400",
            body_digest: "df81173907ddd0468965b8a11ab74143a40584eab33939df474b7680795563a3",
            tx_hash: "ade071af38c06645cfcd4886eee94e6c549226f7962a0e0f1bf2e73e74bd981c",
            id: "vmkbvyigmjnkacbdgfsmtqtbjuddemcgwyabtwojlajlhbfcpnzxkpvadfva",
        },
    );
}

#[test]
fn t3_qutil_send_to_many_v1() {
    let pair = KeyPair::from_seed_str(&"a".repeat(55)).unwrap();
    let payee = |id: &str, amount| Payee {
        destination: PublicKey::from_identity(id).unwrap(),
        amount,
    };
    let payees = [
        payee(
            "LSGSCFHDOAHHLBDMLYZRFKVSFRQBBUZNGANESCIZCETYXKCDHLJHEMOFXCWB",
            500,
        ),
        payee(
            "QJRRSSKMJRDKUDTYVNYGAMQPULKAMILQQYOWBEXUDEUWQUMNGDHQYLOAJMEB",
            300,
        ),
    ];
    assert_eq!(send_to_many_v1_total(&payees, 10), Ok(810));
    let tx = send_to_many_v1(&pair, &payees, 10, 20_000_100).unwrap();
    let body = tx.body();
    assert_eq!(
        body.destination().identity().as_str(),
        "EAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAVWRF"
    );
    assert_eq!(
        (body.amount(), body.tick(), body.input_type()),
        (810, 20_000_100, 1)
    );
    assert_eq!(body.input().len(), SEND_TO_MANY_V1_INPUT_SIZE);
    let wire = tx.to_bytes();
    assert_eq!(wire.len(), 1144);
    assert_eq!(
        hex::encode(body.digest()),
        "b776617329e6f01aa0eb4c8f611052834fc30a0d0d349f1cb8967de02becac24"
    );
    assert_eq!(
        hex::encode(tx.signature().0),
        "992cf1e335e4f3f1cf88a69dbed7e07b3cb4856b882cdcf6062c4525fbe94fbf85196e352edb6f5655f54dfb58bcb21ae29507d074e9eab1987aa9ed81af2700"
    );
    assert_eq!(
        hex::encode(k12_32(&wire)),
        "75e676b55c15cf7b11dfa50f19b0f1ea931680ddb715ceec329611edae03ba4d"
    );
    assert_eq!(
        tx.id().as_str(),
        "nuobumobqgrmpdfatqwawvthnkvgleorkpikafbvwgiriiptrmxxyrgctwzi"
    );
    assert_eq!(SignedTransaction::parse(&wire), Ok(tx));
}
