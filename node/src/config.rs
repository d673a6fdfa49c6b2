//! Node configuration: a serde struct with defaults and `validate()`. Layers, lowest first:
//! the TOML file (`--config`), `QUBIX_*` environment variables, command-line flags. The
//! binary's flags carry the env names (clap's `env`), so env < flags comes from clap, and
//! [`NodeConfig::overlay`] lays both over the file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::Multiaddr;
use qubix_protocol::Qu;
use qubix_protocol::topics::Network;
use serde::{Deserialize, Serialize};

/// Why the configuration is unusable. Each names the field and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this schema.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key).
        message: String,
    },
    /// A value is out of range.
    #[error("config `{field}`: {problem}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong and what to do.
        problem: String,
    },
}

fn invalid(field: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        problem: problem.into(),
    }
}

/// What a provider offers and charges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// Whether this node offers its GPUs.
    pub enabled: bool,
    /// Simulated GPUs (`MODEL:VRAM_GIB:COUNT`), testnets only.
    pub simulate_gpu: Option<String>,
    /// Run jobs as plain processes on this machine when Docker does not answer: no isolation
    /// at all, so only with simulated GPUs off mainnet, and every offer says so.
    pub unsafe_local_jobs: bool,
    /// Price per GPU-hour for models without their own price.
    pub default_price: u64,
    /// Price per GPU-hour by model name.
    pub prices: BTreeMap<String, u64>,
    /// ISO country code of the machine.
    pub country: String,
    /// Optional region.
    pub region: Option<String>,
    /// Shortest rental accepted, seconds.
    pub min_rental_secs: u64,
    /// Longest rental accepted, seconds.
    pub max_rental_secs: u64,
    /// How long an offer lives before it must be republished, seconds.
    pub offer_ttl_secs: u64,
    /// Host consumers connect to for published ports.
    pub public_host: String,
    /// CPU cores offered (0: all of them).
    pub cpu_cores: u32,
    /// RAM offered in MiB (0: 80 % of the machine's).
    pub ram_mib: u64,
    /// Disk offered in GiB.
    pub disk_gib: u64,
    /// Terminate a job its consumer left stopped for this many seconds (none: keep it until
    /// the rental ends).
    pub max_idle_secs: Option<u64>,
    /// The payment terms offered to consumers.
    pub payment: PaymentConfig,
    /// Most unfunded reservations one paying identity may hold at once.
    pub max_unfunded_per_payer: u32,
    /// The private range each job's own network is carved from (a /29 per job).
    pub job_network_pool: String,
    /// Whether jobs may open connections to public addresses (private, link-local and this
    /// machine's own addresses are never reachable from a job).
    pub public_egress: bool,
    /// The largest image pulled for a job, GiB (compressed layers).
    pub max_image_gib: u64,
    /// The longest an image pull may take, seconds.
    pub pull_timeout_secs: u64,
    /// Images already on this machine's engine that jobs may run without a pull (empty by
    /// default: every image is pulled by reference, without this machine's registry
    /// credentials, before it runs).
    pub local_images: Vec<String>,
    /// Linux capabilities a job may ask for and get, beyond its base set (`KILL`,
    /// `NET_BIND_SERVICE`, `AUDIT_WRITE`); a rental asking for others is refused. The
    /// default is what an SSH server needs.
    pub allowed_capabilities: Vec<qubix_protocol::job::Capability>,
    /// `job/2` requests answered per second for each peer (bursts of three seconds' worth);
    /// past it a peer gets `rate_limited`. Twenty rentals polled every second need about 80.
    pub job_requests_per_sec: u32,
}

/// The payment terms a provider offers (DESIGN §6). The defaults are what consumers accept
/// by default; terms beyond a consumer's bounds are refused by that consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentConfig {
    /// The prepaid window, seconds.
    pub window_secs: u64,
    /// How often usage is reported and receipted, seconds.
    pub billing_interval_secs: u64,
    /// How long an unpaid or unacknowledged job runs on before it is stopped, seconds.
    pub stop_grace_secs: u64,
    /// How long a job stopped for non-payment is kept before it is terminated, seconds.
    pub terminate_grace_secs: u64,
    /// How long a consumer has to countersign offered terms, seconds.
    pub countersign_secs: u64,
    /// How long after countersigning the first window must be paid, seconds.
    pub fund_secs: u64,
}

impl Default for PaymentConfig {
    fn default() -> Self {
        let terms = qubix_protocol::job::PaymentTerms::default();
        Self {
            window_secs: terms.window_secs,
            billing_interval_secs: terms.billing_interval_secs,
            stop_grace_secs: terms.stop_grace_secs,
            terminate_grace_secs: terms.terminate_grace_secs,
            countersign_secs: crate::negotiation::provider::COUNTERSIGN_WINDOW.as_secs(),
            fund_secs: crate::negotiation::provider::FUND_WINDOW.as_secs(),
        }
    }
}

impl PaymentConfig {
    /// The terms as they go on the wire.
    pub fn terms(&self) -> qubix_protocol::job::PaymentTerms {
        qubix_protocol::job::PaymentTerms {
            window_secs: self.window_secs,
            billing_interval_secs: self.billing_interval_secs,
            stop_grace_secs: self.stop_grace_secs,
            terminate_grace_secs: self.terminate_grace_secs,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(10..=600).contains(&self.window_secs) {
            return Err(invalid(
                "provider.payment.window_secs",
                "must be 10-600 seconds (consumers prepay at most 10 minutes)",
            ));
        }
        if !(3..=60).contains(&self.billing_interval_secs)
            || self.billing_interval_secs > self.window_secs
        {
            return Err(invalid(
                "provider.payment.billing_interval_secs",
                "must be 3-60 seconds and at most the window",
            ));
        }
        if self.stop_grace_secs > 600 || self.terminate_grace_secs > 600 {
            return Err(invalid(
                "provider.payment.stop_grace_secs",
                "graces must be at most 600 seconds (consumers refuse longer ones)",
            ));
        }
        if !(5..=120).contains(&self.countersign_secs) {
            return Err(invalid(
                "provider.payment.countersign_secs",
                "must be 5-120 seconds",
            ));
        }
        if !(5..=480).contains(&self.fund_secs) || self.countersign_secs + self.fund_secs > 540 {
            return Err(invalid(
                "provider.payment.fund_secs",
                "must be 5-480 seconds, and with countersign_secs at most 540 (consumers refuse \
                 a later fund_by)",
            ));
        }
        Ok(())
    }
}

/// How this node keeps its offer book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketConfig {
    /// The most offers one peer's offer sync may add to the book (a budget that refills over
    /// an hour). Large enough for a real market; a peer posing as thousands of providers
    /// fills no more.
    pub max_offers_per_sync: usize,
}

impl Default for MarketConfig {
    fn default() -> Self {
        Self {
            max_offers_per_sync: 5_000,
        }
    }
}

/// What this node accepts as a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerConfig {
    /// Bounds on the payment terms of providers.
    pub terms: crate::negotiation::TermsLimits,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            simulate_gpu: None,
            unsafe_local_jobs: false,
            default_price: 1_000,
            prices: BTreeMap::new(),
            country: "DE".into(),
            region: None,
            min_rental_secs: 60,
            max_rental_secs: 7 * 24 * 3600,
            offer_ttl_secs: 600,
            public_host: "127.0.0.1".into(),
            cpu_cores: 0,
            ram_mib: 0,
            disk_gib: 200,
            max_idle_secs: Some(24 * 3600),
            payment: PaymentConfig::default(),
            max_unfunded_per_payer: 32,
            job_requests_per_sec: 100,
            job_network_pool: "10.213.0.0/16".into(),
            public_egress: true,
            max_image_gib: 64,
            pull_timeout_secs: 3600,
            local_images: Vec::new(),
            allowed_capabilities: crate::negotiation::SSH_CAPABILITIES.to_vec(),
        }
    }
}

impl ProviderConfig {
    /// The price of a GPU model: its own, else the default.
    pub fn price_for(&self, model: &str) -> Qu {
        Qu(self
            .prices
            .get(model)
            .copied()
            .unwrap_or(self.default_price))
    }

    /// How long offers live.
    pub fn offer_ttl(&self) -> Duration {
        Duration::from_secs(self.offer_ttl_secs)
    }

    /// The job network pool, parsed and checked.
    pub fn job_network_pool(&self) -> Result<crate::runtime::Ipv4Net, ConfigError> {
        let pool = crate::runtime::Ipv4Net::parse(&self.job_network_pool)
            .map_err(|e| invalid("provider.job_network_pool", e))?;
        crate::runtime::check_pool(pool).map_err(|e| invalid("provider.job_network_pool", e))?;
        Ok(pool)
    }

    /// The desk's rules from this configuration.
    pub fn desk_policy(&self) -> crate::negotiation::DeskPolicy {
        crate::negotiation::DeskPolicy {
            payment: self.payment.terms(),
            countersign_window: Duration::from_secs(self.payment.countersign_secs),
            fund_window: Duration::from_secs(self.payment.fund_secs),
            max_unfunded_per_payer: self.max_unfunded_per_payer as usize,
            allowed_capabilities: self.allowed_capabilities.clone(),
        }
    }
}

/// The node's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Where keys, databases and the API token live.
    pub data_dir: PathBuf,
    /// `mainnet`, `testnet` or a custom name.
    pub network: String,
    /// Multiaddrs to listen on.
    pub listen: Vec<String>,
    /// Multiaddrs (with `/p2p/<id>`) to dial at start.
    pub bootstrap: Vec<String>,
    /// Find LAN peers by mDNS.
    pub mdns: bool,
    /// Serve the API and console here.
    pub gateway: Option<SocketAddr>,
    /// Allow `gateway` off loopback (other machines reach the API, over plain HTTP).
    pub gateway_public: bool,
    /// Qubic RPC base URL (`https` unless on this machine).
    pub qubic_rpc: String,
    /// A PEM CA certificate to trust for the Qubic RPC beside the system's (a private
    /// deployment, or a devnet serving a certificate its operator made).
    pub qubic_rpc_ca: Option<PathBuf>,
    /// Provider settings.
    pub provider: ProviderConfig,
    /// Consumer settings.
    pub consumer: ConsumerConfig,
    /// Offer book settings.
    pub market: MarketConfig,
    /// How long an ended job's record (state, payments, ports, pending notices) is kept
    /// once its books are closed, seconds. Its signed agreement and final report and
    /// receipt are kept for good, as evidence.
    pub record_retention_secs: u64,
    /// A rogue node's misbehaviours (hostile test suite only).
    #[cfg(feature = "rogue")]
    pub rogue: crate::rogue::RogueConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".qubix"),
            network: "mainnet".into(),
            listen: vec![
                "/ip4/0.0.0.0/tcp/4001".into(),
                "/ip4/0.0.0.0/udp/4001/quic-v1".into(),
            ],
            bootstrap: Vec::new(),
            mdns: true,
            gateway: None,
            gateway_public: false,
            qubic_rpc: "https://rpc.qubic.org".into(),
            qubic_rpc_ca: None,
            provider: ProviderConfig::default(),
            consumer: ConsumerConfig::default(),
            market: MarketConfig::default(),
            record_retention_secs: 30 * 24 * 3600,
            #[cfg(feature = "rogue")]
            rogue: crate::rogue::RogueConfig::default(),
        }
    }
}

/// Values from the environment and flags; `None` keeps the file's value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir` / `QUBIX_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--network` / `QUBIX_NETWORK`.
    pub network: Option<String>,
    /// `--listen` / `QUBIX_LISTEN`.
    pub listen: Option<Vec<String>>,
    /// `--bootstrap` / `QUBIX_BOOTSTRAP`.
    pub bootstrap: Option<Vec<String>>,
    /// `--no-mdns` / `QUBIX_MDNS=false`.
    pub mdns: Option<bool>,
    /// `--gateway` / `QUBIX_GATEWAY`.
    pub gateway: Option<SocketAddr>,
    /// `--gateway-public` / `QUBIX_GATEWAY_PUBLIC`.
    pub gateway_public: Option<bool>,
    /// `--qubic-rpc` / `QUBIX_QUBIC_RPC`.
    pub qubic_rpc: Option<String>,
    /// `--provider` / `QUBIX_PROVIDER`.
    pub provider: Option<bool>,
    /// `--simulate-gpu` / `QUBIX_SIMULATE_GPU`.
    pub simulate_gpu: Option<String>,
    /// `--unsafe-local-jobs` / `QUBIX_UNSAFE_LOCAL_JOBS`.
    pub unsafe_local_jobs: Option<bool>,
    /// `--local-image` / `QUBIX_LOCAL_IMAGES`.
    pub local_images: Option<Vec<String>>,
    /// `--price` / `QUBIX_PRICE`.
    pub price: Option<u64>,
    /// `--country` / `QUBIX_COUNTRY`.
    pub country: Option<String>,
    /// `--max-offers-per-sync` / `QUBIX_MAX_OFFERS_PER_SYNC`.
    pub max_offers_per_sync: Option<usize>,
    /// `--qubic-rpc-ca` / `QUBIX_QUBIC_RPC_CA`.
    pub qubic_rpc_ca: Option<PathBuf>,
}

impl NodeConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })
    }

    /// Lays env and flag values over this configuration.
    pub fn overlay(mut self, o: Overrides) -> Self {
        let p = &mut self.provider;
        if let Some(v) = o.data_dir {
            self.data_dir = v;
        }
        if let Some(v) = o.network {
            self.network = v;
        }
        if let Some(v) = o.listen {
            self.listen = v;
        }
        if let Some(v) = o.bootstrap {
            self.bootstrap = v;
        }
        if let Some(v) = o.mdns {
            self.mdns = v;
        }
        if let Some(v) = o.gateway {
            self.gateway = Some(v);
        }
        if let Some(v) = o.gateway_public {
            self.gateway_public = v;
        }
        if let Some(v) = o.qubic_rpc {
            self.qubic_rpc = v;
        }
        if let Some(v) = o.provider {
            p.enabled = v;
        }
        if let Some(v) = o.unsafe_local_jobs {
            p.unsafe_local_jobs = v;
        }
        if let Some(v) = o.local_images {
            p.local_images = v;
        }
        if let Some(v) = o.simulate_gpu {
            p.simulate_gpu = Some(v);
            p.enabled = true;
        }
        if let Some(v) = o.price {
            p.default_price = v;
        }
        if let Some(v) = o.country {
            p.country = v;
        }
        if let Some(v) = o.max_offers_per_sync {
            self.market.max_offers_per_sync = v;
        }
        if let Some(v) = o.qubic_rpc_ca {
            self.qubic_rpc_ca = Some(v);
        }
        self
    }

    /// Checks every value; the error names the field and what to do.
    pub fn validate(&self) -> Result<ValidConfig, ConfigError> {
        let network = Network::new(&self.network).map_err(|e| invalid("network", e.problem))?;
        let listen = parse_addrs(&self.listen, "listen")?;
        let bootstrap = parse_addrs(&self.bootstrap, "bootstrap")?;
        if listen.is_empty() {
            return Err(invalid(
                "listen",
                "give at least one address, e.g. /ip4/0.0.0.0/tcp/4001",
            ));
        }
        if let Some(addr) = self.gateway
            && !addr.ip().is_loopback()
            && !self.gateway_public
        {
            return Err(invalid(
                "gateway",
                format!(
                    "{addr} is reachable from other machines, and the API is plain HTTP: whoever \
                     reaches it and holds the token controls this node and its wallet. Use \
                     127.0.0.1 (and an SSH tunnel), or pass --gateway-public behind a TLS proxy"
                ),
            ));
        }
        let p = &self.provider;
        if p.simulate_gpu.is_some() && network.is_mainnet() {
            return Err(invalid(
                "provider.simulate_gpu",
                "simulated GPUs are refused on mainnet; use --network testnet",
            ));
        }
        if p.unsafe_local_jobs && (p.simulate_gpu.is_none() || network.is_mainnet()) {
            return Err(invalid(
                "provider.unsafe_local_jobs",
                "jobs as local processes run consumers' commands on this machine without any \
                 isolation: allowed only with simulated GPUs (--simulate-gpu) off mainnet",
            ));
        }
        if p.default_price == 0 || p.prices.values().any(|v| *v == 0) {
            return Err(invalid(
                "provider.prices",
                "prices must be above 0 QU per GPU-hour",
            ));
        }
        if p.country.len() != 2 || !p.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(
                "provider.country",
                "use an ISO 3166-1 alpha-2 code such as DE",
            ));
        }
        if p.min_rental_secs > p.max_rental_secs {
            return Err(invalid(
                "provider.min_rental_secs",
                "must not exceed max_rental_secs",
            ));
        }
        if !(5..=3600).contains(&p.offer_ttl_secs) {
            return Err(invalid("provider.offer_ttl_secs", "must be 5-3600 seconds"));
        }
        #[cfg(feature = "rogue")]
        let checked = !self.rogue.unchecked_payment;
        #[cfg(not(feature = "rogue"))]
        let checked = true;
        if checked {
            p.payment.validate()?;
        }
        if p.max_unfunded_per_payer == 0 {
            return Err(invalid(
                "provider.max_unfunded_per_payer",
                "must be at least 1, or no consumer could rent",
            ));
        }
        p.job_network_pool()?;
        if p.max_image_gib == 0 || p.pull_timeout_secs == 0 {
            return Err(invalid(
                "provider.max_image_gib",
                "image pulls need a size (GiB) and a time (pull_timeout_secs) above 0",
            ));
        }
        if p.job_requests_per_sec == 0 {
            return Err(invalid(
                "provider.job_requests_per_sec",
                "must be at least 1, or no consumer could control its job",
            ));
        }
        if self.record_retention_secs == 0 {
            return Err(invalid(
                "record_retention_secs",
                "must be at least 1 second",
            ));
        }
        if self.market.max_offers_per_sync == 0 {
            return Err(invalid(
                "market.max_offers_per_sync",
                "must be at least 1, or no offer could arrive by sync",
            ));
        }
        self.consumer
            .terms
            .validate()
            .map_err(|(field, problem)| invalid(field, problem))?;
        if !(self.qubic_rpc.starts_with("http://") || self.qubic_rpc.starts_with("https://")) {
            return Err(invalid(
                "qubic_rpc",
                "must be an http(s) URL such as https://rpc.qubic.org",
            ));
        }
        let rpc = qubix_ledger::rpc::RpcConfig {
            base_url: self.qubic_rpc.clone(),
            ..qubix_ledger::rpc::RpcConfig::default()
        };
        rpc.validate()
            .map_err(|e| invalid("qubic_rpc", e.to_string()))?;
        Ok(ValidConfig {
            config: self.clone(),
            network,
            listen,
            bootstrap,
        })
    }
}

fn parse_addrs(addrs: &[String], field: &'static str) -> Result<Vec<Multiaddr>, ConfigError> {
    addrs
        .iter()
        .map(|a| {
            a.parse::<Multiaddr>().map_err(|e| {
                invalid(
                    field,
                    format!("{a:?} is not a multiaddr ({e}); e.g. /ip4/0.0.0.0/tcp/4001"),
                )
            })
        })
        .collect()
}

/// A configuration that passed [`NodeConfig::validate`], with parsed values.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    /// The raw configuration.
    pub config: NodeConfig,
    /// The network.
    pub network: Network,
    /// Listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Bootstrap addresses.
    pub bootstrap: Vec<Multiaddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_listen_on_4001() {
        let v = NodeConfig::default().validate().unwrap();
        assert!(v.listen[0].to_string().ends_with("/tcp/4001"));
        assert!(v.network.is_mainnet());
    }

    /// The settings docs/usage.md shows are real, and are the defaults (but the CA file).
    #[test]
    fn the_documented_settings_parse_and_are_the_defaults() {
        let doc = include_str!("../../docs/usage.md");
        let toml_block = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a TOML block in docs/usage.md");
        let mut parsed: NodeConfig = toml::from_str(toml_block).unwrap();
        assert!(parsed.qubic_rpc_ca.take().is_some());
        assert_eq!(parsed, NodeConfig::default());
    }

    #[test]
    fn a_gateway_off_loopback_needs_gateway_public() {
        let on = |addr: &str, public: bool| NodeConfig {
            gateway: Some(addr.parse().unwrap()),
            gateway_public: public,
            ..NodeConfig::default()
        };
        on("127.0.0.1:8080", false).validate().unwrap();
        on("[::1]:8080", false).validate().unwrap();
        for addr in ["0.0.0.0:8080", "192.0.2.7:8080", "[::]:8080"] {
            let err = on(addr, false).validate().unwrap_err().to_string();
            assert!(
                err.contains("--gateway-public") && err.contains("plain HTTP"),
                "{addr}: {err}"
            );
            on(addr, true).validate().unwrap();
        }
    }

    #[test]
    fn file_then_overrides_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qubix.toml");
        std::fs::write(&path, "network = \"testnet\"\nmdns = false\n[provider]\ndefault_price = 700\ncountry = \"FR\"\n").unwrap();
        let file = NodeConfig::from_file(&path).unwrap();
        assert_eq!(file.network, "testnet");
        assert_eq!(file.provider.default_price, 700);
        let merged = file.overlay(Overrides {
            price: Some(900),
            ..Default::default()
        });
        assert_eq!(merged.provider.default_price, 900);
        assert_eq!(merged.provider.country, "FR");
        assert!(!merged.mdns);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "netwrok = \"testnet\"\n").unwrap();
        let err = NodeConfig::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("netwrok"), "{err}");
        let cases: Vec<(&str, NodeConfig)> = vec![
            (
                "network",
                NodeConfig {
                    network: "Main Net".into(),
                    ..Default::default()
                },
            ),
            (
                "listen",
                NodeConfig {
                    listen: vec!["localhost:80".into()],
                    ..Default::default()
                },
            ),
            (
                "listen",
                NodeConfig {
                    listen: vec![],
                    ..Default::default()
                },
            ),
            (
                "qubic_rpc",
                NodeConfig {
                    qubic_rpc: "rpc.qubic.org".into(),
                    ..Default::default()
                },
            ),
            (
                "qubic_rpc",
                NodeConfig {
                    qubic_rpc: "http://rpc.qubic.org".into(),
                    ..Default::default()
                },
            ),
            (
                "provider.simulate_gpu",
                NodeConfig::default().overlay(Overrides {
                    simulate_gpu: Some("RTX:24:1".into()),
                    ..Default::default()
                }),
            ),
            (
                "provider.country",
                NodeConfig::default().overlay(Overrides {
                    country: Some("de".into()),
                    ..Default::default()
                }),
            ),
            (
                "provider.prices",
                NodeConfig::default().overlay(Overrides {
                    price: Some(0),
                    ..Default::default()
                }),
            ),
        ];
        for (field, config) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(field), "expected {field}: {err}");
        }
    }

    /// Jobs as host processes only behind the flag, with simulated GPUs, off mainnet.
    #[test]
    fn unsafe_local_jobs_need_simulated_gpus_off_mainnet() {
        let testnet = |simulate: Option<&str>| {
            NodeConfig::default().overlay(Overrides {
                network: Some("testnet".into()),
                simulate_gpu: simulate.map(Into::into),
                unsafe_local_jobs: Some(true),
                ..Default::default()
            })
        };
        let err = testnet(None).validate().unwrap_err().to_string();
        assert!(err.contains("provider.unsafe_local_jobs"), "{err}");
        assert!(err.contains("without any isolation"), "{err}");
        let mut real_gpus_too = testnet(Some("RTX 4090:24:1"));
        assert!(real_gpus_too.validate().is_ok());
        real_gpus_too.network = "mainnet".into();
        let err = real_gpus_too.validate().unwrap_err().to_string();
        assert!(err.contains("provider."), "{err}");
        // Custom network names are testnets; the flag is still off unless set.
        let custom = NodeConfig::default().overlay(Overrides {
            network: Some("prod-eu".into()),
            simulate_gpu: Some("RTX 4090:24:1".into()),
            ..Default::default()
        });
        assert!(!custom.validate().unwrap().config.provider.unsafe_local_jobs);
    }
}
