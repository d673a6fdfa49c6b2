//! Wire format tests: golden bytes (any format change fails), round trips, tampering and
//! hostile bytes.
#![allow(clippy::unwrap_used, clippy::type_complexity)] // test code: a failed unwrap is a failed test

mod common;

use common::golden;
use proptest::prelude::*;
use qubix_protocol::billing::{Receipt, UsageReport};
use qubix_protocol::codec::{self, WireMessage};
use qubix_protocol::control::{JobAction, JobControl, JobMessage, JobReply, JobState, JobStatus};
use qubix_protocol::job::{
    Agreement, AgreementTerms, JobRequest, NegotiateRequest, NegotiateResponse,
};
use qubix_protocol::market::{GossipMessage, OfferSyncRequest, OfferSyncResponse};
use qubix_protocol::offer::{GpuSpec, Location, Offer, OfferWithdrawal, Version};
use qubix_protocol::signed::{Authored, Envelope, EnvelopeError};
use qubix_protocol::testing::{self, NOW, agreement_terms, job_request, key, network, node, offer};
use qubix_protocol::topics::Network;
use qubix_protocol::{AgreementId, Nonce, OfferId, Qu, Signed, UnixMillis};

fn usage_report() -> UsageReport {
    UsageReport {
        agreement_id: AgreementId::from_bytes([0xa5; 16]),
        provider: node(1),
        sequence: 3,
        billable_millis: 180_000,
        amount_due: Qu(60),
        amount_received: Qu(200),
        issued_at: NOW,
    }
}

fn receipt() -> Receipt {
    Receipt {
        agreement_id: AgreementId::from_bytes([0xa5; 16]),
        consumer: node(2),
        report_sequence: 3,
        billable_millis: 180_000,
        amount: Qu(60),
        issued_at: NOW,
    }
}

fn control() -> JobControl {
    JobControl {
        agreement_id: AgreementId::from_bytes([0xa5; 16]),
        consumer: node(2),
        action: JobAction::Stop,
        nonce: Nonce::from_bytes([9; 16]),
        issued_at: NOW,
    }
}

fn withdrawal() -> OfferWithdrawal {
    OfferWithdrawal {
        provider: node(1),
        offer_id: OfferId::from_bytes([1; 16]),
        sequence: 2,
        issued_at: NOW,
    }
}

fn signed<T: Authored>(payload: T, seed: u8) -> Signed<T> {
    Signed::sign(payload, &key(seed), &network()).unwrap()
}

fn agreement() -> Agreement {
    let terms = signed(agreement_terms(2, 1).unwrap(), 1);
    Agreement::countersign(&terms, &key(2), &network()).unwrap()
}

#[test]
fn golden_bytes_of_every_wire_type() {
    golden("offer", &codec::encode(&offer(1)).unwrap());
    golden("offer_signed", &signed(offer(1), 1).to_bytes());
    golden("offer_withdrawal", &signed(withdrawal(), 1).to_bytes());
    golden("job_request", &signed(job_request(2, 1), 2).to_bytes());
    golden(
        "agreement_terms",
        &signed(agreement_terms(2, 1).unwrap(), 1).to_bytes(),
    );
    golden("agreement", &codec::encode(&agreement()).unwrap());
    golden("usage_report", &signed(usage_report(), 1).to_bytes());
    golden("receipt", &signed(receipt(), 2).to_bytes());
    golden("job_control", &signed(control(), 2).to_bytes());
    let gossip = GossipMessage::Offer(signed(offer(1), 1).envelope().clone());
    golden("gossip", &codec::encode(&gossip).unwrap());
    let sync = OfferSyncRequest {
        after: Some((node(1), OfferId::from_bytes([1; 16]))),
        limit: 100,
    };
    golden("offer_sync_request", &codec::encode(&sync).unwrap());
    let status = JobStatus {
        agreement_id: AgreementId::from_bytes([0xa5; 16]),
        state: JobState::Running,
        exit_code: None,
        reason: None,
        ports: vec![],
        since: NOW,
        paid: Qu(200),
        refunds: vec![],
    };
    golden(
        "job_reply",
        &codec::encode(&JobReply::Status(status)).unwrap(),
    );
    let paid = JobMessage::Paid {
        agreement_id: AgreementId::from_bytes([0xa5; 16]),
        window: 2,
        tx_id: "a".repeat(60),
    };
    golden("job_message_paid", &codec::encode(&paid).unwrap());
}

#[test]
fn every_sample_is_valid_and_within_limits() {
    offer(1).validate(&network(), NOW).unwrap();
    job_request(2, 1).validate(NOW).unwrap();
    agreement().verify(&network()).unwrap();
    assert!(codec::encode(&offer(1)).unwrap().len() < Offer::MAX_SIZE);
    // A full sync page of maximal offers fits the response limit.
    let mut big = offer(1);
    big.gpu.model = "M".repeat(64);
    big.gpu.driver_version = "D".repeat(32);
    big.location.region = Some("R".repeat(64));
    let env = signed(big, 1).envelope().clone();
    let page = OfferSyncResponse {
        offers: vec![env; usize::from(qubix_protocol::market::SYNC_PAGE_MAX)],
        next: Some((node(1), OfferId::from_bytes([1; 16]))),
    };
    codec::encode(&page).unwrap();
}

fn assert_every_flip_rejected<T: Authored + std::fmt::Debug>(bytes: &[u8]) {
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut tampered = bytes.to_vec();
            tampered[i] ^= bit;
            let result = Envelope::from_bytes(tampered).and_then(|e| e.open::<T>(&network()));
            assert!(
                result.is_err(),
                "flipping bit {bit:#x} of byte {i} of {} was accepted",
                T::TAG
            );
        }
    }
}

#[test]
fn every_flipped_byte_is_rejected() {
    assert_every_flip_rejected::<Offer>(&signed(offer(1), 1).to_bytes());
    assert_every_flip_rejected::<JobRequest>(&signed(job_request(2, 1), 2).to_bytes());
    assert_every_flip_rejected::<UsageReport>(&signed(usage_report(), 1).to_bytes());
    assert_every_flip_rejected::<Receipt>(&signed(receipt(), 2).to_bytes());
    assert_every_flip_rejected::<JobControl>(&signed(control(), 2).to_bytes());
}

#[test]
fn tampered_countersignature_and_terms_are_rejected() {
    let good = agreement();
    let mut bad_sig = good.clone();
    bad_sig.consumer_signature[3] ^= 1;
    assert!(bad_sig.verify(&network()).is_err());
    let mut short_sig = good.clone();
    short_sig.consumer_signature.pop();
    assert!(short_sig.verify(&network()).is_err());
    // Someone other than the consumer cannot countersign.
    let terms = signed(agreement_terms(2, 1).unwrap(), 1);
    assert!(Agreement::countersign(&terms, &key(3), &network()).is_err());
    // Terms that overcharge the request are refused.
    let mut greedy = agreement_terms(2, 1).unwrap();
    greedy.price_per_gpu_hour = Qu(9_999);
    greedy.budget = Qu(9_999);
    let greedy = signed(greedy, 1);
    assert!(Agreement::countersign(&greedy, &key(2), &network()).is_err());
}

#[test]
fn a_signature_for_one_type_does_not_open_as_another() {
    // A receipt and a usage report signed by the same node cannot be swapped: the domain tag
    // differs even where the payload bytes could be read as the other type.
    let report = signed(usage_report(), 1);
    assert!(report.envelope().open::<Receipt>(&network()).is_err());
    let offer_env = signed(offer(1), 1);
    assert!(
        offer_env
            .envelope()
            .open::<OfferWithdrawal>(&network())
            .is_err()
    );
}

#[test]
fn a_signature_made_on_one_network_does_not_open_on_another() {
    let other = Network::new("othernet").unwrap();
    let mainnet = Network::new("mainnet").unwrap();
    let offer_env = signed(offer(1), 1);
    for net in [&other, &mainnet] {
        let err = offer_env.envelope().open::<Offer>(net).unwrap_err();
        assert!(matches!(err, EnvelopeError::BadSignature { .. }), "{err}");
    }
    // A countersigned agreement from the test network is no agreement on another.
    assert!(agreement().verify(&other).is_err());
    // And one signed for another network is refused here.
    let foreign = Signed::sign(offer(1), &key(1), &other).unwrap();
    assert!(foreign.envelope().open::<Offer>(&network()).is_err());
}

#[test]
fn the_consumer_countersigns_under_its_own_tag() {
    // The countersignature covers the terms' bytes under the countersignature's tag, so it
    // is no provider-style signature over the terms: a consumer cannot present its own
    // signature as terms "signed" by itself, and a signature the consumer made over the same
    // bytes under the provider's tag does not countersign.
    let terms = signed(agreement_terms(2, 1).unwrap(), 1);
    let payload = &terms.envelope().as_bytes()[qubix_protocol::signed::HEADER_LEN..];
    let under_provider_tag =
        qubix_protocol::signed::sign_bytes::<AgreementTerms>(&key(2), &network(), payload);
    let forged = Agreement {
        terms: terms.envelope().clone(),
        consumer_signature: under_provider_tag.to_vec(),
    };
    assert!(matches!(
        forged.verify(&network()),
        Err(qubix_protocol::job::AgreementError::BadCountersignature)
    ));
    let good = agreement();
    assert!(qubix_protocol::signed::verify_bytes::<Agreement>(
        &node(2),
        &network(),
        payload,
        &good.consumer_signature.clone().try_into().unwrap()
    ));
}

#[test]
fn signer_must_be_the_author_and_the_sending_peer() {
    // Signing someone else's offer is refused at signing time…
    assert!(Signed::sign(offer(1), &key(2), &network()).is_err());
    // …and a hand-made envelope signed by the wrong key is refused at opening.
    let body = codec::encode(&offer(1)).unwrap();
    let sig = qubix_protocol::signed::sign_bytes::<Offer>(&key(2), &network(), &body);
    let mut bytes = node(2).as_bytes().to_vec();
    bytes.extend_from_slice(&sig);
    bytes.extend_from_slice(&body);
    let err = Envelope::from_bytes(bytes)
        .unwrap()
        .open::<Offer>(&network())
        .unwrap_err();
    assert!(matches!(err, EnvelopeError::WrongSigner { .. }), "{err}");
    // A valid offer relayed as if it came from its author by another peer.
    let env = signed(offer(1), 1).envelope().clone();
    let err = env.open_from::<Offer>(&network(), &node(3)).unwrap_err();
    assert!(matches!(err, EnvelopeError::NotFromPeer { .. }), "{err}");
    env.open_from::<Offer>(&network(), &node(1)).unwrap();
}

#[test]
fn oversize_and_truncated_envelopes_are_rejected() {
    assert!(matches!(
        Envelope::from_bytes(vec![0; 95]),
        Err(EnvelopeError::Truncated { len: 95 })
    ));
    let mut bytes = signed(offer(1), 1).to_bytes();
    bytes.extend(std::iter::repeat_n(0u8, Offer::MAX_SIZE));
    let err = Envelope::from_bytes(bytes)
        .unwrap()
        .open::<Offer>(&network())
        .unwrap_err();
    assert!(matches!(err, EnvelopeError::TooLarge { .. }), "{err}");
    let mut bytes = signed(offer(1), 1).to_bytes();
    bytes.push(0);
    assert!(
        Envelope::from_bytes(bytes)
            .unwrap()
            .open::<Offer>(&network())
            .is_err()
    );
}

#[test]
fn validation_refuses_insane_values() {
    let cases: Vec<(&str, Box<dyn Fn(&mut Offer)>)> = vec![
        ("gpu_count", Box::new(|o| o.gpu_count = 0)),
        ("gpu_count", Box::new(|o| o.gpu_count = 65)),
        (
            "gpu.vram_mib",
            Box::new(|o| o.gpu.vram_mib = 2 * 1024 * 1024),
        ),
        ("gpu.vram_mib", Box::new(|o| o.gpu.vram_mib = 0)),
        (
            "price_per_gpu_hour",
            Box::new(|o| o.price_per_gpu_hour = Qu(0)),
        ),
        (
            "price_per_gpu_hour",
            Box::new(|o| o.price_per_gpu_hour = Qu(u64::MAX)),
        ),
        (
            "expires_at",
            Box::new(|o| o.expires_at = UnixMillis(NOW.0 - 1)),
        ),
        (
            "expires_at",
            Box::new(|o| o.expires_at = UnixMillis(NOW.0 + 48 * 3600 * 1000)),
        ),
        (
            "issued_at",
            Box::new(|o| o.issued_at = UnixMillis(NOW.0 + 3600 * 1000)),
        ),
        (
            "location.country",
            Box::new(|o| o.location.country = "Germany".into()),
        ),
        ("pay_to", Box::new(|o| o.pay_to = "abc".into())),
        ("gpu.model", Box::new(|o| o.gpu.model = String::new())),
        (
            "gpu.model",
            Box::new(|o| o.gpu.model = "bad\u{7}name".into()),
        ),
        (
            "min_rental_secs",
            Box::new(|o| o.min_rental_secs = o.max_rental_secs + 1),
        ),
        (
            "standby_price_per_gpu_hour",
            Box::new(|o| o.standby_price_per_gpu_hour = Some(Qu(0))),
        ),
        (
            "interruptible.price_per_gpu_hour",
            Box::new(|o| {
                o.interruptible = Some(qubix_protocol::offer::Interruptible {
                    price_per_gpu_hour: Qu(o.price_per_gpu_hour.0 + 1),
                    notice_secs: 60,
                })
            }),
        ),
        (
            "checkpoint_retention_secs",
            Box::new(|o| o.checkpoint_retention_secs = 31 * 24 * 3600),
        ),
    ];
    for (field, mutate) in cases {
        let mut o = offer(1);
        mutate(&mut o);
        let err = o.validate(&network(), NOW).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
    // Simulated GPUs are refused on mainnet, real ones are not.
    let mainnet = Network::new("mainnet").unwrap();
    assert_eq!(
        offer(1).validate(&mainnet, NOW).unwrap_err().field,
        "simulated"
    );
    let mut real = offer(1);
    real.simulated = false;
    real.validate(&mainnet, NOW).unwrap();
    let mut r = job_request(2, 1);
    r.env[0].name = "1BAD".into();
    assert_eq!(r.validate(NOW).unwrap_err().field, "env");
    let mut r = job_request(2, 1);
    r.expires_at = UnixMillis(NOW.0 + 3600 * 1000);
    assert_eq!(r.validate(NOW).unwrap_err().field, "expires_at");
    let mut r = job_request(2, 1);
    r.gpus = 0;
    assert_eq!(r.validate(NOW).unwrap_err().field, "gpus");
    let request_cases: Vec<(&str, Box<dyn Fn(&mut JobRequest)>)> = vec![
        ("pay_from", Box::new(|r| r.pay_from = "nope".into())),
        (
            "capabilities",
            Box::new(|r| {
                use qubix_protocol::job::Capability;
                r.capabilities = vec![Capability::Chown, Capability::Chown]
            }),
        ),
        ("ssh_keys", Box::new(|r| r.ssh_keys = vec!["hello".into()])),
        (
            "ssh_keys",
            Box::new(|r| {
                r.ssh_keys = vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI x\ncommand=evil".into()]
            }),
        ),
        (
            "ssh_keys",
            Box::new(|r| r.ssh_keys = vec![SSH_KEY.to_owned(); 9]),
        ),
        (
            "standby",
            Box::new(|r| {
                r.standby = true;
                r.interruptible = true
            }),
        ),
        (
            "checkpoint_interval_secs",
            Box::new(|r| r.checkpoint_interval_secs = Some(5)),
        ),
        (
            "checkpoint_retention_secs",
            Box::new(|r| r.checkpoint_retention_secs = 40 * 24 * 3600),
        ),
    ];
    for (field, mutate) in request_cases {
        let mut r = job_request(2, 1);
        mutate(&mut r);
        assert_eq!(r.validate(NOW).unwrap_err().field, field);
    }
    let mut r = job_request(2, 1);
    r.ssh_keys = vec![SSH_KEY.into()];
    r.checkpoint_interval_secs = Some(300);
    r.validate(NOW).unwrap();
}

const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk0Ju8C8wJ3TVLM7pP7Y5o3JQn0iZzTk8yHq0bV2dI2 me@laptop";

#[test]
fn withdrawals_from_the_future_or_the_distant_past_are_invalid() {
    let mut w = withdrawal();
    w.validate(NOW).unwrap();
    w.issued_at = UnixMillis(u64::MAX);
    assert_eq!(w.validate(NOW).unwrap_err().field, "issued_at");
    w.issued_at = UnixMillis(NOW.0 - 3 * 3600 * 1000);
    assert_eq!(w.validate(NOW).unwrap_err().field, "issued_at");
}

#[test]
fn env_values_never_appear_in_debug_output() {
    let text = format!("{:?}", job_request(2, 1));
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("JUPYTER_TOKEN"));
}

prop_compose! {
    fn arb_text(max: usize)(s in proptest::string::string_regex(&format!("[a-zA-Z0-9 ._-]{{1,{max}}}")).unwrap()) -> String { s }
}

prop_compose! {
    fn arb_offer()(
        provider in 1u8..=255, id in any::<[u8; 16]>(), sequence in any::<u64>(),
        model in arb_text(64), vram in any::<u64>(), cc in (any::<u16>(), any::<u16>()),
        cuda in (any::<u16>(), any::<u16>()), driver in arb_text(32), gpu_count in any::<u32>(),
        cpu in any::<u32>(), ram in any::<u64>(), disk in any::<u64>(), country in "[A-Z]{2}",
        region in proptest::option::of(arb_text(64)), price in any::<u64>(),
        rental in (any::<u64>(), any::<u64>()), simulated in any::<bool>(),
        times in (any::<u64>(), any::<u64>()), nvlink in proptest::option::of(any::<bool>()),
    ) -> Offer {
        Offer {
            provider: node(provider),
            offer_id: OfferId::from_bytes(id),
            sequence,
            gpu: GpuSpec {
                model, vram_mib: vram, compute_capability: Version::new(cc.0, cc.1),
                cuda_version: Version::new(cuda.0, cuda.1), driver_version: driver, pcie: None, nvlink,
            },
            gpu_count, cpu_cores: cpu, ram_mib: ram, disk_gib: disk,
            location: Location { country, region },
            price_per_gpu_hour: Qu(price), min_rental_secs: rental.0, max_rental_secs: rental.1,
            pay_to: testing::PAY_TO.into(), simulated,
            isolation: qubix_protocol::offer::Isolation::Container,
            standby_price_per_gpu_hour: None, interruptible: None, checkpoint_retention_secs: 0,
            issued_at: UnixMillis(times.0), expires_at: UnixMillis(times.1),
        }
    }
}

fn round_trip<T: WireMessage + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = codec::encode(value).unwrap();
    assert_eq!(&codec::decode::<T>(&bytes).unwrap(), value);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn offers_round_trip_in_binary_json_and_signed(o in arb_offer()) {
        round_trip(&o);
        let json = serde_json::to_string(&o).unwrap();
        prop_assert_eq!(&serde_json::from_str::<Offer>(&json).unwrap(), &o);
        let seed = o.provider;
        let k = (1u8..=255).find(|s| node(*s) == seed).unwrap();
        let s = Signed::sign(o.clone(), &key(k), &network()).unwrap();
        let opened = Signed::<Offer>::open(s.to_bytes(), &network()).unwrap();
        prop_assert_eq!(opened.payload(), &o);
    }

    #[test]
    fn requests_reports_and_controls_round_trip(
        gpus in any::<u32>(), secs in any::<u64>(), seq in any::<u64>(), amount in any::<u64>(),
        action in prop_oneof![Just(JobAction::Stop), Just(JobAction::Start), Just(JobAction::Terminate), Just(JobAction::Heartbeat)],
        command in proptest::collection::vec(arb_text(20), 0..5),
    ) {
        let mut r = job_request(2, 1);
        r.gpus = gpus;
        r.duration_secs = secs;
        r.command = command;
        round_trip(&r);
        let mut u = usage_report();
        u.sequence = seq;
        u.amount_due = Qu(amount);
        round_trip(&u);
        let mut c = control();
        c.action = action;
        round_trip(&c);
        round_trip(&JobMessage::Control(signed(c, 2).envelope().clone()));
        let mut rc = receipt();
        rc.amount = Qu(amount);
        round_trip(&rc);
    }

    #[test]
    fn random_bytes_never_panic_any_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = codec::decode::<Offer>(&bytes);
        let _ = codec::decode::<JobRequest>(&bytes);
        let _ = codec::decode::<AgreementTerms>(&bytes);
        let _ = codec::decode::<Agreement>(&bytes);
        let _ = codec::decode::<GossipMessage>(&bytes);
        let _ = codec::decode::<OfferSyncResponse>(&bytes);
        let _ = codec::decode::<NegotiateRequest>(&bytes);
        let _ = codec::decode::<NegotiateResponse>(&bytes);
        let _ = codec::decode::<JobMessage>(&bytes);
        let _ = codec::decode::<JobReply>(&bytes);
        if let Ok(env) = Envelope::from_bytes(bytes) {
            prop_assert!(env.open::<Offer>(&network()).is_err());
            prop_assert!(env.open::<JobRequest>(&network()).is_err());
        }
    }

    #[test]
    fn mutated_valid_messages_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = codec::encode(&GossipMessage::Offer(signed(offer(1), 1).envelope().clone())).unwrap();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        if let Ok(GossipMessage::Offer(env)) = codec::decode::<GossipMessage>(&bytes) {
            let _ = env.open::<Offer>(&network());
        }
    }
}
