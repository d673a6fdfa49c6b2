//! Image pulls. A job's image is pulled by reference, without credentials (none are sent),
//! even when a copy is present: what runs is what the registry serves anyone under that
//! name, never an image the provider built or pulled with its own credentials. Only images
//! on the provider's allow-list run from the local copy without a pull. The engine's
//! per-layer messages fold into [`PullProgress`] figures ([`LayerTally`]); failures are
//! classified.

use bollard::Docker;
use bollard::query_parameters::CreateImageOptions;
use futures::StreamExt;
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::is_not_found;
use super::layers::LayerTally;
use crate::runtime::error::{PullFailure, RuntimeError};
use crate::runtime::types::PullProgress;

/// How large and how long a job's image pull may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullLimits {
    /// The most bytes downloaded (compressed layers, as the engine reports them).
    pub max_bytes: u64,
    /// The longest a pull may take.
    pub timeout: std::time::Duration,
}

impl Default for PullLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 30,
            timeout: std::time::Duration::from_secs(3600),
        }
    }
}

/// Pulls `image` by reference within `limits`, reporting progress on `progress`; an image
/// on `local_images` that is present is used as it is.
pub(crate) async fn pull(
    docker: &Docker,
    image: &str,
    local_images: &[String],
    limits: PullLimits,
    progress: mpsc::Sender<PullProgress>,
) -> Result<(), RuntimeError> {
    let allowed_local = local_images
        .iter()
        .any(|i| normalized(i) == normalized(image));
    if allowed_local {
        match docker.inspect_image(image).await {
            Ok(_) => {
                debug!(image, "image on the local allow-list and present; no pull");
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
    }
    info!(image, "pulling image");
    let (repo, tag) = split_reference(image);
    let options = CreateImageOptions {
        from_image: Some(repo.to_owned()),
        tag: tag.map(str::to_owned),
        ..Default::default()
    };
    // No credentials: the pull is what anyone may pull under that name. Dropping the stream
    // (too large, too slow) ends the request, and the engine abandons the pull.
    let mut stream = docker.create_image(Some(options), None, None);
    let mut tally = LayerTally::default();
    let deadline = tokio::time::Instant::now() + limits.timeout;
    loop {
        let next = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(_) => {
                return Err(RuntimeError::Pull {
                    image: image.to_owned(),
                    failure: PullFailure::TimedOut,
                    detail: format!("not done within {} s", limits.timeout.as_secs()),
                });
            }
        };
        let message = next.map_err(|e| pull_error(image, e.to_string()))?;
        if let Some(error) = message
            .error_detail
            .as_ref()
            .and_then(|d| d.message.clone())
        {
            return Err(pull_error(image, error));
        }
        let figures = tally.absorb(&message);
        let size = tally.known_bytes();
        if size > limits.max_bytes {
            return Err(RuntimeError::Pull {
                image: image.to_owned(),
                failure: PullFailure::TooLarge,
                detail: format!(
                    "at least {size} bytes, above this provider's {} bytes",
                    limits.max_bytes
                ),
            });
        }
        // Progress is advisory: when the reader lags, skip an update rather than stall.
        let _ = progress.try_send(figures);
    }
    let mut done = tally.progress("pull complete");
    done.complete = true;
    let _ = progress.send(done.clone()).await;
    info!(
        image,
        layers = done.layers_total,
        bytes = done.bytes_done,
        "image pulled"
    );
    Ok(())
}

/// Whether two references name the same image (`busybox` is `busybox:latest`).
pub fn same_image(a: &str, b: &str) -> bool {
    normalized(a) == normalized(b)
}

/// `image` with its implied `:latest` tag, to compare references.
pub(crate) fn normalized(image: &str) -> String {
    let (repo, tag) = split_reference(image);
    match tag {
        Some(tag) => format!("{repo}:{tag}"),
        None => repo.to_owned(),
    }
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

#[cfg(test)]
mod tests {
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
        assert_eq!(normalized("busybox"), normalized("busybox:latest"));
        assert_ne!(normalized("busybox"), normalized("busybox:1"));
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
}
