//! The provider's side of jobs: turning confirmed agreements into lifecycle state and a
//! runner, applying inputs (payments, runner reports, consumer control, time) to the pure
//! lifecycle and performing its effects. Requests on `job/2` are answered in
//! `job_requests`, payments checked in `payments`.

use std::net::IpAddr;

use qubix_protocol::control::{JobErrorCode, JobState};
use qubix_protocol::job::{AgreementTerms, JobRequest};
use qubix_protocol::{AgreementId, UnixMillis};
use tracing::{info, warn};

use super::Service;
use crate::jobs::{Effect, Input, Job, Meter};
use crate::runtime::ContainerSpec;
use crate::store::Role;

fn container_spec(
    terms: &AgreementTerms,
    request: &JobRequest,
    gpus: &[String],
    simulated: bool,
    publish_ip: IpAddr,
) -> ContainerSpec {
    ContainerSpec {
        agreement_id: terms.agreement_id,
        image: request.image.clone(),
        command: request.command.clone(),
        env: request.env.clone(),
        gpu_uuids: gpus.to_vec(),
        attach_gpus: !simulated,
        cpu_cores: request.cpu_cores.max(1),
        memory_mib: request.ram_mib.max(64),
        shm_mib: (request.ram_mib / 4).clamp(64, 16 * 1024),
        pids_limit: 4096,
        disk_gib: request.disk_gib,
        ports: request.ports.clone(),
        publish_ip,
        workspace: true,
        // Admitted only if the provider's policy allows every one of them.
        capabilities: request.capabilities.clone(),
        disk_limit_mib: request.disk_gib.saturating_mul(1024),
    }
}

impl Service {
    /// Starts the lifecycle (stored at once: a node that stops before the first payment
    /// must find it) and the runner of a confirmed provider job; after a restart, the
    /// runner of a live one.
    pub(super) fn start_provider_job(&mut self, id: AgreementId) {
        let now = UnixMillis::now();
        let idle = self.provider.as_ref().and_then(|p| p.max_idle_secs());
        let Some(record) = self.jobs.get_mut(&id) else {
            return;
        };
        let Ok(terms) = record.terms(&self.network_name) else {
            return;
        };
        let t = terms.payload();
        if record.lifecycle.is_none() {
            record.lifecycle = Some(
                Job::new(
                    Meter::new(t.price_per_gpu_hour, t.gpus, t.duration_secs, t.payment),
                    now,
                )
                .with_idle_limit(idle),
            );
            let record = record.clone();
            if let Err(e) = self.store.put_job(&id, &record) {
                warn!(job = %id, error = %e, "cannot persist job");
            }
        }
        self.spawn_runner(id);
    }

    pub(super) fn spawn_runner(&mut self, id: AgreementId) {
        let (Some(runtime), Some(record)) = (self.runtime.clone(), self.jobs.get(&id)) else {
            return;
        };
        if self.runners.contains_key(&id) || record.state.is_final() {
            return;
        }
        let Ok(terms) = record.terms(&self.network_name) else {
            return;
        };
        let Ok(request) = terms.payload().open_request(&self.network_name) else {
            return;
        };
        let ip = self
            .public_host
            .parse()
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let spec = container_spec(
            terms.payload(),
            request.payload(),
            &record.gpu_uuids,
            record.simulated,
            ip,
        );
        let probe = self.provider.as_ref().map(|p| p.probe());
        let handle = crate::jobs::spawn(
            spec,
            terms.payload().consumer,
            runtime,
            probe,
            self.job_inputs.clone(),
            matches!(record.state, JobState::Running | JobState::Stopped),
            crate::jobs::RunnerScope {
                shutdown: self.shutdown.clone(),
                tasks: &self.tasks,
            },
        );
        if record.state == JobState::Pulling {
            // The node stopped mid-pull: pull again (a present image returns at once).
            handle.try_perform(Effect::Pull);
        }
        self.runners.insert(id, handle);
    }

    /// Applies an input to a provider job and performs what the lifecycle decides.
    pub(super) async fn apply(
        &mut self,
        id: AgreementId,
        input: Input,
    ) -> Result<(), JobErrorCode> {
        let now = UnixMillis::now();
        let record = self.jobs.get_mut(&id).ok_or(JobErrorCode::UnknownJob)?;
        let job = record.lifecycle.as_mut().ok_or(JobErrorCode::UnknownJob)?;
        let before = job.state;
        let was = job.clone();
        let ports_before = record.ports.clone();
        let effects = job.step(input, now)?;
        // Most inputs are the once-a-second tick, which only moves the meter's clock: no
        // write (and no fsync) for that, since billing follows `accrued_until` across a
        // restart. Anything else is written before its effects are performed.
        let worth_a_write = job.changed_beyond_accrual(&was) || !effects.is_empty();
        let job = job.clone();
        record.state = job.state;
        record.since = job.since;
        record.reason = job.reason;
        record.exit_code = job.exit_code;
        record.paid = job.meter.paid;
        record.spent = job.meter.due();
        if job.state == JobState::Running && record.started_at.is_none() {
            record.started_at = Some(now);
        }
        if let Some(runner) = self.runners.get(&id) {
            record.ports = runner.published(&self.public_host);
        }
        if before != job.state {
            info!(job = %id, from = before.as_str(), to = job.state.as_str(), "job state");
            if before == JobState::Negotiated {
                self.desk.activate(&id);
            }
        }
        if worth_a_write || record.ports != ports_before {
            let record = record.clone();
            if let Err(e) = self.store.put_job(&id, &record) {
                warn!(job = %id, error = %e, "cannot persist job");
            }
        }
        let ended = before != job.state && job.state.is_final();
        for effect in effects {
            self.perform(id, effect).await;
        }
        if ended && before == JobState::Negotiated {
            // Never paid, so it never had a container or a log: its runner goes now (a
            // stranger's lapsed reservations must not leave tasks behind).
            if let Some(runner) = self.runners.remove(&id) {
                runner.perform(Effect::Remove).await;
            }
        }
        if ended {
            self.job_ended(id);
        }
        Ok(())
    }

    async fn perform(&mut self, id: AgreementId, effect: Effect) {
        match effect {
            Effect::Release => {
                self.desk.release(&id);
                self.publish_offers().await;
            }
            Effect::Refund(amount) => {
                // The ledger decides the refund once the consumer's final receipt is in
                // (see `accounts`); the meter's figure is what that receipt should say.
                info!(job = %id, %amount, "unused paid time to refund once the books close");
            }
            other => {
                let done = matches!(other, Effect::Remove);
                if let Some(runner) = self.runners.get(&id) {
                    runner.perform(other).await;
                }
                if done {
                    self.runners.remove(&id);
                }
            }
        }
    }

    /// Removes labelled containers of jobs this node no longer runs (left over from a crash
    /// or from another data dir), in a task.
    pub(super) fn reconcile_containers(&self) {
        let Some(runtime) = self.runtime.clone() else {
            return;
        };
        let live: std::collections::HashSet<AgreementId> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.role == Role::Provider && !j.state.is_final())
            .map(|(id, _)| *id)
            .collect();
        self.spawn(async move {
            let Ok(list) = runtime.list_managed().await else {
                return;
            };
            for orphan in list
                .into_iter()
                .filter(|m| !live.contains(&m.id.agreement_id))
            {
                warn!(container = %orphan.id, agreement = %orphan.id.agreement_id, "removing a container of a job this node does not run");
                let _ = runtime.remove(&orphan.id, true).await;
            }
        });
    }

    /// Ticks every live provider job.
    pub(super) async fn tick_jobs(&mut self) {
        let live: Vec<AgreementId> = self
            .jobs
            .iter()
            .filter(|(_, j)| {
                j.role == Role::Provider && !j.state.is_final() && j.lifecycle.is_some()
            })
            .map(|(id, _)| *id)
            .collect();
        for id in live {
            let _ = self.apply(id, Input::Tick).await;
        }
    }
}
