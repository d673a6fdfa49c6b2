//! Deterministic sample messages for tests and benchmarks (feature `testing`). Keys come from
//! fixed seeds so signatures, and therefore golden bytes, never change.

use ed25519_dalek::SigningKey;

use crate::amount::Qu;
use crate::ids::{AgreementId, NodeId, Nonce, OfferId};
use crate::job::{AgreementTerms, EnvVar, JobRequest, PaymentTerms, PortPurpose, PortRequest};
use crate::offer::{GpuSpec, Isolation, Location, Offer, PcieLink, Version};
use crate::signed::{SignError, Signed};
use crate::time::UnixMillis;
use crate::topics::Network;

/// A fixed Qubic identity (SPEC vector: seed `a`×55's destination in T1).
pub const PAY_TO: &str = "LSGSCFHDOAHHLBDMLYZRFKVSFRQBBUZNGANESCIZCETYXKCDHLJHEMOFXCWB";
/// Another fixed Qubic identity.
pub const REFUND_TO: &str = "LZTPJBQKOYLBFEWWFVEFDFOOFEWCUSSNNKLOXGDQJGBTYUMJVAOSYHIGYDOM";
/// The fixed "now" of the samples: 2026-01-01T00:00:00Z.
pub const NOW: UnixMillis = UnixMillis(1_767_225_600_000);

/// The network the samples are signed on.
pub fn network() -> Network {
    match Network::new("testnet") {
        Ok(n) => n,
        Err(_) => unreachable!("`testnet` is a valid network name"),
    }
}

/// A signing key from a one-byte seed.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// The node id of [`key`]`(seed)`.
pub fn node(seed: u8) -> NodeId {
    NodeId::from_verifying_key(&key(seed).verifying_key())
}

/// A valid RTX 4090 offer by `node(provider)`.
pub fn offer(provider: u8) -> Offer {
    Offer {
        provider: node(provider),
        offer_id: OfferId::from_bytes([provider; 16]),
        sequence: 1,
        gpu: GpuSpec {
            model: "NVIDIA GeForce RTX 4090".into(),
            vram_mib: 24 * 1024,
            compute_capability: Version::new(8, 9),
            cuda_version: Version::new(12, 4),
            driver_version: "550.54.15".into(),
            pcie: Some(PcieLink {
                generation: 4,
                width: 16,
            }),
            nvlink: Some(false),
        },
        gpu_count: 2,
        cpu_cores: 16,
        ram_mib: 64 * 1024,
        disk_gib: 500,
        location: Location {
            country: "DE".into(),
            region: Some("eu-central".into()),
        },
        price_per_gpu_hour: Qu(1_200),
        min_rental_secs: 600,
        max_rental_secs: 7 * 24 * 3600,
        pay_to: PAY_TO.into(),
        simulated: true,
        isolation: Isolation::Container,
        standby_price_per_gpu_hour: None,
        interruptible: None,
        checkpoint_retention_secs: 24 * 3600,
        issued_at: NOW,
        expires_at: UnixMillis(NOW.0 + 30 * 60 * 1000),
    }
}

/// A valid request by `node(consumer)` for [`offer`]`(provider)`.
pub fn job_request(consumer: u8, provider: u8) -> JobRequest {
    JobRequest {
        consumer: node(consumer),
        provider: node(provider),
        offer_id: OfferId::from_bytes([provider; 16]),
        image: "qubix/test:latest".into(),
        command: vec!["sh".into(), "-c".into(), "echo hello".into()],
        env: vec![EnvVar {
            name: "JUPYTER_TOKEN".into(),
            value: "s3cret".into(),
        }],
        ports: vec![PortRequest {
            container_port: 22,
            purpose: PortPurpose::Ssh,
        }],
        gpus: 1,
        cpu_cores: 4,
        ram_mib: 8 * 1024,
        disk_gib: 20,
        max_price_per_gpu_hour: Qu(1_500),
        duration_secs: 3600,
        refund_to: REFUND_TO.into(),
        pay_from: REFUND_TO.into(),
        capabilities: Vec::new(),
        isolation: Isolation::Container,
        ssh_keys: Vec::new(),
        standby: false,
        checkpoint_interval_secs: None,
        checkpoint_retention_secs: 0,
        interruptible: false,
        nonce: Nonce::from_bytes([consumer; 16]),
        issued_at: NOW,
        expires_at: UnixMillis(NOW.0 + 60_000),
    }
}

/// Terms answering [`job_request`] at the offer's price.
pub fn agreement_terms(consumer: u8, provider: u8) -> Result<AgreementTerms, SignError> {
    let request = Signed::sign(job_request(consumer, provider), &key(consumer), &network())?;
    let price = Qu(1_200);
    Ok(AgreementTerms {
        agreement_id: AgreementId::from_bytes([0xa5; 16]),
        request: request.envelope().clone(),
        provider: node(provider),
        consumer: node(consumer),
        price_per_gpu_hour: price,
        gpus: 1,
        duration_secs: 3600,
        budget: Qu(1_200),
        payment: PaymentTerms::default(),
        pay_to: PAY_TO.into(),
        refund_to: REFUND_TO.into(),
        pay_from: REFUND_TO.into(),
        standby_price_per_gpu_hour: None,
        interruptible_notice_secs: None,
        accepted_at: NOW,
        fund_by: UnixMillis(NOW.0 + 120_000),
    })
}
