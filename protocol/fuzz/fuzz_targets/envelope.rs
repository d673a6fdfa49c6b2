//! Fuzzes the path every byte from a peer takes: gossip decode, envelope size check,
//! signature verification, bounded payload decode. Run with
//! `cd protocol && cargo +nightly fuzz run envelope`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qubix_protocol::codec;
use qubix_protocol::job::{JobRequest, NegotiateRequest};
use qubix_protocol::market::{GossipMessage, OfferSyncResponse};
use qubix_protocol::offer::Offer;
use qubix_protocol::signed::Envelope;
use qubix_protocol::topics::Network;

fuzz_target!(|data: &[u8]| {
    let Ok(net) = Network::new("testnet") else {
        return;
    };
    if let Ok(GossipMessage::Offer(env)) = codec::decode::<GossipMessage>(data) {
        let _ = env.open::<Offer>(&net);
    }
    if let Ok(page) = codec::decode::<OfferSyncResponse>(data) {
        for env in page.offers {
            let _ = env.open::<Offer>(&net);
        }
    }
    let _ = codec::decode::<NegotiateRequest>(data);
    if let Ok(env) = Envelope::from_bytes(data.to_vec()) {
        let _ = env.open::<JobRequest>(&net);
    }
});
