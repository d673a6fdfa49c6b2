//! What can go wrong when running containers, each case with what the operator should do.

use std::fmt;

use super::spec::SpecError;

/// Why an image pull failed, as far as the engine's answer tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullFailure {
    /// The registry has no such repository or tag, or refuses access to it.
    NoSuchImage,
    /// The registry could not be reached (DNS, TCP, TLS or a timeout).
    Network,
    /// The engine ran out of disk while storing layers.
    DiskFull,
    /// The image is larger than the provider pulls for a job.
    TooLarge,
    /// The pull took longer than the provider waits.
    TimedOut,
    /// Anything else the engine reported.
    Other,
}

impl PullFailure {
    /// What the operator or consumer should do about it.
    pub fn advice(self) -> &'static str {
        match self {
            Self::NoSuchImage => "check the image name and tag, and that the image is public",
            Self::Network => "the registry is unreachable; check the network, DNS and proxy",
            Self::DiskFull => "free disk space under Docker's data root (docker system prune)",
            Self::TooLarge => "use a smaller image: this provider does not pull images that large",
            Self::TimedOut => "use a smaller image, or a registry closer to the provider",
            Self::Other => "see the engine's message",
        }
    }
}

impl fmt::Display for PullFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoSuchImage => "no such image",
            Self::Network => "registry unreachable",
            Self::DiskFull => "disk full",
            Self::TooLarge => "image too large",
            Self::TimedOut => "pull too slow",
            Self::Other => "pull failed",
        })
    }
}

/// Why a runtime operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The container spec is invalid; nothing was created.
    #[error("invalid container spec: {0}")]
    InvalidSpec(#[from] SpecError),
    /// No Docker daemon answered.
    #[error(
        "no Docker daemon at {address} ({detail}): install docker.io and start dockerd, \
         or point DOCKER_HOST at a running daemon"
    )]
    DockerUnreachable {
        /// The socket or URL tried.
        address: String,
        /// What the client saw.
        detail: String,
    },
    /// The local-process fallback was asked for on mainnet.
    #[error(
        "the local-process runtime is refused on mainnet: mainnet jobs run only in Docker \
         containers with GPU, CPU and memory isolation; install docker.io and start dockerd"
    )]
    LocalOnMainnet,
    /// An image could not be pulled.
    #[error("pulling {image} failed, {failure}: {detail}; {}", failure.advice())]
    Pull {
        /// The image reference.
        image: String,
        /// What kind of failure.
        failure: PullFailure,
        /// The engine's message.
        detail: String,
    },
    /// A job's own network or its firewall rules could not be set up; the job does not run
    /// without them.
    #[error(
        "the job's network isolation could not be set up ({detail}); jobs need iptables and \
         the right to change it (root, or CAP_NET_ADMIN)"
    )]
    Isolation {
        /// What failed.
        detail: String,
    },
    /// The container does not exist (never created, or removed outside Qubix).
    #[error("no container {0}: it was never created or was removed outside qubix")]
    NoSuchContainer(String),
    /// A container with the job's name exists already.
    #[error(
        "a container named {name} already exists; reconcile it (list_managed) or remove it \
         before creating the job again"
    )]
    AlreadyExists {
        /// The container name.
        name: String,
    },
    /// GPUs were asked for but the engine cannot attach them.
    #[error(
        "GPUs cannot be attached ({detail}): install nvidia-container-toolkit, run \
         `nvidia-ctk runtime configure --runtime=docker` and restart dockerd"
    )]
    GpuRuntimeMissing {
        /// The engine's message.
        detail: String,
    },
    /// The runtime cannot do what was asked (e.g. the local fallback without a command).
    #[error("the {runtime} runtime cannot {what}")]
    Unsupported {
        /// Which runtime.
        runtime: &'static str,
        /// What it cannot do, and what to do instead.
        what: String,
    },
    /// The Docker engine refused or failed an operation.
    #[error("docker {op} failed: {detail}")]
    Docker {
        /// The operation (`create`, `start`, …).
        op: &'static str,
        /// The engine's message.
        detail: String,
    },
    /// A local file or process operation failed (local-process runtime).
    #[error("local {op} failed: {detail}")]
    Local {
        /// The operation.
        op: &'static str,
        /// The OS's message.
        detail: String,
    },
}

impl RuntimeError {
    /// A local-process error from an I/O error.
    pub(crate) fn local(op: &'static str, err: &std::io::Error) -> Self {
        Self::Local {
            op,
            detail: err.to_string(),
        }
    }

    /// Whether the container is gone (the job lost its container).
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::NoSuchContainer(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_errors_say_what_to_do() {
        let e = RuntimeError::Pull {
            image: "nope:1".into(),
            failure: PullFailure::NoSuchImage,
            detail: "manifest unknown".into(),
        };
        let text = e.to_string();
        assert!(
            text.contains("nope:1") && text.contains("check the image name"),
            "{text}"
        );
    }

    #[test]
    fn unreachable_docker_says_how_to_fix_it() {
        let e = RuntimeError::DockerUnreachable {
            address: "/var/run/docker.sock".into(),
            detail: "connection refused".into(),
        };
        assert!(
            e.to_string()
                .contains("install docker.io and start dockerd")
        );
    }
}
