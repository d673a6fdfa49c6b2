//! The consumer's side of negotiation: build and sign a request for an offer, then check the
//! provider's terms against exactly what was asked before countersigning.

use ed25519_dalek::SigningKey;
use qubix_protocol::api::LaunchRequest;
use qubix_protocol::job::{Agreement, AgreementTerms, Capability, EnvVar, JobRequest, PortPurpose};
use qubix_protocol::offer::Isolation;
use qubix_protocol::offer::Offer;
use qubix_protocol::signed::SignError;
use qubix_protocol::topics::Network;
use qubix_protocol::{Envelope, NodeId, Nonce, Signed, UnixMillis};

/// How long a request stays valid.
pub const REQUEST_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// The payment terms a consumer accepts. A provider chooses the terms; without bounds it
/// could ask for the whole budget as one prepaid window, report usage once a day, or keep
/// the job unpaid for days. Each bound is configurable (`[consumer.terms]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TermsLimits {
    /// Longest prepaid window, seconds: the most a consumer pays ahead.
    pub max_window_secs: u64,
    /// Longest billing interval, seconds.
    pub max_billing_interval_secs: u64,
    /// Shortest billing interval, seconds (receipts are signed about three times per
    /// interval).
    pub min_billing_interval_secs: u64,
    /// Longest stop or terminate grace, seconds.
    pub max_grace_secs: u64,
    /// How far `accepted_at` may be from this node's clock, seconds.
    pub max_clock_offset_secs: u64,
    /// Longest time from now to `fund_by`, seconds.
    pub max_fund_secs: u64,
}

impl Default for TermsLimits {
    fn default() -> Self {
        Self {
            max_window_secs: 600,
            max_billing_interval_secs: 60,
            min_billing_interval_secs: 3,
            max_grace_secs: 600,
            max_clock_offset_secs: 120,
            max_fund_secs: 600,
        }
    }
}

impl TermsLimits {
    /// Checks the bounds themselves.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.max_window_secs == 0 || self.max_billing_interval_secs == 0 {
            return Err((
                "consumer.terms",
                "window and billing interval bounds must be above 0",
            ));
        }
        if self.min_billing_interval_secs > self.max_billing_interval_secs {
            return Err((
                "consumer.terms.min_billing_interval_secs",
                "must not exceed max_billing_interval_secs",
            ));
        }
        Ok(())
    }

    /// The first field of `terms` outside these bounds at `now`, with why.
    pub fn check(&self, t: &AgreementTerms, now: UnixMillis) -> Result<(), TermsError> {
        let p = &t.payment;
        let refuse =
            |field: &'static str, reason: String| Err(TermsError::Unacceptable { field, reason });
        if p.window_secs == 0 || p.window_secs > self.max_window_secs {
            return refuse(
                "payment.window_secs",
                format!(
                    "{} s; this node prepays 1 to {} s",
                    p.window_secs, self.max_window_secs
                ),
            );
        }
        let interval = self.min_billing_interval_secs..=self.max_billing_interval_secs;
        if !interval.contains(&p.billing_interval_secs) || p.billing_interval_secs > p.window_secs {
            return refuse(
                "payment.billing_interval_secs",
                format!(
                    "{} s; this node accepts {} to {} s, and at most the window",
                    p.billing_interval_secs,
                    self.min_billing_interval_secs,
                    self.max_billing_interval_secs
                ),
            );
        }
        for (field, grace) in [
            ("payment.stop_grace_secs", p.stop_grace_secs),
            ("payment.terminate_grace_secs", p.terminate_grace_secs),
        ] {
            if grace > self.max_grace_secs {
                return refuse(
                    field,
                    format!(
                        "{grace} s; this node accepts at most {} s",
                        self.max_grace_secs
                    ),
                );
            }
        }
        let offset = std::time::Duration::from_secs(self.max_clock_offset_secs);
        if t.accepted_at > now.saturating_add(offset) || now.since(t.accepted_at) > offset {
            return refuse(
                "accepted_at",
                format!(
                    "{} ms from this node's clock; at most {} s apart is accepted",
                    i128::from(t.accepted_at.0) - i128::from(now.0),
                    self.max_clock_offset_secs
                ),
            );
        }
        let fund = std::time::Duration::from_secs(self.max_fund_secs);
        if t.fund_by <= now || t.fund_by > now.saturating_add(fund) {
            return refuse(
                "fund_by",
                format!(
                    "{} ms from now; must be in the future and at most {} s away",
                    i128::from(t.fund_by.0) - i128::from(now.0),
                    self.max_fund_secs
                ),
            );
        }
        Ok(())
    }
}

/// Why the provider's answer cannot be countersigned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    /// The terms are outside what this node accepts.
    #[error("the provider's terms are unacceptable: {field} is {reason}")]
    Unacceptable {
        /// The field out of bounds.
        field: &'static str,
        /// Its value and the bound.
        reason: String,
    },
    /// The terms are not signed by the provider asked.
    #[error("the terms are not signed by the provider asked")]
    WrongSigner,
    /// The terms do not embed the request this node sent.
    #[error("the terms answer another request")]
    NotOurRequest,
    /// The terms contradict the request (price, GPUs, duration, budget).
    #[error("the terms contradict the request: {0}")]
    Inconsistent(String),
}

/// The capabilities a launch asks for: its own, and with an SSH port what sshd needs.
fn capabilities_for(launch: &LaunchRequest) -> Vec<Capability> {
    let mut caps = launch.capabilities.clone();
    if launch.ports.iter().any(|p| p.purpose == PortPurpose::Ssh) {
        caps.extend(crate::negotiation::SSH_CAPABILITIES);
    }
    caps.sort_unstable();
    caps.dedup();
    caps
}

/// Builds the request for `offer` from a launch, signed by `me` on `network`; `wallet` pays
/// and is refunded.
pub fn build_request(
    me: &SigningKey,
    network: &Network,
    offer: &Offer,
    launch: &LaunchRequest,
    wallet: &str,
    now: UnixMillis,
) -> Result<Signed<JobRequest>, SignError> {
    let share = |total: u64| {
        total.saturating_mul(u64::from(launch.gpus)) / u64::from(offer.gpu_count.max(1))
    };
    let request = JobRequest {
        consumer: NodeId::from_verifying_key(&me.verifying_key()),
        provider: offer.provider,
        offer_id: offer.offer_id,
        image: launch.image.clone(),
        command: launch.command.clone(),
        env: launch
            .env
            .iter()
            .map(|(name, value)| EnvVar {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        ports: launch.ports.clone(),
        gpus: launch.gpus,
        cpu_cores: launch.cpu_cores.unwrap_or_else(|| {
            u32::try_from(share(u64::from(offer.cpu_cores)))
                .unwrap_or(1)
                .max(1)
        }),
        ram_mib: launch.ram_mib.unwrap_or_else(|| share(offer.ram_mib)),
        disk_gib: launch.disk_gib.unwrap_or_else(|| share(offer.disk_gib)),
        max_price_per_gpu_hour: launch
            .max_price_per_gpu_hour
            .unwrap_or(offer.price_per_gpu_hour),
        duration_secs: launch.duration_secs,
        refund_to: wallet.into(),
        pay_from: wallet.into(),
        capabilities: capabilities_for(launch),
        isolation: Isolation::Container,
        ssh_keys: Vec::new(),
        standby: false,
        checkpoint_interval_secs: None,
        checkpoint_retention_secs: 0,
        interruptible: false,
        nonce: Nonce::random(),
        issued_at: now,
        expires_at: now.saturating_add(REQUEST_TTL),
    };
    Signed::sign(request, me, network)
}

/// Opens the provider's terms and checks they answer `request` exactly and stay within
/// `limits` at `now`.
pub fn check_terms(
    network: &Network,
    terms: &Envelope,
    request: &Signed<JobRequest>,
    limits: &TermsLimits,
    now: UnixMillis,
) -> Result<Signed<AgreementTerms>, TermsError> {
    let provider = request.payload().provider;
    let terms = terms
        .open_from::<AgreementTerms>(network, &provider)
        .map_err(|_| TermsError::WrongSigner)?;
    let t = terms.payload();
    if t.request != *request.envelope() {
        return Err(TermsError::NotOurRequest);
    }
    t.open_request(network)
        .map_err(|e| TermsError::Inconsistent(e.to_string()))?;
    limits.check(t, now)?;
    Ok(terms)
}

/// Countersigns checked terms.
pub fn countersign(
    network: &Network,
    terms: &Signed<AgreementTerms>,
    me: &SigningKey,
) -> Result<Agreement, TermsError> {
    Agreement::countersign(terms, me, network).map_err(|e| TermsError::Inconsistent(e.to_string()))
}
