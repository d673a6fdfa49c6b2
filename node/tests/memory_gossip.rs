//! Two swarms in one process over libp2p's memory transport, running the node's real
//! behaviour and gossip validation: a valid offer is accepted into the book; a forged
//! signature or an offer signed for another peer gets the `Reject` verdict and costs the
//! sender gossipsub score. The test plays the node service: it judges each message against
//! a book and reports the verdict, as `service::market` does.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use libp2p::PeerId;
use libp2p::gossipsub::MessageAcceptance;
use qubix_node::keys::NodeKey;
use qubix_node::market::{OfferBook, Verdict, judge_gossip};
use qubix_node::network::{NetworkError, NetworkEvent, NetworkHandle};
use qubix_protocol::codec::{self, WireMessage};
use qubix_protocol::market::GossipMessage;
use qubix_protocol::offer::Offer;
use qubix_protocol::{NodeId, Signed, UnixMillis};

use common::{Peer, WAIT, next_event, start_peer};

fn fresh_offer(key: &NodeKey, id: u8) -> Offer {
    let now = UnixMillis::now();
    let mut offer = qubix_protocol::testing::offer(1);
    offer.provider = key.node_id();
    offer.offer_id = qubix_protocol::OfferId::from_bytes([id; 16]);
    offer.issued_at = now;
    offer.expires_at = now.saturating_add(Duration::from_secs(600));
    offer
}

fn gossip(offer: Offer, signer: &NodeKey) -> Vec<u8> {
    let envelope = Signed::sign(offer, signer.signing_key(), &common::network()).unwrap();
    codec::encode(&GossipMessage::Offer(envelope.envelope().clone())).unwrap()
}

/// Publishes once the receiver's subscription has reached the sender (until then
/// gossipsub has nobody to send to and refuses).
async fn publish(sender: &NetworkHandle, data: Vec<u8>) {
    let published = tokio::time::timeout(WAIT, async {
        let mut retry = tokio::time::interval(Duration::from_millis(20));
        loop {
            retry.tick().await;
            match sender.publish(data.clone()).await {
                Ok(()) => return,
                Err(NetworkError::Publish(_)) => continue,
                Err(e) => panic!("publish failed: {e}"),
            }
        }
    })
    .await;
    published.unwrap_or_else(|_| panic!("the receiver's subscription never reached the sender"));
}

/// What the node service does with a gossip message: judge it against the book and report
/// the verdict to gossipsub. Returns the verdict and the peer that sent it.
async fn judge_next(receiver: &mut Peer, book: &mut OfferBook) -> (Verdict, PeerId) {
    let (source, from, id, data) = next_event(&mut receiver.events, "gossip", |e| match e {
        NetworkEvent::Gossip {
            source,
            propagation_source,
            message_id,
            data,
        } => Some((source, propagation_source, message_id, data)),
        _ => None,
    })
    .await;
    let author = source.and_then(|p| NodeId::from_peer_id(&p).ok());
    let (verdict, _) = judge_gossip(book, &common::network(), &data, author, UnixMillis::now());
    receiver
        .net
        .report(id, from, verdict.acceptance())
        .await
        .unwrap();
    (verdict, from)
}

/// The receiver's gossipsub score of `peer`. Verdicts are commands on the same queue, so
/// every verdict reported before this call is already counted.
async fn score(receiver: &Peer, peer: PeerId) -> f64 {
    let peers = receiver.net.peers().await.unwrap();
    let summary = peers.iter().find(|p| p.peer == peer);
    summary
        .and_then(|p| p.score)
        .expect("a score for the sender")
}

/// A sender gossips a valid offer, then `forgery`; the receiver accepts the first into its
/// book, rejects the second, and the sender's score falls below zero.
async fn valid_then_forged(forgery: impl FnOnce(&NodeKey) -> (Vec<u8>, &'static str)) {
    let mut receiver = start_peer(1, vec![]).await;
    let sender = start_peer(2, vec![receiver.addr.clone()]).await;
    let sender_id = sender.net.local_peer_id();
    let mut book = OfferBook::default();

    let offer = fresh_offer(&sender.key, 7);
    publish(&sender.net, gossip(offer.clone(), &sender.key)).await;
    assert_eq!(
        judge_next(&mut receiver, &mut book).await,
        (Verdict::Accept, sender_id)
    );
    let held = book
        .get(&(offer.provider, offer.offer_id))
        .expect("the accepted offer in the book");
    assert_eq!(held.payload(), &offer);
    let before = score(&receiver, sender_id).await;
    assert!(before >= 0.0, "an honest sender starts at {before}");

    let (forged, reason) = forgery(&sender.key);
    publish(&sender.net, forged).await;
    let (verdict, from) = judge_next(&mut receiver, &mut book).await;
    assert_eq!((verdict, from), (Verdict::Reject(reason), sender_id));
    assert_eq!(verdict.acceptance(), MessageAcceptance::Reject);
    assert_eq!(book.len(), 1, "the forgery stays out of the book");
    let after = score(&receiver, sender_id).await;
    assert!(
        after < before && after < 0.0,
        "a rejected message should cost the sender: {before} -> {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signature_is_rejected_and_costs_the_sender_score() {
    valid_then_forged(|key| {
        let offer = fresh_offer(key, 8);
        let payload_len = codec::encode(&offer).unwrap().len();
        let mut bytes = gossip(offer, key);
        // The signed payload ends the message and the signature comes just before it.
        let in_signature = bytes.len() - payload_len - 10;
        bytes[in_signature] ^= 0x55;
        (bytes, "bad signature")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_signed_for_another_peer_is_rejected_and_costs_the_sender_score() {
    valid_then_forged(|_| {
        // Validly signed, by a node that is not the one gossiping it.
        let other = NodeKey::from_secret([9; 32]);
        (
            gossip(fresh_offer(&other, 8), &other),
            "signed for another peer",
        )
    })
    .await;
}

/// A burst of messages reaches the receiver whole. gossipsub 0.50 checks its frame limit
/// against everything read ahead of the frame it decodes, so a limit sized for one message
/// closed the stream as soon as a few arrived together, and everything after was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_offers_arrives_whole() {
    const BURST: u8 = 40;
    let mut receiver = start_peer(1, vec![]).await;
    let sender = start_peer(2, vec![receiver.addr.clone()]).await;
    let mut book = OfferBook::default();
    // The first one waits for the receiver's subscription; the rest go at once.
    publish(
        &sender.net,
        gossip(fresh_offer(&sender.key, 0), &sender.key),
    )
    .await;
    for id in 1..BURST {
        sender
            .net
            .publish(gossip(fresh_offer(&sender.key, id), &sender.key))
            .await
            .unwrap();
    }
    for _ in 0..BURST {
        let (verdict, _) = judge_next(&mut receiver, &mut book).await;
        assert_eq!(verdict, Verdict::Accept);
    }
    assert_eq!(book.len(), usize::from(BURST));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_rejected_and_costs_the_sender_score() {
    valid_then_forged(|_| {
        // Within gossipsub's frame limit, past the market's bound on one message.
        let too_big = vec![0u8; GossipMessage::MAX_SIZE + 1];
        (too_big, "malformed gossip")
    })
    .await;
}
