//! SPEC §9 A (K12), B (seed → identity) and C (identity ↔ public key).

use super::super::identity::{Case, decode, encode};
use super::super::k12::{k12, k12_32};
use super::super::*;
use super::support::bytes;

// ---- A. K12 ----

#[test]
fn k12_rustcrypto_readme_vector() {
    let mut out = [0u8; 10];
    k12(b"abc", &mut out);
    assert_eq!(hex::encode(out), "ab174f328c55a5510b0b");
}

#[test]
fn k12_qubic_net_vector() {
    let input: Vec<u8> = (0u8..10).collect();
    assert_eq!(
        hex::encode(k12_32(&input)),
        "e5ef1dd415a069d5c1ee20a731c271d751ec9f301bfb8a51acf27828d231e305"
    );
}

// ---- B. Seed → subseed → private key → public key → identity ----

/// qubic/core `test/fourq.cpp` `TestGenerateKeys`: seed, public ID and private-key ID, both
/// lowercase in the source.
const CORE_KEYS: [(&str, &str, &str); 4] = [
    (
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "bzbqfllbncxemglobhuvftluplvcpquassilfaboffbcadqssupnwlzbqexk",
        "cctwbaulwuyhybijykxrmxnyrvzbalwryiiahltfwanuafhyfhepcjjgvaec",
    ),
    (
        "nhtighfbfdvgxnxrwxnbfmisknawppoewsycodciozvqpeqegttwofg",
        "lsgscfhdoahhlbdmlyzrfkvsfrqbbuznganescizcetyxkcdhljhemofxcwb",
        "qfldkxspcgsnbgnccmsjftuhxvlfrmarkqrvqjvjaebwoasbytasvcffdfwd",
    ),
    (
        "fcvgljppwwwjhrawxeywxqdgssttiihcmikxbnnunugldvcitkhcrfl",
        "zsvpltnzfdyjzetanimltroldybdzoctvfguybpbvdxbndsrhyreppgccspo",
        "mqlgaugwpdaphhqsacmqdcioomybxkaisrwyefyisayrikqjlckwkpdhuqlc",
    ),
    (
        "eijytgswxqzfkotmqvwulivpbximuhmgydvnaozwszguqflpfvltqge",
        "xcfqbuwxxtufpfwyteglgchgnqyanubfbkpwtivfobxybgaqcgiqmzlgscwe",
        "qwqmcjhdlzphgabvnjbedsgwrgpbvplcipmxkzuogglbhzfjiytunaeactsn",
    ),
];

#[test]
fn core_generate_keys() {
    for (seed, public_id, private_id) in CORE_KEYS {
        let subseed = Seed::new(seed).unwrap().subseed();
        let private = subseed.private_key();
        let public = private.public_key();
        assert_eq!(encode(&public.0, Case::Lower), public_id, "{seed}");
        assert_eq!(
            encode(private.expose_secret(), Case::Lower),
            private_id,
            "{seed}"
        );
        assert_eq!(public.identity().as_str(), public_id.to_uppercase());
    }
}

/// SPEC §9 B "full intermediate values": seed, subseed (or its prefix), private key (or its
/// prefix), public key, identity.
const FULL_KEYS: [(&str, &str, &str, &str, &str); 6] = [
    (
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "4453512f1ef597b365cc384f0a2b10ceb5c94f516b911acc8e8bc1b55e646c74",
        "62506d370a4e9f42720269c0c973a544de0b6559bda46d1d8dd2fcda9fe4fada",
        "1f590d03e613bdded38b4c0820ac44615f91af12435980b3ede3c08c315a2544",
        "BZBQFLLBNCXEMGLOBHUVFTLUPLVCPQUASSILFABOFFBCADQSSUPNWLZBQEXK",
    ),
    (
        "lmujdbtiimznvyamoyjumfeiglauqfzsznisydmqrdyuwqydjpjixat",
        "f47c9e767216007fa8fe9c294d773be0a23c09bb2b8d01bdd5e0c3182390ee3a",
        "ff988066a7ac7543cf6279572fc390bfd3e191bb5d53f8eed978a658ce927ce1",
        "e6fc3aad4b594d82bf3103a11016d80de883de873bcec48e90396286503b2613",
        "QJRRSSKMJRDKUDTYVNYGAMQPULKAMILQQYOWBEXUDEUWQUMNGDHQYLOAJMEB",
    ),
    (
        "wqbdupxgcaimwdsnchitjmsplzclkqokhadgehdxqogeeiovzvadstt",
        "4e8f44e0e7a042e2269978cbda129205dfcb7b33cc809910d24f4b5398e8c0b3",
        "699338c6c7eb8af59de7630ff0c79d9dc8698151dee89b8b1d3855f23280cdd3",
        "36af16d5265b7443d798891122b91a74893752107fe0286c45856bd793e339ff",
        "SUZFFQSCVPHYYBDCQODEMFAOKRJDDDIRJFFIWFLRDDJQRPKMJNOCSSKHXHGK",
    ),
    (
        "yfcqxawkwvhnwwxnhxqbzufpnbxxvkpuueermpcxoiugqokwbmurqjq",
        "4b084920bdcce26ea1b7747274d331ddbe3f7ff3e1ca491309c6f7054f1e9708",
        "570f09f338a0ce004599e28fc2aac12dee504e943b19a9595e82455ed7386444",
        "c966781fee7d6d90ee44910e134c3762c8d65976588356db0f99b76070e198d9",
        "LZTPJBQKOYLBFEWWFVEFDFOOFEWCUSSNNKLOXGDQJGBTYUMJVAOSYHIGYDOM",
    ),
    (
        "oqrtktmxmowfwpliikiogiczvpelmuaamreundljwnnpjojvtsfhtgd",
        "5327b668",
        "3fefae22",
        "70a02fc98f4297f7e5fbc130c51ebc4e95c20868a672ca9a85d3bbfe88eb81da",
        "UIJLDDELETUYEHFKZPQGVOOOTLHCNQWAZAXHLSXWMEDLRQEWKNSJVZIGFPBD",
    ),
    (
        "eivjjmrusievohpkmqaxanvvkbsglxigqevbnxfqswmtuxbhmphjpzw",
        "a9f11ef1",
        "69fd8c7c",
        "2bce5dbf9ef9612fdf1fa55aa840ac53988b17dae7bd197d453392ba010c7ce4",
        "ZFEEMHFUDDGUJBFXDVHXOHKDSELCAWDCUTASNOAMQDTZWILDTCDCSNQGHEGN",
    ),
];

#[test]
fn full_key_derivation_chain() {
    for (seed, subseed_hex, private_hex, public_hex, identity) in FULL_KEYS {
        let subseed = Seed::new(seed).unwrap().subseed();
        let private = subseed.private_key();
        assert!(
            hex::encode(subseed.expose_secret()).starts_with(subseed_hex),
            "{seed}"
        );
        assert!(
            hex::encode(private.expose_secret()).starts_with(private_hex),
            "{seed}"
        );
        let pair = KeyPair::from_seed_str(seed).unwrap();
        assert_eq!(pair.public_key().to_hex(), public_hex, "{seed}");
        assert_eq!(pair.identity().as_str(), identity);
        assert_eq!(
            PublicKey::from_identity(identity).unwrap(),
            pair.public_key()
        );
    }
}

#[test]
fn qubic_net_subseed_to_public_key() {
    let subseed = Subseed::from_bytes(bytes(
        "179c2d6db171f1af86efbaded25aeb0bc12bf90c0244566aee23e08f082d3863",
    ));
    assert_eq!(
        subseed.public_key().to_hex(),
        "39665f596c87c5eb34b7c2027ea87737dc5a178dda273a1e67d673e5925b4e82"
    );
}

// ---- C. Identity ↔ public key ----

#[test]
fn go_node_connector_lowercase_identity() {
    let expected: [u8; 32] = [
        209, 173, 239, 194, 151, 98, 29, 180, 83, 67, 142, 32, 4, 9, 167, 32, 159, 95, 116, 116,
        214, 221, 171, 255, 13, 125, 86, 112, 5, 31, 191, 193,
    ];
    let text = "zycobqjpgdcagflcvgtkboafbryahgjbbwhgjjlblhzocwncjhhjshqfsndh";
    assert_eq!(decode(text, Case::Lower), Ok(expected));
    assert_eq!(encode(&expected, Case::Lower), text);
}

#[test]
fn contract_and_null_addresses() {
    let cases = [
        (
            0,
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAFXIB",
        ),
        (
            1,
            "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAARMID",
        ),
        (
            2,
            "CAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACNKL",
        ),
        (
            4,
            "EAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAVWRF",
        ),
        (
            27,
            "BBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAXPZM",
        ),
    ];
    for (index, identity) in cases {
        assert_eq!(PublicKey::contract(index).identity().as_str(), identity);
        assert_eq!(
            PublicKey::from_identity(identity),
            Ok(PublicKey::contract(index))
        );
    }
}

#[test]
fn qubic_net_digest_to_lowercase_identity() {
    let digest = bytes("29A49B5FF4119B698E4F7508A3C5F38686BE4460C7C27D5E84063639A8153C5D");
    let id = TxId::from_hash(digest);
    assert_eq!(
        id.as_str(),
        "ddcokqjpjphtbdahocnutrzglxxdcswdqzqkohcjtceotbgjrqhxkksctpee"
    );
    assert_eq!(id.as_str().parse::<TxId>().map(|t| t.hash()), Ok(digest));
}

#[test]
fn arbitrator_identity_round_trips() {
    let text = "AFZPUAIYVPNUYGJRQVLUKOPPVLHAZQTGLYAAUUNBXFTVTAMSBKQBLEIEPCVJ";
    let identity: Identity = text.parse().unwrap();
    assert_eq!(identity.public_key().identity().as_str(), text);
    assert_eq!(identity.to_string(), text);
}

#[test]
fn ts_library_negative_identity_fails_the_round_trip() {
    // Two letters changed from SUZFFQSCVPHYYBDCQODEMF…; ts-library `test/verifyId.js`.
    let text = "SUZFFQSCAPHYYBDCQOREMFAOKRJDDDIRJFFIWFLRDDJQRPKMJNOCSSKHXHGK";
    assert_eq!(
        text.parse::<Identity>(),
        Err(IdentityError::ChecksumMismatch)
    );
}

#[test]
fn fifty_six_character_identity_fails_on_length() {
    let text = &"SUZFFQSCVPHYYBDCQODEMFAOKRJDDDIRJFFIWFLRDDJQRPKMJNOCSSKHXHGK"[..56];
    assert_eq!(
        text.parse::<Identity>(),
        Err(IdentityError::WrongLength { got: 56 })
    );
}

#[test]
fn addresses_and_tx_ids_are_not_interchangeable() {
    let address = "BZBQFLLBNCXEMGLOBHUVFTLUPLVCPQUASSILFABOFFBCADQSSUPNWLZBQEXK";
    assert!(matches!(
        address.to_lowercase().parse::<Identity>(),
        Err(IdentityError::WrongCase {
            expected: Case::Upper,
            ..
        })
    ));
    assert!(matches!(
        address.parse::<TxId>(),
        Err(IdentityError::WrongCase {
            expected: Case::Lower,
            ..
        })
    ));
}
