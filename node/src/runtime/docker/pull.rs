//! Image pulls: look locally first (a present image needs no registry), else stream the
//! engine's per-layer messages into [`PullProgress`] totals, and classify failures.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::CreateImageInfo;
use bollard::query_parameters::CreateImageOptions;
use futures::StreamExt;
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::is_not_found;
use crate::runtime::error::{PullFailure, RuntimeError};
use crate::runtime::types::PullProgress;

/// Pulls `image` unless it is present, reporting progress on `progress`.
pub(crate) async fn pull(
    docker: &Docker,
    image: &str,
    progress: mpsc::Sender<PullProgress>,
) -> Result<(), RuntimeError> {
    match docker.inspect_image(image).await {
        Ok(_) => {
            debug!(image, "image present locally; no pull needed");
            let done = PullProgress {
                status: "image present locally".into(),
                complete: true,
                ..Default::default()
            };
            let _ = progress.send(done).await;
            return Ok(());
        }
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(pull_error(image, e.to_string())),
    }
    info!(image, "pulling image");
    let (repo, tag) = split_reference(image);
    let options = CreateImageOptions {
        from_image: Some(repo.to_owned()),
        tag: tag.map(str::to_owned),
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(options), None, None);
    let mut totals = LayerTotals::default();
    while let Some(message) = stream.next().await {
        let message = message.map_err(|e| pull_error(image, e.to_string()))?;
        if let Some(error) = message
            .error_detail
            .as_ref()
            .and_then(|d| d.message.clone())
        {
            return Err(pull_error(image, error));
        }
        // Progress is advisory: when the reader lags, skip an update rather than stall.
        let _ = progress.try_send(totals.absorb(&message));
    }
    let mut done = totals.snapshot("pull complete".into());
    done.complete = true;
    let _ = progress.send(done).await;
    info!(image, layers = totals.layers.len(), "image pulled");
    Ok(())
}

/// `repo[:tag]` or `repo@digest` as the API wants it: a digest stays in `fromImage`; an
/// untagged reference gets `latest` (an empty tag would pull every tag).
pub(crate) fn split_reference(image: &str) -> (&str, Option<&str>) {
    if image.contains('@') {
        return (image, None);
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], Some(&image[name_start + i + 1..])),
        None => (image, Some("latest")),
    }
}

/// Classifies an engine message (Docker words these differently across versions).
pub(crate) fn classify(detail: &str) -> PullFailure {
    let d = detail.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| d.contains(w));
    if any(&["no space left", "disk quota exceeded"]) {
        PullFailure::DiskFull
    } else if any(&[
        "manifest unknown",
        "not found",
        "pull access denied",
        "repository does not exist",
        "name unknown",
        "invalid reference format",
    ]) {
        PullFailure::NoSuchImage
    } else if any(&[
        "dial tcp",
        "lookup ",
        "no such host",
        "timeout",
        "connection refused",
        "network is unreachable",
        "tls handshake",
        "server misbehaving",
        "temporary failure in name resolution",
        "i/o timeout",
    ]) {
        PullFailure::Network
    } else {
        PullFailure::Other
    }
}

fn pull_error(image: &str, detail: String) -> RuntimeError {
    RuntimeError::Pull {
        image: image.to_owned(),
        failure: classify(&detail),
        detail,
    }
}

/// Per-layer progress folded into totals.
#[derive(Default)]
struct LayerTotals {
    /// Layer id → (bytes done, bytes total, finished).
    layers: HashMap<String, (u64, u64, bool)>,
}

impl LayerTotals {
    fn absorb(&mut self, message: &CreateImageInfo) -> PullProgress {
        let status = message.status.clone().unwrap_or_default();
        if let Some(id) = message.id.as_ref().filter(|_| is_layer_status(&status)) {
            let layer = self.layers.entry(id.clone()).or_default();
            let detail = message.progress_detail.as_ref();
            let total = detail
                .and_then(|d| d.total)
                .and_then(|t| u64::try_from(t).ok());
            let current = detail
                .and_then(|d| d.current)
                .and_then(|c| u64::try_from(c).ok());
            if status == "Downloading" {
                layer.1 = total.unwrap_or(layer.1);
                layer.0 = current.unwrap_or(layer.0);
            }
            if status == "Download complete" {
                layer.0 = layer.1;
            }
            if status == "Pull complete" || status == "Already exists" {
                layer.0 = layer.1;
                layer.2 = true;
            }
        }
        self.snapshot(status)
    }

    fn snapshot(&self, status: String) -> PullProgress {
        let count = |f: fn(&(u64, u64, bool)) -> bool| {
            u32::try_from(self.layers.values().filter(|l| f(l)).count()).unwrap_or(u32::MAX)
        };
        PullProgress {
            status,
            layers_done: count(|l| l.2),
            layers_total: count(|_| true),
            bytes_done: self.layers.values().map(|l| l.0).sum(),
            bytes_total: self.layers.values().map(|l| l.1).sum(),
            complete: false,
        }
    }
}

/// Statuses the engine sends with a layer id (others carry the tag or digest as id).
fn is_layer_status(status: &str) -> bool {
    matches!(
        status,
        "Pulling fs layer"
            | "Waiting"
            | "Downloading"
            | "Verifying Checksum"
            | "Download complete"
            | "Extracting"
            | "Pull complete"
            | "Already exists"
    )
}

#[cfg(test)]
mod tests {
    use bollard::models::ProgressDetail;

    use super::*;

    #[test]
    fn references_split_into_repo_and_tag() {
        assert_eq!(split_reference("busybox"), ("busybox", Some("latest")));
        assert_eq!(
            split_reference("qubix/test:latest"),
            ("qubix/test", Some("latest"))
        );
        assert_eq!(
            split_reference("host:5000/a/b:1.2"),
            ("host:5000/a/b", Some("1.2"))
        );
        assert_eq!(
            split_reference("host:5000/a/b"),
            ("host:5000/a/b", Some("latest"))
        );
        assert_eq!(split_reference("a@sha256:00"), ("a@sha256:00", None));
    }

    #[test]
    fn engine_messages_are_classified() {
        let cases = [
            (
                "manifest for nope:latest not found: manifest unknown",
                PullFailure::NoSuchImage,
            ),
            (
                "pull access denied for nope, repository does not exist",
                PullFailure::NoSuchImage,
            ),
            (
                "Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io",
                PullFailure::Network,
            ),
            (
                "write /var/lib/docker/tmp: no space left on device",
                PullFailure::DiskFull,
            ),
            ("something odd", PullFailure::Other),
        ];
        for (text, want) in cases {
            assert_eq!(classify(text), want, "{text}");
        }
    }

    fn message(id: &str, status: &str, current: i64, total: i64) -> CreateImageInfo {
        CreateImageInfo {
            id: Some(id.into()),
            status: Some(status.into()),
            progress_detail: Some(ProgressDetail {
                current: Some(current),
                total: Some(total),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn layer_messages_fold_into_totals() {
        let mut totals = LayerTotals::default();
        totals.absorb(&message("a", "Pulling fs layer", 0, 0));
        totals.absorb(&message("b", "Already exists", 0, 0));
        let p = totals.absorb(&message("a", "Downloading", 40, 100));
        assert_eq!(
            (p.layers_done, p.layers_total, p.bytes_done, p.bytes_total),
            (1, 2, 40, 100)
        );
        let p = totals.absorb(&message("a", "Pull complete", 0, 0));
        assert_eq!((p.layers_done, p.bytes_done), (2, 100));
        let p = totals.absorb(&message("latest", "Pulling from library/x", 0, 0));
        assert_eq!(p.layers_total, 2, "the tag line is not a layer");
    }
}
