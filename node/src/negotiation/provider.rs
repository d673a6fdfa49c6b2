//! The provider's desk: admission of job requests and reservation of capacity. Pure state
//! machine: the request, the inventory, the paying identity's balance and `now` in; signed
//! terms or a coded rejection out. Capacity is reserved when terms are offered, so two
//! consumers cannot win the same GPU; a reservation lapses if the consumer does not
//! countersign, and later if it does not pay.
//!
//! What a stranger can make the desk do, and what stops it:
//! - **Forge terms at countersign.** The desk keeps the digest of the exact terms it signed
//!   in the reservation; a countersignature is accepted only over those bytes, naming this
//!   provider.
//! - **Reserve for free.** Keys cost nothing, so limits per key mean nothing; limits per
//!   paying identity do. A reservation is admitted only while that identity holds, on
//!   chain, the first window of every unfunded reservation it has here, and at most
//!   [`DeskPolicy::max_unfunded_per_payer`] of them; unfunded reservations lapse at
//!   `fund_by`.

use std::collections::HashMap;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use qubix_protocol::job::{
    Agreement, AgreementTerms, Capability, JobRequest, PaymentTerms, RejectCode,
};
use qubix_protocol::offer::{Isolation, MAX_CLOCK_SKEW};
use qubix_protocol::topics::Network;
use qubix_protocol::{AgreementId, Envelope, NodeId, Nonce, OfferId, Qu, Signed, UnixMillis};
use sha2::{Digest, Sha256};
use tracing::debug;

/// How long a consumer has to countersign offered terms.
pub const COUNTERSIGN_WINDOW: Duration = Duration::from_secs(60);
/// How long a consumer has, by default, to pay the first window after countersigning.
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
    /// How jobs of this offer are isolated from the host.
    pub isolation: Isolation,
}

/// The desk's rules: the terms it offers and how long, and how many, unpaid reservations
/// it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskPolicy {
    /// Prepaid window, billing interval and graces offered.
    pub payment: PaymentTerms,
    /// How long a consumer has to countersign offered terms.
    pub countersign_window: Duration,
    /// How long after countersigning the first window must be paid.
    pub fund_window: Duration,
    /// Most unfunded reservations one paying identity may hold here.
    pub max_unfunded_per_payer: usize,
    /// Capabilities a job may ask for and get; a request for any other is refused.
    pub allowed_capabilities: Vec<Capability>,
}

impl Default for DeskPolicy {
    fn default() -> Self {
        Self {
            payment: PaymentTerms::default(),
            countersign_window: COUNTERSIGN_WINDOW,
            fund_window: FUND_WINDOW,
            max_unfunded_per_payer: 32,
            allowed_capabilities: SSH_CAPABILITIES.to_vec(),
        }
    }
}

/// What an SSH server in a job needs beyond the base set: privilege separation drops to
/// other users in a chroot, and sessions own their terminals. The default provider policy
/// allows exactly these; a consumer asks for them with an SSH port.
pub const SSH_CAPABILITIES: [Capability; 6] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Setgid,
    Capability::Setuid,
    Capability::SysChroot,
];

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

impl Hold {
    /// Whether the reservation is not paid for yet.
    pub fn is_unfunded(self) -> bool {
        !matches!(self, Hold::Active)
    }
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
    /// The identity that pays for it.
    pub pay_from: String,
    /// What its first window costs.
    pub first_window: Qu,
    /// SHA-256 of the exact signed terms offered ([`terms_digest`]); a countersignature
    /// over anything else is refused.
    pub terms_digest: [u8; 32],
}

/// The provider's negotiation state.
#[derive(Debug)]
pub struct ProviderDesk {
    network: Network,
    me: NodeId,
    offers: HashMap<OfferId, OfferCapacity>,
    reservations: HashMap<AgreementId, Reservation>,
    nonces: HashMap<Nonce, UnixMillis>,
    policy: DeskPolicy,
}

/// The digest a reservation keeps of the terms it offered.
pub fn terms_digest(terms: &Envelope) -> [u8; 32] {
    Sha256::digest(terms.as_bytes()).into()
}

impl ProviderDesk {
    /// The desk of provider `me` on `network`, under `policy`.
    pub fn new(network: Network, me: NodeId, policy: DeskPolicy) -> Self {
        Self {
            network,
            me,
            offers: HashMap::new(),
            reservations: HashMap::new(),
            nonces: HashMap::new(),
            policy,
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

    /// Restores a reservation after a restart.
    pub fn restore(&mut self, id: AgreementId, reservation: Reservation) {
        self.reservations.insert(id, reservation);
    }

    /// The unfunded reservations `pay_from` holds here: how many, and what their first
    /// windows cost together.
    pub fn unfunded_of(&self, pay_from: &str) -> (usize, Qu) {
        self.reservations
            .values()
            .filter(|r| r.hold.is_unfunded() && r.pay_from == pay_from)
            .fold((0, Qu::ZERO), |(n, sum), r| {
                (
                    n + 1,
                    sum.checked_add(r.first_window).unwrap_or(Qu(u64::MAX)),
                )
            })
    }

    /// Admits a signed request from `peer` at `now`, whose paying identity holds `balance`
    /// on chain (`None`: the balance could not be read): signed terms, or why not.
    pub fn admit(
        &mut self,
        me: &SigningKey,
        envelope: &Envelope,
        peer: &NodeId,
        balance: Option<Qu>,
        now: UnixMillis,
    ) -> Result<Signed<AgreementTerms>, RejectCode> {
        let request = envelope
            .open_from::<JobRequest>(&self.network, peer)
            .map_err(|_| RejectCode::BadSignature)?;
        let r = request.payload();
        if r.provider != self.me || NodeId::from_verifying_key(&me.verifying_key()) != self.me {
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
        check_request(&cap, r)?;
        if let Some(refused) = r
            .capabilities
            .iter()
            .find(|c| !self.policy.allowed_capabilities.contains(c))
        {
            debug!(capability = %refused, "a capability this provider does not grant");
            return Err(RejectCode::Policy);
        }
        let terms = self.terms_for(&cap, &request, now)?;
        self.check_payer(&r.pay_from, terms.window_cost(), balance)?;
        let gpus = self.take_capacity(&cap, r)?;
        if self.nonces.len() >= MAX_NONCES {
            return Err(RejectCode::Unavailable);
        }
        self.nonces
            .insert(r.nonce, r.expires_at.saturating_add(MAX_CLOCK_SKEW));
        let id = terms.agreement_id;
        let first_window = terms.window_cost();
        let signed = Signed::sign(terms, me, &self.network).map_err(|_| RejectCode::Invalid)?;
        let reservation = Reservation {
            offer_id: cap.offer_id,
            consumer: r.consumer,
            gpus,
            cpu_cores: r.cpu_cores,
            ram_mib: r.ram_mib,
            disk_gib: r.disk_gib,
            hold: Hold::Offered(now.saturating_add(self.policy.countersign_window)),
            pay_from: r.pay_from.clone(),
            first_window,
            terms_digest: terms_digest(signed.envelope()),
        };
        self.reservations.insert(id, reservation);
        Ok(signed)
    }

    /// A new reservation of `first_window` for `pay_from` fits its cap and its balance.
    fn check_payer(
        &self,
        pay_from: &str,
        first_window: Qu,
        balance: Option<Qu>,
    ) -> Result<(), RejectCode> {
        let (count, held) = self.unfunded_of(pay_from);
        if count >= self.policy.max_unfunded_per_payer {
            return Err(RejectCode::ReservationLimit);
        }
        let balance = balance.ok_or(RejectCode::Unavailable)?;
        let needed = held.checked_add(first_window).unwrap_or(Qu(u64::MAX));
        if balance < needed {
            return Err(RejectCode::InsufficientBalance);
        }
        Ok(())
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
            payment: self.policy.payment,
            pay_to: cap.pay_to.clone(),
            refund_to: r.refund_to.clone(),
            pay_from: r.pay_from.clone(),
            standby_price_per_gpu_hour: None,
            interruptible_notice_secs: None,
            accepted_at: now,
            fund_by: now.saturating_add(self.policy.countersign_window + self.policy.fund_window),
        })
    }

    /// Accepts the consumer's countersignature of exactly the terms this desk offered: the
    /// reservation now waits for payment.
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
        if t.provider != self.me {
            return Err(RejectCode::TermsMismatch);
        }
        let reservation = self
            .reservations
            .get_mut(&t.agreement_id)
            .ok_or(RejectCode::UnknownAgreement)?;
        let issued = reservation.terms_digest == terms_digest(&agreement.terms);
        if !issued || reservation.consumer != t.consumer {
            return Err(RejectCode::TermsMismatch);
        }
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

/// The offer's own rules: rental length, price, isolation.
fn check_request(cap: &OfferCapacity, r: &JobRequest) -> Result<(), RejectCode> {
    if r.duration_secs < cap.min_rental_secs || r.duration_secs > cap.max_rental_secs {
        return Err(RejectCode::DurationOutOfRange);
    }
    if cap.price > r.max_price_per_gpu_hour {
        return Err(RejectCode::PriceAboveMaximum);
    }
    if !cap.isolation.satisfies(r.isolation) {
        return Err(RejectCode::Policy);
    }
    // Standby and interruptible rentals are not offered yet: their prices are not set.
    if r.standby || r.interruptible {
        return Err(RejectCode::Policy);
    }
    Ok(())
}

#[cfg(test)]
impl ProviderDesk {
    /// What the desk holds for an offer (tests edit and set it again).
    pub(crate) fn offers_for_test(&self, id: &OfferId) -> OfferCapacity {
        self.offers[id].clone()
    }
}
