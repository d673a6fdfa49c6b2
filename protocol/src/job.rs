//! Negotiation: a consumer's signed [`JobRequest`], the provider's signed [`AgreementTerms`]
//! or coded [`Rejection`], and the countersigned [`Agreement`] both sides keep.

use std::fmt;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::amount::{MAX_QU, Qu};
use crate::codec::WireMessage;
use crate::ids::{AgreementId, NodeId, Nonce, OfferId};
use crate::offer::{Isolation, MAX_CHECKPOINT_RETENTION_SECS, MAX_RENTAL_SECS, check_window};
use crate::signed::{Authored, Envelope, EnvelopeError, Signed, sign_bytes, verify_bytes};
use crate::time::UnixMillis;
use crate::topics::Network;
use crate::validate::{ValidationError, check, check_identity_format, check_text};

/// The longest a job request stays valid.
pub const MAX_REQUEST_TTL: Duration = Duration::from_secs(5 * 60);
/// Most environment variables in one request.
pub const MAX_ENV_VARS: usize = 64;
/// Most published ports in one request.
pub const MAX_PORTS: usize = 16;
/// Most command arguments in one request.
pub const MAX_ARGS: usize = 64;
/// Most SSH public keys in one request.
pub const MAX_SSH_KEYS: usize = 8;
/// Longest SSH public key line.
pub const MAX_SSH_KEY_LEN: usize = 2048;
/// Shortest checkpoint interval a request may ask for.
pub const MIN_CHECKPOINT_INTERVAL_SECS: u64 = 30;

/// Whether `image` is an image id rather than a reference: `sha256:…`, or 12 to 64
/// hexadecimal digits, which Docker resolves among the images the provider holds.
pub fn is_bare_image_id(image: &str) -> bool {
    let hex = image.strip_prefix("sha256:").unwrap_or(image);
    image.starts_with("sha256:")
        || ((12..=64).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Environment variables with this prefix are the provider's: the NVIDIA container
/// runtime reads them to pick GPUs and driver capabilities.
pub const RESERVED_ENV_PREFIX: &str = "NVIDIA_";

/// A Linux capability a job may ask for. Jobs run with a small base set; the provider's
/// policy decides which of these it grants on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Capability {
    /// Change file owners.
    Chown,
    /// Bypass file permission checks.
    DacOverride,
    /// Bypass ownership checks on files.
    Fowner,
    /// Keep set-user-id bits when modifying files.
    Fsetid,
    /// Signal processes of other users.
    Kill,
    /// Change the group id.
    Setgid,
    /// Change the user id.
    Setuid,
    /// Transfer capabilities.
    Setpcap,
    /// Bind ports below 1024.
    NetBindService,
    /// Use raw sockets.
    NetRaw,
    /// Use chroot.
    SysChroot,
    /// Create device nodes.
    Mknod,
    /// Write the audit log.
    AuditWrite,
    /// Set file capabilities.
    Setfcap,
}

impl Capability {
    /// Every capability a job may ask for.
    pub const ALL: [Capability; 14] = [
        Self::Chown,
        Self::DacOverride,
        Self::Fowner,
        Self::Fsetid,
        Self::Kill,
        Self::Setgid,
        Self::Setuid,
        Self::Setpcap,
        Self::NetBindService,
        Self::NetRaw,
        Self::SysChroot,
        Self::Mknod,
        Self::AuditWrite,
        Self::Setfcap,
    ];

    /// The kernel's name, without `CAP_` (as Docker takes it and as it is written on the
    /// wire).
    pub fn name(self) -> &'static str {
        match self {
            Self::Chown => "CHOWN",
            Self::DacOverride => "DAC_OVERRIDE",
            Self::Fowner => "FOWNER",
            Self::Fsetid => "FSETID",
            Self::Kill => "KILL",
            Self::Setgid => "SETGID",
            Self::Setuid => "SETUID",
            Self::Setpcap => "SETPCAP",
            Self::NetBindService => "NET_BIND_SERVICE",
            Self::NetRaw => "NET_RAW",
            Self::SysChroot => "SYS_CHROOT",
            Self::Mknod => "MKNOD",
            Self::AuditWrite => "AUDIT_WRITE",
            Self::Setfcap => "SETFCAP",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Capability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_uppercase();
        let name = name.strip_prefix("CAP_").unwrap_or(&name);
        Self::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| {
                let all: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "{s:?} is not a capability a job may ask for ({})",
                    all.join(", ")
                )
            })
    }
}

impl Capability {
    /// The name Docker and the kernel use, without `CAP_` (`DAC_OVERRIDE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chown => "CHOWN",
            Self::DacOverride => "DAC_OVERRIDE",
            Self::Fowner => "FOWNER",
            Self::Fsetid => "FSETID",
            Self::Kill => "KILL",
            Self::Setgid => "SETGID",
            Self::Setuid => "SETUID",
            Self::Setpcap => "SETPCAP",
            Self::NetBindService => "NET_BIND_SERVICE",
            Self::NetRaw => "NET_RAW",
            Self::SysChroot => "SYS_CHROOT",
            Self::Mknod => "MKNOD",
            Self::AuditWrite => "AUDIT_WRITE",
            Self::Setfcap => "SETFCAP",
        }
    }
}

/// An environment variable for the job's container. `Debug` hides the value: env often
/// carries passwords and tokens.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EnvVar {
    /// Name, `[A-Za-z_][A-Za-z0-9_]*`.
    pub name: String,
    /// Value.
    pub value: String,
}

impl fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=<redacted>", self.name)
    }
}

/// What a published port is for (decides how connection details are shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortPurpose {
    /// An SSH server.
    Ssh,
    /// A Jupyter server.
    Jupyter,
    /// Anything else over TCP.
    Tcp,
}

/// A container port the consumer wants reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRequest {
    /// Port inside the container.
    pub container_port: u16,
    /// What it serves.
    pub purpose: PortPurpose,
}

/// A consumer's signed request to run a job on an offer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobRequest {
    /// The consumer; must be the signer.
    pub consumer: NodeId,
    /// The provider asked.
    pub provider: NodeId,
    /// The offer this request is for.
    pub offer_id: OfferId,
    /// Container image reference.
    pub image: String,
    /// Command and arguments; empty runs the image's default.
    pub command: Vec<String>,
    /// Environment variables.
    pub env: Vec<EnvVar>,
    /// Ports to publish.
    pub ports: Vec<PortRequest>,
    /// GPUs wanted.
    pub gpus: u32,
    /// CPU cores wanted.
    pub cpu_cores: u32,
    /// RAM wanted, MiB.
    pub ram_mib: u64,
    /// Disk wanted, GiB.
    pub disk_gib: u64,
    /// The most the consumer pays per GPU-hour.
    pub max_price_per_gpu_hour: Qu,
    /// Rental length in seconds.
    pub duration_secs: u64,
    /// Qubic identity refunds go to.
    pub refund_to: String,
    /// Qubic identity the payments come from: a payment counts only from it.
    pub pay_from: String,
    /// Linux capabilities the job asks for beyond the base set.
    pub capabilities: Vec<Capability>,
    /// The least isolation the consumer accepts.
    pub isolation: Isolation,
    /// SSH public keys to install for the job's root user (`authorized_keys` lines).
    pub ssh_keys: Vec<String>,
    /// Rent the offer as a hot standby, at its standby price, instead of running now.
    pub standby: bool,
    /// Snapshot `/workspace` this often, seconds; `None`: no periodic checkpoints.
    pub checkpoint_interval_secs: Option<u64>,
    /// How long the provider should keep the last checkpoint after the end, seconds.
    pub checkpoint_retention_secs: u64,
    /// Rent at the offer's interruptible price and accept its notice.
    pub interruptible: bool,
    /// Single-use value; a provider refuses one it has seen.
    pub nonce: Nonce,
    /// When the consumer signed it.
    pub issued_at: UnixMillis,
    /// When it stops being valid.
    pub expires_at: UnixMillis,
}

impl WireMessage for JobRequest {
    const TAG: &'static str = "job-request/";
    const MAX_SIZE: usize = 32 * 1024;
}

impl Authored for JobRequest {
    fn author(&self) -> NodeId {
        self.consumer
    }
}

impl JobRequest {
    /// Checks that every value is sane at time `now`.
    pub fn validate(&self, now: UnixMillis) -> Result<(), ValidationError> {
        check_text(&self.image, "image", 256)?;
        check(
            !self.image.contains(char::is_whitespace),
            "image",
            "must not contain spaces",
        )?;
        check(
            !is_bare_image_id(&self.image),
            "image",
            "name an image by reference (repository[:tag] or repository@sha256:…), not by a bare \
             image id: an id names whatever the provider happens to hold",
        )?;
        check(
            self.command.len() <= MAX_ARGS,
            "command",
            "at most 64 arguments",
        )?;
        for arg in &self.command {
            check(
                arg.len() <= 4096,
                "command",
                "each argument at most 4096 bytes",
            )?;
        }
        self.validate_env()?;
        check(self.ports.len() <= MAX_PORTS, "ports", "at most 16 ports")?;
        check(
            self.ports.iter().all(|p| p.container_port != 0),
            "ports",
            "port 0 is not a port",
        )?;
        check(self.gpus > 0 && self.gpus <= 64, "gpus", "must be 1..=64")?;
        check(self.cpu_cores <= 4096, "cpu_cores", "at most 4096")?;
        check(
            self.max_price_per_gpu_hour.0 > 0,
            "max_price_per_gpu_hour",
            "must be above 0 QU",
        )?;
        check(
            self.max_price_per_gpu_hour.0 <= MAX_QU,
            "max_price_per_gpu_hour",
            "above the QU transfer limit",
        )?;
        check(
            self.duration_secs >= 60 && self.duration_secs <= MAX_RENTAL_SECS,
            "duration_secs",
            "must be 1 minute to 90 days",
        )?;
        check_identity_format(&self.refund_to, "refund_to")?;
        check_identity_format(&self.pay_from, "pay_from")?;
        self.validate_options()?;
        check_window(self.issued_at, self.expires_at, now, MAX_REQUEST_TTL)
    }

    fn validate_options(&self) -> Result<(), ValidationError> {
        let mut caps = self.capabilities.clone();
        caps.sort_unstable();
        caps.dedup();
        check(
            caps.len() == self.capabilities.len(),
            "capabilities",
            "each capability at most once",
        )?;
        check(
            self.ssh_keys.len() <= MAX_SSH_KEYS,
            "ssh_keys",
            "at most 8 keys",
        )?;
        for key in &self.ssh_keys {
            check_ssh_key(key)?;
        }
        check(
            !(self.standby && self.interruptible),
            "standby",
            "a standby cannot also be interruptible",
        )?;
        if let Some(every) = self.checkpoint_interval_secs {
            check(
                (MIN_CHECKPOINT_INTERVAL_SECS..=24 * 3600).contains(&every),
                "checkpoint_interval_secs",
                "must be 30 seconds to one day",
            )?;
        }
        check(
            self.checkpoint_retention_secs <= MAX_CHECKPOINT_RETENTION_SECS,
            "checkpoint_retention_secs",
            "at most 30 days",
        )
    }

    fn validate_env(&self) -> Result<(), ValidationError> {
        check(
            self.env.len() <= MAX_ENV_VARS,
            "env",
            "at most 64 variables",
        )?;
        for var in &self.env {
            let mut chars = var.name.chars();
            let first_ok = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            check(
                first_ok && rest_ok && var.name.len() <= 128,
                "env",
                "names must match [A-Za-z_][A-Za-z0-9_]*",
            )?;
            check(
                !var.name
                    .to_ascii_uppercase()
                    .starts_with(RESERVED_ENV_PREFIX),
                "env",
                "NVIDIA_* variables are reserved: they would choose the provider's GPUs and \
                 driver capabilities",
            )?;
            check(
                var.value.len() <= 4096 && !var.value.contains('\0'),
                "env",
                "values at most 4096 bytes, no NUL",
            )?;
        }
        Ok(())
    }

    /// The most this request can cost: `max price × gpus × duration`.
    pub fn max_budget(&self) -> Option<Qu> {
        self.max_price_per_gpu_hour
            .cost_for(self.gpus, self.duration_secs.saturating_mul(1000))
            .ok()
    }
}

/// An OpenSSH public key line: a known key type, base64 key material, an optional comment;
/// printable ASCII only, so it can go into `authorized_keys` and an environment variable
/// without turning into something else.
fn check_ssh_key(key: &str) -> Result<(), ValidationError> {
    const TYPES: [&str; 6] = [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
    ];
    let printable = key.bytes().all(|b| (0x20..0x7f).contains(&b));
    let mut parts = key.split(' ');
    let known = parts.next().is_some_and(|t| TYPES.contains(&t));
    let material = parts.next().is_some_and(|m| {
        m.len() >= 16
            && m.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    });
    check(
        printable && known && material && key.len() <= MAX_SSH_KEY_LEN,
        "ssh_keys",
        "each key must be one OpenSSH public key line such as `ssh-ed25519 AAAA… name`",
    )
}

/// Payment terms: how the rental is prepaid and settled (DESIGN §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PaymentTerms {
    /// Length of a prepaid window in seconds (default 600).
    pub window_secs: u64,
    /// How often the provider reports usage, in seconds (default 60).
    pub billing_interval_secs: u64,
    /// How long the provider waits for an unconfirmed top-up before stopping the job.
    pub stop_grace_secs: u64,
    /// How long after stopping it waits before terminating the job.
    pub terminate_grace_secs: u64,
}

impl Default for PaymentTerms {
    fn default() -> Self {
        Self {
            window_secs: 600,
            billing_interval_secs: 60,
            stop_grace_secs: 60,
            terminate_grace_secs: 600,
        }
    }
}

/// What the provider agrees to; signed by the provider, countersigned by the consumer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgreementTerms {
    /// Id of the agreement (and of the job and instance).
    pub agreement_id: AgreementId,
    /// The consumer's signed request, verbatim.
    pub request: Envelope,
    /// The provider; must be the signer.
    pub provider: NodeId,
    /// The consumer.
    pub consumer: NodeId,
    /// Agreed price per GPU-hour (at most the request's maximum).
    pub price_per_gpu_hour: Qu,
    /// GPUs reserved.
    pub gpus: u32,
    /// Rental length in seconds.
    pub duration_secs: u64,
    /// The whole rental's cost at the agreed price; what the consumer locks in escrow.
    pub budget: Qu,
    /// Prepaid window, billing interval and grace periods.
    pub payment: PaymentTerms,
    /// Qubic identity the provider is paid at.
    pub pay_to: String,
    /// Qubic identity refunds go to.
    pub refund_to: String,
    /// Qubic identity the consumer pays from (the request's).
    pub pay_from: String,
    /// Price per GPU-hour while the rental is a standby, kept ready but not running; `None`
    /// for a rental that runs from the start.
    pub standby_price_per_gpu_hour: Option<Qu>,
    /// The notice the provider gives before reclaiming an interruptible rental, seconds;
    /// `None` for a rental that is not interruptible.
    pub interruptible_notice_secs: Option<u64>,
    /// When the provider signed.
    pub accepted_at: UnixMillis,
    /// The first window must be paid by then, or the reservation lapses.
    pub fund_by: UnixMillis,
}

impl WireMessage for AgreementTerms {
    const TAG: &'static str = "agreement/";
    const MAX_SIZE: usize = 34 * 1024;
}

impl Authored for AgreementTerms {
    fn author(&self) -> NodeId {
        self.provider
    }
}

impl AgreementTerms {
    /// Opens the embedded request and checks it matches these terms.
    pub fn open_request(&self, network: &Network) -> Result<Signed<JobRequest>, AgreementError> {
        let request = self.request.open::<JobRequest>(network)?;
        let r = request.payload();
        let consistent = r.consumer == self.consumer
            && r.provider == self.provider
            && r.gpus == self.gpus
            && r.duration_secs == self.duration_secs
            && self.price_per_gpu_hour <= r.max_price_per_gpu_hour
            && r.refund_to == self.refund_to
            && r.pay_from == self.pay_from
            && r.standby == self.standby_price_per_gpu_hour.is_some()
            && r.interruptible == self.interruptible_notice_secs.is_some();
        if !consistent {
            return Err(AgreementError::TermsDoNotMatchRequest);
        }
        let budget = self
            .price_per_gpu_hour
            .cost_for(self.gpus, self.duration_secs.saturating_mul(1000));
        if budget.ok() != Some(self.budget) {
            return Err(AgreementError::TermsDoNotMatchRequest);
        }
        Ok(request)
    }

    /// The cost of one prepaid window.
    pub fn window_cost(&self) -> Qu {
        let window = self.payment.window_secs.min(self.duration_secs);
        self.price_per_gpu_hour
            .cost_for(self.gpus, window.saturating_mul(1000))
            .unwrap_or(self.budget)
            .min(self.budget)
    }

    /// The least a payment of window `n` (from 0) must carry: a full window, or what is
    /// left of the budget for the last one. `None` when the budget has no window `n`.
    pub fn window_due(&self, n: u32) -> Option<Qu> {
        let cost = self.window_cost().0;
        let before = cost.checked_mul(u64::from(n))?;
        let left = self.budget.0.checked_sub(before).filter(|left| *left > 0)?;
        Some(Qu(left.min(cost)))
    }

    /// How many windows the budget holds.
    pub fn windows(&self) -> u32 {
        let cost = self.window_cost().0;
        match cost {
            0 => 0,
            c => u32::try_from(self.budget.0.div_ceil(c)).unwrap_or(u32::MAX),
        }
    }
}

/// Why an agreement is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgreementError {
    /// A signature or encoding is bad.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The consumer's countersignature does not verify.
    #[error("the consumer's countersignature does not verify")]
    BadCountersignature,
    /// The terms contradict the request they answer.
    #[error("the agreement's terms do not match the signed request")]
    TermsDoNotMatchRequest,
    /// Someone other than the agreement's consumer tried to countersign.
    #[error("only the consumer named in the terms may countersign")]
    NotTheConsumer,
}

/// An agreement signed by both sides: the provider's signed terms and the consumer's
/// countersignature over the same bytes. Both nodes persist it; it is the evidence.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    /// Provider-signed [`AgreementTerms`].
    pub terms: Envelope,
    /// Consumer's signature over the same domain-tagged payload bytes.
    pub consumer_signature: Vec<u8>,
}

impl fmt::Debug for Agreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agreement")
            .field("terms", &self.terms)
            .finish_non_exhaustive()
    }
}

impl WireMessage for Agreement {
    const TAG: &'static str = "agreement-countersigned/";
    const MAX_SIZE: usize = 35 * 1024;
}

impl Agreement {
    /// The consumer countersigns verified terms, under the countersignature's own tag: a
    /// consumer's signature can never pass for a provider's over the same bytes.
    pub fn countersign(
        terms: &Signed<AgreementTerms>,
        consumer: &SigningKey,
        network: &Network,
    ) -> Result<Self, AgreementError> {
        let me = NodeId::from_verifying_key(&consumer.verifying_key());
        if terms.payload().consumer != me {
            return Err(AgreementError::NotTheConsumer);
        }
        terms.payload().open_request(network)?;
        let payload = &terms.envelope().as_bytes()[crate::signed::HEADER_LEN..];
        let sig = sign_bytes::<Agreement>(consumer, network, payload);
        Ok(Self {
            terms: terms.envelope().clone(),
            consumer_signature: sig.to_vec(),
        })
    }

    /// Verifies both signatures and the terms' consistency with the request.
    pub fn verify(&self, network: &Network) -> Result<Signed<AgreementTerms>, AgreementError> {
        let terms = self.terms.open::<AgreementTerms>(network)?;
        terms.payload().open_request(network)?;
        let sig: [u8; 64] = self
            .consumer_signature
            .as_slice()
            .try_into()
            .map_err(|_| AgreementError::BadCountersignature)?;
        let payload = &self.terms.as_bytes()[crate::signed::HEADER_LEN..];
        if !verify_bytes::<Agreement>(&terms.payload().consumer, network, payload, &sig) {
            return Err(AgreementError::BadCountersignature);
        }
        Ok(terms)
    }
}

/// Why a provider refused a request. Codes only: no internal detail reaches the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The offer is unknown to the provider or withdrawn.
    UnknownOffer,
    /// Not enough free GPUs, CPU, RAM or disk for the request.
    NoCapacity,
    /// The provider's price is above the request's maximum.
    PriceAboveMaximum,
    /// The duration is outside the offer's minimum and maximum rental.
    DurationOutOfRange,
    /// The request expired, or its timestamps are out of range.
    Expired,
    /// The nonce was seen before.
    Replay,
    /// The provider's policy refuses this image, command or port.
    Policy,
    /// The request is malformed or fails validation.
    Invalid,
    /// The signature is bad or the signer is not the sending peer.
    BadSignature,
    /// The provider is shutting down or overloaded; try again later.
    Unavailable,
    /// The agreement referenced is unknown or already confirmed differently.
    UnknownAgreement,
    /// The countersigned terms are not the terms this provider offered.
    TermsMismatch,
    /// The paying identity does not hold the first windows of its unfunded reservations.
    InsufficientBalance,
    /// The paying identity has too many unfunded reservations with this provider.
    ReservationLimit,
    /// Too many requests from this peer; try again later.
    RateLimited,
}

impl RejectCode {
    /// A sentence for the consumer's user.
    pub fn explain(self) -> &'static str {
        match self {
            Self::UnknownOffer => "the provider no longer has this offer",
            Self::NoCapacity => "the provider has no free capacity for this request",
            Self::PriceAboveMaximum => "the provider's price is above your maximum price",
            Self::DurationOutOfRange => {
                "the duration is outside the offer's minimum and maximum rental"
            }
            Self::Expired => "the request expired before the provider saw it; check your clock",
            Self::Replay => "the request was already seen (replay)",
            Self::Policy => "the provider's policy refuses this image, command or port",
            Self::Invalid => "the request is malformed",
            Self::BadSignature => "the request's signature did not verify",
            Self::Unavailable => "the provider is unavailable; try again later",
            Self::UnknownAgreement => "the provider does not know this agreement",
            Self::TermsMismatch => "the countersigned terms are not the terms the provider offered",
            Self::InsufficientBalance => {
                "your paying identity does not hold the first window of every reservation it \
                 has with this provider; deposit QU or pay for the reservations you hold"
            }
            Self::ReservationLimit => {
                "your paying identity holds too many unpaid reservations with this provider; \
                 pay for them or let them lapse"
            }
            Self::RateLimited => {
                "the provider is receiving too many requests from you; retry shortly"
            }
        }
    }
}

/// A provider's refusal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rejection {
    /// The nonce of the refused request.
    pub nonce: Nonce,
    /// Why.
    pub code: RejectCode,
}

/// Requests on `/qubix/<network>/negotiate/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NegotiateRequest {
    /// A signed [`JobRequest`].
    Propose(Envelope),
    /// The countersigned agreement.
    Countersign(Agreement),
}

impl WireMessage for NegotiateRequest {
    const TAG: &'static str = "negotiate-request/";
    const MAX_SIZE: usize = 36 * 1024;
}

/// Responses on `/qubix/<network>/negotiate/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NegotiateResponse {
    /// Signed [`AgreementTerms`] for the consumer to countersign.
    Terms(Envelope),
    /// The request or countersignature was refused.
    Rejected(Rejection),
    /// The provider stored the countersigned agreement.
    Confirmed(AgreementId),
}

impl WireMessage for NegotiateResponse {
    const TAG: &'static str = "negotiate-response/";
    const MAX_SIZE: usize = 36 * 1024;
}
