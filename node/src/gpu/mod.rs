//! Finding GPUs: the [`GpuProbe`] trait, its NVML implementation for real NVIDIA GPUs, and
//! its simulated twin for testnet (always labelled `simulated`). Without a driver a node
//! offers no GPU and says why.

mod nvml;
mod simulated;

use qubix_protocol::offer::{PcieLink, Version};
use qubix_protocol::topics::Network;

pub use nvml::NvmlProbe;
pub use simulated::{SimulatedProbe, parse_simulated};

/// One GPU on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuDevice {
    /// Index on the host.
    pub index: u32,
    /// Driver UUID (`GPU-…`); how a container gets this GPU.
    pub uuid: String,
    /// Model name, e.g. `NVIDIA GeForce RTX 4090`.
    pub model: String,
    /// Memory in MiB.
    pub vram_mib: u64,
    /// Driver version.
    pub driver_version: String,
    /// Highest CUDA version the driver supports.
    pub cuda_version: Version,
    /// Compute capability.
    pub compute_capability: Version,
    /// PCIe link, when readable.
    pub pcie: Option<PcieLink>,
    /// True for simulated GPUs.
    pub simulated: bool,
}

/// Live figures of one GPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuTelemetry {
    /// Utilisation, 0–100 %.
    pub utilization_pct: f64,
    /// Memory in use, MiB.
    pub memory_used_mib: u64,
    /// Die temperature, °C.
    pub temperature_c: f64,
    /// Power draw, W.
    pub power_w: f64,
}

/// Why GPUs could not be probed or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// The NVIDIA driver or NVML library is not available.
    #[error("no NVIDIA driver found ({0}); install the NVIDIA driver to offer GPUs")]
    NoDriver(String),
    /// NVML answered with an error.
    #[error("NVML error: {0}")]
    Nvml(String),
    /// The `--simulate-gpu` value does not parse.
    #[error(
        "--simulate-gpu {value:?}: {problem}; expected MODEL:VRAM_GIB:COUNT, e.g. \"RTX 4090:24:2\""
    )]
    BadSimulation {
        /// The value given.
        value: String,
        /// What is wrong.
        problem: String,
    },
    /// Simulation was asked for on mainnet.
    #[error("--simulate-gpu is refused on mainnet: simulated GPUs exist for testnets only")]
    SimulationOnMainnet,
    /// No such GPU.
    #[error("unknown GPU {0}")]
    UnknownGpu(String),
}

/// Finds GPUs and reads their figures.
pub trait GpuProbe: Send + Sync + 'static {
    /// `nvml` or `simulated`.
    fn kind(&self) -> &'static str;
    /// The GPUs found.
    fn devices(&self) -> &[GpuDevice];
    /// Current figures of one GPU; `busy` hints the simulated probe that a job runs on it.
    fn telemetry(&self, uuid: &str, busy: bool) -> Result<GpuTelemetry, GpuError>;
}

/// The outcome of probing at start.
pub enum Probe {
    /// GPUs were found.
    Found(Box<dyn GpuProbe>),
    /// No GPU: the reason is shown to the user.
    None(String),
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Found(p) => write!(f, "Found({}, {} GPUs)", p.kind(), p.devices().len()),
            Self::None(reason) => write!(f, "None({reason})"),
        }
    }
}

/// Probes GPUs: simulated ones when `simulate` is given (testnets only), else NVML.
pub fn detect(simulate: Option<&str>, network: &Network) -> Result<Probe, GpuError> {
    if let Some(spec) = simulate {
        if network.is_mainnet() {
            return Err(GpuError::SimulationOnMainnet);
        }
        return Ok(Probe::Found(Box::new(SimulatedProbe::new(
            parse_simulated(spec)?,
        ))));
    }
    Ok(match NvmlProbe::init() {
        Ok(probe) if probe.devices().is_empty() => {
            Probe::None("the NVIDIA driver reports no GPU".into())
        }
        Ok(probe) => Probe::Found(Box::new(probe)),
        Err(e) => Probe::None(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_driver_no_gpu_is_offered_and_the_reason_is_given() {
        // CI machines have no NVIDIA driver: detection must say so, not fail or pretend.
        let net = Network::new("testnet").unwrap();
        match detect(None, &net).unwrap() {
            Probe::None(reason) => assert!(
                reason.contains("NVIDIA") || reason.contains("no GPU"),
                "{reason}"
            ),
            Probe::Found(p) => assert_eq!(p.kind(), "nvml", "a real GPU host found real GPUs"),
        }
    }

    #[test]
    fn simulation_is_refused_on_mainnet() {
        let net = Network::new("mainnet").unwrap();
        assert_eq!(
            detect(Some("RTX 4090:24:2"), &net).unwrap_err(),
            GpuError::SimulationOnMainnet
        );
    }
}
