//! Real GPUs through NVML (nvml-wrapper). The library is loaded at start; on a host without
//! the NVIDIA driver `init` fails and the node offers nothing.

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::error::NvmlError;
use qubix_protocol::offer::{PcieLink, Version};

use super::{GpuDevice, GpuError, GpuProbe, GpuTelemetry};

/// GPUs found by NVML.
pub struct NvmlProbe {
    nvml: Nvml,
    devices: Vec<GpuDevice>,
}

fn nvml_err(e: NvmlError) -> GpuError {
    GpuError::Nvml(e.to_string())
}

impl NvmlProbe {
    /// Loads NVML and lists the GPUs.
    pub fn init() -> Result<Self, GpuError> {
        let nvml = Nvml::init().map_err(|e| match e {
            NvmlError::LibloadingError(_)
            | NvmlError::DriverNotLoaded
            | NvmlError::LibraryNotFound => GpuError::NoDriver(e.to_string()),
            other => nvml_err(other),
        })?;
        let driver_version = nvml.sys_driver_version().map_err(nvml_err)?;
        let cuda = nvml.sys_cuda_driver_version().map_err(nvml_err)?;
        let cuda_version = Version::new(
            u16::try_from(nvml_wrapper::cuda_driver_version_major(cuda)).unwrap_or(0),
            u16::try_from(nvml_wrapper::cuda_driver_version_minor(cuda)).unwrap_or(0),
        );
        let count = nvml.device_count().map_err(nvml_err)?;
        let mut devices = Vec::with_capacity(count as usize);
        for index in 0..count {
            let d = nvml.device_by_index(index).map_err(nvml_err)?;
            let cc = d.cuda_compute_capability().map_err(nvml_err)?;
            let pcie = match (d.current_pcie_link_gen(), d.current_pcie_link_width()) {
                (Ok(g), Ok(w)) => Some(PcieLink {
                    generation: u8::try_from(g).unwrap_or(0),
                    width: u8::try_from(w).unwrap_or(0),
                }),
                _ => None,
            };
            devices.push(GpuDevice {
                index,
                uuid: d.uuid().map_err(nvml_err)?,
                model: d.name().map_err(nvml_err)?,
                vram_mib: d.memory_info().map_err(nvml_err)?.total / (1024 * 1024),
                driver_version: driver_version.clone(),
                cuda_version,
                compute_capability: Version::new(
                    u16::try_from(cc.major).unwrap_or(0),
                    u16::try_from(cc.minor).unwrap_or(0),
                ),
                pcie,
                simulated: false,
            });
        }
        Ok(Self { nvml, devices })
    }
}

impl GpuProbe for NvmlProbe {
    fn kind(&self) -> &'static str {
        "nvml"
    }

    fn devices(&self) -> &[GpuDevice] {
        &self.devices
    }

    fn telemetry(&self, uuid: &str, _busy: bool) -> Result<GpuTelemetry, GpuError> {
        let d = self
            .nvml
            .device_by_uuid(uuid)
            .map_err(|_| GpuError::UnknownGpu(uuid.into()))?;
        let mem = d.memory_info().map_err(nvml_err)?;
        Ok(GpuTelemetry {
            utilization_pct: f64::from(d.utilization_rates().map_err(nvml_err)?.gpu),
            memory_used_mib: mem.total.saturating_sub(mem.free) / (1024 * 1024),
            temperature_c: f64::from(d.temperature(TemperatureSensor::Gpu).map_err(nvml_err)?),
            power_w: f64::from(d.power_usage().map_err(nvml_err)?) / 1000.0,
        })
    }
}
