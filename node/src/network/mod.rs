//! The network layer: one task ([`event_loop::EventLoop`]) owns the libp2p swarm; everyone
//! else holds a cheap [`NetworkHandle`] that sends bounded commands with a oneshot reply.
//! What arrives from peers goes to the node service as [`NetworkEvent`]s on a bounded
//! channel; when the service falls behind, gossip is dropped (and counted), never queued
//! without bound, and the swarm never waits on the service.

mod behaviour;
mod codec;
mod conditions;
mod event_loop;
pub mod penalty;

use std::time::Duration;

use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::identity::Keypair;
use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId};
use qubix_protocol::control::{JobMessage, JobReply};
use qubix_protocol::job::{NegotiateRequest, NegotiateResponse};
use qubix_protocol::market::{OfferSyncRequest, OfferSyncResponse};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use behaviour::{NetworkSettings, TransportKind};
pub use conditions::LinkConditions;

/// Capacity of the command queue into the event loop.
const COMMAND_QUEUE: usize = 512;
/// Capacity of the event queue out of the event loop.
pub const EVENT_QUEUE: usize = 2048;

/// Why a network operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// The swarm could not be built.
    #[error("network setup failed: {0}")]
    Setup(String),
    /// A listen address could not be used.
    #[error("cannot listen on {addr}: {reason}; pass another --listen address")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A peer could not be dialled.
    #[error("cannot dial {addr}: {reason}")]
    Dial {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A request to a peer failed (unreachable, timeout, refused stream, bad frame).
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// Publishing on gossip failed (e.g. no peers yet).
    #[error("publish failed: {0}")]
    Publish(String),
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Shutdown,
}

/// Something a peer sent, for the node service to judge.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A gossip message awaiting validation; the service must report a verdict.
    Gossip {
        /// The author (gossipsub-verified signer of the message).
        source: Option<PeerId>,
        /// The peer that forwarded it.
        propagation_source: PeerId,
        /// Id to report the verdict under.
        message_id: MessageId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A negotiation request; answer with [`NetworkHandle::respond_negotiate`].
    Negotiate {
        /// The requesting peer (authenticated by the transport).
        peer: PeerId,
        /// The request.
        request: NegotiateRequest,
        /// Where the answer goes.
        channel: ResponseChannel<NegotiateResponse>,
    },
    /// A job request; answer with [`NetworkHandle::respond_job`].
    Job {
        /// The requesting peer.
        peer: PeerId,
        /// The request.
        request: JobMessage,
        /// Where the answer goes.
        channel: ResponseChannel<JobReply>,
    },
    /// An offer-book page request; answer with [`NetworkHandle::respond_sync`].
    OfferSync {
        /// The requesting peer.
        peer: PeerId,
        /// The request.
        request: OfferSyncRequest,
        /// Where the answer goes.
        channel: ResponseChannel<OfferSyncResponse>,
    },
    /// A first connection to a peer was established.
    PeerConnected(PeerId),
    /// The last connection to a peer closed.
    PeerDisconnected(PeerId),
    /// The node listens on a new address.
    Listening(Multiaddr),
}

/// A connected peer as the network sees it.
#[derive(Debug, Clone)]
pub struct PeerSummary {
    /// The peer.
    pub peer: PeerId,
    /// Addresses it is connected on.
    pub addresses: Vec<Multiaddr>,
    /// Last ping round trip.
    pub rtt: Option<Duration>,
    /// Agent version from identify.
    pub agent: Option<String>,
    /// Gossipsub score.
    pub score: Option<f64>,
}

type Reply<T> = oneshot::Sender<Result<T, NetworkError>>;

#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        data: Vec<u8>,
        reply: Reply<()>,
    },
    Verdict {
        message_id: MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    },
    Penalize {
        peer: PeerId,
        amount: f64,
    },
    Dial {
        addr: Multiaddr,
        reply: Reply<()>,
    },
    Negotiate {
        peer: PeerId,
        request: NegotiateRequest,
        reply: Reply<NegotiateResponse>,
    },
    Job {
        peer: PeerId,
        request: JobMessage,
        reply: Reply<JobReply>,
    },
    Sync {
        peer: PeerId,
        request: OfferSyncRequest,
        reply: Reply<OfferSyncResponse>,
    },
    RespondNegotiate {
        channel: ResponseChannel<NegotiateResponse>,
        response: NegotiateResponse,
    },
    RespondJob {
        channel: ResponseChannel<JobReply>,
        response: JobReply,
    },
    RespondSync {
        channel: ResponseChannel<OfferSyncResponse>,
        response: OfferSyncResponse,
    },
    ListenAddrs {
        reply: Reply<Vec<Multiaddr>>,
    },
    Peers {
        reply: Reply<Vec<PeerSummary>>,
    },
}

/// A cheap, cloneable handle to the network task.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    /// Emulated one-way latency of answers to this node's requests (zero unless link
    /// conditions are emulated; see [`LinkConditions`]).
    reply_latency: std::time::Duration,
}

impl NetworkHandle {
    /// This node's PeerId.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, NetworkError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| NetworkError::Shutdown)?;
        rx.await.map_err(|_| NetworkError::Shutdown)?
    }

    /// A peer's answer to a request, delivered as late as the emulated link allows.
    async fn answer<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, NetworkError> {
        let answer = self.call(make).await;
        if !self.reply_latency.is_zero() {
            tokio::time::sleep(self.reply_latency).await;
        }
        answer
    }

    async fn tell(&self, command: Command) -> Result<(), NetworkError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| NetworkError::Shutdown)
    }

    /// Publishes bytes on the offers topic.
    pub async fn publish(&self, data: Vec<u8>) -> Result<(), NetworkError> {
        self.call(|reply| Command::Publish { data, reply }).await
    }

    /// Reports the verdict on a gossip message (forward, drop, or drop and penalise).
    pub async fn report(
        &self,
        message_id: MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    ) -> Result<(), NetworkError> {
        self.tell(Command::Verdict {
            message_id,
            source,
            acceptance,
        })
        .await
    }

    /// Adds `amount` to a peer's penalty for abuse such as floods: its application score
    /// goes down by that much, and recovers as the penalty decays.
    pub async fn penalize(&self, peer: PeerId, amount: f64) -> Result<(), NetworkError> {
        self.tell(Command::Penalize { peer, amount }).await
    }

    /// Dials an address.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetworkError> {
        self.call(|reply| Command::Dial { addr, reply }).await
    }

    /// Sends a negotiation request and waits for the answer.
    pub async fn negotiate(
        &self,
        peer: PeerId,
        request: NegotiateRequest,
    ) -> Result<NegotiateResponse, NetworkError> {
        self.answer(|reply| Command::Negotiate {
            peer,
            request,
            reply,
        })
        .await
    }

    /// Sends a job request and waits for the answer.
    pub async fn job(&self, peer: PeerId, request: JobMessage) -> Result<JobReply, NetworkError> {
        self.answer(|reply| Command::Job {
            peer,
            request,
            reply,
        })
        .await
    }

    /// Asks a peer for a page of its offer book.
    pub async fn offer_sync(
        &self,
        peer: PeerId,
        request: OfferSyncRequest,
    ) -> Result<OfferSyncResponse, NetworkError> {
        self.answer(|reply| Command::Sync {
            peer,
            request,
            reply,
        })
        .await
    }

    /// Answers a negotiation request.
    pub async fn respond_negotiate(
        &self,
        channel: ResponseChannel<NegotiateResponse>,
        response: NegotiateResponse,
    ) -> Result<(), NetworkError> {
        self.tell(Command::RespondNegotiate { channel, response })
            .await
    }

    /// Answers a job request.
    pub async fn respond_job(
        &self,
        channel: ResponseChannel<JobReply>,
        response: JobReply,
    ) -> Result<(), NetworkError> {
        self.tell(Command::RespondJob { channel, response }).await
    }

    /// Answers an offer-sync request.
    pub async fn respond_sync(
        &self,
        channel: ResponseChannel<OfferSyncResponse>,
        response: OfferSyncResponse,
    ) -> Result<(), NetworkError> {
        self.tell(Command::RespondSync { channel, response }).await
    }

    /// The addresses the node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        self.call(|reply| Command::ListenAddrs { reply }).await
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerSummary>, NetworkError> {
        self.call(|reply| Command::Peers { reply }).await
    }
}

/// Builds the swarm, starts listening, dials the bootstrap peers, and spawns the event loop.
/// Returns the handle and the stream of events for the node service.
pub async fn start(
    key: Keypair,
    settings: NetworkSettings,
    listen: Vec<Multiaddr>,
    bootstrap: Vec<Multiaddr>,
    shutdown: CancellationToken,
) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
    let local_peer_id = key.public().to_peer_id();
    if let Some(c) = &settings.conditions {
        c.validate().map_err(NetworkError::Setup)?;
    }
    let mut swarm = event_loop::build_swarm(key, &settings)?;
    for addr in listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetworkError::Listen {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
    }
    for addr in bootstrap {
        if let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() {
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
        }
        swarm.dial(addr.clone()).map_err(|e| NetworkError::Dial {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
    }
    let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
    let topic = libp2p::gossipsub::IdentTopic::new(settings.network.offers_topic());
    let event_loop =
        event_loop::EventLoop::new(swarm, command_rx, event_tx, shutdown.clone(), topic);
    tokio::spawn(event_loop.run());
    let handle = NetworkHandle {
        commands: command_tx,
        local_peer_id,
        reply_latency: settings
            .conditions
            .map_or(std::time::Duration::ZERO, |c| c.latency),
    };
    let event_rx = match settings.conditions {
        Some(c) => conditions::apply(c, handle.clone(), event_rx, shutdown),
        None => event_rx,
    };
    Ok((handle, event_rx))
}
