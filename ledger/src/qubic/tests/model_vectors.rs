//! Extra vectors generated with `shared/qubic/model.py` (the executable oracle written
//! from SPEC.md), not taken from a Qubic repository:
//! five random seeds with their key chain and a signed transfer each, a mixed-order key
//! that pins core's unreduced challenge h, a full 25-payee send-many and a maximum-size
//! input.

use super::super::fourq::{Point, Scalar, decode, encode};
use super::super::k12::k12_concat;
use super::super::schnorrq::verify;
use super::super::send_many::decode_send_to_many_v1_payload;
use super::super::*;
use super::support::bytes;

struct SeedVector {
    seed: &'static str,
    subseed: &'static str,
    private_key: &'static str,
    public_key: &'static str,
    identity: &'static str,
    amount: u64,
    tick: u32,
    destination: &'static str,
    wire: &'static str,
    id: &'static str,
}

const LSGS: &str = "LSGSCFHDOAHHLBDMLYZRFKVSFRQBBUZNGANESCIZCETYXKCDHLJHEMOFXCWB";
const QJRR: &str = "QJRRSSKMJRDKUDTYVNYGAMQPULKAMILQQYOWBEXUDEUWQUMNGDHQYLOAJMEB";

/// `random.Random(20260901)`: 55 random letters, amount in 0..=10^15 (the first is exactly
/// 10^15), tick in 0..2^32.
const SEEDS: [SeedVector; 5] = [
    SeedVector {
        seed: "zoaqxvrjjtkzfmkidlkisnlmtgdtwpaywcrnzmtzacowatrrcqmolui",
        subseed: "84fdc11c68e9fd1f3d384d53286d9f8b5d2ea2c1a4140f7910308b00ff25d9c6",
        private_key: "3ac78609f9706be2c284f2cb578695a171db581a5207ca53015c08461ae3ba48",
        public_key: "c5fd5ccb4228ebae8cfc3244dfb6fd01bfff0e0ffd50cf10c6e9ab17f9de379a",
        identity: "VAEGDCTSXTBCCFUSTTACFPMICNBADSUXGDFVLLASMAQLIZBUGMQLRLMEJYEB",
        amount: 1_000_000_000_000_000,
        tick: 3_407_441_357,
        destination: LSGS,
        wire: "c5fd5ccb4228ebae8cfc3244dfb6fd01bfff0e0ffd50cf10c6e9ab17f9de379a07df14985bf95e3177cb4b5e15e17f383568928a416cab8d0f41f7e39d3253bf0080c6a47e8d0300cd6d19cb00000000e1f4af2bd187692b26892c939a3205026e0366431c290721bc0a029b720b2c1c402cafdf23408799180565124da571a622725568591dfd9b243d180611462700",
        id: "ddsvjvxnetbvcefpatvgmaqemsnbghbjurvhivgbpetnmpzhvqygxbchshsg",
    },
    SeedVector {
        seed: "vngjdjedmozcaneixnmiixtemhrugjquojjwkoitcgjjuwvpxvbqzyk",
        subseed: "1658da852011cf72bda61f0ea6f653c6e7b6000b9e7443ba0ec80449082574cb",
        private_key: "2d96c24350394dd1c11fe144841cee548278debca2dd6dad1f5237647fababce",
        public_key: "8135650113438e0c395173fa04e55b02f539949e806d16b47b2b521060d4d5a1",
        identity: "LTIRMAUFZYMMJADXWJQXSUYCIUBAJMJQNLRVOGOZFFVRZPVEKLXMFFSEUZHG",
        amount: 737_915_689_713_131,
        tick: 2_816_646_493,
        destination: QJRR,
        wire: "8135650113438e0c395173fa04e55b02f539949e806d16b47b2b521060d4d5a1e6fc3aad4b594d82bf3103a11016d80de883de873bcec48e90396286503b2613eb3d8f62219f02005d9de2a70000000023081d902655be8c15fe89e600b7cc50e00c74e59d1fe4084d823384a8b53d1e41aa330afb4d7a2708129cacc5026bf84e94665c6064452b063d813435251b00",
        id: "zrhklkzuzufzpdjbupvfspypfoihgaddkqjuanosdgcigfnrgrleegnfldef",
    },
    SeedVector {
        seed: "thstfjmifupmrzvjyqmrhbhscxkpdpjdqzdpsomvimhfoorpovxavme",
        subseed: "50c488ad5af40043f07cb2e1a47dfe2c81388690dafd462eba9575e5e4d98ab3",
        private_key: "c227ff16d16661335ca61f67d90f123b6165c98000f27e8138a7a3c07bc98fee",
        public_key: "ba829204e51d606002df9e360460a45d4da3b7ce6029da26e451a8fc989cab68",
        identity: "SGHYLVGZSBCUUCOCEMFGNGXVKSSCLRSUETPGLUTIDBCZQLCIFBLDYABDWHJM",
        amount: 53_487_543_229_553,
        tick: 3_359_823_532,
        destination: LSGS,
        wire: "ba829204e51d606002df9e360460a45d4da3b7ce6029da26e451a8fc989cab6807df14985bf95e3177cb4b5e15e17f383568928a416cab8d0f41f7e39d3253bf719c038aa5300000acd642c8000000007f68fe512076bdfe9cb1dd708466101554e0046a995153487b8a5bea305e3e75e4a1dedc10b23ae60b6edfb7e102c41caaab4f417c923486bdc517704e9b1200",
        id: "ntozvmewwqbewetdqnuqyxqkxlvbogflttismprmxddvxuhixsdzqrigkvya",
    },
    SeedVector {
        seed: "ceahippiigimfkwvylchhwegrngmunjujtzkbocaulpyktvjhrswfbc",
        subseed: "5def3634b48106c61c8807e26cfe2c64016149541b273b982e009de4e9a60143",
        private_key: "13a3800e4d833a1c6a117dcf9c446c791e61ec10d61f98c2153ed1914d2d3690",
        public_key: "c0779f643f2cc0d4ec04cca8e7794a528189ca775cb05e80c004ec0e1485bb51",
        identity: "YKZMYENZBWUQEGQMLJBFCGATODKCJOBNEVOOIJFYSDOTPZGVHLXRPSJCURAM",
        amount: 960_367_087_627_257,
        tick: 291_756_804,
        destination: QJRR,
        wire: "c0779f643f2cc0d4ec04cca8e7794a528189ca775cb05e80c004ec0e1485bb51e6fc3aad4b594d82bf3103a11016d80de883de873bcec48e90396286503b2613f9ab1ce37269030004db6311000000009d614210f76ab4be60cbec2beed0733962ffabf26cd12e52daa4f06a0c3cd2dbd42003b58a16c43f718017f55c054677455d6edd942d9f9c5f1ed72cb85b1f00",
        id: "sxlcoxocycftjgccsgrasfqdebpguqhdgcbdkrwuzezdvpkqvoyjlsvfkoba",
    },
    SeedVector {
        seed: "qrkuspfybpbveenhgfwtilmgtvxilmfzrbcjntzlkpjtnzkhcyxxcxy",
        subseed: "95c8d2930ca664684f3415161eb4e5d62e05dd6f9b3212396396896ea4a6ba6a",
        private_key: "223ce181a8ac075409b5e6de4d9703a70785692ccb0ff6cdbf061b7b7243f8c1",
        public_key: "2d8251d1461d7b89afbd4612fb4e36731fb4285cf90ae2e243c622dfb7e2b6a5",
        identity: "JCCZEQKBJACVZDFFUXKVKKPCXZIDLCIKHOSPUOGIPGRBMJQMGHROJDVEZNBI",
        amount: 905_150_667_492_624,
        tick: 855_233_648,
        destination: LSGS,
        wire: "2d8251d1461d7b89afbd4612fb4e36731fb4285cf90ae2e243c622dfb7e2b6a507df14985bf95e3177cb4b5e15e17f383568928a416cab8d0f41f7e39d3253bf100d01d03a37030070d4f93200000000d28b4999afd83def2240f5aff20da42866a6d2df73d7383316400541985530785743c0034771c9fcd3c8058c8e4eec255307064b774859ad7fdfddc53aed0e00",
        id: "pisiiydumurzmdnwmutgbvjhlcmaljkvvfdkuymsrghicxlrzlujhkzauero",
    },
];

#[test]
fn random_seeds_key_chain_and_signed_transfer() {
    for v in &SEEDS {
        let seed = Seed::new(v.seed).unwrap();
        let subseed = seed.subseed();
        assert_eq!(hex::encode(subseed.expose_secret()), v.subseed);
        assert_eq!(
            hex::encode(subseed.private_key().expose_secret()),
            v.private_key
        );
        let pair = KeyPair::from_seed(&seed);
        assert_eq!(pair.public_key().to_hex(), v.public_key);
        assert_eq!(pair.identity().as_str(), v.identity);
        let destination = PublicKey::from_identity(v.destination).unwrap();
        let tx = build_transfer(&pair, destination, v.amount, v.tick).unwrap();
        assert_eq!(hex::encode(tx.to_bytes()), v.wire, "{}", v.seed);
        assert_eq!(tx.id().as_str(), v.id);
        assert_eq!(SignedTransaction::parse(&tx.to_bytes()), Ok(tx));
    }
}

#[test]
fn mixed_order_key_needs_the_unreduced_challenge() {
    // A' = A + (0, −1) for seed a×55: not low-order, but with a 2-torsion component. The
    // nonce was ground so that h is even while h mod N is odd: model.py's verify (h
    // unreduced, as core) accepts, and a verifier that reduced h first would reject.
    let key = PublicKey(bytes(
        "e0a6f2fc19ec42212c74b3f7df53bb1ea06e50edbca67f4c121c3f73cea5dabb",
    ));
    let digest = bytes("1dd917eee9c214d039c8b1fc7a358f500292d76dc22f2cfbd9ea464e5fa06db8");
    let signature = Signature(bytes(
        "0e053f86fc9c1a85a3e275e2a0cf6d33f75d937a0d2af6449e5c0aec62b76cffe67d5b20e3815e0ed8bd79479b182e38171f24283c8a1c75a9e3094b24210800",
    ));
    assert_eq!(verify(&key, &digest, &signature), Ok(()));

    let point = decode(key.as_bytes()).unwrap();
    assert!(!point.is_low_order());
    let mut challenge = [0u8; 64];
    k12_concat(
        &[&signature.r_bytes(), key.as_bytes(), &digest],
        &mut challenge,
    );
    let reduced = Scalar::from_bytes_mod_order(&challenge[..32]).to_bytes();
    let s = Scalar::from_canonical_bytes(&signature.s_bytes()).unwrap();
    let with_reduced_h = encode(&Point::double_mul_vartime(&s, &reduced, &point));
    assert_ne!(with_reduced_h, signature.r_bytes());
}

#[test]
fn send_to_many_with_all_25_slots() {
    // Payee i: key K12([i], 32), amount (i + 1)·1_000_003; seed b×55; tick 30_000_000.
    let payees: Vec<Payee> = (0u8..25)
        .map(|i| Payee {
            destination: PublicKey(super::super::k12::k12_32(&[i])),
            amount: (u64::from(i) + 1) * 1_000_003,
        })
        .collect();
    let pair = KeyPair::from_seed_str(&"b".repeat(55)).unwrap();
    assert_eq!(
        pair.public_key().to_hex(),
        "91f6cf904f7cdfa15911812e8d1f6d4cc55019873ef321fe814ceb89c4dfb78e"
    );
    let tx = send_to_many_v1(&pair, &payees, 10, 30_000_000).unwrap();
    assert_eq!(tx.body().amount(), 325_000_985);
    assert_eq!(
        hex::encode(tx.body().digest()),
        "9c83bd0b67a7c6448d279f7d1f259856bd31158be063091b969305da91c3caed"
    );
    assert_eq!(
        hex::encode(tx.signature().0),
        "7f43da3cda0fdbea8c45d8f3f908c5338bbbd51989207b291d99c0ec91c969900d12d0f8c8084b0ea77f7264a6360c4c4499a560c3791f5207e88c10bb3c0b00"
    );
    assert_eq!(
        hex::encode(tx.hash()),
        "69f23038c6002f7902949e966ef327ecf23cf7733be55aed2e2301b814c13da0"
    );
    assert_eq!(
        tx.id().as_str(),
        "trxioqjpuednndqbkmvivwiyhiwgweljgrezwyvfxgazhxrymoovxzqemgra"
    );
    assert_eq!(
        decode_send_to_many_v1_payload(tx.body().input()),
        Ok(payees)
    );
}

#[test]
fn maximum_size_input() {
    // Seed c×55 calls input type 65535 on QX with 1024 bytes (i·7 + 3) mod 256, amount 0,
    // tick u32::MAX.
    let input: Vec<u8> = (0..1024u32).map(|i| ((i * 7 + 3) % 256) as u8).collect();
    let pair = KeyPair::from_seed_str(&"c".repeat(55)).unwrap();
    let body = UnsignedTransaction::with_input(
        pair.public_key(),
        PublicKey::contract(1),
        0,
        u32::MAX,
        u16::MAX,
        input,
    )
    .unwrap();
    let tx = body.sign(&pair).unwrap();
    let wire = tx.to_bytes();
    assert_eq!(wire.len(), 1168);
    assert_eq!(
        hex::encode(&wire[..80]),
        "4ff271bc629a2be278fd020e0e1ae9670485adfc0e46ff853f26a905f051631701000000000000000000000000000000000000000000000000000000000000000000000000000000ffffffffffff0004"
    );
    assert_eq!(
        hex::encode(tx.signature().0),
        "32c03cadbd4cde79318411d5da47f326f2c13c5ffc37854c224a5963dbc3e3da8e1d69f6e8323720bbf344e3e1652d018d15260d48c95775bb7b6d5ee3a21e00"
    );
    assert_eq!(
        tx.id().as_str(),
        "wajvactcmegoadusvfpbhmtakueblghefbfqvknebgdlirrdksmudyuajmmn"
    );
    assert_eq!(SignedTransaction::from_base64(&tx.to_base64()), Ok(tx));
}
