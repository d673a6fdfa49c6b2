//! Offers: what a provider rents out, at what price, until when. Signed by the provider,
//! gossiped on `/qubix/<network>/offers/1`, replaced by a higher sequence, gone at expiry.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::amount::{MAX_QU, Qu};
use crate::codec::WireMessage;
use crate::ids::{NodeId, OfferId};
use crate::signed::Authored;
use crate::time::UnixMillis;
use crate::topics::Network;
use crate::validate::{ValidationError, check, check_identity_format, check_text};

/// The longest an offer may live before it must be republished.
pub const MAX_OFFER_TTL: Duration = Duration::from_secs(60 * 60);
/// How far in the future a timestamp may be before it is refused (clock skew allowance).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);
/// The most GPUs one offer may carry.
pub const MAX_GPUS_PER_OFFER: u32 = 64;
/// The most VRAM one GPU may claim (1 TiB): more is not a real GPU.
pub const MAX_VRAM_MIB: u64 = 1024 * 1024;
/// The longest rental an offer may allow (90 days).
pub const MAX_RENTAL_SECS: u64 = 90 * 24 * 3600;
/// The longest a provider may promise to keep a finished rental's checkpoint (30 days).
pub const MAX_CHECKPOINT_RETENTION_SECS: u64 = 30 * 24 * 3600;
/// The longest notice an interruptible rental may carry (one day).
pub const MAX_INTERRUPT_NOTICE_SECS: u64 = 24 * 3600;

/// How a provider keeps a job away from its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Each job runs in its own container, without privileges.
    Container,
    /// Jobs run as plain processes on the provider's host: no isolation at all. Only a
    /// testnet provider with simulated GPUs that asked for it explicitly offers this.
    Unisolated,
}

impl Isolation {
    /// Whether a provider offering `self` meets a consumer who requires `required`.
    pub fn satisfies(self, required: Isolation) -> bool {
        match required {
            Isolation::Unisolated => true,
            Isolation::Container => self == Isolation::Container,
        }
    }

    /// Lower-case name, as views show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Container => "container",
            Isolation::Unisolated => "unisolated",
        }
    }
}

/// Interruptible rentals: cheaper, and reclaimable by the provider after a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Interruptible {
    /// Price in QU per GPU-hour; at most the offer's on-demand price.
    pub price_per_gpu_hour: Qu,
    /// How long before reclaiming a rental the provider tells its consumer, seconds.
    pub notice_secs: u64,
}

/// A `major.minor` version (CUDA version, compute capability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    /// Major number.
    pub major: u16,
    /// Minor number.
    pub minor: u16,
}

impl Version {
    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A PCIe link, when the probe could read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PcieLink {
    /// PCIe generation (3, 4, 5…).
    pub generation: u8,
    /// Lane count (x16 → 16).
    pub width: u8,
}

/// One kind of GPU in an offer. A provider with two GPU models publishes two offers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GpuSpec {
    /// Marketing name as the driver reports it, e.g. `NVIDIA GeForce RTX 4090`.
    pub model: String,
    /// Memory per GPU in MiB.
    pub vram_mib: u64,
    /// CUDA compute capability, e.g. 8.9.
    pub compute_capability: Version,
    /// Highest CUDA version the driver supports, e.g. 12.4.
    pub cuda_version: Version,
    /// Driver version string, e.g. `550.54.15`.
    pub driver_version: String,
    /// PCIe link of the GPUs, when known.
    pub pcie: Option<PcieLink>,
    /// Whether the GPUs are connected by NVLink, when known.
    pub nvlink: Option<bool>,
}

/// Where a provider is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    /// ISO 3166-1 alpha-2 country code, upper case (`DE`).
    pub country: String,
    /// Optional free-form region (`eu-central`, `Bavaria`).
    pub region: Option<String>,
}

/// A provider's signed offer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Offer {
    /// The provider's node id; must be the signer.
    pub provider: NodeId,
    /// Stable id of this offer across republishes.
    pub offer_id: OfferId,
    /// Increases with every change; a higher sequence replaces a lower one.
    pub sequence: u64,
    /// The GPU kind offered.
    pub gpu: GpuSpec,
    /// How many of those GPUs are available now.
    pub gpu_count: u32,
    /// CPU cores available with the whole offer.
    pub cpu_cores: u32,
    /// RAM in MiB available with the whole offer.
    pub ram_mib: u64,
    /// Disk in GiB available with the whole offer.
    pub disk_gib: u64,
    /// Where the provider is.
    pub location: Location,
    /// Price in QU per GPU-hour.
    pub price_per_gpu_hour: Qu,
    /// Shortest rental accepted, in seconds.
    pub min_rental_secs: u64,
    /// Longest rental accepted, in seconds.
    pub max_rental_secs: u64,
    /// Qubic identity (60 upper-case letters) that receives payment.
    pub pay_to: String,
    /// True when the GPUs are simulated (testnet only). Every view shows it.
    pub simulated: bool,
    /// How jobs are kept away from the provider's host.
    pub isolation: Isolation,
    /// Price in QU per GPU-hour of a hot standby (kept ready, not running); `None` when the
    /// provider rents no standbys.
    pub standby_price_per_gpu_hour: Option<Qu>,
    /// Interruptible rentals, when offered.
    pub interruptible: Option<Interruptible>,
    /// How long the provider keeps a rental's last checkpoint after it ends, seconds (0: not
    /// kept).
    pub checkpoint_retention_secs: u64,
    /// When the provider signed this offer.
    pub issued_at: UnixMillis,
    /// When it stops being valid unless republished.
    pub expires_at: UnixMillis,
}

impl WireMessage for Offer {
    const TAG: &'static str = "offer/";
    const MAX_SIZE: usize = 2 * 1024;
}

impl Authored for Offer {
    fn author(&self) -> NodeId {
        self.provider
    }
}

impl Offer {
    /// Checks that every value is sane at time `now` on `network`. Simulated GPUs are never
    /// valid on mainnet.
    pub fn validate(&self, network: &Network, now: UnixMillis) -> Result<(), ValidationError> {
        check(
            !(self.simulated && network.is_mainnet()),
            "simulated",
            "simulated GPUs are not offered on mainnet",
        )?;
        self.validate_gpu()?;
        self.validate_options()?;
        check(
            self.gpu_count > 0,
            "gpu_count",
            "an offer must have at least one GPU",
        )?;
        check(
            self.gpu_count <= MAX_GPUS_PER_OFFER,
            "gpu_count",
            "at most 64 GPUs per offer",
        )?;
        check(
            self.cpu_cores > 0 && self.cpu_cores <= 4096,
            "cpu_cores",
            "must be 1..=4096",
        )?;
        check(self.ram_mib > 0, "ram_mib", "must be positive")?;
        check(
            self.price_per_gpu_hour.0 > 0,
            "price_per_gpu_hour",
            "price must be above 0 QU",
        )?;
        check(
            self.price_per_gpu_hour.0 <= MAX_QU,
            "price_per_gpu_hour",
            "price is above the QU transfer limit",
        )?;
        check(
            self.min_rental_secs <= self.max_rental_secs,
            "min_rental_secs",
            "must not exceed max_rental_secs",
        )?;
        check(
            self.max_rental_secs > 0 && self.max_rental_secs <= MAX_RENTAL_SECS,
            "max_rental_secs",
            "must be 1 second to 90 days",
        )?;
        check_country(&self.location.country)?;
        if let Some(region) = &self.location.region {
            check_text(region, "location.region", 64)?;
        }
        check_identity_format(&self.pay_to, "pay_to")?;
        check_window(self.issued_at, self.expires_at, now, MAX_OFFER_TTL)
    }

    fn validate_options(&self) -> Result<(), ValidationError> {
        if let Some(standby) = self.standby_price_per_gpu_hour {
            check(
                standby.0 > 0 && standby.0 <= MAX_QU,
                "standby_price_per_gpu_hour",
                "must be above 0 QU and within the QU transfer limit",
            )?;
        }
        if let Some(i) = self.interruptible {
            check(
                i.price_per_gpu_hour.0 > 0 && i.price_per_gpu_hour <= self.price_per_gpu_hour,
                "interruptible.price_per_gpu_hour",
                "must be above 0 QU and at most the on-demand price",
            )?;
            check(
                i.notice_secs <= MAX_INTERRUPT_NOTICE_SECS,
                "interruptible.notice_secs",
                "at most one day",
            )?;
        }
        check(
            self.checkpoint_retention_secs <= MAX_CHECKPOINT_RETENTION_SECS,
            "checkpoint_retention_secs",
            "at most 30 days",
        )
    }

    fn validate_gpu(&self) -> Result<(), ValidationError> {
        check_text(&self.gpu.model, "gpu.model", 64)?;
        check_text(&self.gpu.driver_version, "gpu.driver_version", 32)?;
        check(
            self.gpu.vram_mib >= 256,
            "gpu.vram_mib",
            "below 256 MiB is not a usable GPU",
        )?;
        check(
            self.gpu.vram_mib <= MAX_VRAM_MIB,
            "gpu.vram_mib",
            "above 1 TiB is not a real GPU",
        )
    }

    /// Whether the offer has expired at `now`.
    pub fn is_expired(&self, now: UnixMillis) -> bool {
        self.expires_at <= now
    }

    /// VRAM per GPU in GiB, as the query language uses it.
    pub fn vram_gib(&self) -> f64 {
        self.gpu.vram_mib as f64 / 1024.0
    }
}

fn check_country(country: &str) -> Result<(), ValidationError> {
    check(
        country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()),
        "location.country",
        "must be an ISO 3166-1 alpha-2 code such as DE",
    )
}

/// Checks `issued_at <= now + skew` and `now < expires_at <= now + ttl`.
pub fn check_window(
    issued_at: UnixMillis,
    expires_at: UnixMillis,
    now: UnixMillis,
    ttl: Duration,
) -> Result<(), ValidationError> {
    check(
        issued_at <= now.saturating_add(MAX_CLOCK_SKEW),
        "issued_at",
        "is in the future; check the clock",
    )?;
    check(expires_at > now, "expires_at", "has passed")?;
    check(
        expires_at > issued_at,
        "expires_at",
        "must be after issued_at",
    )?;
    check(
        expires_at <= now.saturating_add(ttl).saturating_add(MAX_CLOCK_SKEW),
        "expires_at",
        "is too far ahead",
    )
}

/// A provider's signed withdrawal of an offer (on shutdown or when it stops renting).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OfferWithdrawal {
    /// The provider; must be the signer.
    pub provider: NodeId,
    /// The offer withdrawn.
    pub offer_id: OfferId,
    /// Must be higher than the sequence of the offer it withdraws.
    pub sequence: u64,
    /// When it was signed.
    pub issued_at: UnixMillis,
}

impl WireMessage for OfferWithdrawal {
    const TAG: &'static str = "offer-withdrawal/";
    const MAX_SIZE: usize = 128;
}

impl Authored for OfferWithdrawal {
    fn author(&self) -> NodeId {
        self.provider
    }
}

impl OfferWithdrawal {
    /// Checks the withdrawal's time at `now`: signed no later than the clock allows and no
    /// earlier than an offer can live, so a withdrawal can neither outlive what it withdraws
    /// nor be kept as a tombstone for ever.
    pub fn validate(&self, now: UnixMillis) -> Result<(), ValidationError> {
        check(
            self.issued_at <= now.saturating_add(MAX_CLOCK_SKEW),
            "issued_at",
            "is in the future; check the clock",
        )?;
        check(
            now.saturating_sub(MAX_OFFER_TTL.saturating_add(MAX_CLOCK_SKEW)) <= self.issued_at,
            "issued_at",
            "is older than any offer it could withdraw",
        )
    }
}
