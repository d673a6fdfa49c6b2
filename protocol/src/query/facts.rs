//! What the evaluator sees of an offer: the signed offer itself and what the node knows of
//! its provider, read field by field without allocating.

use std::cmp::Ordering;
use std::fmt;

use crate::ids::NodeId;
use crate::offer::{Offer, Version};

use super::field::Field;

/// An offer as a query sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OfferFacts<'a> {
    /// The offer.
    pub offer: &'a Offer,
    /// The provider's reliability from 0 to 1, computed by the node from receipts; `None`
    /// when it has no record of the provider yet (such offers fail `reliability` tests).
    pub reliability: Option<f64>,
}

impl<'a> OfferFacts<'a> {
    /// An offer with its provider's reliability.
    pub fn new(offer: &'a Offer, reliability: Option<f64>) -> Self {
        Self { offer, reliability }
    }
}

/// The value of one field of one offer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Actual<'a> {
    Integer(u64),
    Decimal(f64),
    Version(Version),
    Bool(bool),
    Text(&'a str),
    Node(NodeId),
    /// The offer does not say, or the node does not know (reliability of a new provider).
    Unknown,
}

const MIB_PER_GIB: f64 = 1024.0;
const SECS_PER_HOUR: f64 = 3600.0;

// Offer quantities are far below 2^53, so the `as f64` conversions below are exact and a
// division by 1024 or 3600 gives the same double as parsing the decimal it equals.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn actual<'a>(field: Field, facts: &OfferFacts<'a>) -> Actual<'a> {
    let offer = facts.offer;
    match field {
        Field::GpuName => Actual::Text(&offer.gpu.model),
        Field::NumGpus => Actual::Integer(u64::from(offer.gpu_count)),
        Field::GpuRam => Actual::Decimal(offer.gpu.vram_mib as f64 / MIB_PER_GIB),
        Field::Price => Actual::Integer(offer.price_per_gpu_hour.0),
        Field::TotalPrice => Actual::Integer(total_price(offer)),
        Field::Cuda => Actual::Version(offer.gpu.cuda_version),
        Field::ComputeCap => Actual::Version(offer.gpu.compute_capability),
        Field::Driver => Actual::Text(&offer.gpu.driver_version),
        Field::Location => Actual::Text(&offer.location.country),
        Field::Region => offer
            .location
            .region
            .as_deref()
            .map_or(Actual::Unknown, Actual::Text),
        Field::Reliability => facts.reliability.map_or(Actual::Unknown, Actual::Decimal),
        Field::Simulated => Actual::Bool(offer.simulated),
        Field::CpuCores => Actual::Integer(u64::from(offer.cpu_cores)),
        Field::Ram => Actual::Decimal(offer.ram_mib as f64 / MIB_PER_GIB),
        Field::Disk => Actual::Decimal(offer.disk_gib as f64),
        Field::Provider => Actual::Node(offer.provider),
        Field::MaxDuration => Actual::Decimal(offer.max_rental_secs as f64 / SECS_PER_HOUR),
        Field::Pcie => offer
            .gpu
            .pcie
            .map_or(Actual::Unknown, |p| Actual::Integer(p.generation.into())),
        Field::Nvlink => offer.gpu.nvlink.map_or(Actual::Unknown, Actual::Bool),
    }
}

/// Price per hour for all the offer's GPUs, saturating (validated offers never get near).
fn total_price(offer: &Offer) -> u64 {
    offer
        .price_per_gpu_hour
        .0
        .saturating_mul(u64::from(offer.gpu_count))
}

impl Actual<'_> {
    /// Orders two values of the same field; values of different kinds are equal, and
    /// unknown values are left to the caller (they sort last in either direction).
    pub(crate) fn cmp_known(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Actual::Integer(a), Actual::Integer(b)) => a.cmp(b),
            (Actual::Decimal(a), Actual::Decimal(b)) => a.total_cmp(b),
            (Actual::Version(a), Actual::Version(b)) => a.cmp(b),
            (Actual::Bool(a), Actual::Bool(b)) => a.cmp(b),
            (Actual::Text(a), Actual::Text(b)) => a.cmp(b),
            (Actual::Node(a), Actual::Node(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }
}

impl fmt::Display for Actual<'_> {
    /// The value for a person: decimals to at most four places.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actual::Integer(n) => write!(f, "{n}"),
            Actual::Decimal(x) => {
                let fixed = format!("{x:.4}");
                f.write_str(fixed.trim_end_matches('0').trim_end_matches('.'))
            }
            Actual::Version(v) => write!(f, "{v}"),
            Actual::Bool(b) => write!(f, "{b}"),
            Actual::Text(s) => f.write_str(s),
            Actual::Node(id) => write!(f, "{id}"),
            Actual::Unknown => f.write_str("unknown"),
        }
    }
}
