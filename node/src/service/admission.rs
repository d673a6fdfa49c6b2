//! The provider's side of negotiation: proposals are admitted by the desk once the paying
//! identity's chain balance is known (one cached lookup per identity, deduplicated, in a
//! task), countersignatures are confirmed against the exact terms offered, and confirmed
//! agreements become job records.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::PeerId;
use libp2p::request_response::ResponseChannel;
use qubix_ledger::qubic::Identity;
use qubix_ledger::settle::Settlement;
use qubix_protocol::control::JobState;
use qubix_protocol::job::{
    Agreement, JobRequest, NegotiateRequest, NegotiateResponse, RejectCode, Rejection,
};
use qubix_protocol::{Envelope, NodeId, Nonce, Qu, UnixMillis};
use tracing::{debug, info, warn};

use super::{Internal, Service, ServiceError};
use crate::negotiation::{Hold, Reservation, terms_digest};
use crate::store::{JobRecord, Role};

/// How long a paying identity's balance is trusted before it is read again.
const BALANCE_TTL: Duration = Duration::from_secs(10);
/// Most balances remembered.
const MAX_BALANCES: usize = 10_000;
/// Most proposals waiting for one identity's balance.
const MAX_WAITING_PER_PAYER: usize = 64;
/// Most identities whose balance is being read at once.
const MAX_LOOKUPS: usize = 32;
/// How long a balance lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A proposal waiting for its paying identity's balance.
pub(crate) struct Waiting {
    peer: NodeId,
    envelope: Envelope,
    nonce: Nonce,
    channel: ResponseChannel<NegotiateResponse>,
}

/// The paying identities' balances this provider knows, and the proposals waiting for one.
#[derive(Default)]
pub(crate) struct Admission {
    balances: HashMap<String, (Qu, tokio::time::Instant)>,
    waiting: HashMap<String, Vec<Waiting>>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("balances", &self.balances.len())
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

impl Admission {
    fn fresh_balance(&self, identity: &str) -> Option<Qu> {
        self.balances
            .get(identity)
            .filter(|(_, at)| at.elapsed() < BALANCE_TTL)
            .map(|(b, _)| *b)
    }

    fn remember(&mut self, identity: String, balance: Qu) {
        if self.balances.len() >= MAX_BALANCES {
            self.balances
                .retain(|_, (_, at)| at.elapsed() < BALANCE_TTL);
        }
        if self.balances.len() < MAX_BALANCES {
            self.balances
                .insert(identity, (balance, tokio::time::Instant::now()));
        }
    }
}

fn reject(nonce: Nonce, code: RejectCode) -> NegotiateResponse {
    NegotiateResponse::Rejected(Rejection { nonce, code })
}

impl Service {
    pub(super) async fn on_negotiate(
        &mut self,
        peer: PeerId,
        request: NegotiateRequest,
        channel: ResponseChannel<NegotiateResponse>,
    ) {
        let no_nonce = Nonce::from_bytes([0; 16]);
        let Ok(node) = NodeId::from_peer_id(&peer) else {
            return self
                .respond(channel, reject(no_nonce, RejectCode::BadSignature))
                .await;
        };
        if self.provider.is_none() {
            return self
                .respond(channel, reject(no_nonce, RejectCode::UnknownOffer))
                .await;
        }
        if !self.negotiate_rate.allow(&peer, UnixMillis::now()) {
            return self
                .respond(channel, reject(no_nonce, RejectCode::RateLimited))
                .await;
        }
        if matches!(request, NegotiateRequest::Propose(_)) && self.runtime_down().is_some() {
            // Asked again before every admission while it is down.
            self.check_runtime(UnixMillis::now());
            return self
                .respond(channel, reject(no_nonce, RejectCode::Unavailable))
                .await;
        }
        match request {
            NegotiateRequest::Propose(envelope) => self.on_proposal(node, envelope, channel).await,
            NegotiateRequest::Countersign(agreement) => {
                let response = self.on_countersign(&node, agreement);
                self.respond(channel, response).await;
            }
        }
    }

    async fn respond(
        &self,
        channel: ResponseChannel<NegotiateResponse>,
        response: NegotiateResponse,
    ) {
        let _ = self.net.respond_negotiate(channel, response).await;
    }

    /// A proposal: admitted at once when its payer's balance is fresh, else after one lookup
    /// shared by every proposal of that payer that arrives meanwhile.
    async fn on_proposal(
        &mut self,
        peer: NodeId,
        envelope: Envelope,
        channel: ResponseChannel<NegotiateResponse>,
    ) {
        let opened = envelope.open_from::<JobRequest>(&self.network_name, &peer);
        let Ok(request) = opened else {
            let nonce = Nonce::from_bytes([0; 16]);
            return self
                .respond(channel, reject(nonce, RejectCode::BadSignature))
                .await;
        };
        let (nonce, pay_from) = (request.payload().nonce, request.payload().pay_from.clone());
        if let Some(balance) = self.admission.fresh_balance(&pay_from) {
            let response = self.admit(&peer, &envelope, nonce, Some(balance)).await;
            return self.respond(channel, response).await;
        }
        let lookups = self.admission.waiting.len();
        let queue = self.admission.waiting.entry(pay_from.clone()).or_default();
        let first = queue.is_empty();
        if queue.len() >= MAX_WAITING_PER_PAYER || (first && lookups >= MAX_LOOKUPS) {
            if first {
                self.admission.waiting.remove(&pay_from);
            }
            return self
                .respond(channel, reject(nonce, RejectCode::Unavailable))
                .await;
        }
        queue.push(Waiting {
            peer,
            envelope,
            nonce,
            channel,
        });
        if first {
            self.look_up_balance(pay_from);
        }
    }

    /// Reads `identity`'s chain balance in a task; the answer comes back as
    /// `Internal::Balance` (`None` when it could not be read).
    fn look_up_balance(&self, identity: String) {
        let settlement = self.settlement.clone();
        let internal = self.internal_tx.clone();
        self.spawn(async move {
            let balance = match (settlement, identity.parse::<Identity>()) {
                (Some(s), Ok(id)) => {
                    match tokio::time::timeout(LOOKUP_TIMEOUT, s.balance(&id)).await {
                        Ok(Ok(b)) => Some(b),
                        Ok(Err(e)) => {
                            warn!(payer = %identity, error = %e, "cannot read a payer's balance");
                            None
                        }
                        Err(_) => None,
                    }
                }
                _ => None,
            };
            let _ = internal.send(Internal::Balance { identity, balance }).await;
        });
    }

    /// A payer's balance arrived: the proposals waiting for it are admitted, in order.
    pub(super) async fn on_balance(&mut self, identity: String, balance: Option<Qu>) {
        if let Some(b) = balance {
            self.admission.remember(identity.clone(), b);
        }
        let waiting = self.admission.waiting.remove(&identity).unwrap_or_default();
        debug!(payer = %identity, ?balance, proposals = waiting.len(), "payer's balance read");
        for w in waiting {
            let response = self.admit(&w.peer, &w.envelope, w.nonce, balance).await;
            self.respond(w.channel, response).await;
        }
    }

    async fn admit(
        &mut self,
        peer: &NodeId,
        envelope: &Envelope,
        nonce: Nonce,
        balance: Option<Qu>,
    ) -> NegotiateResponse {
        let now = UnixMillis::now();
        match self
            .desk
            .admit(self.key.signing_key(), envelope, peer, balance, now)
        {
            Ok(terms) => {
                info!(consumer = %peer, agreement = %terms.payload().agreement_id, "terms offered");
                self.publish_offers().await;
                NegotiateResponse::Terms(terms.envelope().clone())
            }
            Err(code) => {
                info!(consumer = %peer, ?code, "request refused");
                reject(nonce, code)
            }
        }
    }

    fn on_countersign(&mut self, peer: &NodeId, agreement: Agreement) -> NegotiateResponse {
        let no_nonce = Nonce::from_bytes([0; 16]);
        match self.desk.confirm(&agreement, peer, UnixMillis::now()) {
            Ok(terms) => {
                let id = terms.payload().agreement_id;
                match self.provider_record(agreement) {
                    Ok(()) => NegotiateResponse::Confirmed(id),
                    Err(e) => {
                        warn!(error = %e, "cannot persist agreement");
                        reject(no_nonce, RejectCode::Unavailable)
                    }
                }
            }
            Err(code) => {
                info!(consumer = %peer, ?code, "countersignature refused");
                reject(no_nonce, code)
            }
        }
    }

    fn provider_record(&mut self, agreement: Agreement) -> Result<(), ServiceError> {
        let terms = agreement
            .verify(&self.network_name)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let t = terms.payload();
        if self.jobs.contains_key(&t.agreement_id) {
            return Ok(());
        }
        let request = t
            .open_request(&self.network_name)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let reservation = self.desk.reservations().get(&t.agreement_id).cloned();
        let id = t.agreement_id;
        let offer_id = request.payload().offer_id;
        let mut record = JobRecord::new(agreement, Role::Provider, offer_id, UnixMillis::now());
        record.gpu_model = self.reserved_model(reservation.as_ref());
        record.simulated = self
            .provider
            .as_ref()
            .is_some_and(|p| p.probe().kind() == "simulated");
        record.gpu_uuids = reservation.map(|r| r.gpus).unwrap_or_default();
        self.store.put_job(&id, &record)?;
        self.jobs.insert(id, record);
        self.start_provider_job(id);
        Ok(())
    }

    /// The model of the GPUs a reservation holds, from this node's own probe.
    fn reserved_model(&self, reservation: Option<&Reservation>) -> String {
        let (Some(p), Some(r)) = (&self.provider, reservation) else {
            return String::new();
        };
        let probe = p.probe();
        probe
            .devices()
            .iter()
            .find(|d| r.gpus.contains(&d.uuid))
            .map(|d| d.model.clone())
            .unwrap_or_default()
    }

    /// Re-reserves capacity for provider jobs that are still live after a restart.
    pub(super) fn restore_reservations(&mut self) {
        for (id, job) in &self.jobs {
            if job.role != Role::Provider || job.state.is_final() {
                continue;
            }
            let Ok(terms) = job.terms(&self.network_name) else {
                continue;
            };
            let t = terms.payload();
            let Ok(request) = t.open_request(&self.network_name) else {
                continue;
            };
            let r = request.payload();
            let hold = if job.state == JobState::Negotiated {
                Hold::Agreed(t.fund_by)
            } else {
                Hold::Active
            };
            let reservation = Reservation {
                offer_id: r.offer_id,
                consumer: t.consumer,
                gpus: job.gpu_uuids.clone(),
                cpu_cores: r.cpu_cores,
                ram_mib: r.ram_mib,
                disk_gib: r.disk_gib,
                hold,
                pay_from: t.pay_from.clone(),
                first_window: t.window_cost(),
                terms_digest: terms_digest(&job.agreement.terms),
            };
            self.desk.restore(*id, reservation);
        }
    }
}
