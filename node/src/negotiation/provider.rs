//! The provider's desk: admission of job requests and reservation of capacity. Pure state
//! machine: the request, the inventory and `now` in; signed terms or a coded rejection out.
//! Capacity is reserved when terms are offered, so two consumers cannot win the same GPU;
//! a reservation lapses if the consumer does not countersign, and later if it does not pay.

use std::collections::HashMap;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use qubix_protocol::job::{Agreement, AgreementTerms, JobRequest, PaymentTerms, RejectCode};
use qubix_protocol::offer::MAX_CLOCK_SKEW;
use qubix_protocol::topics::Network;
use qubix_protocol::{AgreementId, Envelope, NodeId, Nonce, OfferId, Qu, Signed, UnixMillis};

/// How long a consumer has to countersign offered terms.
pub const COUNTERSIGN_WINDOW: Duration = Duration::from_secs(60);
/// How long a consumer has to pay the first window after countersigning.
pub const FUND_WINDOW: Duration = Duration::from_secs(180);
/// Most nonces remembered (older ones expire with their requests).
const MAX_NONCES: usize = 200_000;

/// What one offer of this provider can give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferCapacity {
    /// The offer.
    pub offer_id: OfferId,
    /// GPU UUIDs behind the offer.
    pub gpus: Vec<String>,
    /// CPU cores for the whole offer.
    pub cpu_cores: u32,
    /// RAM for the whole offer, MiB.
    pub ram_mib: u64,
    /// Disk for the whole offer, GiB.
    pub disk_gib: u64,
    /// Price per GPU-hour.
    pub price: Qu,
    /// Shortest rental, seconds.
    pub min_rental_secs: u64,
    /// Longest rental, seconds.
    pub max_rental_secs: u64,
    /// Qubic identity to be paid at.
    pub pay_to: String,
}

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Terms offered; lapses at the instant given unless countersigned.
    Offered(UnixMillis),
    /// Countersigned; lapses at the instant given unless funded.
    Agreed(UnixMillis),
    /// Funded: held until the job ends.
    Active,
}

/// Capacity set aside for one agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The offer it draws on.
    pub offer_id: OfferId,
    /// The consumer.
    pub consumer: NodeId,
    /// GPU UUIDs reserved.
    pub gpus: Vec<String>,
    /// CPU cores reserved.
    pub cpu_cores: u32,
    /// RAM reserved, MiB.
    pub ram_mib: u64,
    /// Disk reserved, GiB.
    pub disk_gib: u64,
    /// Its state.
    pub hold: Hold,
}

/// The provider's negotiation state.
#[derive(Debug)]
pub struct ProviderDesk {
    network: Network,
    offers: HashMap<OfferId, OfferCapacity>,
    reservations: HashMap<AgreementId, Reservation>,
    nonces: HashMap<Nonce, UnixMillis>,
    payment: PaymentTerms,
}

impl ProviderDesk {
    /// A desk on `network` offering `payment` terms.
    pub fn new(network: Network, payment: PaymentTerms) -> Self {
        Self {
            network,
            offers: HashMap::new(),
            reservations: HashMap::new(),
            nonces: HashMap::new(),
            payment,
        }
    }

    /// Sets or replaces what an offer can give.
    pub fn set_offer(&mut self, capacity: OfferCapacity) {
        self.offers.insert(capacity.offer_id, capacity);
    }

    /// Free GPUs of an offer now.
    pub fn free_gpus(&self, offer: &OfferId) -> Vec<String> {
        let Some(cap) = self.offers.get(offer) else {
            return Vec::new();
        };
        let taken: Vec<&String> = self
            .reservations
            .values()
            .filter(|r| r.offer_id == *offer)
            .flat_map(|r| &r.gpus)
            .collect();
        cap.gpus
            .iter()
            .filter(|g| !taken.contains(g))
            .cloned()
            .collect()
    }

    /// Reservations, by agreement.
    pub fn reservations(&self) -> &HashMap<AgreementId, Reservation> {
        &self.reservations
    }

    /// Restores an active reservation after a restart.
    pub fn restore(&mut self, id: AgreementId, reservation: Reservation) {
        self.reservations.insert(id, reservation);
    }

    /// Admits a signed request from `peer` at `now`: signed terms, or why not.
    pub fn admit(
        &mut self,
        me: &SigningKey,
        envelope: &Envelope,
        peer: &NodeId,
        now: UnixMillis,
    ) -> Result<Signed<AgreementTerms>, RejectCode> {
        let request = envelope
            .open_from::<JobRequest>(&self.network, peer)
            .map_err(|_| RejectCode::BadSignature)?;
        let r = request.payload();
        if r.provider != NodeId::from_verifying_key(&me.verifying_key()) {
            return Err(RejectCode::Invalid);
        }
        if let Err(e) = r.validate(now) {
            let timing = matches!(e.field.as_str(), "expires_at" | "issued_at");
            return Err(if timing {
                RejectCode::Expired
            } else {
                RejectCode::Invalid
            });
        }
        if self.nonces.contains_key(&r.nonce) {
            return Err(RejectCode::Replay);
        }
        let cap = self
            .offers
            .get(&r.offer_id)
            .ok_or(RejectCode::UnknownOffer)?
            .clone();
        check_terms(&cap, r)?;
        let gpus = self.take_capacity(&cap, r)?;
        if self.nonces.len() >= MAX_NONCES {
            return Err(RejectCode::Unavailable);
        }
        self.nonces
            .insert(r.nonce, r.expires_at.saturating_add(MAX_CLOCK_SKEW));
        let terms = self.terms_for(&cap, &request, now)?;
        let id = terms.agreement_id;
        let hold = Hold::Offered(now.saturating_add(COUNTERSIGN_WINDOW));
        let reservation = Reservation {
            offer_id: cap.offer_id,
            consumer: r.consumer,
            gpus,
            cpu_cores: r.cpu_cores,
            ram_mib: r.ram_mib,
            disk_gib: r.disk_gib,
            hold,
        };
        let signed = Signed::sign(terms, me, &self.network).map_err(|_| RejectCode::Invalid)?;
        self.reservations.insert(id, reservation);
        Ok(signed)
    }

    fn take_capacity(
        &self,
        cap: &OfferCapacity,
        r: &JobRequest,
    ) -> Result<Vec<String>, RejectCode> {
        let free = self.free_gpus(&cap.offer_id);
        let used = |f: fn(&Reservation) -> u64| -> u64 {
            self.reservations
                .values()
                .filter(|x| x.offer_id == cap.offer_id)
                .map(f)
                .sum()
        };
        let cpu_free = u64::from(cap.cpu_cores).saturating_sub(used(|x| u64::from(x.cpu_cores)));
        let ram_free = cap.ram_mib.saturating_sub(used(|x| x.ram_mib));
        let disk_free = cap.disk_gib.saturating_sub(used(|x| x.disk_gib));
        let fits = free.len() >= r.gpus as usize
            && u64::from(r.cpu_cores) <= cpu_free
            && r.ram_mib <= ram_free
            && r.disk_gib <= disk_free;
        if !fits {
            return Err(RejectCode::NoCapacity);
        }
        Ok(free.into_iter().take(r.gpus as usize).collect())
    }

    fn terms_for(
        &self,
        cap: &OfferCapacity,
        request: &Signed<JobRequest>,
        now: UnixMillis,
    ) -> Result<AgreementTerms, RejectCode> {
        let r = request.payload();
        let budget = cap
            .price
            .cost_for(r.gpus, r.duration_secs.saturating_mul(1000))
            .map_err(|_| RejectCode::Invalid)?;
        Ok(AgreementTerms {
            agreement_id: AgreementId::random(),
            request: request.envelope().clone(),
            provider: r.provider,
            consumer: r.consumer,
            price_per_gpu_hour: cap.price,
            gpus: r.gpus,
            duration_secs: r.duration_secs,
            budget,
            payment: self.payment,
            pay_to: cap.pay_to.clone(),
            refund_to: r.refund_to.clone(),
            pay_from: r.pay_from.clone(),
            standby_price_per_gpu_hour: None,
            interruptible_notice_secs: None,
            accepted_at: now,
            fund_by: now.saturating_add(COUNTERSIGN_WINDOW + FUND_WINDOW),
        })
    }

    /// Accepts the consumer's countersignature: the reservation now waits for payment.
    pub fn confirm(
        &mut self,
        agreement: &Agreement,
        peer: &NodeId,
        now: UnixMillis,
    ) -> Result<Signed<AgreementTerms>, RejectCode> {
        let terms = agreement
            .verify(&self.network)
            .map_err(|_| RejectCode::BadSignature)?;
        let t = terms.payload();
        if t.consumer != *peer {
            return Err(RejectCode::BadSignature);
        }
        let reservation = self
            .reservations
            .get_mut(&t.agreement_id)
            .ok_or(RejectCode::UnknownAgreement)?;
        match reservation.hold {
            Hold::Offered(until) if until > now => {
                reservation.hold = Hold::Agreed(t.fund_by);
                Ok(terms)
            }
            Hold::Agreed(_) | Hold::Active => Ok(terms),
            Hold::Offered(_) => Err(RejectCode::Expired),
        }
    }

    /// Marks an agreement funded: its capacity is held until [`ProviderDesk::release`].
    pub fn activate(&mut self, id: &AgreementId) -> bool {
        match self.reservations.get_mut(id) {
            Some(r) => {
                r.hold = Hold::Active;
                true
            }
            None => false,
        }
    }

    /// Frees an agreement's capacity (job ended).
    pub fn release(&mut self, id: &AgreementId) -> Option<Reservation> {
        self.reservations.remove(id)
    }

    /// Drops lapsed reservations and expired nonces; returns the lapsed agreements.
    pub fn sweep(&mut self, now: UnixMillis) -> Vec<AgreementId> {
        let lapsed: Vec<AgreementId> = self
            .reservations
            .iter()
            .filter(|(_, r)| matches!(r.hold, Hold::Offered(t) | Hold::Agreed(t) if t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in &lapsed {
            self.reservations.remove(id);
        }
        self.nonces.retain(|_, until| *until > now);
        lapsed
    }
}

fn check_terms(cap: &OfferCapacity, r: &JobRequest) -> Result<(), RejectCode> {
    if r.duration_secs < cap.min_rental_secs || r.duration_secs > cap.max_rental_secs {
        return Err(RejectCode::DurationOutOfRange);
    }
    if cap.price > r.max_price_per_gpu_hour {
        return Err(RejectCode::PriceAboveMaximum);
    }
    if r.ports.iter().any(|p| p.container_port < 1) {
        return Err(RejectCode::Policy);
    }
    Ok(())
}
