//! Codec limits between two swarms in one process over libp2p's memory transport: oversize
//! `negotiate/1` and `offer-sync/1` frames, as requests to the node and as responses to its
//! own requests, are refused by the codec at once and without an allocation for the claimed
//! length. The node side is the real network layer; the attacker is a bare swarm whose codec
//! writes whatever bytes it is given.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::request_response::{self, OutboundFailure, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{PeerId, StreamProtocol, Swarm, Transport, noise, yamux};
use qubix_node::network::{NetworkError, NetworkEvent};
use qubix_protocol::Signed;
use qubix_protocol::codec::{self, WireMessage};
use qubix_protocol::job::{NegotiateRequest, NegotiateResponse};
use qubix_protocol::market::{OfferSyncRequest, OfferSyncResponse};

use common::{Peer, WAIT, network, next_event, start_peer};

/// A frame length no honest peer sends and no codec may allocate for.
const HUGE: u32 = 1 << 30;
/// Larger than anything the stack allocates at once while the oversize frames go by
/// (the largest accepted frame, an offer-sync page, is about 1.2 MB).
const ALLOCATION_CEILING: usize = 8 << 20;

// ---- The largest single allocation, process-wide -------------------------------------

/// Forwards to the system allocator and remembers the largest allocation asked for, so a
/// test can show that a length prefix of a gigabyte was not followed by an allocation.
struct PeakAlloc;

static PEAK: AtomicUsize = AtomicUsize::new(0);

// Counting needs a global allocator, and implementing one is unsafe by definition; every
// call forwards unchanged to `System`.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        PEAK.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        PEAK.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        PEAK.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: `ptr` and `layout` come from this allocator, which is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` come from this allocator, which is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

fn reset_peak() {
    PEAK.store(0, Ordering::Relaxed);
}

fn assert_no_allocation_near(claimed: u32) {
    let peak = PEAK.load(Ordering::Relaxed);
    assert!(
        peak < ALLOCATION_CEILING,
        "a {claimed}-byte length prefix was followed by a {peak}-byte allocation"
    );
}

/// A codec that writes requests and responses as given, byte for byte, and reads at most
/// 64 KiB: what a misbehaving peer's codec would be.
#[derive(Debug, Clone, Default)]
struct RawCodec;

async fn read_some<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    io.take(64 * 1024).read_to_end(&mut bytes).await?;
    if bytes.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(bytes)
}

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_some(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_some(io).await
    }

    // Requests are not closed after writing: a codec that waited for the claimed body
    // would wait until its timeout, which the tests tell apart from a prompt refusal.
    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        bytes: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&bytes).await?;
        io.flush().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        bytes: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&bytes).await?;
        io.close().await
    }
}

#[derive(NetworkBehaviour)]
struct Raw {
    negotiate: request_response::Behaviour<RawCodec>,
    offer_sync: request_response::Behaviour<RawCodec>,
}

fn raw_protocol(id: String) -> request_response::Behaviour<RawCodec> {
    let protocol = StreamProtocol::try_from_owned(id).unwrap();
    let config = request_response::Config::default().with_request_timeout(Duration::from_secs(60));
    request_response::Behaviour::new([(protocol, ProtocolSupport::Full)], config)
}

/// A bare swarm on the memory transport speaking raw `negotiate/1` and `offer-sync/1`,
/// connected to `node`.
async fn attacker(node: &mut Peer) -> Swarm<Raw> {
    type BuildError = Box<dyn std::error::Error + Send + Sync>;
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(|key| -> Result<_, BuildError> {
            Ok(MemoryTransport::default()
                .upgrade(upgrade::Version::V1)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default()))
        })
        .unwrap()
        .with_behaviour(|_| Raw {
            negotiate: raw_protocol(network().negotiate_protocol()),
            offer_sync: raw_protocol(network().offer_sync_protocol()),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.dial(node.addr.clone()).unwrap();
    let me = *swarm.local_peer_id();
    drive(&mut swarm, "the attacker's connection", |_, e| {
        matches!(e, SwarmEvent::ConnectionEstablished { .. }).then_some(())
    })
    .await;
    next_event(&mut node.events, "the attacker's connection", |e| {
        matches!(e, NetworkEvent::PeerConnected(p) if p == me).then_some(())
    })
    .await;
    swarm
}

/// Polls the attacker's swarm until `on` takes one of its events.
async fn drive<T>(
    swarm: &mut Swarm<Raw>,
    what: &str,
    mut on: impl FnMut(&mut Swarm<Raw>, SwarmEvent<RawEvent>) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let event = swarm.select_next_some().await;
            if let Some(found) = on(swarm, event) {
                return found;
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
}

/// Keeps the attacker's swarm going until `call` (the node's own request) returns.
async fn drive_until<T>(swarm: &mut Swarm<Raw>, call: tokio::task::JoinHandle<T>) -> T {
    let mut call = std::pin::pin!(call);
    let done = tokio::time::timeout(WAIT, async {
        loop {
            tokio::select! {
                result = &mut call => return result.unwrap(),
                _ = swarm.select_next_some() => {}
            }
        }
    })
    .await;
    done.unwrap_or_else(|_| panic!("the node's request did not end within {WAIT:?}"))
}

/// A frame whose length prefix says `claimed` bytes, followed by `body` bytes.
fn frame(claimed: u32, body: usize) -> Vec<u8> {
    let mut bytes = claimed.to_be_bytes().to_vec();
    bytes.resize(4 + body, 0xA5);
    bytes
}

fn over_limit<M: WireMessage>() -> u32 {
    u32::try_from(M::MAX_SIZE + 1).unwrap()
}

type RawBehaviourEvent = request_response::Event<Vec<u8>, Vec<u8>>;

fn outcome_of(
    event: SwarmEvent<RawEvent>,
    id: request_response::OutboundRequestId,
) -> Option<Result<Vec<u8>, OutboundFailure>> {
    let event: RawBehaviourEvent = match event {
        SwarmEvent::Behaviour(RawEvent::Negotiate(e) | RawEvent::OfferSync(e)) => e,
        _ => return None,
    };
    match event {
        request_response::Event::OutboundFailure {
            request_id, error, ..
        } if request_id == id => Some(Err(error)),
        request_response::Event::Message {
            message:
                request_response::Message::Response {
                    request_id,
                    response,
                },
            ..
        } if request_id == id => Some(Ok(response)),
        _ => None,
    }
}

/// Sends raw `bytes` on the protocol `pick` chooses and returns how the request ended.
async fn send_raw(
    swarm: &mut Swarm<Raw>,
    node: PeerId,
    pick: fn(&mut Raw) -> &mut request_response::Behaviour<RawCodec>,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, OutboundFailure> {
    let id = pick(swarm.behaviour_mut()).send_request(&node, bytes);
    drive(swarm, "the end of the raw request", |_, e| {
        outcome_of(e, id)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_request_frames_are_refused_by_the_codec_without_allocating() {
    let mut node = start_peer(1, vec![]).await;
    let node_id = node.net.local_peer_id();
    let mut swarm = attacker(&mut node).await;
    let negotiate: fn(&mut Raw) -> &mut _ = |b| &mut b.negotiate;
    let offer_sync: fn(&mut Raw) -> &mut _ = |b| &mut b.offer_sync;
    let negotiate_over = over_limit::<NegotiateRequest>();
    let sync_over = over_limit::<OfferSyncRequest>();
    let cases = [
        (
            "negotiate/1, one byte over",
            negotiate,
            frame(negotiate_over, negotiate_over as usize),
        ),
        (
            "negotiate/1, a gigabyte claimed",
            negotiate,
            frame(HUGE, 1024),
        ),
        (
            "offer-sync/1, one byte over",
            offer_sync,
            frame(sync_over, sync_over as usize),
        ),
        (
            "offer-sync/1, a gigabyte claimed",
            offer_sync,
            frame(HUGE, 1024),
        ),
    ];
    for (name, protocol, bytes) in cases {
        let claimed = u32::from_be_bytes(bytes[..4].try_into().unwrap());
        reset_peak();
        let ended = send_raw(&mut swarm, node_id, protocol, bytes).await;
        // Refused at once: the node drops the stream instead of waiting for the body
        // (its request timeout is a minute, longer than the wait).
        match ended {
            Err(OutboundFailure::Io(_)) => {}
            other => panic!("{name}: expected the stream to be refused, got {other:?}"),
        }
        assert_no_allocation_near(claimed);
    }
    // The connection still serves requests within the limit, and none of the oversize
    // ones reached the service.
    let request = OfferSyncRequest {
        after: None,
        limit: 3,
    };
    let body = codec::encode(&request).unwrap();
    let mut bytes = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    bytes.extend_from_slice(&body);
    let id = swarm
        .behaviour_mut()
        .offer_sync
        .send_request(&node_id, bytes);
    let channel = tokio::select! {
        channel = next_event(&mut node.events, "the valid request", |e| match e {
            NetworkEvent::OfferSync { request: got, channel, .. } => {
                assert_eq!(got, request);
                Some(channel)
            }
            NetworkEvent::Negotiate { .. } => panic!("an oversize request reached the service"),
            _ => None,
        }) => channel,
        _ = drive(&mut swarm, "nothing", |_, _| None::<()>) => unreachable!(),
    };
    let response = OfferSyncResponse {
        offers: vec![],
        next: None,
    };
    node.net
        .respond_sync(channel, response.clone())
        .await
        .unwrap();
    let answer = drive(&mut swarm, "the answer", |_, e| outcome_of(e, id))
        .await
        .unwrap();
    let decoded: OfferSyncResponse = codec::decode(&answer[4..]).unwrap();
    assert_eq!(decoded, response);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_response_frames_are_refused_by_the_codec_without_allocating() {
    let mut node = start_peer(1, vec![]).await;
    let mut swarm = attacker(&mut node).await;
    let attacker_id = *swarm.local_peer_id();
    let sync_over = over_limit::<OfferSyncResponse>();
    let negotiate_over = over_limit::<NegotiateResponse>();
    let cases = [
        (
            "offer-sync/1, one byte over",
            true,
            frame(sync_over, sync_over as usize),
        ),
        ("offer-sync/1, a gigabyte claimed", true, frame(HUGE, 1024)),
        (
            "negotiate/1, one byte over",
            false,
            frame(negotiate_over, negotiate_over as usize),
        ),
        ("negotiate/1, a gigabyte claimed", false, frame(HUGE, 1024)),
    ];
    for (name, sync, answer) in cases {
        let claimed = u32::from_be_bytes(answer[..4].try_into().unwrap());
        let net = node.net.clone();
        let call = tokio::spawn(async move {
            if sync {
                let request = OfferSyncRequest {
                    after: None,
                    limit: 10,
                };
                net.offer_sync(attacker_id, request).await.map(|_| ())
            } else {
                net.negotiate(attacker_id, propose()).await.map(|_| ())
            }
        });
        let channel = drive(&mut swarm, "the node's request", |_, e| match e {
            SwarmEvent::Behaviour(RawEvent::Negotiate(e) | RawEvent::OfferSync(e)) => match e {
                request_response::Event::Message {
                    message: request_response::Message::Request { channel, .. },
                    ..
                } => Some(channel),
                _ => None,
            },
            _ => None,
        })
        .await;
        reset_peak();
        let behaviour = swarm.behaviour_mut();
        let protocol = if sync {
            &mut behaviour.offer_sync
        } else {
            &mut behaviour.negotiate
        };
        protocol.send_response(channel, answer).unwrap();
        match drive_until(&mut swarm, call).await {
            Err(NetworkError::Request { reason, .. }) => assert!(
                reason.contains("exceeds the limit"),
                "{name}: refused for another reason: {reason}"
            ),
            other => panic!("{name}: expected the codec to refuse the answer, got {other:?}"),
        }
        assert_no_allocation_near(claimed);
    }
}

fn propose() -> NegotiateRequest {
    let request = qubix_protocol::testing::job_request(1, 2);
    let signed = Signed::sign(request, &qubix_protocol::testing::key(1), &network()).unwrap();
    NegotiateRequest::Propose(signed.envelope().clone())
}
