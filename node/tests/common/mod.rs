//! What the two-swarm tests share: a node's real network layer on libp2p's memory
//! transport, and waiting for its events with a timeout.
#![allow(dead_code, unreachable_pub)] // each test binary uses a part of it

use std::time::Duration;

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use qubix_node::keys::NodeKey;
use qubix_node::network::{self, NetworkEvent, NetworkHandle, NetworkSettings, TransportKind};
use qubix_protocol::topics::Network;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

/// How long any one awaited event may take.
pub const WAIT: Duration = Duration::from_secs(15);

pub fn network() -> Network {
    Network::new("memtest").unwrap()
}

pub fn settings() -> NetworkSettings {
    let mut settings = NetworkSettings::new(network());
    settings.transport = TransportKind::Memory;
    settings.mdns = false;
    settings.heartbeat = Duration::from_millis(100);
    // Longer than any wait below, so a refusal is never mistaken for a timeout.
    settings.request_timeout = Duration::from_secs(60);
    settings
}

/// A node's network layer listening on a fresh `/memory/N` address.
pub struct Peer {
    pub key: NodeKey,
    pub net: NetworkHandle,
    pub events: mpsc::Receiver<NetworkEvent>,
    pub addr: Multiaddr,
    _stop: DropGuard,
}

pub async fn start_peer(seed: u8, bootstrap: Vec<Multiaddr>) -> Peer {
    let key = NodeKey::from_secret([seed; 32]);
    let shutdown = CancellationToken::new();
    let listen = vec!["/memory/0".parse().unwrap()];
    let (net, mut events) = network::start(
        key.libp2p_keypair(),
        settings(),
        listen,
        bootstrap,
        shutdown.clone(),
    )
    .await
    .unwrap();
    let addr = next_event(&mut events, "the peer to listen", |e| match e {
        NetworkEvent::Listening(addr) => Some(addr),
        _ => None,
    })
    .await
    .with(Protocol::P2p(net.local_peer_id()));
    Peer {
        key,
        net,
        events,
        addr,
        _stop: shutdown.drop_guard(),
    }
}

/// The first event `pick` takes, skipping the others; panics naming `what` after [`WAIT`].
pub async fn next_event<T>(
    events: &mut mpsc::Receiver<NetworkEvent>,
    what: &str,
    mut pick: impl FnMut(NetworkEvent) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            if let Some(found) = pick(event) {
                return Some(found);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(found)) => found,
        Ok(None) => panic!("the network task stopped before {what}"),
        Err(_) => panic!("no {what} within {WAIT:?}"),
    }
}
