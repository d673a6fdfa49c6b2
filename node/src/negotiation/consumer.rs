//! The consumer's side of negotiation: build and sign a request for an offer, then check the
//! provider's terms against exactly what was asked before countersigning.

use ed25519_dalek::SigningKey;
use qubix_protocol::api::LaunchRequest;
use qubix_protocol::job::{Agreement, AgreementTerms, EnvVar, JobRequest};
use qubix_protocol::offer::Isolation;
use qubix_protocol::offer::Offer;
use qubix_protocol::signed::SignError;
use qubix_protocol::topics::Network;
use qubix_protocol::{Envelope, NodeId, Nonce, Signed, UnixMillis};

/// How long a request stays valid.
pub const REQUEST_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Why the provider's answer cannot be countersigned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
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
        capabilities: Vec::new(),
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

/// Opens the provider's terms and checks they answer `request` exactly.
pub fn check_terms(
    network: &Network,
    terms: &Envelope,
    request: &Signed<JobRequest>,
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
