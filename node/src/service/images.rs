//! Images this provider pulled for jobs are removed once no job of its needs them: the
//! store remembers each pull (across restarts), and a pass after record pruning and about
//! once a minute (or each retention period, when shorter) removes the unused ones. Removal is never forced, so an image any
//! container still uses (an ended job's kept container, another node's job) stays until a
//! later pass; images on the provider's allow-list were never pulled and are never removed.

use std::collections::HashSet;
use std::time::Duration;

use qubix_protocol::{AgreementId, UnixMillis};
use tracing::{debug, info, warn};

use super::{Internal, Service};

/// The longest wait between two passes.
const PASS_EVERY: Duration = Duration::from_secs(60);

/// The state of image collection.
#[derive(Debug, Default)]
pub(crate) struct ImageCollection {
    last_pass: UnixMillis,
    running: bool,
}

impl Service {
    /// The job's image, when this provider pulled it for the job (not an allow-listed
    /// local one): remembered so it is removed once unused.
    pub(super) fn note_pulled(&self, id: &AgreementId) {
        let Some(image) = self.job_image(id) else {
            return;
        };
        let allowed = self.provider.as_ref().is_some_and(|p| {
            p.local_images()
                .iter()
                .any(|l| crate::runtime::same_image(l, &image))
        });
        if !allowed && let Err(e) = self.store.note_pulled(&image) {
            warn!(%image, error = %e, "a pulled image was not recorded; it will not be collected");
        }
    }

    fn job_image(&self, id: &AgreementId) -> Option<String> {
        let record = self.jobs.get(id)?;
        let terms = record.terms(&self.network_name).ok()?;
        let request = terms.payload().open_request(&self.network_name).ok()?;
        Some(request.payload().image.clone())
    }

    /// Runs a collection pass when one is due (or `now` is forced).
    pub(super) fn collect_images_if_due(&mut self, now: UnixMillis, forced: bool) {
        let every = PASS_EVERY.min(self.record_retention);
        let due = forced || now.since(self.images.last_pass) >= every;
        if !due || self.images.running {
            return;
        }
        let Some(runtime) = self.runtime.clone() else {
            return;
        };
        self.images.last_pass = now;
        let Ok(pulled) = self.store.pulled_images() else {
            return;
        };
        let in_use: HashSet<String> = self
            .jobs
            .keys()
            .filter(|id| self.runners.contains_key(id))
            .filter_map(|id| self.job_image(id))
            .collect();
        let unused: Vec<String> = pulled
            .into_iter()
            .filter(|i| !in_use.iter().any(|u| crate::runtime::same_image(u, i)))
            .collect();
        if unused.is_empty() {
            return;
        }
        self.images.running = true;
        let internal = self.internal_tx.clone();
        self.spawn(async move {
            let mut removed = Vec::new();
            for image in unused {
                match runtime.remove_image(&image).await {
                    Ok(true) => removed.push(image),
                    Ok(false) => debug!(%image, "image still used by a container; kept"),
                    Err(e) => warn!(%image, error = %e, "image not removed"),
                }
            }
            let _ = internal.send(Internal::ImagesRemoved { removed }).await;
        });
    }

    /// A collection pass ended.
    pub(super) fn on_images_removed(&mut self, removed: Vec<String>) {
        self.images.running = false;
        for image in &removed {
            let _ = self.store.forget_pulled(image);
        }
        if !removed.is_empty() {
            info!(images = ?removed, "removed images no job needs any more");
        }
    }
}
