//! Simulated GPUs for testnets: declared by `--simulate-gpu "RTX 4090:24:2"` (several specs
//! separated by `,`), refused on mainnet, and labelled `simulated` in every offer and view.
//! Their telemetry is plausible (idle when free, a busy wave when a job runs), never zero.

use std::time::{SystemTime, UNIX_EPOCH};

use qubix_protocol::offer::{PcieLink, Version};

use super::{GpuDevice, GpuError, GpuProbe, GpuTelemetry};

/// Parses `MODEL:VRAM_GIB:COUNT[,MODEL:VRAM_GIB:COUNT…]` into simulated devices.
pub fn parse_simulated(spec: &str) -> Result<Vec<GpuDevice>, GpuError> {
    let bad = |problem: &str| GpuError::BadSimulation {
        value: spec.into(),
        problem: problem.into(),
    };
    let mut devices = Vec::new();
    for part in spec.split(',') {
        let fields: Vec<&str> = part.trim().rsplitn(3, ':').collect();
        let [count, vram, model] = fields.as_slice() else {
            return Err(bad("each GPU needs three fields"));
        };
        let model = model.trim();
        if model.is_empty() || model.len() > 48 {
            return Err(bad("model must be 1-48 characters"));
        }
        let vram: u64 = vram
            .trim()
            .parse()
            .map_err(|_| bad("VRAM must be a whole number of GiB"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| bad("count must be a whole number"))?;
        if !(1..=1024).contains(&vram) || !(1..=16).contains(&count) {
            return Err(bad("VRAM must be 1-1024 GiB and count 1-16"));
        }
        for _ in 0..count {
            let index = u32::try_from(devices.len()).unwrap_or(u32::MAX);
            devices.push(simulated_device(index, model, vram));
        }
    }
    if devices.len() > 64 {
        return Err(bad("at most 64 simulated GPUs"));
    }
    Ok(devices)
}

fn simulated_device(index: u32, model: &str, vram_gib: u64) -> GpuDevice {
    GpuDevice {
        index,
        uuid: format!("GPU-sim-{index:02}-{:08x}", fnv(model)),
        model: model.into(),
        vram_mib: vram_gib * 1024,
        driver_version: "550.54.15-sim".into(),
        cuda_version: Version::new(12, 4),
        compute_capability: if vram_gib >= 40 {
            Version::new(8, 0)
        } else {
            Version::new(8, 9)
        },
        pcie: Some(PcieLink {
            generation: 4,
            width: 16,
        }),
        simulated: true,
    }
}

fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The simulated probe.
#[derive(Debug)]
pub struct SimulatedProbe {
    devices: Vec<GpuDevice>,
}

impl SimulatedProbe {
    /// A probe over `devices`.
    pub fn new(devices: Vec<GpuDevice>) -> Self {
        Self { devices }
    }
}

impl GpuProbe for SimulatedProbe {
    fn kind(&self) -> &'static str {
        "simulated"
    }

    fn devices(&self) -> &[GpuDevice] {
        &self.devices
    }

    fn telemetry(&self, uuid: &str, busy: bool) -> Result<GpuTelemetry, GpuError> {
        let device = self
            .devices
            .iter()
            .find(|d| d.uuid == uuid)
            .ok_or_else(|| GpuError::UnknownGpu(uuid.into()))?;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let wave = ((secs / 7.0) + f64::from(device.index)).sin() * 0.5 + 0.5;
        let load = if busy { 0.65 + 0.3 * wave } else { 0.02 * wave };
        Ok(GpuTelemetry {
            utilization_pct: (load * 100.0).round(),
            memory_used_mib: ((device.vram_mib as f64) * if busy { 0.4 + 0.3 * wave } else { 0.01 })
                as u64,
            temperature_c: (34.0 + 45.0 * load).round(),
            power_w: (30.0 + 320.0 * load).round(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs_and_labels_them_simulated() {
        let devices = parse_simulated("RTX 4090:24:2, A100 SXM:80:1").unwrap();
        assert_eq!(devices.len(), 3);
        assert!(devices.iter().all(|d| d.simulated));
        assert_eq!(devices[0].model, "RTX 4090");
        assert_eq!(devices[0].vram_mib, 24 * 1024);
        assert_eq!(devices[2].model, "A100 SXM");
        assert_ne!(devices[0].uuid, devices[1].uuid);
    }

    #[test]
    fn bad_specs_say_what_is_expected() {
        for bad in [
            "",
            "RTX",
            "RTX:24",
            "RTX:x:2",
            "RTX:24:0",
            ":24:1",
            "RTX:24:99",
        ] {
            let err = parse_simulated(bad).unwrap_err();
            assert!(
                err.to_string().contains("MODEL:VRAM_GIB:COUNT"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn telemetry_is_plausible_and_busy_looks_busy() {
        let probe = SimulatedProbe::new(parse_simulated("RTX 4090:24:1").unwrap());
        let uuid = probe.devices()[0].uuid.clone();
        let idle = probe.telemetry(&uuid, false).unwrap();
        let busy = probe.telemetry(&uuid, true).unwrap();
        assert!(idle.utilization_pct <= 2.0 && busy.utilization_pct >= 65.0);
        assert!(busy.temperature_c > idle.temperature_c && busy.power_w > idle.power_w);
        assert!(busy.memory_used_mib <= 24 * 1024);
        assert!(probe.telemetry("GPU-nope", true).is_err());
    }
}
