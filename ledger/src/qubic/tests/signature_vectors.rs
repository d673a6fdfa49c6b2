//! SPEC §9 D: signature vectors, including every must-fail case.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::super::fourq::{Point, Scalar, encode};
use super::super::k12::k12_32;
use super::super::schnorrq::{sign, verify};
use super::super::tx::SignedTransaction;
use super::super::*;
use super::support::bytes;

/// qubic/core `test/fourq.cpp` `TestSign`: subseed, digest, signature.
const CORE_SIGN: [(&str, &str, &str); 9] = [
    (
        "4ac19e2bf0d3776519aabe31924f7dc2589b3d0e7411a65f84c9b16df72c038e",
        "94e120a4d3f58c217a53eb9046d9f2c5b11288a9fe340d6ce5a771cf04b82e63",
        "357d47b1366f33eed311a4458ec7326d35728e9292328a9b7ff8d4ec0f7b0df9323f5d1cd01bd5a380a1a8e4f29ad3ae9c5d94e84f4181a61ca73030d6d11600",
    ),
    (
        "e8217c5b40aa91df662803ce4dbf18722e35f1097ac68fb5da10643a825799e3",
        "77f493b58ea40162dc33f9a718e2543b05f629884d7ca0e31598c45f021ae7c0",
        "7d2479a15746839c4c5e1fdf0aadb167974c292ceee80593e18b5135763db63163d8eee5bd309c506f47b16cd1242ddfe985887b19d3943c14ec6ab79a9c1900",
    ),
    (
        "6d02f48bcb53ac397fc71a9028e4165df9b87044c53e116a0192d7fa83254bb0",
        "5cc82fa973101da5bfb3e2448196f0a7d7d3324c86fbbe42907613d5c8c2f1a4",
        "1b8ed83af3dc12deb1554f48df46bf5bc5e4654f62f97ef20656fae4e965ac87762c9fe6189dfe89192a619bca4a6c390f4e97bb1f926041263f2ba4206b0c00",
    ),
    (
        "3cfa1097be482f6e5ce132c2aa657d0fb9d84121048de6f05b90a2cc136bf73a",
        "c01ae5f2879d11439b30ddae5f4c7b22689f023e17b4955c3b2f05e8d9089af6",
        "470ad247ff6b2e55d44e9f2a79ce402bfc5e8c5322ed297f71939a9c5398b6fcb5058c05e614d10d90d6bdec8ee4ecc6462cdd54e0ea830fde6be465de3f2900",
    ),
    (
        "5208dd447a21f3c9911cae547637c580e74fa40d2a9c5e1fb26dcbfa408539d1",
        "2f893e70ad52c9186eb4b60dfe137288c4a9e0fb6d34a51897e2365a01b0d443",
        "0851db3d4021bdc8cf3816b4672aba2f5f7cd0bf19e779e28ee60241bc4246dabe7442a11953703a44ed1cadd0af9fce683c5a312326341ac7a3e55a18c40100",
    ),
    (
        "987b163dc6fd492573b4e18af7016c52a027ced5345fb8904e69037ed2ac1b81",
        "ec09a3f415c2dda5f8419026678ab03524f67ed9817ba230cd24513750e01bc6",
        "54466ae5ecad45c83798e4e3e02ab40e834bf8d3f4f1628b300601ab87894599a43278efd48be7e9615cd569e656356a9e2307ae257b85a3f1f0f333f2302200",
    ),
    (
        "d462ab0c83f931c4a87f12953e20bd576be849da5a8f1402c3b176ef92486d05",
        "48b59f32a61dff0e13528e4c7937bdf080c3efa7d221364be87f01d5c60f882a",
        "6d67294ccd03dc51fdb3bca649b7e060d3cf06c417e7053472ca617b93e5926928a7a48b1791c2487c7e83eeb4919046493709508c0541d1c02e9545401b2100",
    ),
    (
        "713fc86e289f124bdb2a65f6a37c01e0559a148ebf430f6729c184de76b23a90",
        "b31e704c8a3f1d02692f05a7d8e5f6c911d370f4a68b2ec3fa4c51d7289003de",
        "20764a88943fb4e796f81a560bde5e652c82ffb203c00b4846102a268ae68f64cdee6c7a3edbf4de48dd25fd423a4b40e79d97a2a47fd11030b6f30a09130b00",
    ),
    (
        "15cd5b0700000000b168de3a00000000743af15000000000efcdab0000000000",
        "89d5f92a895987457400219e121e8730f6b248a1fd28bfee017611ef079105b5",
        "9f71d3138ff8a72db3b39883e056ce7f5bfe40de6387e64eff0c17e72bd1862ccd848000be1841725f1da87654235329b685e1c81c939cb0154bbc8d30a20c00",
    ),
];

#[test]
fn core_sign_vectors_sign_and_verify() {
    for (subseed_hex, digest_hex, signature_hex) in CORE_SIGN {
        let subseed = Subseed::from_bytes(bytes(subseed_hex));
        let public_key = subseed.public_key();
        let digest = bytes(digest_hex);
        let signature = sign(&subseed, &public_key, &digest);
        assert_eq!(
            hex::encode(signature.0),
            signature_hex,
            "subseed {subseed_hex}"
        );
        assert_eq!(verify(&public_key, &digest, &signature), Ok(()));
    }
}

#[test]
fn npm_wasm_public_keys_of_vectors_1_and_2() {
    let expected = [
        "f6ef25559eb0ebf767e9a1d30db7e75680adf0a1de527ed0d249a09794c880d6",
        "3ac6114a6d0e84c61081e3cae4a886398ef20142d43b5f8a1ac4f56ad32d203a",
    ];
    for ((subseed_hex, _, _), public_hex) in CORE_SIGN.iter().zip(expected) {
        let subseed = Subseed::from_bytes(bytes(subseed_hex));
        assert_eq!(subseed.public_key().to_hex(), public_hex);
    }
}

#[test]
fn qubic_net_signature() {
    let subseed = Subseed::from_bytes(bytes(
        "179c2d6db171f1af86efbaded25aeb0bc12bf90c0244566aee23e08f082d3863",
    ));
    let pair = KeyPair::from_subseed(subseed);
    let digest = bytes("7f80905b2aee289f448193827a0a96ecc99de08f446b71c0f581255403778904");
    let signature = pair.sign_digest(&digest);
    assert_eq!(
        hex::encode(signature.0),
        "ee65334ebf9a12407b85ae25d2e9eb0ff634fddc8e8bf2aab9ecd2a80fefca164b3fd48fbae7767e8f17bb794dd9d1698d03ee04db642546cd491ba76bd72700"
    );
}

#[test]
fn mineco_seed_a_signs_k12_of_u64_ten() {
    let pair = KeyPair::from_seed_str(&"a".repeat(55)).unwrap();
    let digest = k12_32(&10u64.to_le_bytes());
    let expected: [u8; 64] = [
        200, 228, 166, 138, 90, 163, 195, 88, 137, 89, 233, 148, 251, 149, 140, 37, 105, 127, 254,
        22, 49, 180, 202, 175, 236, 126, 224, 144, 41, 32, 119, 181, 96, 198, 20, 216, 126, 166,
        96, 192, 252, 172, 247, 82, 47, 83, 49, 37, 227, 94, 186, 154, 189, 60, 111, 207, 59, 153,
        206, 102, 219, 156, 24, 0,
    ];
    assert_eq!(pair.sign_digest(&digest).0, expected);
}

/// go-schnorrq `TestVerify_1`: the key of seed `a`×55.
fn go_vector_1() -> (PublicKey, [u8; 32], Signature) {
    (
        PublicKey(bytes(
            "1f590d03e613bdded38b4c0820ac44615f91af12435980b3ede3c08c315a2544",
        )),
        bytes("a6828fcb9b686f087408572bf316e89b2d96fc4811b5d0754bfdbd5b8ad7760d"),
        Signature(bytes(
            "60ced082a031b8973c8b77e39b078c1ed51bacf59503fd19e86c340ec90c85a7372753c3634ccc88ccfa9fd017a8605902de96ab0dba7324016afe5452221100",
        )),
    )
}

/// go-schnorrq `TestVerify_2`.
fn go_vector_2() -> (PublicKey, [u8; 32], Signature) {
    (
        PublicKey(bytes(
            "9e1a100cfb556def7bcc6252e47ddf0985428637c3d1b3caa16f33fd98438d94",
        )),
        bytes("8a481c7ae4a7c33ca9a51d64cfa113e510c2f78ff58d8bd413fb6f4921abceb7"),
        Signature(bytes(
            "b236e4e60a1d75945a3aa8259514a54e0b16ac4baa4e466a913953c3deb7b5366bf22fe350cb8822eda2fd1604f9062cf216dbb40f88ec341788638968e31300",
        )),
    )
}

#[test]
fn go_schnorrq_valid_vectors() {
    let (pk, digest, sig) = go_vector_1();
    assert_eq!(verify(&pk, &digest, &sig), Ok(()));
    let (pk, digest, sig) = go_vector_2();
    assert_eq!(verify(&pk, &digest, &sig), Ok(()));
    let pk3 = PublicKey(bytes(
        "763a7783337bd62b6eb5763057522d40ce512f0ae102582f1aae15530be82c35",
    ));
    let sig3 = Signature(bytes(
        "e3f8c3b701178ef1e714be3f3054e42110d018de989a2ec6ea05ad447bda5aae9377d08d2802c4442aaeb73a83d8626e0fda751ce2cc86fa27de459139542700",
    ));
    assert_eq!(verify(&pk3, &digest, &sig3), Ok(()));
}

#[test]
fn go_schnorrq_negative_vectors() {
    let (pk, digest, sig) = go_vector_1();
    let mut pk4 = pk;
    pk4.0[15] = 0x81;
    assert_eq!(
        verify(&pk4, &digest, &sig),
        Err(VerifyError::NonCanonicalPublicKey)
    );
    let mut sig5 = sig;
    sig5.0[15] = 0x81;
    assert_eq!(verify(&pk, &digest, &sig5), Err(VerifyError::NonCanonicalR));
    let mut sig6 = sig;
    sig6.0[63] = 0x01;
    assert_eq!(
        verify(&pk, &digest, &sig6),
        Err(VerifyError::ScalarOutOfRange)
    );
}

/// S + N as a 256-bit little-endian integer (no reduction).
fn add_order(s: &[u8; 32]) -> [u8; 32] {
    let n = order_bytes();
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(s[i]) + u16::from(n[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    out
}

fn order_bytes() -> [u8; 32] {
    bytes("e78c76c70e54b22f99790ffe4d00bddfe514bc9c829753f0720a5e4ec1cb2900")
}

#[test]
fn malleated_twin_s_plus_n_is_rejected() {
    let (pk, digest, sig) = go_vector_2();
    let mut twin = sig;
    twin.0[32..].copy_from_slice(&add_order(&sig.s_bytes()));
    // The twin still fits in 2^246, so only the canonical S < N check stops it.
    assert_eq!(twin.0[62] & 0xC0, 0);
    assert_eq!(twin.0[63], 0);
    assert_eq!(
        verify(&pk, &digest, &twin),
        Err(VerifyError::ScalarOutOfRange)
    );
}

#[test]
fn s_equal_to_n_is_rejected() {
    let (pk, digest, sig) = go_vector_1();
    let mut at_order = sig;
    at_order.0[32..].copy_from_slice(&order_bytes());
    assert_eq!(
        verify(&pk, &digest, &at_order),
        Err(VerifyError::ScalarOutOfRange)
    );
}

#[test]
fn real_network_signed_hallo_packet() {
    let identity: Identity = "UGQLSPXWWQORKDDJNOQVYRPYPWKDYLBCTOJCQTPRJFUXGTQXJAVACKSDDNMA"
        .parse()
        .unwrap();
    assert_eq!(
        identity.public_key().to_hex(),
        "6824de2a02d16f751145d12a55aab1755a63400f94fdfab85a349d2be376a67f"
    );
    let packet = STANDARD
        .decode("SGFsbG9w3PrF3AvP1/epGGEbt79ZtwuDUP1UrxUKQSxw8Un31EKICNOIoqmuC9W/52M8Xg5islHGdAuPwOCS3OBjHwgA")
        .unwrap();
    let (message, signature) = packet.split_at(5);
    assert_eq!(message, b"Hallo");
    let signature = Signature(signature.try_into().unwrap());
    assert_eq!(
        verify(&identity.public_key(), &k12_32(message), &signature),
        Ok(())
    );
}

/// The 4 low-order keys of core's `kWeakKeys`, as little-endian u64 limbs.
const LOW_ORDER_KEYS: [[u64; 4]; 4] = [
    [1, 0, 0, 0],
    [0, 0, 0, 0],
    [0, 0, 0, 0x8000_0000_0000_0000],
    [0xFFFF_FFFF_FFFF_FFFE, 0x7FFF_FFFF_FFFF_FFFF, 0, 0],
];

fn limbs_to_key(limbs: [u64; 4]) -> PublicKey {
    let mut out = [0u8; 32];
    for (chunk, limb) in out.chunks_exact_mut(8).zip(limbs) {
        chunk.copy_from_slice(&limb.to_le_bytes());
    }
    PublicKey(out)
}

/// Core's `forgeIdentitySignature`: R = encode(S·G), valid for every message if A = O.
fn identity_forgery(s: u64) -> Signature {
    let scalar = Scalar::from_bytes_mod_order(&s.to_le_bytes());
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&encode(&Point::mul_base(&scalar)));
    out[32..].copy_from_slice(&scalar.to_bytes());
    Signature(out)
}

#[test]
fn low_order_public_keys_are_rejected() {
    let signature = identity_forgery(7);
    for limbs in LOW_ORDER_KEYS {
        let key = limbs_to_key(limbs);
        let decoded = super::super::fourq::decode(key.as_bytes());
        assert!(
            decoded.is_some_and(|p| p.is_low_order()),
            "{limbs:x?} is not low-order"
        );
        assert_eq!(
            verify(&key, &[0x5A; 32], &signature),
            Err(VerifyError::LowOrderPublicKey),
            "{limbs:x?}"
        );
    }
}

#[test]
fn identity_forgery_is_rejected_for_every_message() {
    let key = limbs_to_key(LOW_ORDER_KEYS[0]);
    for s in [1, 2, 123_456_789] {
        let signature = identity_forgery(s);
        for (_, digest_hex, _) in &CORE_SIGN[..4] {
            let digest = bytes(digest_hex);
            assert_eq!(
                verify(&key, &digest, &signature),
                Err(VerifyError::LowOrderPublicKey)
            );
        }
    }
}

/// qubic/core `test/fourq.cpp` `TestVerifyRejectsNetworkForgeries`: transactions spent from
/// the identity point (the QX address) that passed the pre-2026 verifier on the network.
const NETWORK_FORGERIES: [&str; 8] = [
    "010000000000000000000000000000000000000000000000000000000000000091cfd01bb1d6b1d48e9f806a8ef65734ae6162fbb3b2643a0088c1046e55f776009435770000000072e878030000000052750c95db608b2ad33f260c13523f3392afdbeefcd071a824e3973403443d890f997c86e5c769fd2344c515a7ce19b4dffc30a06e6da2dab5a1bc09f2212300",
    "010000000000000000000000000000000000000000000000000000000000000091cfd01bb1d6b1d48e9f806a8ef65734ae6162fbb3b2643a0088c1046e55f776009435770000000060e8780300000000304d8a0eef6d5e578f7fe3623f21d97debd5c1a77a2bad8f347ae4cf41256a61f31cd9c1d5280e2895ba8d3864e7e33cb9197d7e0fca47e38211277fb2960b00",
    "01000000000000000000000000000000000000000000000000000000000000008220a28587c81abd47934c0f6e8af42d1b10182c494a3d46aa9908eaf83e606a00e40b5402000000e74a7803000000004c1357678e9aa76ef892379f94545e571a1435730c15b5ae366a1f34f9a8fa54834ba3e96e9c5b6407759e470b5ecceb5f233f067bbeecd72ebe0332b11f0200",
    "01000000000000000000000000000000000000000000000000000000000000008220a28587c81abd47934c0f6e8af42d1b10182c494a3d46aa9908eaf83e606a00f2052a01000000bf487803000000009f660e0561ec753b2d2395ef84a8b305489c091fbba0cfa95f910cc13d56e67f542412901ff6107611d2d4facf038fe73193a3f8b1dff646be0a9100ce752600",
    "0100000000000000000000000000000000000000000000000000000000000000d4902431eb401facb0e5f4c649b53801c3ad1228ba0294953922d2e662a66da301000000000000008d0d77030000000091f3a7dd1cf60d64a79efac0fe6f034a6848924a08f65d46059387a801761ebafc062f4764555f485fedbd34a7e536889d261582a46325cb5dd1e5b083412300",
    "01000000000000000000000000000000000000000000000000000000000000004de5b0cd0b1f9638e12b9906cc36a39334835644d958318957bb37b648b5822f01000000000000003917770300000000ef46106b7a44f73e67f857b8b9f66e4c2a0ed960453fe55a4058d0e4c4a052d679d773ae43ec0bc24e200ae4ce28abb5e0a195d45c313358719b0c77ae131c00",
    "01000000000000000000000000000000000000000000000000000000000000008220a28587c81abd47934c0f6e8af42d1b10182c494a3d46aa9908eaf83e606a01000000000000002b197703000000005cafd8c1dcf05b0eebf805cafb40d361848c13f94ce78640cfdb76fba0cddcde50ce8556637fdac894848fa18b18b5fdcbc49b0719ef505fcafe3100497f2200",
    "01000000000000000000000000000000000000000000000000000000000000008220a28587c81abd47934c0f6e8af42d1b10182c494a3d46aa9908eaf83e606a00e40b5402000000a0437703000000009573ad5ce6f0e8d8d02a28297334c3009a319580e63c27c5a1b257fe2e056fcc0b8307956b52c223eba07eb5a8a0384ba044626aed71637ef3238ad3ee160c00",
];

#[test]
fn network_forgeries_parse_structurally_but_fail_verification() {
    for forgery in NETWORK_FORGERIES {
        let wire = hex::decode(forgery).unwrap();
        assert_eq!(wire.len(), 144);
        // Each really is an identity forgery: encode(S·G) == R, so only the low-order
        // guard stands between it and acceptance.
        let signature = Signature(wire[80..].try_into().unwrap());
        let s = Scalar::from_canonical_bytes(&signature.s_bytes()).unwrap();
        assert_eq!(encode(&Point::mul_base(&s)), signature.r_bytes());
        assert_eq!(
            SignedTransaction::parse(&wire),
            Err(TxError::InvalidSignature(VerifyError::LowOrderPublicKey))
        );
    }
}
