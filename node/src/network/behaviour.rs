//! The composed libp2p behaviour of a Qubix node and its configuration: gossipsub with
//! application validation and peer scoring, request-response for negotiation, jobs and
//! offer sync, kademlia, identify, ping, mDNS, connection limits, and the NAT traversal
//! pieces (relay client, DCUtR, AutoNAT) so a node behind NAT can be reached.

use std::time::Duration;

use libp2p::gossipsub::{
    self, IdentTopic, MessageAuthenticity, PeerScoreParams, PeerScoreThresholds, TopicScoreParams,
};
use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, autonat, connection_limits, dcutr, identify, kad, mdns, ping, relay,
    request_response,
};
use qubix_protocol::codec::WireMessage;
use qubix_protocol::control::{JobMessage, JobReply};
use qubix_protocol::job::{NegotiateRequest, NegotiateResponse};
use qubix_protocol::market::{GossipMessage, OfferSyncRequest, OfferSyncResponse};
use qubix_protocol::topics::Network;

use super::NetworkError;
use super::codec::WireCodec;

/// Request-response behaviour of the negotiation protocol.
pub(crate) type NegotiateBehaviour =
    request_response::Behaviour<WireCodec<NegotiateRequest, NegotiateResponse>>;
/// Request-response behaviour of the job protocol.
pub(crate) type JobBehaviour = request_response::Behaviour<WireCodec<JobMessage, JobReply>>;
/// Request-response behaviour of the offer-sync protocol.
pub(crate) type SyncBehaviour =
    request_response::Behaviour<WireCodec<OfferSyncRequest, OfferSyncResponse>>;

/// The transports a swarm runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TransportKind {
    /// TCP and QUIC with DNS, and a relay client: what a node uses.
    #[default]
    TcpQuic,
    /// libp2p's in-process memory transport (`/memory/N` addresses), with the same noise
    /// and yamux upgrades: for tests that run several swarms in one process.
    Memory,
}

/// Limits and switches of the network layer.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    /// The network name (part of every topic and protocol id).
    pub network: Network,
    /// The transports the swarm runs on.
    pub transport: TransportKind,
    /// Whether to find LAN peers by mDNS.
    pub mdns: bool,
    /// Most established connections in total.
    pub max_connections: u32,
    /// Most established connections per peer.
    pub max_connections_per_peer: u32,
    /// How long a request-response exchange may take.
    pub request_timeout: Duration,
    /// Gossipsub heartbeat (shorter in tests for faster meshes).
    pub heartbeat: Duration,
    /// Emulated latency and loss on inbound events (tests and benchmarks on loopback only;
    /// never set by a node's configuration).
    pub conditions: Option<super::LinkConditions>,
}

impl NetworkSettings {
    /// Defaults for a network.
    pub fn new(network: Network) -> Self {
        Self {
            network,
            transport: TransportKind::TcpQuic,
            mdns: true,
            max_connections: 256,
            max_connections_per_peer: 2,
            request_timeout: Duration::from_secs(20),
            heartbeat: Duration::from_millis(700),
            conditions: None,
        }
    }
}

/// Everything a Qubix node speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) relay_client: relay::client::Behaviour,
    pub(crate) dcutr: dcutr::Behaviour,
    pub(crate) autonat: autonat::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) negotiate: NegotiateBehaviour,
    pub(crate) job: JobBehaviour,
    pub(crate) offer_sync: SyncBehaviour,
}

fn protocol(id: String) -> Result<StreamProtocol, NetworkError> {
    StreamProtocol::try_from_owned(id).map_err(|e| NetworkError::Setup(e.to_string()))
}

fn request_response<C>(
    id: String,
    timeout: Duration,
    streams: usize,
) -> Result<request_response::Behaviour<C>, NetworkError>
where
    C: request_response::Codec<Protocol = StreamProtocol> + Default + Clone + Send + 'static,
{
    let cfg = request_response::Config::default()
        .with_request_timeout(timeout)
        .with_max_concurrent_streams(streams);
    Ok(request_response::Behaviour::with_codec(
        C::default(),
        [(protocol(id)?, request_response::ProtocolSupport::Full)],
        cfg,
    ))
}

/// The frame limit given to gossipsub. gossipsub 0.50 compares it with everything buffered
/// when it decodes a frame (the frame, the frames behind it and up to 8 KiB read ahead), not
/// with the frame alone: a limit sized for one message closes an honest peer's stream as soon
/// as a few of its messages arrive together, and what it sends next is lost. So the limit
/// leaves room for the read-ahead; each message is still bounded by
/// [`GossipMessage::MAX_SIZE`], which the market checks before anything else and rejects
/// (at a cost to the sender's score) when it is exceeded.
pub(super) const GOSSIP_FRAME_LIMIT: usize = 64 * 1024;
// The largest honest frame (one message and gossipsub's envelope) plus the read-ahead.
const _: () = assert!(GOSSIP_FRAME_LIMIT >= GossipMessage::MAX_SIZE + 1024 + 8 * 1024);

/// Gossipsub: signed messages, application validation before forwarding, bounded frames,
/// and a scoring that punishes invalid messages hard. Mesh-delivery penalties are off: the
/// offers topic is quiet by nature, and under-delivery there is no misbehaviour.
fn gossipsub(
    key: &Keypair,
    settings: &NetworkSettings,
) -> Result<gossipsub::Behaviour, NetworkError> {
    let config = gossipsub::ConfigBuilder::default()
        .validate_messages()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .max_transmit_size(GOSSIP_FRAME_LIMIT)
        .heartbeat_interval(settings.heartbeat)
        .duplicate_cache_time(Duration::from_secs(120))
        .build()
        .map_err(|e| NetworkError::Setup(format!("gossipsub config: {e}")))?;
    let mut behaviour = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)
        .map_err(|e| NetworkError::Setup(format!("gossipsub: {e}")))?;
    let topic = IdentTopic::new(settings.network.offers_topic());
    let mut params = PeerScoreParams {
        app_specific_weight: 1.0,
        ..Default::default()
    };
    // Every node of a testnet on one machine shares 127.0.0.1; co-location is not a sign
    // of a Sybil there. On mainnet it is, wherever the peers are.
    if !settings.network.is_mainnet() {
        params
            .ip_colocation_factor_whitelist
            .insert(std::net::Ipv4Addr::LOCALHOST.into());
    }
    params.topics.insert(
        topic.hash(),
        TopicScoreParams {
            topic_weight: 1.0,
            // Small, bounded rewards for being a good mesh member (at most +36 and +50)…
            time_in_mesh_weight: 0.01,
            time_in_mesh_quantum: Duration::from_secs(1),
            time_in_mesh_cap: 3600.0,
            first_message_deliveries_weight: 1.0,
            first_message_deliveries_decay: 0.5,
            first_message_deliveries_cap: 50.0,
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            // …and a quadratic penalty for invalid messages that outweighs them at once.
            invalid_message_deliveries_weight: -100.0,
            invalid_message_deliveries_decay: 0.9,
            ..Default::default()
        },
    );
    behaviour
        .with_peer_score(params, PeerScoreThresholds::default())
        .map_err(|e| NetworkError::Setup(format!("gossipsub scoring: {e}")))?;
    behaviour
        .subscribe(&topic)
        .map_err(|e| NetworkError::Setup(format!("subscribe: {e}")))?;
    Ok(behaviour)
}

impl Behaviour {
    /// Builds the behaviour for `key` on `settings.network`.
    pub(crate) fn new(
        key: &Keypair,
        relay_client: relay::client::Behaviour,
        settings: &NetworkSettings,
    ) -> Result<Self, NetworkError> {
        let peer_id = key.public().to_peer_id();
        let net = &settings.network;
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(settings.max_connections))
            .with_max_established_per_peer(Some(settings.max_connections_per_peer))
            .with_max_pending_incoming(Some(64));
        let mut kad_config = kad::Config::new(protocol(net.kad_protocol())?);
        kad_config.set_query_timeout(Duration::from_secs(30));
        let mut kad =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        kad.set_mode(Some(kad::Mode::Server));
        let mdns = if settings.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(|e| NetworkError::Setup(format!("mDNS: {e}")))?,
            )
        } else {
            None
        };
        let timeout = settings.request_timeout;
        Ok(Self {
            limits: connection_limits::Behaviour::new(limits),
            relay_client,
            dcutr: dcutr::Behaviour::new(peer_id),
            autonat: autonat::Behaviour::new(peer_id, autonat::Config::default()),
            identify: identify::Behaviour::new(
                identify::Config::new(format!("/qubix/{net}/id/1"), key.public())
                    .with_agent_version(format!("qubix/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15))),
            kad,
            mdns: mdns.into(),
            gossipsub: gossipsub(key, settings)?,
            negotiate: request_response(net.negotiate_protocol(), timeout, 64)?,
            job: request_response(net.job_protocol(), timeout, 64)?,
            offer_sync: request_response(net.offer_sync_protocol(), timeout, 16)?,
        })
    }
}
