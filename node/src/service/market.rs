//! The service's market duties: judging gossip (verdicts back to gossipsub, penalties for
//! floods), offer sync with new peers, and, on a provider, publishing signed offers for its
//! free GPUs, republishing before expiry and withdrawing them at shutdown.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use libp2p::PeerId;
use libp2p::gossipsub::{MessageAcceptance, MessageId};
use qubix_protocol::api::{ErrorCode, Event, OfferView, ProviderPricing};
use qubix_protocol::codec;
use qubix_protocol::market::{GossipMessage, OfferSyncRequest, SYNC_PAGE_MAX};
use qubix_protocol::offer::{
    GpuSpec, Isolation, Location, MAX_RENTAL_SECS, Offer, OfferWithdrawal,
};
use qubix_protocol::topics::Network;
use qubix_protocol::{Envelope, NodeId, OfferId, Qu, Signed, UnixMillis};
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use super::{Internal, MAX_SYNC_PAGES, ProviderSetup, Service, ServiceError};
use crate::gpu::GpuDevice;
use crate::keys::NodeKey;
use crate::market::{Change, RateLimiter, Verdict, judge_gossip, judge_offer};
use crate::negotiation::{OfferCapacity, ProviderDesk};

/// One offer per GPU model on this host.
struct OfferGroup {
    offer_id: OfferId,
    devices: Vec<GpuDevice>,
    capacity: OfferCapacity,
}

/// What bounds a peer's share of this node's market work: gossip per second, offer-sync
/// pages served per second, and offers its sync pages may add (a budget that refills over
/// an hour), so a peer posing as many providers can neither flood nor fill the book.
#[derive(Debug)]
pub(crate) struct MarketGuards {
    pub(super) gossip: RateLimiter<PeerId>,
    pub(super) sync_served: RateLimiter<PeerId>,
    pub(super) sync_added: RateLimiter<PeerId>,
    /// Peers whose book this node fetched since they connected.
    pub(super) synced: HashSet<PeerId>,
}

impl MarketGuards {
    /// Guards letting one peer's sync add at most `offers_per_sync` offers (refilled over an
    /// hour).
    pub(crate) fn new(offers_per_sync: usize) -> Self {
        let budget = offers_per_sync.max(1) as f64;
        Self {
            gossip: RateLimiter::new(50.0, 200.0, 10_000),
            sync_served: RateLimiter::new(20.0, 100.0, 10_000),
            sync_added: RateLimiter::new(budget / 3600.0, budget, 10_000),
            synced: HashSet::new(),
        }
    }
}

pub(crate) struct Provider {
    setup: ProviderSetup,
    key: NodeKey,
    network: Network,
    isolation: Isolation,
    groups: Vec<OfferGroup>,
    last_sequence: u64,
    withdrawn: BTreeMap<OfferId, u64>,
}

fn offer_id_for(node: &NodeId, model: &str) -> OfferId {
    let digest = Sha256::new()
        .chain_update(node.as_bytes())
        .chain_update(model.as_bytes())
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    OfferId::from_bytes(id)
}

fn host_ram_mib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(8 * 1024 * 1024);
    kib / 1024 * 8 / 10
}

impl Provider {
    pub(crate) fn new(
        setup: ProviderSetup,
        key: &NodeKey,
        network: &Network,
        isolation: Isolation,
        pay_to: &str,
    ) -> Self {
        let c = &setup.config;
        let cpus = if c.cpu_cores > 0 {
            c.cpu_cores
        } else {
            std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
        };
        let ram = if c.ram_mib > 0 {
            c.ram_mib
        } else {
            host_ram_mib()
        };
        let mut by_model: BTreeMap<String, Vec<GpuDevice>> = BTreeMap::new();
        for d in setup.probe.devices() {
            by_model.entry(d.model.clone()).or_default().push(d.clone());
        }
        let total = setup.probe.devices().len().max(1) as u64;
        let groups = by_model
            .into_iter()
            .map(|(model, devices)| {
                let n = devices.len() as u64;
                let offer_id = offer_id_for(&key.node_id(), &model);
                let capacity = OfferCapacity {
                    offer_id,
                    gpus: devices.iter().map(|d| d.uuid.clone()).collect(),
                    cpu_cores: u32::try_from(u64::from(cpus) * n / total)
                        .unwrap_or(1)
                        .max(1),
                    ram_mib: (ram * n / total).max(1),
                    disk_gib: (c.disk_gib * n / total).max(1),
                    price: c.price_for(&model),
                    min_rental_secs: c.min_rental_secs,
                    max_rental_secs: c.max_rental_secs,
                    pay_to: pay_to.into(),
                    isolation,
                };
                OfferGroup {
                    offer_id,
                    devices,
                    capacity,
                }
            })
            .collect();
        Self {
            setup,
            key: key.clone(),
            network: network.clone(),
            isolation,
            groups,
            last_sequence: 0,
            withdrawn: BTreeMap::new(),
        }
    }

    /// The images allowed to run from the engine's copy.
    pub(crate) fn local_images(&self) -> &[String] {
        &self.setup.config.local_images
    }

    pub(crate) fn max_idle_secs(&self) -> Option<u64> {
        self.setup.config.max_idle_secs
    }

    pub(crate) fn probe(&self) -> std::sync::Arc<dyn crate::gpu::GpuProbe> {
        self.setup.probe.clone()
    }

    pub(crate) fn fill_desk(&self, desk: &mut ProviderDesk) {
        for g in &self.groups {
            desk.set_offer(g.capacity.clone());
        }
    }

    pub(crate) fn pricing(&self) -> ProviderPricing {
        let c = &self.setup.config;
        ProviderPricing {
            default_price_per_gpu_hour: Qu(c.default_price),
            per_model: c.prices.iter().map(|(k, v)| (k.clone(), Qu(*v))).collect(),
            min_rental_secs: c.min_rental_secs,
            max_rental_secs: c.max_rental_secs,
        }
    }

    /// Applies new prices and rental limits to the config and every offer group.
    pub(crate) fn set_pricing(
        &mut self,
        p: &ProviderPricing,
    ) -> Result<ProviderPricing, ServiceError> {
        let bad = |field: &str, message: &str| {
            ServiceError::Api(ErrorCode::InvalidValue, message.into(), Some(field.into()))
        };
        if p.default_price_per_gpu_hour.0 == 0 || p.per_model.values().any(|v| v.0 == 0) {
            return Err(bad(
                "default_price_per_gpu_hour",
                "prices must be above 0 QU per GPU-hour",
            ));
        }
        if !p.default_price_per_gpu_hour.is_transferable()
            || p.per_model.values().any(|v| !v.is_transferable())
        {
            return Err(bad(
                "default_price_per_gpu_hour",
                "price is above the QU transfer limit",
            ));
        }
        if p.min_rental_secs > p.max_rental_secs
            || p.max_rental_secs == 0
            || p.max_rental_secs > MAX_RENTAL_SECS
        {
            return Err(bad(
                "min_rental_secs",
                "rental limits must satisfy 0 <= min <= max <= 90 days",
            ));
        }
        let c = &mut self.setup.config;
        c.default_price = p.default_price_per_gpu_hour.0;
        c.prices = p.per_model.iter().map(|(k, v)| (k.clone(), v.0)).collect();
        c.min_rental_secs = p.min_rental_secs;
        c.max_rental_secs = p.max_rental_secs;
        for g in &mut self.groups {
            g.capacity.price = c.price_for(&g.devices[0].model);
            g.capacity.min_rental_secs = c.min_rental_secs;
            g.capacity.max_rental_secs = c.max_rental_secs;
        }
        Ok(self.pricing())
    }

    pub(crate) fn republish_period(&self) -> Duration {
        self.setup.config.offer_ttl() / 3
    }

    /// A sequence higher than any before, also across restarts (it follows the clock).
    fn next_sequence(&mut self, now: UnixMillis) -> u64 {
        self.last_sequence = (self.last_sequence + 1).max(now.0);
        self.last_sequence
    }

    fn offer(&mut self, group: usize, free: u32, now: UnixMillis) -> Offer {
        let sequence = self.next_sequence(now);
        let g = &self.groups[group];
        let d = &g.devices[0];
        let c = &self.setup.config;
        Offer {
            provider: self.key.node_id(),
            offer_id: g.offer_id,
            sequence,
            gpu: GpuSpec {
                model: d.model.clone(),
                vram_mib: d.vram_mib,
                compute_capability: d.compute_capability,
                cuda_version: d.cuda_version,
                driver_version: d.driver_version.clone(),
                pcie: d.pcie,
                nvlink: None,
            },
            gpu_count: free,
            cpu_cores: g.capacity.cpu_cores,
            ram_mib: g.capacity.ram_mib,
            disk_gib: g.capacity.disk_gib,
            location: Location {
                country: c.country.clone(),
                region: c.region.clone(),
            },
            price_per_gpu_hour: g.capacity.price,
            min_rental_secs: c.min_rental_secs,
            max_rental_secs: c.max_rental_secs,
            pay_to: g.capacity.pay_to.clone(),
            simulated: d.simulated,
            isolation: self.isolation,
            standby_price_per_gpu_hour: None,
            interruptible: None,
            checkpoint_retention_secs: 0,
            issued_at: now,
            expires_at: now.saturating_add(c.offer_ttl()),
        }
    }

    /// Signed offers for groups with free GPUs and withdrawals for groups without.
    fn announcements(&mut self, desk: &ProviderDesk, now: UnixMillis) -> Vec<GossipMessage> {
        let mut out = Vec::new();
        for i in 0..self.groups.len() {
            let id = self.groups[i].offer_id;
            let free = u32::try_from(desk.free_gpus(&id).len()).unwrap_or(0);
            if free > 0 {
                let offer = self.offer(i, free, now);
                self.withdrawn.remove(&id);
                match Signed::sign(offer, self.key.signing_key(), &self.network) {
                    Ok(s) => out.push(GossipMessage::Offer(s.envelope().clone())),
                    Err(e) => warn!(error = %e, "cannot sign offer"),
                }
            } else if !self.withdrawn.contains_key(&id) {
                let sequence = self.next_sequence(now);
                self.withdrawn.insert(id, sequence);
                out.extend(self.withdrawal(id, sequence, now));
            }
        }
        out
    }

    fn withdrawal(
        &self,
        offer_id: OfferId,
        sequence: u64,
        now: UnixMillis,
    ) -> Option<GossipMessage> {
        let w = OfferWithdrawal {
            provider: self.key.node_id(),
            offer_id,
            sequence,
            issued_at: now,
        };
        Signed::sign(w, self.key.signing_key(), &self.network)
            .ok()
            .map(|s| GossipMessage::Withdrawal(s.envelope().clone()))
    }

    fn withdrawals(&mut self, now: UnixMillis) -> Vec<GossipMessage> {
        let ids: Vec<OfferId> = self.groups.iter().map(|g| g.offer_id).collect();
        ids.into_iter()
            .filter_map(|id| {
                let seq = self.next_sequence(now);
                self.withdrawal(id, seq, now)
            })
            .collect()
    }
}

impl Service {
    /// Pushes the provider's offer capacities (prices, limits) into the desk.
    pub(super) fn refresh_desk(&mut self) {
        if let Some(p) = &self.provider {
            p.fill_desk(&mut self.desk);
        }
    }

    pub(super) async fn on_gossip(
        &mut self,
        source: Option<PeerId>,
        from: PeerId,
        id: MessageId,
        data: Vec<u8>,
    ) {
        let now = UnixMillis::now();
        if !self.market_guards.gossip.allow(&from, now) {
            let _ = self.net.report(id, from, MessageAcceptance::Ignore).await;
            let _ = self.net.penalize(from, 50.0).await;
            debug!(peer = %from, "gossip rate exceeded");
            return;
        }
        let author = source.and_then(|p| NodeId::from_peer_id(&p).ok());
        let (verdict, change) =
            judge_gossip(&mut self.book, &self.network_name, &data, author, now);
        if let Verdict::Reject(reason) = verdict {
            warn!(peer = %from, author = ?source, reason, "rejected gossip");
        }
        let _ = self.net.report(id, from, verdict.acceptance()).await;
        self.emit_change(change);
    }

    fn emit_change(&self, change: Option<Change>) {
        let event = match change {
            Some(Change::Upserted(key)) => match self.book.get(&key) {
                Some(o) => Event::OfferUpdated {
                    offer: Box::new(OfferView {
                        id: qubix_protocol::OfferRef::new(key.0, key.1),
                        offer: o.payload().clone(),
                        reliability: None,
                    }),
                },
                _ => return,
            },
            Some(Change::Removed((provider, offer_id))) => {
                Event::OfferRemoved { offer_id, provider }
            }
            None => return,
        };
        let _ = self.events.send(event);
    }

    /// Serves a page of this node's book to `peer`, within its rate (an empty page past
    /// it).
    pub(super) async fn serve_sync(
        &mut self,
        peer: PeerId,
        request: OfferSyncRequest,
        channel: libp2p::request_response::ResponseChannel<
            qubix_protocol::market::OfferSyncResponse,
        >,
    ) {
        let (offers, next) = if self
            .market_guards
            .sync_served
            .allow(&peer, UnixMillis::now())
        {
            self.book.page(request.after, request.limit)
        } else {
            debug!(%peer, "offer-sync rate exceeded: an empty page");
            (Vec::new(), None)
        };
        let response = qubix_protocol::market::OfferSyncResponse { offers, next };
        debug!(%peer, offers = response.offers.len(), "serving an offer-sync page");
        let _ = self.net.respond_sync(channel, response).await;
    }

    pub(super) fn start_sync(&mut self, peer: PeerId) {
        if self.market_guards.synced.insert(peer) {
            self.fetch_sync_page(peer, None, 0);
        }
    }

    fn fetch_sync_page(&self, peer: PeerId, after: Option<(NodeId, OfferId)>, page: u32) {
        let net = self.net.clone();
        let tx = self.internal_tx.clone();
        self.spawn(async move {
            let request = OfferSyncRequest {
                after,
                limit: SYNC_PAGE_MAX,
            };
            match net.offer_sync(peer, request).await {
                Ok(resp) => {
                    let _ = tx
                        .send(Internal::SyncPage {
                            peer,
                            offers: resp.offers,
                            next: resp.next,
                            page,
                        })
                        .await;
                }
                Err(e) => debug!(%peer, error = %e, "offer sync failed"),
            }
        });
    }

    pub(super) fn on_sync_page(
        &mut self,
        peer: PeerId,
        offers: Vec<Envelope>,
        next: Option<(NodeId, OfferId)>,
        page_number: u32,
    ) {
        let now = UnixMillis::now();
        let mut rejected = 0usize;
        let page = offers.len().min(usize::from(SYNC_PAGE_MAX));
        let allowed = self.market_guards.sync_added.take_up_to(&peer, page, now);
        for envelope in offers.iter().take(allowed) {
            let (verdict, change) =
                judge_offer(&mut self.book, &self.network_name, envelope, None, now);
            if let Verdict::Reject(_) = verdict {
                rejected += 1;
            }
            self.emit_change(change);
        }
        if rejected > 0 {
            warn!(%peer, rejected, "offer sync page carried invalid offers");
        }
        if allowed < page {
            warn!(%peer, allowed, page, "offer sync stopped: the peer's sync budget is spent");
            return;
        }
        match next {
            Some(after) if page_number + 1 < MAX_SYNC_PAGES && rejected == 0 => {
                self.fetch_sync_page(peer, Some(after), page_number + 1)
            }
            _ => debug!(%peer, pages = page_number + 1, book = self.book.len(), "offer sync done"),
        }
    }

    /// Publishes this provider's current offers (or withdrawals) and keeps them in the book.
    pub(super) async fn publish_offers(&mut self) {
        let now = UnixMillis::now();
        if self.runtime_down().is_some() {
            return; // nothing can run: nothing is offered
        }
        let Some(provider) = self.provider.as_mut() else {
            return;
        };
        let messages = provider.announcements(&self.desk, now);
        for message in messages {
            let me = Some(self.key.node_id());
            if let Ok(bytes) = codec::encode(&message) {
                let (_, change) = judge_gossip(&mut self.book, &self.network_name, &bytes, me, now);
                self.emit_change(change);
                if let Err(e) = self.net.publish(bytes).await {
                    debug!(error = %e, "offer not gossiped now; peers get it by offer sync");
                }
            }
        }
    }

    pub(super) async fn withdraw_offers(&mut self) {
        let now = UnixMillis::now();
        let Some(provider) = self.provider.as_mut() else {
            return;
        };
        let messages = provider.withdrawals(now);
        info!(offers = messages.len(), "withdrawing offers");
        for message in messages {
            if let Ok(bytes) = codec::encode(&message) {
                let _ = self.net.publish(bytes).await;
            }
        }
    }
}
