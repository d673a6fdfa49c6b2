//! Docker's inspect and stats answers → [`ContainerState`] and [`ContainerStats`]: pure
//! functions, tested with hand-written engine answers.

use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, ContainerStatsResponse, PortMap,
};
use qubix_protocol::ids::AgreementId;
use qubix_protocol::time::UnixMillis;

use crate::runtime::spec::LABEL_AGREEMENT;
use crate::runtime::timestamp::parse_rfc3339;
use crate::runtime::types::{
    BoundPort, ContainerState, ContainerStats, ContainerStatus, ExitStatus,
};

/// The state an inspect answer describes.
pub(crate) fn container_state(inspect: &ContainerInspectResponse) -> ContainerState {
    let state = inspect.state.as_ref();
    let exit = ExitStatus {
        code: state.and_then(|s| s.exit_code).unwrap_or(0),
        oom_killed: state.and_then(|s| s.oom_killed).unwrap_or(false),
    };
    let status = match state.and_then(|s| s.status) {
        Some(ContainerStateStatusEnum::CREATED) => ContainerStatus::Created,
        Some(
            ContainerStateStatusEnum::RUNNING
            | ContainerStateStatusEnum::PAUSED
            | ContainerStateStatusEnum::RESTARTING
            | ContainerStateStatusEnum::STOPPING,
        ) => ContainerStatus::Running,
        Some(
            ContainerStateStatusEnum::EXITED
            | ContainerStateStatusEnum::DEAD
            | ContainerStateStatusEnum::REMOVING,
        ) => ContainerStatus::Exited(exit),
        Some(ContainerStateStatusEnum::EMPTY) | None => ContainerStatus::Missing,
    };
    let ports = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.as_ref())
        .map(bound_ports)
        .unwrap_or_default();
    ContainerState {
        status,
        started_at: state
            .and_then(|s| s.started_at.as_deref())
            .and_then(parse_rfc3339),
        finished_at: state
            .and_then(|s| s.finished_at.as_deref())
            .and_then(parse_rfc3339),
        ports,
    }
}

/// The agreement named by a container's label.
pub(crate) fn agreement_of(inspect: &ContainerInspectResponse) -> Option<AgreementId> {
    let labels = inspect.config.as_ref()?.labels.as_ref()?;
    labels.get(LABEL_AGREEMENT)?.parse().ok()
}

/// Host bindings of published TCP ports, sorted by container port.
fn bound_ports(map: &PortMap) -> Vec<BoundPort> {
    let mut ports: Vec<BoundPort> = map
        .iter()
        .filter_map(|(key, bindings)| {
            let container_port = key.strip_suffix("/tcp")?.parse().ok()?;
            Some((container_port, bindings.as_ref()?))
        })
        .flat_map(|(container_port, bindings)| {
            bindings.iter().filter_map(move |b| {
                Some(BoundPort {
                    container_port,
                    host_ip: b.host_ip.clone().unwrap_or_default(),
                    host_port: b.host_port.as_deref()?.parse().ok()?,
                })
            })
        })
        .collect();
    ports.sort_by(|a, b| (a.container_port, &a.host_ip).cmp(&(b.container_port, &b.host_ip)));
    ports
}

/// CPU and memory from a one-shot stats answer (`stream=false`, which carries the previous
/// sample too, so the CPU share over the last interval can be computed).
pub(crate) fn container_stats(stats: &ContainerStatsResponse) -> ContainerStats {
    ContainerStats {
        at: UnixMillis::now(),
        cpu_pct: cpu_pct(stats),
        memory_used_bytes: memory_used(stats),
        memory_limit_bytes: stats
            .memory_stats
            .as_ref()
            .and_then(|m| m.limit)
            .unwrap_or(0),
    }
}

/// `container CPU delta / host CPU delta × online CPUs × 100`, the way `docker stats` does:
/// 100 means one core fully busy.
fn cpu_pct(stats: &ContainerStatsResponse) -> f64 {
    let (Some(now), Some(before)) = (stats.cpu_stats.as_ref(), stats.precpu_stats.as_ref()) else {
        return 0.0;
    };
    let total = |s: &bollard::models::ContainerCpuStats| {
        s.cpu_usage
            .as_ref()
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let cpu_delta = total(now).saturating_sub(total(before));
    let system_delta = now
        .system_cpu_usage
        .unwrap_or(0)
        .saturating_sub(before.system_cpu_usage.unwrap_or(0));
    if cpu_delta == 0 || system_delta == 0 {
        return 0.0;
    }
    let cpus = now.online_cpus.filter(|&n| n > 0).map_or_else(
        || {
            now.cpu_usage
                .as_ref()
                .and_then(|u| u.percpu_usage.as_ref())
                .map_or(1, Vec::len)
        },
        |n| n as usize,
    );
    cpu_delta as f64 / system_delta as f64 * cpus as f64 * 100.0
}

/// Usage without reclaimable page cache (`total_inactive_file` on cgroup v1,
/// `inactive_file` on v2), as `docker stats` shows it.
fn memory_used(stats: &ContainerStatsResponse) -> u64 {
    let Some(memory) = stats.memory_stats.as_ref() else {
        return 0;
    };
    let usage = memory.usage.unwrap_or(0);
    let cache = memory.stats.as_ref().and_then(|s| {
        s.get("total_inactive_file")
            .or_else(|| s.get("inactive_file"))
            .copied()
    });
    usage.saturating_sub(cache.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::{
        ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats, NetworkSettings, PortBinding,
    };

    use super::*;

    fn inspect(status: ContainerStateStatusEnum, code: i64, oom: bool) -> ContainerInspectResponse {
        let binding = |ip: &str, port: &str| PortBinding {
            host_ip: Some(ip.into()),
            host_port: Some(port.into()),
        };
        let ports: PortMap = HashMap::from([
            ("22/tcp".into(), Some(vec![binding("127.0.0.1", "40022")])),
            ("53/udp".into(), Some(vec![binding("127.0.0.1", "40053")])),
            ("8888/tcp".into(), None),
        ]);
        ContainerInspectResponse {
            state: Some(bollard::models::ContainerState {
                status: Some(status),
                exit_code: Some(code),
                oom_killed: Some(oom),
                started_at: Some("2024-05-01T12:34:56.5Z".into()),
                finished_at: Some("0001-01-01T00:00:00Z".into()),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                ports: Some(ports),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn engine_states_map_to_ours() {
        use ContainerStateStatusEnum::*;
        let status = |s, code, oom| container_state(&inspect(s, code, oom)).status;
        assert_eq!(status(CREATED, 0, false), ContainerStatus::Created);
        assert_eq!(status(RUNNING, 0, false), ContainerStatus::Running);
        assert_eq!(
            status(EXITED, 137, true),
            ContainerStatus::Exited(ExitStatus {
                code: 137,
                oom_killed: true
            })
        );
        assert_eq!(status(EMPTY, 0, false), ContainerStatus::Missing);
    }

    #[test]
    fn times_and_tcp_ports_are_read_back() {
        let state = container_state(&inspect(ContainerStateStatusEnum::RUNNING, 0, false));
        assert_eq!(state.started_at, Some(UnixMillis(1_714_566_896_500)));
        assert_eq!(state.finished_at, None, "Docker's zero time means never");
        let port = BoundPort {
            container_port: 22,
            host_ip: "127.0.0.1".into(),
            host_port: 40022,
        };
        assert_eq!(state.ports, vec![port]);
    }

    #[test]
    fn cpu_and_memory_are_computed_like_docker_stats() {
        let cpu = |total, system| ContainerCpuStats {
            cpu_usage: Some(ContainerCpuUsage {
                total_usage: Some(total),
                ..Default::default()
            }),
            system_cpu_usage: Some(system),
            online_cpus: Some(4),
            ..Default::default()
        };
        let stats = ContainerStatsResponse {
            cpu_stats: Some(cpu(2_000, 10_000)),
            precpu_stats: Some(cpu(1_000, 6_000)),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(100 << 20),
                limit: Some(512 << 20),
                stats: Some(HashMap::from([("total_inactive_file".into(), 20 << 20)])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = container_stats(&stats);
        assert!((s.cpu_pct - 100.0).abs() < 1e-9, "{}", s.cpu_pct);
        assert_eq!((s.memory_used_mib(), s.memory_limit_mib()), (80, 512));
    }
}
