//! Judging what arrives on the offers topic, and what arrives by offer sync. Pure: bytes,
//! the authenticated source, the book and the time in; a verdict and the book's change out.
//! The verdict goes back to gossipsub, so forgers lose score and are pruned.

use libp2p::gossipsub::MessageAcceptance;
use qubix_protocol::codec;
use qubix_protocol::market::GossipMessage;
use qubix_protocol::offer::{Offer, OfferWithdrawal};
use qubix_protocol::signed::EnvelopeError;
use qubix_protocol::topics::Network;
use qubix_protocol::{Envelope, NodeId, Signed, UnixMillis};

use super::book::{Inserted, OfferBook, OfferKey};

/// What to tell gossipsub about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and new: forward it.
    Accept,
    /// Valid but not news (stale, duplicate, expired): drop without penalty.
    Ignore(&'static str),
    /// Forged or malformed: drop and penalise the sender.
    Reject(&'static str),
}

impl Verdict {
    /// What gossipsub is told: forward, drop, or drop and count against the sender's score.
    pub fn acceptance(self) -> MessageAcceptance {
        match self {
            Verdict::Accept => MessageAcceptance::Accept,
            Verdict::Ignore(_) => MessageAcceptance::Ignore,
            Verdict::Reject(_) => MessageAcceptance::Reject,
        }
    }
}

/// How the book changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An offer was added or replaced.
    Upserted(OfferKey),
    /// An offer was withdrawn.
    Removed(OfferKey),
}

/// Judges one gossip message from `source` (the author gossipsub authenticated), signed on
/// `network`.
pub fn judge_gossip(
    book: &mut OfferBook,
    network: &Network,
    data: &[u8],
    source: Option<NodeId>,
    now: UnixMillis,
) -> (Verdict, Option<Change>) {
    let Ok(message) = codec::decode::<GossipMessage>(data) else {
        return (Verdict::Reject("malformed gossip"), None);
    };
    let Some(source) = source else {
        return (Verdict::Reject("unsigned gossip"), None);
    };
    match message {
        GossipMessage::Offer(envelope) => judge_offer(book, network, &envelope, Some(&source), now),
        GossipMessage::Withdrawal(envelope) => {
            judge_withdrawal(book, network, &envelope, &source, now)
        }
    }
}

/// Judges one signed offer; `source`, when given, must be its signer.
pub fn judge_offer(
    book: &mut OfferBook,
    network: &Network,
    envelope: &Envelope,
    source: Option<&NodeId>,
    now: UnixMillis,
) -> (Verdict, Option<Change>) {
    let opened = match source {
        Some(peer) => envelope.open_from::<Offer>(network, peer),
        None => envelope.open::<Offer>(network),
    };
    let offer = match opened {
        Ok(offer) => offer,
        Err(e) => return (Verdict::Reject(envelope_reason(&e)), None),
    };
    if offer.payload().is_expired(now) {
        return (Verdict::Ignore("expired offer"), None);
    }
    if offer.payload().validate(network, now).is_err() {
        return (Verdict::Reject("invalid offer"), None);
    }
    insert(book, offer)
}

fn insert(book: &mut OfferBook, offer: Signed<Offer>) -> (Verdict, Option<Change>) {
    let key = (offer.payload().provider, offer.payload().offer_id);
    match book.insert(offer) {
        Inserted::Added | Inserted::Replaced => (Verdict::Accept, Some(Change::Upserted(key))),
        Inserted::Stale => (Verdict::Ignore("stale offer"), None),
        Inserted::BookFull => (Verdict::Ignore("offer book full"), None),
        Inserted::ProviderFull => (Verdict::Reject("provider exceeds its offer limit"), None),
    }
}

fn judge_withdrawal(
    book: &mut OfferBook,
    network: &Network,
    envelope: &Envelope,
    source: &NodeId,
    now: UnixMillis,
) -> (Verdict, Option<Change>) {
    match envelope.open_from::<OfferWithdrawal>(network, source) {
        Ok(w) if w.payload().validate(now).is_err() => (
            Verdict::Reject("withdrawal signed at an impossible time"),
            None,
        ),
        Ok(w) => {
            let key = (w.payload().provider, w.payload().offer_id);
            if book.withdraw(w.payload()) {
                (Verdict::Accept, Some(Change::Removed(key)))
            } else {
                (
                    Verdict::Ignore("withdrawal of an unknown or newer offer"),
                    None,
                )
            }
        }
        Err(e) => (Verdict::Reject(envelope_reason(&e)), None),
    }
}

fn envelope_reason(e: &EnvelopeError) -> &'static str {
    match e {
        EnvelopeError::BadSignature { .. } | EnvelopeError::BadSignerKey => "bad signature",
        EnvelopeError::WrongSigner { .. } | EnvelopeError::NotFromPeer { .. } => {
            "signed for another peer"
        }
        EnvelopeError::TooLarge { .. } | EnvelopeError::Truncated { .. } => "bad size",
        EnvelopeError::Codec(_) => "malformed payload",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qubix_protocol::testing::{NOW, key, network, node, offer};

    fn gossip(o: Offer, seed: u8) -> Vec<u8> {
        let env = Signed::sign(o, &key(seed), &network())
            .unwrap()
            .envelope()
            .clone();
        codec::encode(&GossipMessage::Offer(env)).unwrap()
    }

    #[test]
    fn table_of_gossip_verdicts() {
        let mut expired = offer(1);
        expired.expires_at = UnixMillis(NOW.0 - 1);
        let mut zero_gpus = offer(1);
        zero_gpus.gpu_count = 0;
        let mut forged = gossip(offer(1), 1);
        let last = forged.len() - 1;
        forged[last - 70] ^= 1;
        let cases: Vec<(&str, Vec<u8>, Option<NodeId>, Verdict)> = vec![
            ("valid", gossip(offer(1), 1), Some(node(1)), Verdict::Accept),
            (
                "duplicate",
                gossip(offer(1), 1),
                Some(node(1)),
                Verdict::Ignore("stale offer"),
            ),
            (
                "relayed under another author",
                gossip(offer(2), 2),
                Some(node(3)),
                Verdict::Reject("signed for another peer"),
            ),
            (
                "forged signature",
                forged,
                Some(node(1)),
                Verdict::Reject("bad signature"),
            ),
            (
                "expired",
                gossip(expired, 1),
                Some(node(1)),
                Verdict::Ignore("expired offer"),
            ),
            (
                "insane",
                gossip(zero_gpus, 1),
                Some(node(1)),
                Verdict::Reject("invalid offer"),
            ),
            (
                "garbage",
                vec![0xff; 40],
                Some(node(1)),
                Verdict::Reject("malformed gossip"),
            ),
            (
                "oversize",
                vec![0; 64 * 1024],
                Some(node(1)),
                Verdict::Reject("malformed gossip"),
            ),
            (
                "no source",
                gossip(offer(4), 4),
                None,
                Verdict::Reject("unsigned gossip"),
            ),
        ];
        let mut book = OfferBook::default();
        for (name, data, source, expected) in cases {
            let (verdict, _) = judge_gossip(&mut book, &network(), &data, source, NOW);
            assert_eq!(verdict, expected, "{name}");
        }
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn withdrawal_by_author_removes_by_stranger_is_rejected() {
        let mut book = OfferBook::default();
        judge_gossip(
            &mut book,
            &network(),
            &gossip(offer(1), 1),
            Some(node(1)),
            NOW,
        );
        let w = OfferWithdrawal {
            provider: node(1),
            offer_id: offer(1).offer_id,
            sequence: 2,
            issued_at: NOW,
        };
        let env = Signed::sign(w, &key(1), &network())
            .unwrap()
            .envelope()
            .clone();
        let data = codec::encode(&GossipMessage::Withdrawal(env)).unwrap();
        assert_eq!(
            judge_gossip(&mut book, &network(), &data, Some(node(2)), NOW).0,
            Verdict::Reject("signed for another peer")
        );
        assert_eq!(book.len(), 1);
        assert_eq!(
            judge_gossip(&mut book, &network(), &data, Some(node(1)), NOW).0,
            Verdict::Accept
        );
        assert!(book.is_empty());
    }
}
