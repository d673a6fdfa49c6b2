//! What runtimes report: container ids, states, exits, stats and pull progress.

use std::fmt;

use qubix_protocol::control::{EndReason, PullSummary};
use qubix_protocol::ids::AgreementId;
use qubix_protocol::time::UnixMillis;
use serde::{Deserialize, Serialize};

use super::spec::container_name;

/// Which implementation runs the containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    /// Docker through bollard.
    Docker,
    /// Plain local processes (testnet fallback, no isolation).
    LocalProcess,
}

impl RuntimeKind {
    /// `docker` or `local-process`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::LocalProcess => "local-process",
        }
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the runtime found when probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeInfo {
    /// Which runtime.
    pub kind: RuntimeKind,
    /// Engine version (Docker's server version; the node's version for local processes).
    pub version: String,
    /// Whether the engine lists an `nvidia` runtime, so GPUs can be attached.
    pub nvidia_runtime: bool,
}

/// A container as a runtime addresses it: the agreement it runs and the engine's own id.
/// Persist it with the job; after a node restart [`super::ContainerRuntime::list_managed`]
/// finds it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContainerId {
    /// The agreement the container runs.
    pub agreement_id: AgreementId,
    /// The engine's id (Docker's 64-hex id, or the container name, which Docker accepts
    /// too; the name for local processes).
    pub native: String,
}

impl ContainerId {
    /// The job's container by its name, `qubix-<agreement>`, which every runtime accepts:
    /// to clean up after a failed create, or when only the agreement is known.
    pub fn for_agreement(agreement_id: AgreementId) -> Self {
        Self {
            agreement_id,
            native: container_name(&agreement_id),
        }
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.native.get(..12).unwrap_or(&self.native))
    }
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerStatus {
    /// Created, never started.
    Created,
    /// Running (Docker's `paused` and `restarting` count as running: Qubix does neither).
    Running,
    /// Its process ended: stopped, exited on its own, or killed.
    Exited(ExitStatus),
    /// No such container (removed, or never created).
    Missing,
}

/// How a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitStatus {
    /// Exit code; `128 + signal` when a signal killed it (137 for SIGKILL).
    pub code: i64,
    /// The kernel killed it for exceeding its memory limit.
    pub oom_killed: bool,
}

impl ExitStatus {
    /// Why a job ended when this exit was not asked for: `None` for a clean exit 0.
    /// (An exit after a requested stop or terminate is the node's doing, not a failure.)
    pub fn unrequested_end_reason(self) -> Option<EndReason> {
        if self.oom_killed {
            Some(EndReason::OutOfMemory)
        } else if self.code != 0 {
            Some(EndReason::NonZeroExit)
        } else {
            None
        }
    }
}

/// A published port as bound on the host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BoundPort {
    /// Port inside the container.
    pub container_port: u16,
    /// Host address it is bound on.
    pub host_ip: String,
    /// Host port (ephemeral, chosen by the engine).
    pub host_port: u16,
}

/// What `inspect` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// Where it is in its life.
    pub status: ContainerStatus,
    /// When it last started.
    pub started_at: Option<UnixMillis>,
    /// When it last ended.
    pub finished_at: Option<UnixMillis>,
    /// Published ports (only while running: the engine releases them on exit).
    pub ports: Vec<BoundPort>,
}

impl ContainerState {
    /// The state of a container that does not exist.
    pub fn missing() -> Self {
        Self {
            status: ContainerStatus::Missing,
            started_at: None,
            finished_at: None,
            ports: Vec::new(),
        }
    }

    /// Whether the container's process runs.
    pub fn is_running(&self) -> bool {
        self.status == ContainerStatus::Running
    }
}

/// A container found by [`super::ContainerRuntime::list_managed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedContainer {
    /// Its id (with the agreement from its label).
    pub id: ContainerId,
    /// Its image.
    pub image: String,
    /// Its state.
    pub state: ContainerState,
}

/// One sample of a container's resource use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContainerStats {
    /// When it was taken.
    pub at: UnixMillis,
    /// CPU use in % of one core (200 = two cores busy).
    pub cpu_pct: f64,
    /// Memory in use, bytes (without reclaimable page cache).
    pub memory_used_bytes: u64,
    /// Memory limit, bytes.
    pub memory_limit_bytes: u64,
}

impl ContainerStats {
    /// Memory in use, MiB, as metrics samples carry it.
    pub fn memory_used_mib(&self) -> u64 {
        self.memory_used_bytes / (1024 * 1024)
    }

    /// Memory limit, MiB.
    pub fn memory_limit_mib(&self) -> u64 {
        self.memory_limit_bytes / (1024 * 1024)
    }
}

/// Progress of an image pull.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PullProgress {
    /// The engine's latest status text, e.g. `Downloading` (bounded).
    pub status: String,
    /// Layers fully pulled (or already present).
    pub layers_done: u32,
    /// Layers seen so far.
    pub layers_total: u32,
    /// Bytes downloaded so far.
    pub bytes_done: u64,
    /// Bytes to download; `None` while some layer's size is unknown.
    pub bytes_total: Option<u64>,
    /// The pull finished and the image is present.
    pub complete: bool,
}

impl PullProgress {
    /// The figures a provider tells the job's consumer.
    pub fn summary(&self) -> PullSummary {
        PullSummary {
            layers_done: self.layers_done,
            layers_total: self.layers_total,
            bytes_done: self.bytes_done,
            bytes_total: self.bytes_total,
            complete: self.complete,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_map_to_end_reasons() {
        let exit = |code, oom_killed| ExitStatus { code, oom_killed };
        assert_eq!(exit(0, false).unrequested_end_reason(), None);
        assert_eq!(
            exit(3, false).unrequested_end_reason(),
            Some(EndReason::NonZeroExit)
        );
        assert_eq!(
            exit(137, true).unrequested_end_reason(),
            Some(EndReason::OutOfMemory)
        );
    }

    #[test]
    fn ids_display_short() {
        let id = ContainerId {
            agreement_id: AgreementId::from_bytes([1; 16]),
            native: "0123456789abcdef0123".into(),
        };
        assert_eq!(id.to_string(), "0123456789ab");
    }
}
