use qubix_protocol::api::LaunchRequest;
use qubix_protocol::job::{Agreement, AgreementTerms, JobRequest, PaymentTerms, RejectCode};
use qubix_protocol::offer::Isolation;
use qubix_protocol::testing::{NOW, PAY_TO, REFUND_TO, key, network, node, offer};
use qubix_protocol::{Qu, Signed, UnixMillis};

use super::*;

const PROVIDER: u8 = 1;
/// Enough for any request below.
const RICH: Option<Qu> = Some(Qu(1_000_000_000));

fn desk_with(gpus: usize, policy: DeskPolicy) -> ProviderDesk {
    let mut desk = ProviderDesk::new(network(), node(PROVIDER), policy);
    desk.set_offer(OfferCapacity {
        offer_id: offer(PROVIDER).offer_id,
        gpus: (0..gpus).map(|i| format!("GPU-{i}")).collect(),
        cpu_cores: 64,
        ram_mib: 64 * 1024,
        disk_gib: 500,
        price: Qu(1_200),
        min_rental_secs: 600,
        max_rental_secs: 7 * 24 * 3600,
        pay_to: PAY_TO.into(),
        isolation: Isolation::Container,
    });
    desk
}

fn desk(gpus: usize) -> ProviderDesk {
    desk_with(gpus, DeskPolicy::default())
}

fn launch(gpus: u32) -> LaunchRequest {
    LaunchRequest {
        offer_id: None,
        query: None,
        image: "qubix/test:latest".into(),
        command: vec![],
        env: Default::default(),
        ports: vec![],
        gpus,
        duration_secs: 3600,
        max_price_per_gpu_hour: None,
        cpu_cores: Some(1),
        ram_mib: Some(1024),
        disk_gib: Some(1),
        capabilities: Vec::new(),
    }
}

fn request(consumer: u8, l: &LaunchRequest) -> Signed<JobRequest> {
    build_request(
        &key(consumer),
        &network(),
        &offer(PROVIDER),
        l,
        REFUND_TO,
        NOW,
    )
    .unwrap()
}

fn admit(
    d: &mut ProviderDesk,
    consumer: u8,
    l: &LaunchRequest,
) -> Result<Signed<AgreementTerms>, RejectCode> {
    d.admit(
        &key(PROVIDER),
        request(consumer, l).envelope(),
        &node(consumer),
        RICH,
        NOW,
    )
}

fn check(
    terms: &Signed<AgreementTerms>,
    req: &Signed<JobRequest>,
) -> Result<Signed<AgreementTerms>, TermsError> {
    check_terms(
        &network(),
        terms.envelope(),
        req,
        &TermsLimits::default(),
        NOW,
    )
}

#[test]
fn happy_path_both_sides_agree() {
    let mut desk = desk(2);
    let req = request(2, &launch(1));
    let terms = desk
        .admit(&key(PROVIDER), req.envelope(), &node(2), RICH, NOW)
        .unwrap();
    let checked = check(&terms, &req).unwrap();
    assert_eq!(checked.payload().budget, Qu(1_200));
    assert_eq!(checked.payload().pay_from, REFUND_TO);
    let agreement = countersign(&network(), &checked, &key(2)).unwrap();
    let confirmed = desk.confirm(&agreement, &node(2), NOW).unwrap();
    assert_eq!(
        confirmed.payload().agreement_id,
        checked.payload().agreement_id
    );
    assert_eq!(desk.free_gpus(&offer(PROVIDER).offer_id).len(), 1);
}

#[test]
fn rejections_are_coded() {
    let mut d = desk(1);
    let mut cheap = launch(1);
    cheap.max_price_per_gpu_hour = Some(Qu(1_000));
    assert_eq!(
        admit(&mut d, 2, &cheap).unwrap_err(),
        RejectCode::PriceAboveMaximum
    );
    assert_eq!(
        admit(&mut d, 2, &launch(2)).unwrap_err(),
        RejectCode::NoCapacity
    );
    let mut short = launch(1);
    short.duration_secs = 120;
    assert_eq!(
        admit(&mut d, 2, &short).unwrap_err(),
        RejectCode::DurationOutOfRange
    );
    let late = UnixMillis(NOW.0 + 10 * 60 * 1000);
    let e = d
        .admit(
            &key(PROVIDER),
            request(2, &launch(1)).envelope(),
            &node(2),
            RICH,
            late,
        )
        .unwrap_err();
    assert_eq!(e, RejectCode::Expired);
    // Relayed by someone other than the consumer who signed it.
    let e = d
        .admit(
            &key(PROVIDER),
            request(2, &launch(1)).envelope(),
            &node(3),
            RICH,
            NOW,
        )
        .unwrap_err();
    assert_eq!(e, RejectCode::BadSignature);
    // Answered with another provider's key.
    let e = d
        .admit(
            &key(9),
            request(2, &launch(1)).envelope(),
            &node(2),
            RICH,
            NOW,
        )
        .unwrap_err();
    assert_eq!(e, RejectCode::Invalid);
    // A balance that could not be read admits nothing.
    let e = d
        .admit(
            &key(PROVIDER),
            request(2, &launch(1)).envelope(),
            &node(2),
            None,
            NOW,
        )
        .unwrap_err();
    assert_eq!(e, RejectCode::Unavailable);
}

#[test]
fn a_request_for_isolation_the_offer_lacks_is_refused() {
    let mut d = desk(1);
    let mut cap = d.offers_for_test(&offer(PROVIDER).offer_id);
    cap.isolation = Isolation::Unisolated;
    d.set_offer(cap);
    // The consumer asked for a container (the default): an unisolated provider refuses.
    assert_eq!(
        admit(&mut d, 2, &launch(1)).unwrap_err(),
        RejectCode::Policy
    );
}

#[test]
fn capabilities_are_granted_only_as_the_policy_allows() {
    use qubix_protocol::job::{Capability, PortPurpose, PortRequest};
    // An SSH port asks for what sshd needs, and the default policy grants exactly that.
    let mut ssh = launch(1);
    ssh.ports = vec![PortRequest {
        container_port: 22,
        purpose: PortPurpose::Ssh,
    }];
    let asked = request(2, &ssh);
    let mut wanted = SSH_CAPABILITIES.to_vec();
    wanted.sort_unstable();
    assert_eq!(asked.payload().capabilities, wanted);
    assert!(admit(&mut desk(1), 2, &ssh).is_ok());
    // Raw sockets are not granted by default…
    let mut raw = launch(1);
    raw.capabilities = vec![Capability::NetRaw];
    assert_eq!(
        admit(&mut desk(1), 2, &raw).unwrap_err(),
        RejectCode::Policy
    );
    // …and a provider that grants nothing refuses the SSH set too.
    let strict = DeskPolicy {
        allowed_capabilities: vec![],
        ..DeskPolicy::default()
    };
    assert_eq!(
        admit(&mut desk_with(1, strict), 2, &ssh).unwrap_err(),
        RejectCode::Policy
    );
    assert!(
        admit(
            &mut desk_with(
                1,
                DeskPolicy {
                    allowed_capabilities: vec![],
                    ..DeskPolicy::default()
                }
            ),
            2,
            &launch(1)
        )
        .is_ok()
    );
}

#[test]
fn nvidia_variables_are_reserved() {
    let mut l = launch(1);
    l.env.insert("NVIDIA_VISIBLE_DEVICES".into(), "all".into());
    let err = request(2, &l).payload().validate(NOW).unwrap_err();
    assert_eq!(err.field, "env");
    assert!(err.to_string().contains("reserved"), "{err}");
    assert_eq!(admit(&mut desk(1), 2, &l).unwrap_err(), RejectCode::Invalid);
}

#[test]
fn bare_image_ids_are_refused() {
    for id in [
        "sha256:0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f",
        "0f0f0f0f0f0f",
    ] {
        let mut l = launch(1);
        l.image = id.into();
        let err = request(2, &l).payload().validate(NOW).unwrap_err();
        assert_eq!(err.field, "image", "{id}");
        assert_eq!(admit(&mut desk(1), 2, &l).unwrap_err(), RejectCode::Invalid);
    }
    // A reference pinned by digest is a reference.
    let mut pinned = launch(1);
    pinned.image =
        "qubix/test@sha256:0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f".into();
    assert!(request(2, &pinned).payload().validate(NOW).is_ok());
}

#[test]
fn a_replayed_request_is_refused() {
    let mut d = desk(4);
    let req = request(2, &launch(1));
    d.admit(&key(PROVIDER), req.envelope(), &node(2), RICH, NOW)
        .unwrap();
    assert_eq!(
        d.admit(&key(PROVIDER), req.envelope(), &node(2), RICH, NOW)
            .unwrap_err(),
        RejectCode::Replay
    );
}

#[test]
fn two_consumers_racing_for_the_last_gpu_exactly_one_wins() {
    let mut d = desk(1);
    assert!(admit(&mut d, 2, &launch(1)).is_ok());
    assert_eq!(
        admit(&mut d, 3, &launch(1)).unwrap_err(),
        RejectCode::NoCapacity
    );
}

#[test]
fn unconfirmed_terms_lapse_and_free_the_gpu() {
    let mut d = desk(1);
    let req = request(2, &launch(1));
    let terms = d
        .admit(&key(PROVIDER), req.envelope(), &node(2), RICH, NOW)
        .unwrap();
    let later = NOW.saturating_add(provider::COUNTERSIGN_WINDOW);
    assert_eq!(d.sweep(later), vec![terms.payload().agreement_id]);
    assert_eq!(d.free_gpus(&offer(PROVIDER).offer_id).len(), 1);
    // A countersignature arriving after the lapse is refused.
    let agreement = countersign(&network(), &check(&terms, &req).unwrap(), &key(2)).unwrap();
    assert_eq!(
        d.confirm(&agreement, &node(2), later).unwrap_err(),
        RejectCode::UnknownAgreement
    );
}

#[test]
fn tampered_or_foreign_terms_are_not_countersigned() {
    let mut d = desk(2);
    let req = request(2, &launch(1));
    let other = request(2, &launch(1));
    let terms = d
        .admit(&key(PROVIDER), req.envelope(), &node(2), RICH, NOW)
        .unwrap();
    assert_eq!(
        check(&terms, &other).unwrap_err(),
        TermsError::NotOurRequest
    );
    let mut bytes = terms.to_bytes();
    let n = bytes.len();
    bytes[n - 3] ^= 1;
    let forged = qubix_protocol::Envelope::from_bytes(bytes).unwrap();
    assert_eq!(
        check_terms(&network(), &forged, &req, &TermsLimits::default(), NOW).unwrap_err(),
        TermsError::WrongSigner
    );
    // Only the consumer may confirm.
    let agreement = countersign(&network(), &check(&terms, &req).unwrap(), &key(2)).unwrap();
    assert_eq!(
        d.confirm(&agreement, &node(3), NOW).unwrap_err(),
        RejectCode::BadSignature
    );
}

#[test]
fn countersigned_terms_must_be_the_terms_offered() {
    let mut d = desk(2);
    let offered = admit(&mut d, 2, &launch(1)).unwrap();
    let id = offered.payload().agreement_id;
    // The consumer makes its own self-consistent terms for the reserved id: a request naming
    // a second key of its own as the provider, and terms at 1 QU with endless graces signed
    // by that key. Every signature verifies.
    let mut own_request = request(2, &launch(1)).into_payload();
    own_request.provider = node(7);
    own_request.max_price_per_gpu_hour = Qu(1);
    let own_request = Signed::sign(own_request, &key(2), &network()).unwrap();
    let mut forged = offered.payload().clone();
    forged.request = own_request.envelope().clone();
    forged.provider = node(7);
    forged.price_per_gpu_hour = Qu(1);
    forged.budget = Qu(1);
    forged.payment.stop_grace_secs = u64::MAX;
    forged.payment.terminate_grace_secs = u64::MAX;
    let forged = Signed::sign(forged, &key(7), &network()).unwrap();
    let agreement = Agreement::countersign(&forged, &key(2), &network()).unwrap();
    agreement.verify(&network()).unwrap();
    assert_eq!(
        d.confirm(&agreement, &node(2), NOW).unwrap_err(),
        RejectCode::TermsMismatch
    );
    // The genuine terms, re-signed by the provider's own key with a longer grace, are not
    // the bytes offered either.
    let mut longer = offered.payload().clone();
    longer.payment.terminate_grace_secs = 7 * 24 * 3600;
    let longer = Signed::sign(longer, &key(PROVIDER), &network()).unwrap();
    let agreement = Agreement::countersign(&longer, &key(2), &network()).unwrap();
    assert_eq!(
        d.confirm(&agreement, &node(2), NOW).unwrap_err(),
        RejectCode::TermsMismatch
    );
    // Nothing was confirmed; the genuine countersignature still is.
    assert_eq!(
        d.reservations()[&id].hold,
        Hold::Offered(NOW.saturating_add(provider::COUNTERSIGN_WINDOW))
    );
    let genuine = Agreement::countersign(&offered, &key(2), &network()).unwrap();
    d.confirm(&genuine, &node(2), NOW).unwrap();
}

#[test]
fn terms_of_another_desk_are_refused_here() {
    let mut mine = desk(1);
    let mut theirs = ProviderDesk::new(network(), node(PROVIDER), DeskPolicy::default());
    theirs.set_offer(mine.offers_for_test(&offer(PROVIDER).offer_id));
    // Both desks reserve; each countersignature is good only where its terms were offered.
    let here = admit(&mut mine, 2, &launch(1)).unwrap();
    let there = admit(&mut theirs, 3, &launch(1)).unwrap();
    let mut swapped = there.payload().clone();
    swapped.agreement_id = here.payload().agreement_id;
    let swapped = Signed::sign(swapped, &key(PROVIDER), &network()).unwrap();
    let agreement = Agreement::countersign(&swapped, &key(3), &network()).unwrap();
    assert_eq!(
        mine.confirm(&agreement, &node(3), NOW).unwrap_err(),
        RejectCode::TermsMismatch
    );
}

#[test]
fn reservations_need_the_payers_balance_for_every_first_window() {
    let mut d = desk(8);
    // One window (600 s at 1,200 QU/GPU-h) costs 200 QU; the payer holds 450.
    let balance = Some(Qu(450));
    let mut admit_with = |consumer: u8| {
        d.admit(
            &key(PROVIDER),
            request(consumer, &launch(1)).envelope(),
            &node(consumer),
            balance,
            NOW,
        )
    };
    // Throw-away node keys share the paying identity: two windows fit, the third does not.
    assert!(admit_with(2).is_ok());
    assert!(admit_with(3).is_ok());
    assert_eq!(admit_with(4).unwrap_err(), RejectCode::InsufficientBalance);
    assert_eq!(d.unfunded_of(REFUND_TO), (2, Qu(400)));
}

#[test]
fn funded_reservations_no_longer_count_against_the_payer() {
    let mut d = desk(8);
    let balance = Some(Qu(250));
    let first = admit(&mut d, 2, &launch(1)).unwrap();
    let id = first.payload().agreement_id;
    assert_eq!(
        d.admit(
            &key(PROVIDER),
            request(3, &launch(1)).envelope(),
            &node(3),
            balance,
            NOW
        )
        .unwrap_err(),
        RejectCode::InsufficientBalance
    );
    d.activate(&id);
    assert!(
        d.admit(
            &key(PROVIDER),
            request(3, &launch(1)).envelope(),
            &node(3),
            balance,
            NOW
        )
        .is_ok()
    );
}

#[test]
fn unfunded_reservations_are_capped_per_paying_identity() {
    let policy = DeskPolicy {
        max_unfunded_per_payer: 3,
        ..DeskPolicy::default()
    };
    let mut d = desk_with(8, policy);
    for consumer in 2..5 {
        admit(&mut d, consumer, &launch(1)).unwrap();
    }
    assert_eq!(
        admit(&mut d, 5, &launch(1)).unwrap_err(),
        RejectCode::ReservationLimit
    );
}

#[test]
fn twenty_launches_of_one_funded_payer_are_admitted_by_default() {
    let mut d = desk(20);
    for i in 0..20u8 {
        let mut l = launch(1);
        // Distinct nonces: build_request draws a random one each time.
        l.duration_secs = 3600 + u64::from(i);
        admit(&mut d, 2, &l).unwrap();
    }
    assert_eq!(d.unfunded_of(REFUND_TO).0, 20);
}

#[test]
fn unfunded_reservations_lapse_at_fund_by_and_the_gpu_comes_back() {
    let policy = DeskPolicy {
        fund_window: std::time::Duration::from_secs(30),
        ..DeskPolicy::default()
    };
    let mut d = desk_with(1, policy);
    let req = request(2, &launch(1));
    let terms = d
        .admit(&key(PROVIDER), req.envelope(), &node(2), RICH, NOW)
        .unwrap();
    let agreement = Agreement::countersign(&terms, &key(2), &network()).unwrap();
    d.confirm(&agreement, &node(2), NOW).unwrap();
    let fund_by = terms.payload().fund_by;
    assert_eq!(
        fund_by,
        NOW.saturating_add(provider::COUNTERSIGN_WINDOW + std::time::Duration::from_secs(30))
    );
    assert!(d.sweep(UnixMillis(fund_by.0 - 1)).is_empty());
    assert_eq!(d.free_gpus(&offer(PROVIDER).offer_id).len(), 0);
    assert_eq!(d.sweep(fund_by), vec![terms.payload().agreement_id]);
    assert_eq!(d.free_gpus(&offer(PROVIDER).offer_id).len(), 1);
}

/// Terms answering a fresh request, with payment terms and times edited.
fn terms_with(
    edit: impl FnOnce(&mut AgreementTerms),
) -> (Signed<AgreementTerms>, Signed<JobRequest>) {
    let req = request(2, &launch(1));
    let mut t = AgreementTerms {
        agreement_id: qubix_protocol::AgreementId::from_bytes([5; 16]),
        request: req.envelope().clone(),
        provider: node(PROVIDER),
        consumer: node(2),
        price_per_gpu_hour: Qu(1_200),
        gpus: 1,
        duration_secs: 3600,
        budget: Qu(1_200),
        payment: PaymentTerms::default(),
        pay_to: PAY_TO.into(),
        refund_to: REFUND_TO.into(),
        pay_from: REFUND_TO.into(),
        standby_price_per_gpu_hour: None,
        interruptible_notice_secs: None,
        accepted_at: NOW,
        fund_by: NOW.saturating_add(std::time::Duration::from_secs(240)),
    };
    edit(&mut t);
    (Signed::sign(t, &key(PROVIDER), &network()).unwrap(), req)
}

#[test]
fn the_consumer_refuses_terms_outside_its_bounds_naming_the_field() {
    let (ok, req) = terms_with(|_| {});
    check(&ok, &req).unwrap();
    type Edit = Box<dyn Fn(&mut AgreementTerms)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "payment.window_secs",
            Box::new(|t| t.payment.window_secs = u64::MAX),
        ),
        (
            "payment.window_secs",
            Box::new(|t| t.payment.window_secs = 601),
        ),
        (
            "payment.window_secs",
            Box::new(|t| t.payment.window_secs = 0),
        ),
        (
            "payment.billing_interval_secs",
            Box::new(|t| t.payment.billing_interval_secs = 61),
        ),
        (
            "payment.billing_interval_secs",
            Box::new(|t| t.payment.billing_interval_secs = 1),
        ),
        (
            "payment.stop_grace_secs",
            Box::new(|t| t.payment.stop_grace_secs = 601),
        ),
        (
            "payment.terminate_grace_secs",
            Box::new(|t| t.payment.terminate_grace_secs = u64::MAX),
        ),
        (
            "accepted_at",
            Box::new(|t| t.accepted_at = UnixMillis(NOW.0 - 3_600_000)),
        ),
        (
            "accepted_at",
            Box::new(|t| t.accepted_at = UnixMillis(NOW.0 + 3_600_000)),
        ),
        (
            "fund_by",
            Box::new(|t| t.fund_by = UnixMillis(NOW.0 + 86_400_000)),
        ),
        ("fund_by", Box::new(|t| t.fund_by = NOW)),
    ];
    for (field, edit) in cases {
        let (terms, req) = terms_with(edit);
        match check(&terms, &req) {
            Err(TermsError::Unacceptable { field: f, reason }) => {
                assert_eq!(f, field, "{reason}");
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    // Each bound is the consumer's to set.
    let (long, req) = terms_with(|t| t.payment.window_secs = 1_200);
    let generous = TermsLimits {
        max_window_secs: 1_200,
        ..TermsLimits::default()
    };
    check_terms(&network(), long.envelope(), &req, &generous, NOW).unwrap();
}
