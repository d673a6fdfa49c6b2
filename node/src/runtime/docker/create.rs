//! [`ContainerSpec`] → Docker's create body: a pure function, so the security settings
//! can be checked without a daemon. What it sets and why:
//!
//! - GPUs by UUID through a DeviceRequest (driver `nvidia`, capabilities `[["gpu"]]`).
//! - NanoCpus, Memory with MemorySwap equal to it (no swap), ShmSize, PidsLimit.
//! - Never privileged; every capability dropped, then [`BASE_CAPABILITIES`] and the ones the
//!   job was granted added back;
//!   `no-new-privileges`, so setuid binaries cannot gain more.
//! - An init process (docker-init) as PID 1: it reaps zombies and passes SIGTERM on, so
//!   `stop` ends a shell-based job at once instead of waiting for the kill timeout.
//! - A named workspace volume at `/workspace`; ports on `publish_ip` with an ephemeral host
//!   port; labels; restart policy `no` (the node decides restarts); rotated json-file logs
//!   so a chatty job cannot fill the disk.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceRequest, HostConfig, HostConfigLogConfig, Mount, MountType,
    PortBinding, PortMap, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};

use crate::runtime::spec::{
    ContainerSpec, LABEL_AGREEMENT, LABEL_MANAGED, LABEL_NODE, WORKSPACE_PATH, workspace_volume,
};

/// Capabilities every job keeps. Everything else is dropped unless the job asked for it and
/// the provider's policy granted it (the SSH set by default: CHOWN, DAC_OVERRIDE, FOWNER,
/// SETUID, SETGID, SYS_CHROOT). Never granted by default: MKNOD (device nodes), NET_RAW (raw
/// sockets: ARP/DNS spoofing on the bridge), SETFCAP and SETPCAP (granting capabilities to
/// files and processes), FSETID (keeping setuid bits).
pub const BASE_CAPABILITIES: &[&str] = &[
    // Servers on ports below 1024 inside the container (sshd on 22, nginx on 80).
    "NET_BIND_SERVICE",
    // Signalling processes of other users inside the container (supervisors, sshd).
    "KILL",
    // sshd built with Linux audit (RHEL-family images) refuses logins without it.
    "AUDIT_WRITE",
];

/// Size at which a container's json-file log rotates.
const LOG_MAX_SIZE: &str = "10m";
/// Rotated log files kept per container.
const LOG_MAX_FILES: &str = "3";

const MIB: i64 = 1024 * 1024;

/// The labels every Qubix container and volume carries, and the owning node's when set.
pub(crate) fn labels(spec: &ContainerSpec, owner: Option<&str>) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        (LABEL_AGREEMENT.to_owned(), spec.agreement_id.to_string()),
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
    ]);
    if let Some(owner) = owner {
        labels.insert(LABEL_NODE.to_owned(), owner.to_owned());
    }
    labels
}

/// The workspace volume to create before the container (labelled, so it is found too).
pub(crate) fn volume_request(spec: &ContainerSpec, owner: Option<&str>) -> VolumeCreateRequest {
    VolumeCreateRequest {
        name: Some(workspace_volume(&spec.agreement_id)),
        labels: Some(labels(spec, owner)),
        ..Default::default()
    }
}

/// Docker's create body for a validated spec, on the job's own `network` when it has one.
pub(crate) fn create_body(
    spec: &ContainerSpec,
    owner: Option<&str>,
    network: Option<&str>,
) -> ContainerCreateBody {
    let ports: Vec<String> = spec
        .ports
        .iter()
        .map(|p| format!("{}/tcp", p.container_port))
        .collect();
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
        env: Some(
            spec.env
                .iter()
                .map(|v| format!("{}={}", v.name, v.value))
                .collect(),
        ),
        labels: Some(labels(spec, owner)),
        exposed_ports: (!ports.is_empty()).then_some(ports),
        host_config: Some(HostConfig {
            network_mode: network.map(str::to_owned),
            ..host_config(spec)
        }),
        ..Default::default()
    }
}

fn host_config(spec: &ContainerSpec) -> HostConfig {
    let memory = i64::try_from(spec.memory_mib).unwrap_or(i64::MAX / MIB) * MIB;
    let shm = i64::try_from(spec.shm_mib).unwrap_or(i64::MAX / MIB) * MIB;
    HostConfig {
        nano_cpus: Some(i64::from(spec.cpu_cores) * 1_000_000_000),
        memory: Some(memory),
        memory_swap: Some(memory),
        shm_size: Some(shm),
        pids_limit: Some(i64::from(spec.pids_limit)),
        device_requests: spec.attach_gpus.then(|| vec![gpu_request(spec)]),
        privileged: Some(false),
        cap_drop: Some(vec!["ALL".to_owned()]),
        cap_add: Some(
            BASE_CAPABILITIES
                .iter()
                .map(|c| (*c).to_owned())
                .chain(spec.capabilities.iter().map(|c| c.name().to_owned()))
                .collect(),
        ),
        security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
        init: Some(true),
        mounts: spec.workspace.then(|| vec![workspace_mount(spec)]),
        port_bindings: Some(port_bindings(spec)),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".to_owned()),
            config: Some(HashMap::from([
                ("max-size".to_owned(), LOG_MAX_SIZE.to_owned()),
                ("max-file".to_owned(), LOG_MAX_FILES.to_owned()),
            ])),
        }),
        ..Default::default()
    }
}

fn gpu_request(spec: &ContainerSpec) -> DeviceRequest {
    DeviceRequest {
        driver: Some("nvidia".to_owned()),
        count: None,
        device_ids: Some(spec.gpu_uuids.clone()),
        capabilities: Some(vec![vec!["gpu".to_owned()]]),
        options: None,
    }
}

fn workspace_mount(spec: &ContainerSpec) -> Mount {
    Mount {
        target: Some(WORKSPACE_PATH.to_owned()),
        source: Some(workspace_volume(&spec.agreement_id)),
        typ: Some(MountType::VOLUME),
        read_only: Some(false),
        ..Default::default()
    }
}

/// Each port on `publish_ip` with host port "" (the engine picks an ephemeral one).
fn port_bindings(spec: &ContainerSpec) -> PortMap {
    spec.ports
        .iter()
        .map(|p| {
            let binding = PortBinding {
                host_ip: Some(spec.publish_ip.to_string()),
                host_port: Some(String::new()),
            };
            (format!("{}/tcp", p.container_port), Some(vec![binding]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use qubix_protocol::ids::AgreementId;
    use qubix_protocol::job::{EnvVar, PortPurpose, PortRequest};

    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            agreement_id: AgreementId::from_bytes([5; 16]),
            image: "img:1".into(),
            command: vec![],
            env: vec![EnvVar {
                name: "A".into(),
                value: "b".into(),
            }],
            gpu_uuids: vec!["GPU-aa".into(), "GPU-bb".into()],
            attach_gpus: true,
            cpu_cores: 3,
            memory_mib: 1024,
            shm_mib: 256,
            pids_limit: 100,
            disk_gib: 1,
            ports: vec![PortRequest {
                container_port: 8888,
                purpose: PortPurpose::Jupyter,
            }],
            publish_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            workspace: true,
            capabilities: vec![],
            disk_limit_mib: 0,
        }
    }

    #[test]
    fn limits_and_security_are_set() {
        let body = create_body(&spec(), None, None);
        let host = body.host_config.unwrap();
        assert_eq!(host.nano_cpus, Some(3_000_000_000));
        assert_eq!(host.memory, Some(1024 * MIB));
        assert_eq!(host.memory_swap, host.memory);
        assert_eq!(host.shm_size, Some(256 * MIB));
        assert_eq!(host.pids_limit, Some(100));
        assert_eq!(host.privileged, Some(false));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert!(
            !host
                .cap_add
                .unwrap()
                .iter()
                .any(|c| c == "SYS_ADMIN" || c == "NET_RAW")
        );
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges:true".into()])
        );
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
        assert!(
            body.cmd.is_none(),
            "an empty command runs the image default"
        );
    }

    #[test]
    fn gpus_are_requested_by_uuid_only_when_attached() {
        let host = create_body(&spec(), None, None).host_config.unwrap();
        let request = &host.device_requests.unwrap()[0];
        assert_eq!(request.driver.as_deref(), Some("nvidia"));
        assert_eq!(
            request.device_ids,
            Some(vec!["GPU-aa".into(), "GPU-bb".into()])
        );
        assert_eq!(request.capabilities, Some(vec![vec!["gpu".into()]]));
        let mut simulated = spec();
        simulated.attach_gpus = false;
        assert!(
            create_body(&simulated, None, None)
                .host_config
                .unwrap()
                .device_requests
                .is_none()
        );
    }

    #[test]
    fn ports_get_ephemeral_host_ports_on_the_publish_ip() {
        let body = create_body(&spec(), None, None);
        assert_eq!(body.exposed_ports, Some(vec!["8888/tcp".into()]));
        let bindings = body.host_config.unwrap().port_bindings.unwrap();
        let binding = &bindings["8888/tcp"].as_ref().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some(""));
    }

    #[test]
    fn workspace_volume_and_labels_name_the_agreement() {
        let s = spec();
        let body = create_body(&s, Some("node-a"), None);
        let mount = &body.host_config.unwrap().mounts.unwrap()[0];
        assert_eq!(mount.source, Some(workspace_volume(&s.agreement_id)));
        assert_eq!(mount.target.as_deref(), Some(WORKSPACE_PATH));
        let labels = body.labels.unwrap();
        assert_eq!(labels[LABEL_AGREEMENT], s.agreement_id.to_string());
        assert_eq!(labels[LABEL_MANAGED], "true");
        assert_eq!(labels[LABEL_NODE], "node-a");
    }
}
