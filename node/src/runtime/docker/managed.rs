//! Reconciliation: the containers this runtime manages, found by their labels after a
//! node restart. With an owner (`with_owner`), only that node's; without, only those that
//! carry no owner, so nodes sharing a daemon never adopt or remove each other's jobs.

use std::collections::HashMap;

use bollard::query_parameters::ListContainersOptions;
use tracing::warn;

use super::errors::{engine_error, is_not_found, plain_error};
use super::{DockerRuntime, oom, state};
use crate::runtime::error::RuntimeError;
use crate::runtime::spec::{LABEL_MANAGED, LABEL_NODE};
use crate::runtime::types::{ContainerId, ManagedContainer};

impl DockerRuntime {
    pub(super) async fn managed_containers(&self) -> Result<Vec<ManagedContainer>, RuntimeError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some([("label".to_owned(), self.label_filter())].into()),
            ..Default::default()
        };
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| plain_error("list", e))?;
        let mut found = Vec::with_capacity(summaries.len());
        let ours = summaries
            .into_iter()
            .filter(|s| self.owns(s.labels.as_ref()));
        for native in ours.filter_map(|s| s.id) {
            let inspect = match self.docker.inspect_container(&native, None).await {
                Ok(inspect) => inspect,
                Err(e) if is_not_found(&e) => continue, // removed since the listing
                Err(e) => return Err(engine_error("inspect", &native, e)),
            };
            let Some(agreement_id) = state::agreement_of(&inspect) else {
                warn!(container = %native, "managed container without a valid agreement label");
                continue;
            };
            found.push(ManagedContainer {
                image: inspect
                    .config
                    .as_ref()
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default(),
                state: oom::confirm_oom(&self.docker, &native, state::container_state(&inspect))
                    .await,
                id: ContainerId {
                    agreement_id,
                    native,
                },
            });
        }
        Ok(found)
    }

    /// Whether a container with these labels is this runtime's: same owner, or both
    /// without one. (Docker cannot filter on a label's absence, so this runs here.)
    pub(super) fn owns(&self, labels: Option<&HashMap<String, String>>) -> bool {
        let owner = labels.and_then(|l| l.get(LABEL_NODE)).map(String::as_str);
        owner == self.owner.as_deref()
    }

    /// Docker ANDs label filters: managed, and this owner's when there is one.
    pub(super) fn label_filter(&self) -> Vec<String> {
        let mut labels = vec![format!("{LABEL_MANAGED}=true")];
        if let Some(owner) = &self.owner {
            labels.push(format!("{LABEL_NODE}={owner}"));
        }
        labels
    }
}
