//! Sample data for the in-memory node: offers from four simulated providers, one running
//! instance with SSH and Jupyter ports, a ledger, a wallet. Deterministic, so tests can name
//! what they expect.

use std::collections::BTreeMap;

use qubix_protocol::Signed;
use qubix_protocol::api::{
    Billing, CheckKind, Connection, Earnings, GpuInfo, GpuSample, GpusView, Instance,
    InstanceBilling, LedgerEntry, LogLine, LogStream, MetricsSample, NodeInfo, OfferView, PeerInfo,
    Posting, ProviderCheck, ProviderJob, ProviderPricing, ProviderStatus, SignedReceipt, Wallet,
};
use qubix_protocol::billing::Receipt;
use qubix_protocol::control::JobState;
use qubix_protocol::job::PortPurpose;
use qubix_protocol::offer::{GpuSpec, Location, Offer, PcieLink, Version};
use qubix_protocol::{AgreementId, NodeId, OfferId, Qu, UnixMillis};

/// A fixed "now": 2026-01-01T00:00:00Z.
pub const NOW: UnixMillis = UnixMillis(1_767_225_600_000);
/// The wallet identity of this node.
pub const IDENTITY: &str = "LSGSCFHDOAHHLBDMLYZRFKVSFRQBBUZNGANESCIZCETYXKCDHLJHEMOFXCWB";

/// The node id of a fixed key.
pub fn node(seed: u8) -> NodeId {
    NodeId::from_verifying_key(&ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key())
}

/// The id of the instance that runs from the start.
pub fn running_id() -> AgreementId {
    AgreementId::from_bytes([0xa1; 16])
}

/// This node's id.
pub fn me() -> NodeId {
    node(1)
}

fn offer(
    seed: u8,
    model: &str,
    vram_gib: u64,
    count: u32,
    price: u64,
    country: &str,
    cuda: Version,
) -> OfferView {
    let offer = Offer {
        provider: node(seed),
        offer_id: OfferId::from_bytes([seed; 16]),
        sequence: 1,
        gpu: GpuSpec {
            model: model.into(),
            vram_mib: vram_gib * 1024,
            compute_capability: Version::new(8, 9),
            cuda_version: cuda,
            driver_version: "550.54.15".into(),
            pcie: Some(PcieLink {
                generation: 4,
                width: 16,
            }),
            nvlink: None,
        },
        gpu_count: count,
        cpu_cores: 8 * count,
        ram_mib: 32 * 1024 * u64::from(count),
        disk_gib: 200 * u64::from(count),
        location: Location {
            country: country.into(),
            region: None,
        },
        price_per_gpu_hour: Qu(price),
        min_rental_secs: 600,
        max_rental_secs: 7 * 86_400,
        pay_to: IDENTITY.into(),
        simulated: true,
        isolation: qubix_protocol::offer::Isolation::Container,
        standby_price_per_gpu_hour: None,
        interruptible: None,
        checkpoint_retention_secs: 0,
        issued_at: NOW,
        expires_at: UnixMillis(NOW.0 + 1_800_000),
    };
    OfferView {
        id: qubix_protocol::OfferRef::new(offer.provider, offer.offer_id),
        offer,
        reliability: Some(0.9 + f64::from(seed % 10) / 100.0),
    }
}

/// The market: four providers, all simulated.
pub fn offers() -> Vec<OfferView> {
    vec![
        offer(
            11,
            "NVIDIA GeForce RTX 4090",
            24,
            2,
            1_200,
            "DE",
            Version::new(12, 4),
        ),
        offer(
            12,
            "NVIDIA A100-SXM4-80GB",
            80,
            8,
            4_500,
            "US",
            Version::new(12, 2),
        ),
        offer(
            13,
            "NVIDIA GeForce RTX 3090",
            24,
            1,
            700,
            "FR",
            Version::new(12, 1),
        ),
        offer(
            14,
            "NVIDIA H100 80GB HBM3",
            80,
            4,
            9_000,
            "NL",
            Version::new(12, 4),
        ),
    ]
}

/// A running instance on the first offer.
pub fn running_instance() -> Instance {
    let o = &offers()[0].offer;
    Instance {
        id: running_id(),
        provider: o.provider,
        offer_id: o.offer_id,
        state: JobState::Running,
        image: "pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime".into(),
        gpus: 1,
        gpu_model: o.gpu.model.clone(),
        simulated: true,
        price_per_gpu_hour: o.price_per_gpu_hour,
        duration_secs: 7200,
        budget: Qu(2_400),
        paid: Qu(400),
        spent: Qu(360),
        created_at: UnixMillis(NOW.0 - 1_080_000),
        started_at: Some(UnixMillis(NOW.0 - 1_050_000)),
        exit_code: None,
        reason: None,
        connections: vec![
            Connection {
                container_port: 22,
                purpose: PortPurpose::Ssh,
                host: "127.0.0.1".into(),
                port: 40022,
                hint: "ssh -p 40022 root@127.0.0.1".into(),
            },
            Connection {
                container_port: 8888,
                purpose: PortPurpose::Jupyter,
                host: "127.0.0.1".into(),
                port: 48888,
                hint: "http://127.0.0.1:48888/".into(),
            },
        ],
        progress: None,
    }
}

/// Log history of the running instance.
pub fn log_history() -> Vec<LogLine> {
    (0..20)
        .map(|i| LogLine {
            at: UnixMillis(NOW.0 + i * 1000),
            stream: if i % 7 == 6 {
                LogStream::Stderr
            } else {
                LogStream::Stdout
            },
            line: format!("epoch {i}: loss {:.3}", 2.0 / (i as f64 + 1.0)),
        })
        .collect()
}

/// Metrics history of the running instance.
pub fn metrics_history() -> Vec<MetricsSample> {
    (0..30).map(metrics_sample).collect()
}

/// The `i`-th metrics sample (a smooth, deterministic curve).
pub fn metrics_sample(i: u64) -> MetricsSample {
    let wave = ((i as f64) / 4.0).sin();
    MetricsSample {
        at: UnixMillis(NOW.0 + i * 2000),
        cpu_pct: 120.0 + 40.0 * wave,
        memory_used_mib: 9_000 + (1_000.0 * wave) as u64,
        memory_limit_mib: 32_768,
        gpus: vec![GpuSample {
            uuid: "GPU-sim-0".into(),
            utilization_pct: 70.0 + 25.0 * wave,
            memory_used_mib: 18_000 + (2_000.0 * wave) as u64,
            memory_total_mib: 24_576,
            temperature_c: 64.0 + 6.0 * wave,
            power_w: 300.0 + 50.0 * wave,
        }],
        simulated: true,
    }
}

/// This node.
pub fn node_info(provider: bool) -> NodeInfo {
    NodeInfo {
        node_id: me(),
        network: "testnet".into(),
        version: "0.1.0".into(),
        listen_addrs: vec![
            "/ip4/127.0.0.1/tcp/4001".into(),
            "/ip4/127.0.0.1/udp/4001/quic-v1".into(),
        ],
        provider,
        wallet_identity: Some(IDENTITY.into()),
        peers: 4,
        offers_known: 4,
        started_at: UnixMillis(NOW.0 - 3_600_000),
    }
}

/// The connected peers (the four providers).
pub fn peers() -> Vec<PeerInfo> {
    offers()
        .iter()
        .enumerate()
        .map(|(i, o)| PeerInfo {
            node_id: o.offer.provider,
            addresses: vec![format!("/ip4/127.0.0.1/tcp/{}", 4002 + i)],
            rtt_ms: Some(2 + i as u64),
            agent: Some("qubix/0.1.0".into()),
            offers: 1,
        })
        .collect()
}

/// This node's (simulated) GPUs.
pub fn gpus() -> GpusView {
    let gpu = |index: u32| GpuInfo {
        index,
        uuid: format!("GPU-sim-{index}"),
        model: "NVIDIA GeForce RTX 4090".into(),
        vram_mib: 24_576,
        driver_version: "550.54.15".into(),
        cuda_version: "12.4".into(),
        compute_capability: "8.9".into(),
        simulated: true,
        allocated_to: None,
    };
    GpusView {
        probe: "simulated".into(),
        reason: None,
        gpus: vec![gpu(0), gpu(1)],
    }
}

/// Billing with the running instance's escrow.
pub fn billing() -> Billing {
    Billing {
        deposit_identity: Some(IDENTITY.into()),
        available: Qu(97_600),
        escrow: Qu(2_000),
        prepaid: Qu(40),
        spent: Qu(360),
        instances: vec![InstanceBilling {
            id: running_id(),
            budget: Qu(2_400),
            escrow: Qu(2_000),
            paid: Qu(400),
            spent: Qu(360),
            refunded: Qu(0),
        }],
    }
}

/// The running instance's receipts, really signed by the consumer's key (seed 7).
pub fn receipts(id: AgreementId) -> Vec<SignedReceipt> {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    (1..=3u64)
        .map(|n| {
            let receipt = Receipt {
                agreement_id: id,
                consumer: NodeId::from_verifying_key(&key.verifying_key()),
                report_sequence: n,
                billable_millis: n * 60_000,
                amount: Qu(n * 10),
                issued_at: UnixMillis(NOW.0 - (3 - n) * 60_000),
            };
            let network = qubix_protocol::topics::Network::new("testnet").expect("a valid name");
            let signed =
                Signed::sign(receipt, &key, &network).expect("a receipt fits its size limit");
            SignedReceipt::from_signed(&signed)
        })
        .collect()
}

/// Ledger transactions, newest first.
pub fn ledger() -> Vec<LedgerEntry> {
    let entry = |n: u64, kind: &str, agreement: Option<AgreementId>, account: &str, delta: i64| {
        LedgerEntry {
            id: format!("tx-{n:04}"),
            at: UnixMillis(NOW.0 - (40 - n) * 60_000),
            kind: kind.into(),
            agreement_id: agreement,
            postings: vec![
                Posting {
                    account: account.into(),
                    delta,
                },
                Posting {
                    account: "available".into(),
                    delta: -delta,
                },
            ],
        }
    };
    let id = Some(running_id());
    let mut entries = vec![
        entry(1, "deposit", None, "chain", -100_000),
        entry(2, "lock_escrow", id, "escrow/a1", 2_400),
        entry(3, "pay_window", id, "prepaid/a1", 400),
    ];
    entries.extend((4..40).map(|n| entry(n, "receipt", id, "spent/a1", 10)));
    entries.reverse();
    entries
}

/// The wallet.
pub fn wallet() -> Wallet {
    Wallet {
        identity: Some(IDENTITY.into()),
        balance: Some(Qu(100_000)),
        tick: Some(18_000_123),
        rpc: "http://127.0.0.1:21841".into(),
        error: None,
    }
}

/// Provider pricing.
pub fn pricing() -> ProviderPricing {
    let per_model = BTreeMap::from([("NVIDIA GeForce RTX 4090".to_owned(), Qu(1_200))]);
    ProviderPricing {
        default_price_per_gpu_hour: Qu(1_000),
        per_model,
        min_rental_secs: 600,
        max_rental_secs: 604_800,
    }
}

/// Jobs this node ran for others.
pub fn provider_jobs() -> Vec<ProviderJob> {
    vec![ProviderJob {
        id: AgreementId::from_bytes([0xb2; 16]),
        consumer: node(21),
        state: JobState::Running,
        image: "nvidia/cuda:12.4.0-base-ubuntu22.04".into(),
        gpus: 1,
        price_per_gpu_hour: Qu(1_200),
        earned: Qu(840),
        created_at: UnixMillis(NOW.0 - 2_520_000),
        reason: None,
    }]
}

/// Earnings over a week.
pub fn earnings() -> Earnings {
    let by_day = (0..7)
        .map(|d| (format!("2025-12-{:02}", 25 + d), Qu(1_000 + d * 350)))
        .collect();
    Earnings {
        earned: Qu(13_350),
        prepaid_held: Qu(200),
        refunds_due: Qu(0),
        by_day,
    }
}

/// The onboarding checklist of a provider with simulated GPUs and no Docker.
pub fn provider_status(provider: bool) -> ProviderStatus {
    let check = |kind, ok, detail: &str| ProviderCheck {
        kind,
        ok,
        detail: detail.into(),
    };
    ProviderStatus {
        provider,
        checks: vec![
            check(CheckKind::Gpu, true, "2 simulated GPUs (testnet)"),
            check(
                CheckKind::Docker,
                true,
                "Docker 24.0.7 answers on /var/run/docker.sock",
            ),
            check(
                CheckKind::NvidiaRuntime,
                false,
                "no nvidia runtime in Docker; install nvidia-container-toolkit",
            ),
            check(CheckKind::Wallet, true, "wallet LSGS…CWB"),
            check(CheckKind::Pricing, true, "1,000 QU per GPU-hour"),
        ],
    }
}
