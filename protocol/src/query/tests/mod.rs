//! Tests of the query language: parse tables, evaluation over a small fixture market,
//! sorting and paging, explain, and properties over generated queries and markets.

mod eval;
mod explain;
mod parse;
mod props;

use crate::amount::Qu;
use crate::ids::{NodeId, OfferId};
use crate::offer::{GpuSpec, Location, Offer, PcieLink, Version};
use crate::time::UnixMillis;

use super::{OfferFacts, Query};

/// The node id of signing key `[n; 32]`.
fn node(n: u8) -> NodeId {
    let key = ed25519_dalek::SigningKey::from_bytes(&[n; 32]);
    NodeId::from_verifying_key(&key.verifying_key())
}

/// An offer numbered `n` (its id is `[n; 16]`, its provider `node(n)`), with ordinary
/// values that `edit` then changes.
fn offer(n: u8, model: &str, price: u64, edit: impl FnOnce(&mut Offer)) -> Offer {
    let mut offer = Offer {
        provider: node(n),
        offer_id: OfferId::from_bytes([n; 16]),
        sequence: 1,
        gpu: GpuSpec {
            model: model.to_owned(),
            vram_mib: 24 * 1024,
            compute_capability: Version::new(8, 9),
            cuda_version: Version::new(12, 4),
            driver_version: "550.54.15".to_owned(),
            pcie: None,
            nvlink: None,
        },
        gpu_count: 1,
        cpu_cores: 16,
        ram_mib: 64 * 1024,
        disk_gib: 200,
        location: Location {
            country: "DE".to_owned(),
            region: None,
        },
        price_per_gpu_hour: Qu(price),
        min_rental_secs: 60,
        max_rental_secs: 24 * 3600,
        pay_to: "A".repeat(60),
        simulated: false,
        isolation: crate::offer::Isolation::Container,
        standby_price_per_gpu_hour: None,
        interruptible: None,
        checkpoint_retention_secs: 0,
        issued_at: UnixMillis(1_000),
        expires_at: UnixMillis(2_000),
    };
    edit(&mut offer);
    offer
}

fn country(offer: &mut Offer, code: &str) {
    offer.location.country = code.to_owned();
}

/// Ten offers and their providers' reliability; see the table in each test's comments.
///
/// | n | model | gpus | GiB | price | cuda | cc | country | reliability | other |
/// |---|---|---|---|---|---|---|---|---|---|
/// | 1 | RTX 4090 | 2 | 24 | 1200 | 12.4 | 8.9 | DE eu-central | 0.99 | pcie 4, no nvlink, 32 cores, 128 GiB, 500 GiB, 72 h |
/// | 2 | RTX 4090 | 1 | 24 | 1000 | 12.2 | 8.9 | FR | 0.90 | |
/// | 3 | RTX 4090 D | 4 | 24 | 1800 | 12.10 | 8.9 | US | none | |
/// | 4 | RTX 3090 | 2 | 24 | 700 | 12.1 | 8.6 | DE | 0.97 | |
/// | 5 | A100-SXM4-80GB | 8 | 80 | 3000 | 12.4 | 8.0 | US us-east | 0.999 | nvlink, driver 535, 64 cores, 512 GiB, 2000 GiB, 168 h |
/// | 6 | H100 80GB HBM3 | 8 | 80 | 5000 | 12.10 | 9.0 | NL | 0.95 | nvlink, pcie 5, driver 550.90.07 |
/// | 7 | RTX 4080 | 1 | 16 | 800 | 12.4 | 8.9 | DE | none | simulated |
/// | 8 | RTX 4090 | 2 | 24 | 1500 | 12.2 | 8.9 | DE | 0.95 | |
/// | 9 | Tesla T4 | 1 | 15 | 200 | 11.8 | 7.5 | IN | 0.80 | pcie 3, driver 535, 16 GiB RAM, 50 GiB, 0.5 h |
/// | 10 | RTX 4090 | 2 | 24 | 1200 | 12.4 | 8.9 | FR | 0.99 | provider of offer 1 |
fn market() -> Vec<(Offer, Option<f64>)> {
    let rtx4090 = "NVIDIA GeForce RTX 4090";
    vec![
        (
            offer(1, rtx4090, 1200, |o| {
                o.gpu_count = 2;
                o.location.region = Some("eu-central".to_owned());
                o.gpu.pcie = Some(PcieLink {
                    generation: 4,
                    width: 16,
                });
                o.gpu.nvlink = Some(false);
                (o.cpu_cores, o.ram_mib, o.disk_gib) = (32, 128 * 1024, 500);
                o.max_rental_secs = 72 * 3600;
            }),
            Some(0.99),
        ),
        (
            offer(2, rtx4090, 1000, |o| {
                o.gpu.cuda_version = Version::new(12, 2);
                country(o, "FR");
            }),
            Some(0.90),
        ),
        (
            offer(3, "NVIDIA GeForce RTX 4090 D", 1800, |o| {
                o.gpu_count = 4;
                o.gpu.cuda_version = Version::new(12, 10);
                country(o, "US");
            }),
            None,
        ),
        (
            offer(4, "NVIDIA GeForce RTX 3090", 700, |o| {
                o.gpu_count = 2;
                o.gpu.cuda_version = Version::new(12, 1);
                o.gpu.compute_capability = Version::new(8, 6);
            }),
            Some(0.97),
        ),
        (
            offer(5, "NVIDIA A100-SXM4-80GB", 3000, |o| {
                (o.gpu_count, o.gpu.vram_mib) = (8, 80 * 1024);
                o.gpu.compute_capability = Version::new(8, 0);
                o.gpu.nvlink = Some(true);
                o.gpu.driver_version = "535.104.05".to_owned();
                country(o, "US");
                o.location.region = Some("us-east".to_owned());
                (o.cpu_cores, o.ram_mib, o.disk_gib) = (64, 512 * 1024, 2000);
                o.max_rental_secs = 168 * 3600;
            }),
            Some(0.999),
        ),
        (
            offer(6, "NVIDIA H100 80GB HBM3", 5000, |o| {
                (o.gpu_count, o.gpu.vram_mib) = (8, 80 * 1024);
                o.gpu.cuda_version = Version::new(12, 10);
                o.gpu.compute_capability = Version::new(9, 0);
                o.gpu.nvlink = Some(true);
                o.gpu.pcie = Some(PcieLink {
                    generation: 5,
                    width: 16,
                });
                o.gpu.driver_version = "550.90.07".to_owned();
                country(o, "NL");
            }),
            Some(0.95),
        ),
        (
            offer(7, "NVIDIA GeForce RTX 4080", 800, |o| {
                o.gpu.vram_mib = 16 * 1024;
                o.simulated = true;
            }),
            None,
        ),
        (
            offer(8, rtx4090, 1500, |o| {
                o.gpu_count = 2;
                o.gpu.cuda_version = Version::new(12, 2);
            }),
            Some(0.95),
        ),
        (
            offer(9, "Tesla T4", 200, |o| {
                o.gpu.vram_mib = 15 * 1024;
                o.gpu.cuda_version = Version::new(11, 8);
                o.gpu.compute_capability = Version::new(7, 5);
                o.gpu.pcie = Some(PcieLink {
                    generation: 3,
                    width: 16,
                });
                o.gpu.driver_version = "535.54.03".to_owned();
                country(o, "IN");
                (o.ram_mib, o.disk_gib, o.max_rental_secs) = (16 * 1024, 50, 1800);
            }),
            Some(0.80),
        ),
        (
            offer(10, rtx4090, 1200, |o| {
                o.provider = node(1);
                o.gpu_count = 2;
                country(o, "FR");
            }),
            Some(0.99),
        ),
    ]
}

/// The facts of every offer in `market`.
fn facts(market: &[(Offer, Option<f64>)]) -> Vec<OfferFacts<'_>> {
    market
        .iter()
        .map(|(offer, reliability)| OfferFacts::new(offer, *reliability))
        .collect()
}

/// The fixture number of an offer (the first byte of its id).
fn number(facts: &OfferFacts<'_>) -> u8 {
    facts.offer.offer_id.as_bytes()[0]
}

/// Parses `text`, failing the test with the rendered error when it does not parse.
fn query(text: &str) -> Query {
    Query::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse:\n{}", e.render(text)))
}
