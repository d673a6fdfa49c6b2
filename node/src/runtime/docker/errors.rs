//! Docker's errors → [`RuntimeError`]s that say what happened: a 404 is a missing
//! container (or image, at create), a 409 at create a taken name, and "could not select
//! device driver" an engine without the NVIDIA runtime.

use bollard::errors::Error as DockerError;

use crate::runtime::error::{PullFailure, RuntimeError};
use crate::runtime::spec::ContainerSpec;

/// The daemon address `connect_with_local_defaults` uses, for messages.
pub(crate) fn daemon_address() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| h.starts_with("unix://"))
        .unwrap_or_else(|| "/var/run/docker.sock".to_owned())
}

/// Whether the engine answered 404.
pub(crate) fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// An engine error about container `native`: 404 means the container is gone.
pub(crate) fn engine_error(op: &'static str, native: &str, e: DockerError) -> RuntimeError {
    match e {
        DockerError::DockerResponseServerError {
            status_code: 404, ..
        } => RuntimeError::NoSuchContainer(native.to_owned()),
        DockerError::DockerResponseServerError { message, .. }
            if message.contains("could not select device driver") =>
        {
            RuntimeError::GpuRuntimeMissing { detail: message }
        }
        e => plain_error(op, e),
    }
}

pub(crate) fn plain_error(op: &'static str, e: DockerError) -> RuntimeError {
    RuntimeError::Docker {
        op,
        detail: e.to_string(),
    }
}

/// Create answers 409 for a taken name and 404 for an image that is not present.
pub(crate) fn create_error(spec: &ContainerSpec, name: &str, e: DockerError) -> RuntimeError {
    match e {
        DockerError::DockerResponseServerError {
            status_code: 409, ..
        } => RuntimeError::AlreadyExists {
            name: name.to_owned(),
        },
        DockerError::DockerResponseServerError {
            status_code: 404,
            message,
        } => RuntimeError::Pull {
            image: spec.image.clone(),
            failure: PullFailure::NoSuchImage,
            detail: format!("{message} (pull the image before creating the container)"),
        },
        e => engine_error("create", name, e),
    }
}
