use qubix_protocol::api::LaunchRequest;
use qubix_protocol::job::{JobRequest, RejectCode};
use qubix_protocol::testing::{NOW, REFUND_TO, key, network, node, offer};
use qubix_protocol::{Qu, Signed, UnixMillis};

use super::*;

const PROVIDER: u8 = 1;

fn desk(gpus: usize) -> ProviderDesk {
    let mut desk = ProviderDesk::new(network(), Default::default());
    desk.set_offer(OfferCapacity {
        offer_id: offer(PROVIDER).offer_id,
        gpus: (0..gpus).map(|i| format!("GPU-{i}")).collect(),
        cpu_cores: 16,
        ram_mib: 64 * 1024,
        disk_gib: 500,
        price: Qu(1_200),
        min_rental_secs: 600,
        max_rental_secs: 7 * 24 * 3600,
        pay_to: qubix_protocol::testing::PAY_TO.into(),
    });
    desk
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
        cpu_cores: None,
        ram_mib: None,
        disk_gib: None,
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

#[test]
fn happy_path_both_sides_agree() {
    let mut desk = desk(2);
    let req = request(2, &launch(1));
    let terms = desk
        .admit(&key(PROVIDER), req.envelope(), &node(2), NOW)
        .unwrap();
    let checked = check_terms(&network(), terms.envelope(), &req).unwrap();
    assert_eq!(checked.payload().budget, Qu(1_200));
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
    let e = d
        .admit(&key(PROVIDER), request(2, &cheap).envelope(), &node(2), NOW)
        .unwrap_err();
    assert_eq!(e, RejectCode::PriceAboveMaximum);
    let e = d
        .admit(
            &key(PROVIDER),
            request(2, &launch(2)).envelope(),
            &node(2),
            NOW,
        )
        .unwrap_err();
    assert_eq!(e, RejectCode::NoCapacity);
    let mut short = launch(1);
    short.duration_secs = 120;
    let e = d
        .admit(&key(PROVIDER), request(2, &short).envelope(), &node(2), NOW)
        .unwrap_err();
    assert_eq!(e, RejectCode::DurationOutOfRange);
    let late = UnixMillis(NOW.0 + 10 * 60 * 1000);
    let e = d
        .admit(
            &key(PROVIDER),
            request(2, &launch(1)).envelope(),
            &node(2),
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
            NOW,
        )
        .unwrap_err();
    assert_eq!(e, RejectCode::BadSignature);
    // Sent to the wrong provider.
    let e = d
        .admit(&key(9), request(2, &launch(1)).envelope(), &node(2), NOW)
        .unwrap_err();
    assert_eq!(e, RejectCode::Invalid);
}

#[test]
fn a_replayed_request_is_refused() {
    let mut d = desk(4);
    let req = request(2, &launch(1));
    d.admit(&key(PROVIDER), req.envelope(), &node(2), NOW)
        .unwrap();
    assert_eq!(
        d.admit(&key(PROVIDER), req.envelope(), &node(2), NOW)
            .unwrap_err(),
        RejectCode::Replay
    );
}

#[test]
fn two_consumers_racing_for_the_last_gpu_exactly_one_wins() {
    let mut d = desk(1);
    let a = d.admit(
        &key(PROVIDER),
        request(2, &launch(1)).envelope(),
        &node(2),
        NOW,
    );
    let b = d.admit(
        &key(PROVIDER),
        request(3, &launch(1)).envelope(),
        &node(3),
        NOW,
    );
    assert!(a.is_ok());
    assert_eq!(b.unwrap_err(), RejectCode::NoCapacity);
}

#[test]
fn unconfirmed_terms_lapse_and_free_the_gpu() {
    let mut d = desk(1);
    let req = request(2, &launch(1));
    let terms = d
        .admit(&key(PROVIDER), req.envelope(), &node(2), NOW)
        .unwrap();
    let later = NOW.saturating_add(provider::COUNTERSIGN_WINDOW);
    assert_eq!(d.sweep(later), vec![terms.payload().agreement_id]);
    assert_eq!(d.free_gpus(&offer(PROVIDER).offer_id).len(), 1);
    // A countersignature arriving after the lapse is refused.
    let agreement = countersign(
        &network(),
        &check_terms(&network(), terms.envelope(), &req).unwrap(),
        &key(2),
    )
    .unwrap();
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
        .admit(&key(PROVIDER), req.envelope(), &node(2), NOW)
        .unwrap();
    assert_eq!(
        check_terms(&network(), terms.envelope(), &other).unwrap_err(),
        TermsError::NotOurRequest
    );
    let mut bytes = terms.to_bytes();
    let n = bytes.len();
    bytes[n - 3] ^= 1;
    let forged = qubix_protocol::Envelope::from_bytes(bytes).unwrap();
    assert_eq!(
        check_terms(&network(), &forged, &req).unwrap_err(),
        TermsError::WrongSigner
    );
    // Only the consumer may confirm.
    let agreement = countersign(
        &network(),
        &check_terms(&network(), terms.envelope(), &req).unwrap(),
        &key(2),
    )
    .unwrap();
    assert_eq!(
        d.confirm(&agreement, &node(3), NOW).unwrap_err(),
        RejectCode::BadSignature
    );
}
