//! [`ContainerSpec`]: everything a runtime needs to run one job's container, and its
//! validation. There is deliberately no field for privileged mode, host devices, host
//! mounts, extra capabilities or host networking: a spec that asks for them cannot be
//! written, so no consumer request can smuggle them in.

use std::collections::HashSet;
use std::net::IpAddr;

use qubix_protocol::ids::AgreementId;
use qubix_protocol::job::{EnvVar, MAX_ARGS, MAX_ENV_VARS, MAX_PORTS, PortRequest};

/// Label every Qubix container carries, with its agreement id as value.
pub const LABEL_AGREEMENT: &str = "qubix.agreement";
/// Label every Qubix container carries, with value `true`.
pub const LABEL_MANAGED: &str = "qubix.managed";
/// Label naming the node that created a container, when its runtime has an owner (see
/// `DockerRuntime::with_owner`): nodes sharing one Docker daemon then never see, let alone
/// remove, each other's containers.
pub const LABEL_NODE: &str = "qubix.node";
/// Where the workspace volume is mounted inside the container.
pub const WORKSPACE_PATH: &str = "/workspace";
/// Docker refuses memory limits below 6 MiB.
pub const MIN_MEMORY_MIB: u64 = 6;
/// Largest memory limit accepted (16 TiB), so byte counts never overflow.
pub const MAX_MEMORY_MIB: u64 = 16 * 1024 * 1024;
/// Largest CPU count accepted.
pub const MAX_CPU_CORES: u32 = 4096;

/// The container name of a job: `qubix-<agreement id>`.
pub fn container_name(agreement: &AgreementId) -> String {
    format!("qubix-{agreement}")
}

/// The workspace volume of a job: `qubix-ws-<agreement id>`.
pub fn workspace_volume(agreement: &AgreementId) -> String {
    format!("qubix-ws-{agreement}")
}

/// What to run for one agreement, and with which limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// The agreement (names the container, its volume and its labels).
    pub agreement_id: AgreementId,
    /// Image reference, e.g. `pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime`.
    pub image: String,
    /// Command and arguments; empty runs the image's default.
    pub command: Vec<String>,
    /// Environment (its `Debug` redacts values).
    pub env: Vec<EnvVar>,
    /// GPUs reserved for this job, by driver UUID (`GPU-…` or `MIG-…`).
    pub gpu_uuids: Vec<String>,
    /// Attach `gpu_uuids` to the container (false for simulated GPUs).
    pub attach_gpus: bool,
    /// CPU cores (a CFS quota, not pinning).
    pub cpu_cores: u32,
    /// Memory limit in MiB; swap is disabled.
    pub memory_mib: u64,
    /// Size of `/dev/shm` in MiB (PyTorch data loaders need more than Docker's 64 MiB).
    pub shm_mib: u64,
    /// Most processes and threads at once (fork bombs stop here).
    pub pids_limit: u32,
    /// Disk in GiB the agreement promises (bounded through `disk_limit_mib`).
    pub disk_gib: u64,
    /// Container ports to publish.
    pub ports: Vec<PortRequest>,
    /// Host address ports are published on: the provider's `public_host` (`127.0.0.1` by
    /// default, where only this machine reaches them; there is no tunnel yet, so a remote
    /// consumer reaches a port only when `public_host` is an address it can route to).
    pub publish_ip: IpAddr,
    /// Mount a named volume at `/workspace` that survives stop and restart.
    pub workspace: bool,
    /// Capabilities granted beyond the base set.
    pub capabilities: Vec<qubix_protocol::job::Capability>,
    /// The most the writable layer and the workspace may hold together, MiB (`disk_gib`
    /// for a job; 0: unbounded). A storage quota where the engine's driver has one,
    /// otherwise watched: the job stops when it holds more.
    pub disk_limit_mib: u64,
}

/// Why a [`ContainerSpec`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The image reference is empty, too long or contains whitespace.
    #[error("image {0:?} is not an image reference (non-empty, at most 256 characters, no spaces)")]
    BadImage(String),
    /// The command has too many or too long arguments, or a NUL byte.
    #[error("command: at most {MAX_ARGS} arguments of at most 4096 bytes each, without NUL")]
    BadCommand,
    /// An environment variable is malformed.
    #[error("env {0}: names match [A-Za-z_][A-Za-z0-9_]*, values at most 4096 bytes without NUL")]
    BadEnv(String),
    /// Too many environment variables.
    #[error("at most {MAX_ENV_VARS} environment variables")]
    TooManyEnv,
    /// A limit is zero.
    #[error("{0} must be above 0")]
    ZeroLimit(&'static str),
    /// A limit is too large.
    #[error("{field} is at most {max}")]
    LimitTooLarge {
        /// The field.
        field: &'static str,
        /// Its maximum.
        max: u64,
    },
    /// The memory limit is below what Docker accepts.
    #[error("memory_mib is {0}; Docker needs at least {MIN_MEMORY_MIB} MiB")]
    MemoryTooSmall(u64),
    /// `/dev/shm` is larger than the memory limit it is charged to.
    #[error("shm_mib ({shm}) exceeds memory_mib ({memory}); shared memory counts against it")]
    ShmAboveMemory {
        /// Asked `/dev/shm` size.
        shm: u64,
        /// Memory limit.
        memory: u64,
    },
    /// Port 0, or too many ports.
    #[error("ports: 1 to {MAX_PORTS} container ports, none of them 0")]
    BadPorts,
    /// A container port appears twice.
    #[error("container port {0} is listed twice")]
    DuplicatePort(u16),
    /// GPUs are to be attached but none is named.
    #[error("attach_gpus is set but gpu_uuids is empty")]
    NoGpusToAttach,
    /// A GPU UUID is malformed or repeated.
    #[error("gpu uuid {0:?} is malformed or repeated (expected GPU-… or MIG-…)")]
    BadGpuUuid(String),
}

impl ContainerSpec {
    /// Checks the spec; a runtime calls this before creating anything.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.validate_image_and_command()?;
        self.validate_env()?;
        self.validate_limits()?;
        self.validate_ports()?;
        self.validate_gpus()
    }

    fn validate_image_and_command(&self) -> Result<(), SpecError> {
        let image_ok = !self.image.is_empty()
            && self.image.len() <= 256
            && !qubix_protocol::job::is_bare_image_id(&self.image)
            && !self
                .image
                .contains(|c: char| c.is_whitespace() || c.is_control());
        if !image_ok {
            return Err(SpecError::BadImage(self.image.chars().take(80).collect()));
        }
        let args_ok = self.command.len() <= MAX_ARGS
            && self
                .command
                .iter()
                .all(|a| a.len() <= 4096 && !a.contains('\0'));
        if !args_ok {
            return Err(SpecError::BadCommand);
        }
        Ok(())
    }

    fn validate_env(&self) -> Result<(), SpecError> {
        if self.env.len() > MAX_ENV_VARS {
            return Err(SpecError::TooManyEnv);
        }
        for var in &self.env {
            let mut chars = var.name.chars();
            let name_ok = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
                && var.name.len() <= 128;
            if !name_ok || var.value.len() > 4096 || var.value.contains('\0') {
                return Err(SpecError::BadEnv(var.name.chars().take(128).collect()));
            }
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), SpecError> {
        for (field, value) in [
            ("cpu_cores", u64::from(self.cpu_cores)),
            ("memory_mib", self.memory_mib),
            ("shm_mib", self.shm_mib),
            ("pids_limit", u64::from(self.pids_limit)),
        ] {
            if value == 0 {
                return Err(SpecError::ZeroLimit(field));
            }
        }
        if self.cpu_cores > MAX_CPU_CORES {
            let max = u64::from(MAX_CPU_CORES);
            return Err(SpecError::LimitTooLarge {
                field: "cpu_cores",
                max,
            });
        }
        if self.memory_mib > MAX_MEMORY_MIB {
            let max = MAX_MEMORY_MIB;
            return Err(SpecError::LimitTooLarge {
                field: "memory_mib",
                max,
            });
        }
        if self.memory_mib < MIN_MEMORY_MIB {
            return Err(SpecError::MemoryTooSmall(self.memory_mib));
        }
        if self.shm_mib > self.memory_mib {
            let (shm, memory) = (self.shm_mib, self.memory_mib);
            return Err(SpecError::ShmAboveMemory { shm, memory });
        }
        Ok(())
    }

    fn validate_ports(&self) -> Result<(), SpecError> {
        if self.ports.len() > MAX_PORTS || self.ports.iter().any(|p| p.container_port == 0) {
            return Err(SpecError::BadPorts);
        }
        let mut seen = HashSet::new();
        for port in &self.ports {
            if !seen.insert(port.container_port) {
                return Err(SpecError::DuplicatePort(port.container_port));
            }
        }
        Ok(())
    }

    fn validate_gpus(&self) -> Result<(), SpecError> {
        if self.attach_gpus && self.gpu_uuids.is_empty() {
            return Err(SpecError::NoGpusToAttach);
        }
        let mut seen = HashSet::new();
        for uuid in &self.gpu_uuids {
            let well_formed = (uuid.starts_with("GPU-") || uuid.starts_with("MIG-"))
                && uuid.len() <= 128
                && uuid
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '/');
            if !well_formed || !seen.insert(uuid.as_str()) {
                return Err(SpecError::BadGpuUuid(uuid.chars().take(128).collect()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use qubix_protocol::job::PortPurpose;

    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            agreement_id: AgreementId::from_bytes([3; 16]),
            image: "qubix/test:latest".into(),
            command: vec!["sleep".into(), "1".into()],
            env: vec![EnvVar {
                name: "TOKEN".into(),
                value: "secret".into(),
            }],
            gpu_uuids: vec!["GPU-0123abcd-0000-1111-2222-333344445555".into()],
            attach_gpus: true,
            cpu_cores: 2,
            memory_mib: 512,
            shm_mib: 64,
            pids_limit: 256,
            disk_gib: 10,
            ports: vec![PortRequest {
                container_port: 22,
                purpose: PortPurpose::Ssh,
            }],
            publish_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            workspace: true,
            capabilities: vec![],
            disk_limit_mib: 0,
        }
    }

    #[test]
    fn a_sane_spec_passes() {
        assert_eq!(spec().validate(), Ok(()));
    }

    #[test]
    fn each_bad_field_is_named() {
        type Case = (fn(&mut ContainerSpec), SpecError);
        let cases: Vec<Case> = vec![
            (|s| s.image.clear(), SpecError::BadImage(String::new())),
            (
                |s| s.image = "a b".into(),
                SpecError::BadImage("a b".into()),
            ),
            (|s| s.cpu_cores = 0, SpecError::ZeroLimit("cpu_cores")),
            (|s| s.memory_mib = 0, SpecError::ZeroLimit("memory_mib")),
            (|s| s.shm_mib = 0, SpecError::ZeroLimit("shm_mib")),
            (|s| s.pids_limit = 0, SpecError::ZeroLimit("pids_limit")),
            (|s| s.memory_mib = 4, SpecError::MemoryTooSmall(4)),
            (
                |s| s.shm_mib = 1024,
                SpecError::ShmAboveMemory {
                    shm: 1024,
                    memory: 512,
                },
            ),
            (|s| s.ports.push(s.ports[0]), SpecError::DuplicatePort(22)),
            (|s| s.ports[0].container_port = 0, SpecError::BadPorts),
            (|s| s.gpu_uuids.clear(), SpecError::NoGpusToAttach),
            (
                |s| s.gpu_uuids = vec!["0".into()],
                SpecError::BadGpuUuid("0".into()),
            ),
            (
                |s| s.env[0].name = "A=B".into(),
                SpecError::BadEnv("A=B".into()),
            ),
            (|s| s.command.push("a\0b".into()), SpecError::BadCommand),
        ];
        for (mutate, expected) in cases {
            let mut s = spec();
            mutate(&mut s);
            assert_eq!(s.validate(), Err(expected));
        }
    }

    #[test]
    fn simulated_gpus_need_no_uuids() {
        let mut s = spec();
        s.attach_gpus = false;
        s.gpu_uuids.clear();
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn debug_never_shows_env_values() {
        assert!(!format!("{:?}", spec()).contains("secret"));
    }

    #[test]
    fn names_follow_the_agreement() {
        let id = AgreementId::from_bytes([0xab; 16]);
        assert_eq!(container_name(&id), format!("qubix-{}", "ab".repeat(16)));
        assert_eq!(
            workspace_volume(&id),
            format!("qubix-ws-{}", "ab".repeat(16))
        );
    }
}
