//! The fuzz targets' bodies: one per decoder of bytes a peer sends. `protocol/fuzz` runs them
//! under libFuzzer (`scripts/fuzz`, nightly, out of CI); the unit tests below run each over
//! its seeds and deterministic mutations of them on stable, as CI's smoke run.
//!
//! Each body must never panic, whatever the bytes. Random bytes almost never carry a valid
//! signature, so where the bytes decode as a signed message's payload the body also signs
//! them with a fixed key and opens the result: the code after verification is fuzzed too.

use ed25519_dalek::SigningKey;

use crate::billing::{Receipt, UsageReport};
use crate::codec::{self, WireMessage};
use crate::control::{JobControl, JobMessage, JobReply};
use crate::ids::NodeId;
use crate::job::{AgreementTerms, JobRequest, NegotiateRequest, NegotiateResponse};
use crate::market::{GossipMessage, OfferSyncRequest, OfferSyncResponse};
use crate::offer::{Offer, OfferWithdrawal};
use crate::signed::{Authored, Envelope, HEADER_LEN, sign_bytes};
use crate::time::UnixMillis;
use crate::topics::Network;

/// A target's body.
pub type Target = fn(&[u8]);

/// The targets, by name (`cargo fuzz run <name>`).
pub const TARGETS: [(&str, Target); 6] = [
    ("envelope", envelope),
    ("offer", offer),
    ("job_request", job_request),
    ("terms", terms),
    ("receipt", receipt),
    ("sync_page", sync_page),
];

fn network() -> Network {
    match Network::new("testnet") {
        Ok(n) => n,
        Err(_) => unreachable!("`testnet` is a valid network name"),
    }
}

/// A fixed time inside the samples' validity.
const NOW: UnixMillis = UnixMillis(1_767_225_600_000);

/// Opens `env` as `T`, as a receiver does.
fn open_as<T: Authored>(env: &Envelope, net: &Network) {
    let _ = env.open::<T>(net);
}

/// When `payload` decodes as `T`, signs it as `T`'s author would (with a key the fuzzer
/// knows, so the author check may fail: that path is fuzzed too) and opens it.
fn sign_and_open<T: Authored>(payload: &[u8], net: &Network) -> Option<T> {
    let decoded = codec::decode::<T>(payload).ok()?;
    let key = SigningKey::from_bytes(&[7; 32]);
    let signer = NodeId::from_verifying_key(&key.verifying_key());
    let signature = sign_bytes::<T>(&key, net, payload);
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(signer.as_bytes());
    bytes.extend_from_slice(&signature);
    bytes.extend_from_slice(payload);
    let env = Envelope::from_bytes(bytes).ok()?;
    let _ = env.open::<T>(net);
    Some(decoded)
}

/// Any envelope, opened as one of the signed types a peer sends (the first byte picks
/// which, so each run pays for one signature check).
pub fn envelope(data: &[u8]) {
    let net = network();
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(env) = Envelope::from_bytes(rest.to_vec()) else {
        return;
    };
    let _ = env.claimed_signer();
    match pick % 7 {
        0 => open_as::<Offer>(&env, &net),
        1 => open_as::<OfferWithdrawal>(&env, &net),
        2 => open_as::<JobRequest>(&env, &net),
        3 => open_as::<AgreementTerms>(&env, &net),
        4 => open_as::<Receipt>(&env, &net),
        5 => open_as::<UsageReport>(&env, &net),
        _ => open_as::<JobControl>(&env, &net),
    }
}

/// A gossip message (an offer or a withdrawal), and an offer's payload and checks.
pub fn offer(data: &[u8]) {
    let net = network();
    if let Ok(message) = codec::decode::<GossipMessage>(data) {
        let _ = message_size(&message);
    }
    if let Some(o) = sign_and_open::<Offer>(data, &net) {
        let _ = o.validate(&net, NOW);
    }
    if let Some(w) = sign_and_open::<OfferWithdrawal>(data, &net) {
        let _ = w.validate(NOW);
    }
}

fn message_size<T: WireMessage>(message: &T) -> usize {
    codec::encode(message).map_or(0, |b| b.len())
}

/// A negotiation request (a proposal or a countersignature) and a job request's payload.
pub fn job_request(data: &[u8]) {
    let net = network();
    match codec::decode::<NegotiateRequest>(data) {
        Ok(NegotiateRequest::Propose(env)) => {
            if let Ok(signed) = env.open::<JobRequest>(&net) {
                let _ = signed.payload().validate(NOW);
            }
        }
        Ok(NegotiateRequest::Countersign(agreement)) => {
            let _ = agreement.verify(&net);
        }
        Err(_) => {}
    }
    if let Some(request) = sign_and_open::<JobRequest>(data, &net) {
        let _ = request.validate(NOW);
        let _ = request.max_budget();
    }
}

/// A negotiation response and the provider's terms.
pub fn terms(data: &[u8]) {
    let net = network();
    if let Ok(NegotiateResponse::Terms(env)) = codec::decode::<NegotiateResponse>(data)
        && let Ok(signed) = env.open::<AgreementTerms>(&net)
    {
        let _ = signed.payload().open_request(&net);
    }
    if let Some(t) = sign_and_open::<AgreementTerms>(data, &net) {
        let _ = t.open_request(&net);
    }
}

/// A job/1 message (control, receipt, payment notice, queries), a provider's reply, and
/// the signed receipt, usage report and control payloads.
pub fn receipt(data: &[u8]) {
    let net = network();
    match codec::decode::<JobMessage>(data) {
        Ok(JobMessage::Receipt(env)) => {
            let _ = env.open::<Receipt>(&net);
        }
        Ok(JobMessage::Control(env)) => {
            let _ = env.open::<JobControl>(&net);
        }
        _ => {}
    }
    let _ = codec::decode::<JobReply>(data);
    let _ = sign_and_open::<Receipt>(data, &net);
    let _ = sign_and_open::<UsageReport>(data, &net);
    let _ = sign_and_open::<JobControl>(data, &net);
}

/// An offer-sync page (and request), every offer in it opened and checked.
pub fn sync_page(data: &[u8]) {
    let net = network();
    let _ = codec::decode::<OfferSyncRequest>(data);
    if let Ok(page) = codec::decode::<OfferSyncResponse>(data) {
        for env in page.offers {
            if let Ok(signed) = env.open::<Offer>(&net) {
                let _ = signed.payload().validate(&net, NOW);
            }
        }
    }
}

/// Valid encodings of what each target decodes, to start fuzzing from.
#[cfg(any(test, feature = "testing"))]
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    use crate::billing::Receipt;
    use crate::ids::{AgreementId, Nonce};
    use crate::signed::Signed;
    use crate::testing;

    let net = testing::network();
    let signed_offer = Signed::sign(testing::offer(1), &testing::key(1), &net).ok();
    let request = Signed::sign(testing::job_request(2, 1), &testing::key(2), &net).ok();
    let terms = testing::agreement_terms(2, 1)
        .ok()
        .and_then(|t| Signed::sign(t, &testing::key(1), &net).ok());
    let receipt = Receipt {
        agreement_id: AgreementId::from_bytes([0xa5; 16]),
        consumer: testing::node(2),
        report_sequence: 3,
        billable_millis: 180_000,
        amount: crate::amount::Qu(60),
        issued_at: testing::NOW,
    };
    let signed_receipt = Signed::sign(receipt.clone(), &testing::key(2), &net).ok();
    let control = JobControl {
        agreement_id: AgreementId::from_bytes([0xa5; 16]),
        consumer: testing::node(2),
        action: crate::control::JobAction::Stop,
        nonce: Nonce::from_bytes([9; 16]),
        issued_at: testing::NOW,
    };
    let signed_control = Signed::sign(control.clone(), &testing::key(2), &net).ok();
    let enc = |r: Result<Vec<u8>, codec::CodecError>| r.ok();
    let mut out: Vec<Option<Vec<u8>>> = Vec::new();
    match target {
        "envelope" => {
            // The first byte picks the type the target opens the envelope as.
            for (pick, env) in [
                (0u8, signed_offer.as_ref().map(|s| s.to_bytes())),
                (2, request.as_ref().map(|s| s.to_bytes())),
                (3, terms.as_ref().map(|s| s.to_bytes())),
                (4, signed_receipt.as_ref().map(|s| s.to_bytes())),
                (6, signed_control.as_ref().map(|s| s.to_bytes())),
            ] {
                out.push(env.map(|bytes| [vec![pick], bytes].concat()));
            }
        }
        "offer" => {
            out.push(enc(codec::encode(&testing::offer(1))));
            if let Some(s) = &signed_offer {
                out.push(enc(codec::encode(&GossipMessage::Offer(
                    s.envelope().clone(),
                ))));
            }
        }
        "job_request" => {
            out.push(enc(codec::encode(&testing::job_request(2, 1))));
            if let Some(s) = &request {
                out.push(enc(codec::encode(&NegotiateRequest::Propose(
                    s.envelope().clone(),
                ))));
            }
        }
        "terms" => {
            if let Ok(t) = testing::agreement_terms(2, 1) {
                out.push(enc(codec::encode(&t)));
            }
            if let Some(s) = &terms {
                out.push(enc(codec::encode(&NegotiateResponse::Terms(
                    s.envelope().clone(),
                ))));
            }
        }
        "receipt" => {
            out.push(enc(codec::encode(&receipt)));
            out.push(enc(codec::encode(&control)));
            if let Some(s) = &signed_receipt {
                out.push(enc(codec::encode(&JobMessage::Receipt(
                    s.envelope().clone(),
                ))));
            }
            if let Some(s) = &signed_control {
                out.push(enc(codec::encode(&JobMessage::Control(
                    s.envelope().clone(),
                ))));
            }
        }
        "sync_page" => {
            if let Some(s) = &signed_offer {
                out.push(enc(codec::encode(&OfferSyncResponse {
                    offers: vec![s.envelope().clone(); 3],
                    next: None,
                })));
            }
            out.push(enc(codec::encode(&OfferSyncRequest {
                after: None,
                limit: 100,
            })));
        }
        _ => {}
    }
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Flips, inserts, removes, overwrites with edge values, or truncates.
    fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(input.len() + 1);
            match rng.below(6) {
                0 if !input.is_empty() => {
                    let i = at.min(input.len() - 1);
                    input[i] ^= 1 << rng.below(8);
                }
                1 => input.insert(at, rng.next() as u8),
                2 if at < input.len() => {
                    input.remove(at);
                }
                3 if !input.is_empty() => {
                    let i = at.min(input.len() - 1);
                    input[i] = [0, 0xff, 0x7f, 0x80, 0xfb, 0xfc, 0xfd][rng.below(7)];
                }
                4 => input.truncate(at),
                _ => {
                    // A claimed length or count: eight bytes of 0xff.
                    let i = at.min(input.len());
                    input.splice(i..i, [0xff; 8]);
                }
            }
        }
    }

    /// CI's smoke run: every target over its seeds and 20,000 mutations of them.
    #[test]
    fn every_target_survives_its_seeds_and_their_mutations() {
        for (name, target) in TARGETS {
            let seeds = seeds(name);
            assert!(!seeds.is_empty(), "no seeds for {name}");
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
            for seed in &seeds {
                target(seed);
            }
            for _ in 0..20_000 {
                let mut input = seeds[rng.below(seeds.len())].clone();
                mutate(&mut rng, &mut input);
                target(&input);
            }
            target(&[]);
            target(&[0xff; 64]);
        }
    }

    /// The seeds are what they claim: each decodes as its target's first message type.
    #[test]
    fn seeds_decode() {
        let net = network();
        assert!(
            Envelope::from_bytes(seeds("envelope")[0][1..].to_vec())
                .unwrap()
                .open::<Offer>(&net)
                .is_ok()
        );
        assert!(codec::decode::<Offer>(&seeds("offer")[0]).is_ok());
        assert!(codec::decode::<JobRequest>(&seeds("job_request")[0]).is_ok());
        assert!(codec::decode::<AgreementTerms>(&seeds("terms")[0]).is_ok());
        assert!(codec::decode::<Receipt>(&seeds("receipt")[0]).is_ok());
        assert!(codec::decode::<OfferSyncResponse>(&seeds("sync_page")[0]).is_ok());
    }

    /// Writes each target's seeds to `protocol/fuzz/corpus/<target>/` (`scripts/fuzz`).
    #[test]
    #[ignore = "run by scripts/fuzz"]
    fn write_seed_corpora() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (name, _) in TARGETS {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, seed) in seeds(name).iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
            }
        }
    }
}
