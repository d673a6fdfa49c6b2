//! The consumer's side of jobs, as the service keeps it: the record and the API's live
//! feeds of each rented instance, fed by its driver (`driver`), and the signed control
//! actions the API asks for.
//!
//! Everything the provider says is the provider's word: a published port's host is shown
//! only when it is an IP address or a host name (never a string that could turn a shell
//! hint into a command), and log lines are made terminal-safe by the driver.

use std::sync::Arc;

use qubix_protocol::api::{Connection, ErrorCode, Event, Instance, Progress};
use qubix_protocol::control::{EndReason, JobAction, JobState, JobStatus, PublishedPort};
use qubix_protocol::job::PortPurpose;
use qubix_protocol::{AgreementId, Envelope, UnixMillis};
use tracing::{info, warn};

use super::driver::{Driver, Link, Wallet, control, receipt_figures};
use super::{Internal, Service, ServiceError};
use crate::jobs::books::{Book, LOG_LINES, METRICS_SAMPLES};
use crate::jobs::usage::ConsumerMeter;
use crate::jobs::{LogBook, MetricsBook};
use crate::store::{Role, WindowPayment};

/// The consumer's live buffers of one instance.
#[derive(Debug, Clone)]
pub(crate) struct InstanceFeeds {
    pub(crate) logs: Arc<LogBook>,
    pub(crate) metrics: Arc<MetricsBook>,
}

/// Whether a host a provider announced is an IP address or a DNS name, safe to put in a
/// shell hint or a URL.
pub(crate) fn is_plain_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    !host.is_empty() && host.len() <= 253 && labels_ok
}

pub(crate) fn connection_of(p: &qubix_protocol::control::PublishedPort) -> Connection {
    let hint = match p.purpose {
        PortPurpose::Ssh => format!("ssh -p {} root@{}", p.host_port, p.host),
        PortPurpose::Jupyter => format!("http://{}:{}/", p.host, p.host_port),
        PortPurpose::Tcp => format!("{}:{}", p.host, p.host_port),
    };
    Connection {
        container_port: p.container_port,
        purpose: p.purpose,
        host: p.host.clone(),
        port: p.host_port,
        hint,
    }
}

impl Service {
    /// The feeds of a consumer instance (created on first use).
    pub(crate) fn feeds(&mut self, id: AgreementId) -> InstanceFeeds {
        self.feeds
            .entry(id)
            .or_insert_with(|| InstanceFeeds {
                logs: Book::new(LOG_LINES),
                metrics: Book::new(METRICS_SAMPLES),
            })
            .clone()
    }

    /// Starts the driver of a consumer instance that is not over. A driver that starts
    /// again after a restart keeps what was paid, the last receipt, and counts the time it
    /// could not watch as possibly running.
    pub(super) fn drive_instance(&mut self, id: AgreementId) {
        let Some(record) = self
            .jobs
            .get(&id)
            .filter(|j| j.role == Role::Consumer && !j.state.is_final())
        else {
            return;
        };
        let Ok(terms) = record.terms(&self.network_name) else {
            return;
        };
        let t = terms.payload().clone();
        let receipt = receipt_figures(record.evidence.as_ref(), &self.network_name);
        let since = receipt
            .map(|(_, _, at)| at)
            .or(record.started_at)
            .unwrap_or(record.created_at);
        let paid = match self.ledger.agreement(&id) {
            Ok(Some(books)) => books.paid,
            _ => record.paid,
        };
        let meter = ConsumerMeter::restored(
            &t,
            paid,
            receipt.map(|(ms, amount, _)| (ms, amount)),
            (record.state, since),
        );
        let image = t
            .open_request(&self.network_name)
            .map(|r| r.payload().image.clone())
            .unwrap_or_default();
        let unconfirmed = record.credits.clone();
        let driver = Driver {
            id,
            link: Link {
                provider: t.provider,
                key: self.key.clone(),
                network: self.network_name.clone(),
                net: self.net.clone(),
            },
            wallet: Wallet {
                settlement: self.settlement.clone(),
                pay_to: t.pay_to.parse().ok(),
            },
            meter,
            unconfirmed,
            paying: None,
            image,
            feeds: self.feeds(id),
            internal: self.internal_tx.clone(),
            #[cfg(feature = "rogue")]
            rogue: self.rogue,
        };
        self.spawn(driver.run(self.shutdown.child_token()));
    }

    /// Records what the provider said about an instance.
    pub(super) fn on_status(&mut self, id: AgreementId, status: JobStatus) {
        let Some(record) = self.jobs.get_mut(&id) else {
            return;
        };
        // A poll answered before an action's reply must not undo it: never leave a final
        // state, never go back to an older one.
        if (record.state.is_final() && !status.state.is_final()) || status.since < record.since {
            return;
        }
        let changed = record.state != status.state;
        if status.state == JobState::Running && record.started_at.is_none() {
            record.started_at = Some(UnixMillis::now());
        }
        record.state = status.state;
        record.since = status.since;
        record.reason = status.reason;
        record.exit_code = status.exit_code;
        let (plain, odd): (Vec<PublishedPort>, Vec<PublishedPort>) = status
            .ports
            .into_iter()
            .partition(|p| is_plain_host(&p.host));
        if !odd.is_empty() {
            warn!(instance = %id, ports = odd.len(), "the provider announced ports on a host that is no address; not shown");
        }
        record.ports = plain;
        if changed {
            info!(instance = %id, state = status.state.as_str(), "instance state");
            self.progress.remove(&id);
            let _ = self.events.send(Event::InstanceState {
                id,
                state: status.state,
            });
        }
        let record = record.clone();
        if changed && let Err(e) = self.store.put_job(&id, &record) {
            warn!(instance = %id, error = %e, "cannot persist instance");
        }
    }

    pub(super) fn on_provider_lost(&mut self, id: AgreementId) {
        let Some(record) = self.jobs.get_mut(&id) else {
            return;
        };
        record.state = JobState::Failed;
        record.reason = Some(EndReason::ProviderLost);
        record.since = UnixMillis::now();
        let record = record.clone();
        self.progress.remove(&id);
        let _ = self.store.put_job(&id, &record);
        let _ = self.events.send(Event::InstanceState {
            id,
            state: JobState::Failed,
        });
        self.close_instance(id);
    }

    /// The driver fetched a signed usage report, and countersigned it when its meter
    /// accepted it.
    pub(super) fn on_usage(
        &mut self,
        id: AgreementId,
        report: Envelope,
        receipt: Option<Envelope>,
    ) {
        let Some(record) = self.jobs.get_mut(&id) else {
            return;
        };
        record.last_report = Some(report.clone());
        if let Some(receipt) = &receipt {
            if let Some((_, amount, _)) =
                receipt_figures(Some(&(report.clone(), receipt.clone())), &self.network_name)
            {
                record.spent = amount;
            }
            record.evidence = Some((report, receipt.clone()));
        }
        let record = record.clone();
        let _ = self.store.put_job(&id, &record);
        if let Some(receipt) = receipt {
            self.book_receipt(id, &receipt);
        }
    }

    pub(super) fn on_consumer_paid(
        &mut self,
        id: AgreementId,
        window: u32,
        transfer: &qubix_ledger::settle::FinalTransfer,
    ) {
        let Some(record) = self.jobs.get_mut(&id) else {
            return;
        };
        record.paid = record
            .paid
            .checked_add(transfer.amount)
            .unwrap_or(record.paid);
        record.credits.push(WindowPayment {
            window,
            tx_id: transfer.tx_id.to_string(),
        });
        let record = record.clone();
        let _ = self.store.put_job(&id, &record);
        self.book_window_paid(id, window, transfer);
    }

    pub(super) fn on_progress(&mut self, id: AgreementId, progress: Progress) {
        let _ = self.events.send(Event::InstanceProgress {
            id,
            progress: progress.clone(),
        });
        self.progress.insert(id, progress);
    }

    /// A stop/start/restart/terminate from the API: signed, sent, answered in a task.
    pub(super) fn act(
        &mut self,
        id: AgreementId,
        action: JobAction,
        reply: tokio::sync::oneshot::Sender<Result<Instance, ServiceError>>,
    ) {
        let Some(record) = self.jobs.get(&id).filter(|j| j.role == Role::Consumer) else {
            let _ = reply.send(Err(ServiceError::Api(
                ErrorCode::NotFound,
                format!("no instance {id}"),
                None,
            )));
            return;
        };
        if record.state.is_final() {
            // Terminating an instance that has already ended is a no-op that answers the
            // instance; anything else is a conflict the caller must hear about.
            let _ = reply.send(if action == JobAction::Terminate {
                self.instance_view(id)
            } else {
                Err(ServiceError::Api(
                    ErrorCode::WrongState,
                    format!("instance {id} is {}", record.state.as_str()),
                    None,
                ))
            });
            return;
        }
        let terms = match record.terms(&self.network_name) {
            Ok(terms) => terms,
            Err(e) => {
                let _ = reply.send(Err(ServiceError::Internal(format!(
                    "instance {id} has unreadable terms: {e}"
                ))));
                return;
            }
        };
        let (net, key, internal) = (self.net.clone(), self.key.clone(), self.internal_tx.clone());
        let network = self.network_name.clone();
        let provider = terms.payload().provider.to_peer_id();
        self.spawn(async move {
            let result = control(&net, &network, &key, provider, id, action).await;
            let _ = internal.send(Internal::Acted { id, result, reply }).await;
        });
    }

    pub(super) fn acted(
        &mut self,
        id: AgreementId,
        result: Result<JobStatus, ServiceError>,
        reply: tokio::sync::oneshot::Sender<Result<Instance, ServiceError>>,
    ) {
        let result = result.and_then(|status| {
            self.on_status(id, status);
            self.instance_view(id)
        });
        let _ = reply.send(result);
    }

    /// The API view of a consumer instance, with live progress and connections.
    pub(super) fn instance_view(&self, id: AgreementId) -> Result<Instance, ServiceError> {
        let record = self
            .jobs
            .get(&id)
            .filter(|j| j.role == Role::Consumer)
            .ok_or_else(|| {
                ServiceError::Api(ErrorCode::NotFound, format!("no instance {id}"), None)
            })?;
        let mut instance = super::commands::instance_of(&self.network_name, &id, record)?;
        instance.connections = record.ports.iter().map(connection_of).collect();
        instance.progress = self.progress.get(&id).cloned();
        Ok(instance)
    }
}
