//! Creating and removing each job's network and firewall rules on the engine (see
//! [`super::jobnet`] for what they are and why), and removing what a node left behind.

use std::collections::{HashMap, HashSet};

use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, ListVolumesOptions, RemoveVolumeOptions,
};
use qubix_protocol::AgreementId;
use tracing::{info, warn};

use super::DockerRuntime;
use super::errors::{is_not_found, plain_error};
use super::jobnet::{self, Firewall, Ipv4Net};
use crate::runtime::error::RuntimeError;
use crate::runtime::spec::{LABEL_AGREEMENT, LABEL_MANAGED, LABEL_NODE};

/// How each job's network is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobNetworkPolicy {
    /// The private range job subnets are carved from.
    pub pool: Ipv4Net,
    /// Whether jobs may open connections to public addresses.
    pub public_egress: bool,
}

impl Default for JobNetworkPolicy {
    fn default() -> Self {
        Self {
            pool: Ipv4Net {
                addr: std::net::Ipv4Addr::new(10, 213, 0, 0),
                prefix: 16,
            },
            public_egress: true,
        }
    }
}

/// What a clean-up at start removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanUp {
    /// Job networks without their job's container.
    pub networks: usize,
    /// Firewall rules of jobs without a network.
    pub rules: usize,
    /// Workspace volumes without their job's container.
    pub volumes: usize,
}

impl DockerRuntime {
    fn owner_tag(&self) -> &str {
        self.owner.as_deref().unwrap_or("unowned")
    }

    fn job_labels(&self, job: &AgreementId) -> HashMap<String, String> {
        let mut labels = HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_AGREEMENT.to_owned(), job.to_string()),
        ]);
        if let Some(owner) = &self.owner {
            labels.insert(LABEL_NODE.to_owned(), owner.clone());
        }
        labels
    }

    /// Every subnet the engine's networks use.
    async fn used_subnets(&self) -> Result<Vec<Ipv4Net>, RuntimeError> {
        let networks = self
            .docker
            .list_networks(None::<ListNetworksOptions>)
            .await
            .map_err(|e| plain_error("list networks", e))?;
        Ok(networks
            .iter()
            .filter_map(|n| n.ipam.as_ref()?.config.as_ref())
            .flatten()
            .filter_map(|c| Ipv4Net::parse(c.subnet.as_deref()?).ok())
            .collect())
    }

    /// Creates job `job`'s network on a free subnet of the pool and installs its rules;
    /// returns the network's name.
    pub(super) async fn create_job_network(
        &self,
        job: &AgreementId,
        policy: &JobNetworkPolicy,
    ) -> Result<String, RuntimeError> {
        let name = jobnet::network_name(job);
        let bridge = jobnet::bridge_name(job);
        let tag = jobnet::rule_tag(self.owner_tag(), job);
        // A leftover of an earlier attempt at this job goes first.
        self.remove_job_network(job).await?;
        // One allocation at a time here; another node on this engine may still take the
        // same subnet first, and then the engine refuses ours: try the next.
        let _one_at_a_time = self.network_lock.lock().await;
        let mut used = self.used_subnets().await?;
        let mut last_refusal = String::new();
        for _ in 0..8 {
            let Some(subnet) = jobnet::free_subnet(policy.pool, &used, job) else {
                return Err(RuntimeError::Isolation {
                    detail: format!("no free /{} left in {}", jobnet::SUBNET_PREFIX, policy.pool),
                });
            };
            let request = NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".into()),
                internal: Some(false),
                enable_ipv6: Some(false),
                ipam: Some(Ipam {
                    driver: Some("default".into()),
                    config: Some(vec![IpamConfig {
                        subnet: Some(subnet.to_string()),
                        gateway: Some(subnet.nth(1).to_string()),
                        ..Default::default()
                    }]),
                    options: None,
                }),
                options: Some(HashMap::from([
                    ("com.docker.network.bridge.name".into(), bridge.clone()),
                    (
                        "com.docker.network.bridge.enable_icc".into(),
                        "false".into(),
                    ),
                    (
                        "com.docker.network.bridge.enable_ip_masquerade".into(),
                        "true".into(),
                    ),
                ])),
                labels: Some(self.job_labels(job)),
                ..Default::default()
            };
            match self.docker.create_network(request).await {
                Ok(_) => {
                    let rules = jobnet::job_rules(&bridge, &tag, policy.public_egress);
                    if let Err(e) = Firewall.install(&rules).await {
                        let _ = self.remove_job_network(job).await;
                        return Err(e);
                    }
                    info!(agreement = %job, %subnet, %bridge, "job network ready");
                    return Ok(name);
                }
                Err(e) => {
                    last_refusal = e.to_string();
                    used.push(subnet);
                }
            }
        }
        Err(RuntimeError::Isolation {
            detail: format!("the engine refused every subnet tried: {last_refusal}"),
        })
    }

    /// Removes job `job`'s rules and network (nothing when they are gone already).
    pub(super) async fn remove_job_network(&self, job: &AgreementId) -> Result<(), RuntimeError> {
        Firewall
            .remove(&jobnet::rule_tag(self.owner_tag(), job))
            .await?;
        match self.docker.remove_network(&jobnet::network_name(job)).await {
            Err(e) if !is_not_found(&e) => Err(plain_error("remove network", e)),
            _ => Ok(()),
        }
    }

    /// Removes what this node left behind: job networks, firewall rules and workspace
    /// volumes whose job has no container any more. Another node's are never touched.
    pub(super) async fn clean_up_orphans(&self) -> Result<CleanUp, RuntimeError> {
        let mut done = CleanUp::default();
        let filters: HashMap<String, Vec<String>> =
            [("label".to_owned(), self.label_filter())].into();
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
            .map_err(|e| plain_error("list", e))?;
        let live: HashSet<String> = containers
            .iter()
            .filter(|c| self.owns(c.labels.as_ref()))
            .filter_map(|c| c.labels.as_ref()?.get(LABEL_AGREEMENT).cloned())
            .collect();
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters.clone()),
            }))
            .await
            .map_err(|e| plain_error("list networks", e))?;
        let mut networked = HashSet::new();
        for network in networks.iter().filter(|n| self.owns(n.labels.as_ref())) {
            let Some(job) = network.labels.as_ref().and_then(|l| l.get(LABEL_AGREEMENT)) else {
                continue;
            };
            let Ok(id) = job.parse::<AgreementId>() else {
                continue;
            };
            if live.contains(job) {
                networked.insert(job.clone());
                continue;
            }
            self.remove_job_network(&id).await?;
            done.networks += 1;
        }
        for job in Firewall.tagged(self.owner_tag()).await {
            if !networked.contains(&job) {
                done.rules += Firewall
                    .remove(&format!("qubix:{}:{job}", self.owner_tag()))
                    .await?;
            }
        }
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(|e| plain_error("list volumes", e))?;
        for volume in volumes.volumes.unwrap_or_default() {
            if !self.owns(Some(&volume.labels)) {
                continue;
            }
            let job = volume.labels.get(LABEL_AGREEMENT);
            if job.is_some_and(|j| live.contains(j)) {
                continue;
            }
            match self
                .docker
                .remove_volume(&volume.name, Some(RemoveVolumeOptions { force: false }))
                .await
            {
                Ok(()) => done.volumes += 1,
                Err(e) if is_not_found(&e) => {}
                Err(e) => warn!(volume = %volume.name, error = %e, "orphaned volume kept"),
            }
        }
        if done != CleanUp::default() {
            info!(?done, "removed what earlier runs of this node left behind");
        }
        Ok(done)
    }
}
