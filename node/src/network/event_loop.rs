//! The task that owns the swarm. It turns commands into swarm calls, swarm events into
//! [`NetworkEvent`]s, and keeps the replies of requests in flight. It never awaits the node
//! service: events go out with `try_send`, and what does not fit is dropped and counted.

use qubix_protocol::UnixMillis;
use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{
    Multiaddr, PeerId, Swarm, Transport, identify, kad, mdns, noise, ping, relay, tcp, yamux,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::behaviour::{Behaviour, BehaviourEvent, NetworkSettings, TransportKind};
use super::{Command, NetworkError, NetworkEvent, PeerSummary, Reply};

/// Most outbound requests awaiting an answer, per protocol.
const MAX_IN_FLIGHT: usize = 1024;

type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// Builds the swarm on the transports `settings` choose, with noise, yamux, a relay client
/// and the Qubix behaviour.
pub(crate) fn build_swarm(
    key: Keypair,
    settings: &NetworkSettings,
) -> Result<Swarm<Behaviour>, NetworkError> {
    match settings.transport {
        TransportKind::TcpQuic => tcp_quic_swarm(key, settings),
        TransportKind::Memory => memory_swarm(key, settings),
    }
}

fn setup(e: &dyn std::fmt::Display) -> NetworkError {
    NetworkError::Setup(e.to_string())
}

fn behaviour(
    settings: &NetworkSettings,
) -> impl FnOnce(&Keypair, relay::client::Behaviour) -> Result<Behaviour, BuildError> + '_ {
    |key, relay| Behaviour::new(key, relay, settings).map_err(Box::from)
}

fn swarm_config(config: libp2p::swarm::Config) -> libp2p::swarm::Config {
    config.with_idle_connection_timeout(Duration::from_secs(120))
}

/// TCP and QUIC, DNS, relay client: what a node runs on.
fn tcp_quic_swarm(
    key: Keypair,
    settings: &NetworkSettings,
) -> Result<Swarm<Behaviour>, NetworkError> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| setup(&e))?
        .with_quic()
        .with_dns()
        .map_err(|e| setup(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| setup(&e))?
        .with_behaviour(behaviour(settings))
        .map_err(|e| setup(&e))?
        .with_swarm_config(swarm_config)
        .build();
    Ok(swarm)
}

/// The in-process memory transport with the same upgrades, so tests run the real
/// behaviour, codecs and validation between swarms in one process.
fn memory_swarm(
    key: Keypair,
    settings: &NetworkSettings,
) -> Result<Swarm<Behaviour>, NetworkError> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|key| -> Result<_, BuildError> {
            Ok(MemoryTransport::default()
                .upgrade(upgrade::Version::V1)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default()))
        })
        .map_err(|e| setup(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| setup(&e))?
        .with_behaviour(behaviour(settings))
        .map_err(|e| setup(&e))?
        .with_swarm_config(swarm_config)
        .build();
    Ok(swarm)
}

#[derive(Default)]
struct PeerState {
    addresses: Vec<Multiaddr>,
    rtt: Option<Duration>,
    agent: Option<String>,
}

struct InFlight<T>(HashMap<OutboundRequestId, Reply<T>>);

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<T> InFlight<T> {
    fn is_full(&self) -> bool {
        self.0.len() >= MAX_IN_FLIGHT
    }

    fn insert(&mut self, id: OutboundRequestId, reply: Reply<T>) {
        self.0.insert(id, reply);
    }

    fn resolve(&mut self, id: OutboundRequestId, result: Result<T, NetworkError>) {
        if let Some(reply) = self.0.remove(&id) {
            let _ = reply.send(result);
        }
    }
}

pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    shutdown: CancellationToken,
    topic: IdentTopic,
    peers: HashMap<PeerId, PeerState>,
    negotiations: InFlight<qubix_protocol::job::NegotiateResponse>,
    jobs: InFlight<qubix_protocol::control::JobReply>,
    syncs: InFlight<qubix_protocol::market::OfferSyncResponse>,
    dropped_events: u64,
    bootstrapped: bool,
    penalties: super::penalty::Penalties<PeerId>,
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetworkEvent>,
        shutdown: CancellationToken,
        topic: IdentTopic,
    ) -> Self {
        Self {
            swarm,
            commands,
            events,
            shutdown,
            topic,
            peers: HashMap::new(),
            negotiations: InFlight::default(),
            jobs: InFlight::default(),
            syncs: InFlight::default(),
            dropped_events: 0,
            bootstrapped: false,
            penalties: super::penalty::Penalties::default(),
        }
    }

    pub(crate) async fn run(mut self) {
        let mut kad_refresh = tokio::time::interval(Duration::from_secs(300));
        let mut decay = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = kad_refresh.tick() => { let _ = self.swarm.behaviour_mut().kad.bootstrap(); }
                _ = decay.tick() => self.decay_penalties(),
            }
        }
        info!(dropped_events = self.dropped_events, "network task stopped");
    }

    /// Lets penalties fade: each penalised peer's application score follows its decayed
    /// penalty.
    fn decay_penalties(&mut self) {
        if self.penalties.is_empty() {
            return;
        }
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        for (peer, score) in self.penalties.decay(UnixMillis::now()) {
            gossipsub.set_application_score(&peer, score);
        }
    }

    /// Hands an event to the service; false (and counted) when its queue is full.
    fn emit(&mut self, event: NetworkEvent) -> bool {
        let sent = self.events.try_send(event).is_ok();
        if !sent {
            self.dropped_events += 1;
        }
        sent
    }

    fn on_command(&mut self, command: Command) {
        let b = self.swarm.behaviour_mut();
        match command {
            Command::Publish { data, reply } => {
                let result = b
                    .gossipsub
                    .publish(self.topic.clone(), data)
                    .map(|_| ())
                    .map_err(|e| NetworkError::Publish(e.to_string()));
                let _ = reply.send(result);
            }
            Command::Verdict {
                message_id,
                source,
                acceptance,
            } => {
                b.gossipsub
                    .report_message_validation_result(&message_id, &source, acceptance);
            }
            Command::Penalize { peer, amount } => {
                let score = self.penalties.add(&peer, amount, UnixMillis::now());
                b.gossipsub.set_application_score(&peer, score);
            }
            Command::Dial { addr, reply } => {
                let result = self
                    .swarm
                    .dial(addr.clone())
                    .map_err(|e| NetworkError::Dial {
                        addr: addr.to_string(),
                        reason: e.to_string(),
                    });
                let _ = reply.send(result);
            }
            Command::Negotiate {
                peer,
                request,
                reply,
            } => {
                if self.negotiations.is_full() {
                    let _ = reply.send(Err(NetworkError::Request {
                        peer,
                        reason: "too many negotiations in flight".into(),
                    }));
                } else {
                    let id = b.negotiate.send_request(&peer, request);
                    self.negotiations.insert(id, reply);
                }
            }
            Command::Job {
                peer,
                request,
                reply,
            } => {
                if self.jobs.is_full() {
                    let _ = reply.send(Err(NetworkError::Request {
                        peer,
                        reason: "too many job requests in flight".into(),
                    }));
                } else {
                    let id = b.job.send_request(&peer, request);
                    self.jobs.insert(id, reply);
                }
            }
            Command::Sync {
                peer,
                request,
                reply,
            } => {
                if self.syncs.is_full() {
                    let _ = reply.send(Err(NetworkError::Request {
                        peer,
                        reason: "too many syncs in flight".into(),
                    }));
                } else {
                    let id = b.offer_sync.send_request(&peer, request);
                    self.syncs.insert(id, reply);
                }
            }
            Command::RespondNegotiate { channel, response } => {
                let _ = b.negotiate.send_response(channel, response);
            }
            Command::RespondJob { channel, response } => {
                let _ = b.job.send_response(channel, response);
            }
            Command::RespondSync { channel, response } => {
                let _ = b.offer_sync.send_response(channel, response);
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(Ok(self.swarm.listeners().cloned().collect()));
            }
            Command::Peers { reply } => {
                let _ = reply.send(Ok(self.peer_summaries()));
            }
        }
    }

    fn peer_summaries(&self) -> Vec<PeerSummary> {
        self.peers
            .iter()
            .map(|(peer, state)| PeerSummary {
                peer: *peer,
                addresses: state.addresses.clone(),
                rtt: state.rtt,
                agent: state.agent.clone(),
                score: self.swarm.behaviour().gossipsub.peer_score(peer),
            })
            .collect()
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                let _ = self.emit(NetworkEvent::Listening(address));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                let state = self.peers.entry(peer_id).or_default();
                let addr = endpoint.get_remote_address().clone();
                if !state.addresses.contains(&addr) && state.addresses.len() < 8 {
                    state.addresses.push(addr);
                }
                if num_established.get() == 1 {
                    debug!(peer = %peer_id, "peer connected");
                    let _ = self.emit(NetworkEvent::PeerConnected(peer_id));
                    if !self.bootstrapped {
                        self.bootstrapped = self.swarm.behaviour_mut().kad.bootstrap().is_ok();
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                debug!(peer = %peer_id, "peer disconnected");
                self.peers.remove(&peer_id);
                let _ = self.emit(NetworkEvent::PeerDisconnected(peer_id));
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(peer = ?peer_id, %error, "outgoing connection failed");
            }
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let event = NetworkEvent::Gossip {
                    source: message.source,
                    propagation_source,
                    message_id: message_id.clone(),
                    data: message.data,
                };
                if !self.emit(event) {
                    // The service is behind: drop without penalising the sender.
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Ignore,
                        );
                }
            }
            BehaviourEvent::Negotiate(event) => self.on_negotiate(event),
            BehaviourEvent::Job(event) => self.on_job(event),
            BehaviourEvent::OfferSync(event) => self.on_sync(event),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                for addr in info.listen_addrs.iter().take(8) {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, addr.clone());
                }
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.agent = Some(info.agent_version.chars().take(64).collect());
                }
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => {
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.rtt = Some(rtt);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    if !self.swarm.is_connected(&peer) {
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated { peer, .. }) => {
                debug!(%peer, "routing table updated");
            }
            _ => {}
        }
    }

    fn on_negotiate(
        &mut self,
        event: request_response::Event<
            qubix_protocol::job::NegotiateRequest,
            qubix_protocol::job::NegotiateResponse,
        >,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let _ = self.emit(NetworkEvent::Negotiate {
                        peer,
                        request,
                        channel,
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => self.negotiations.resolve(request_id, Ok(response)),
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.negotiations.resolve(
                    request_id,
                    Err(NetworkError::Request {
                        peer,
                        reason: error.to_string(),
                    }),
                );
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                warn!(%peer, %error, "inbound negotiation failed")
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_job(
        &mut self,
        event: request_response::Event<
            qubix_protocol::control::JobMessage,
            qubix_protocol::control::JobReply,
        >,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let _ = self.emit(NetworkEvent::Job {
                        peer,
                        request,
                        channel,
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => self.jobs.resolve(request_id, Ok(response)),
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.jobs.resolve(
                    request_id,
                    Err(NetworkError::Request {
                        peer,
                        reason: error.to_string(),
                    }),
                );
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound job request failed")
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_sync(
        &mut self,
        event: request_response::Event<
            qubix_protocol::market::OfferSyncRequest,
            qubix_protocol::market::OfferSyncResponse,
        >,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let _ = self.emit(NetworkEvent::OfferSync {
                        peer,
                        request,
                        channel,
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => self.syncs.resolve(request_id, Ok(response)),
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.syncs.resolve(
                    request_id,
                    Err(NetworkError::Request {
                        peer,
                        reason: error.to_string(),
                    }),
                );
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound offer sync failed")
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}
