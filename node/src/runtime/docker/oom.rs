//! Docker's `OOMKilled` flag races the exit: the engine sets it only when containerd's OOM
//! event arrives before the exit event, which under load it sometimes does not, leaving a
//! memory-killed job as a plain `137`. The engine's event log still has the `oom` event, so
//! an exit that looks like a kill is checked against it.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::EventsOptions;
use futures::StreamExt;
use qubix_protocol::time::UnixMillis;
use tracing::debug;

use crate::runtime::types::{ContainerState, ContainerStatus, ExitStatus};

/// The exit code of a process killed by SIGKILL, as the OOM killer does.
const SIGKILL_EXIT: i64 = 128 + 9;
/// How long the event-log query may take.
const EVENTS_TIMEOUT: Duration = Duration::from_secs(5);

/// `state`, with `oom_killed` set when a 137 exit was in fact the OOM killer's.
pub(crate) async fn confirm_oom(
    docker: &Docker,
    native: &str,
    mut state: ContainerState,
) -> ContainerState {
    let ContainerStatus::Exited(exit) = state.status else {
        return state;
    };
    let Some(started_at) = state.started_at else {
        return state;
    };
    if exit.code == SIGKILL_EXIT
        && !exit.oom_killed
        && oom_event_since(docker, native, started_at).await
    {
        debug!(
            container = native,
            "OOM kill found in the event log, not in the exit state"
        );
        state.status = ContainerStatus::Exited(ExitStatus {
            oom_killed: true,
            ..exit
        });
    }
    state
}

/// Whether the engine logged an `oom` event for container `native` since `since`.
async fn oom_event_since(docker: &Docker, native: &str, since: UnixMillis) -> bool {
    let options = EventsOptions {
        // Whole seconds down: the event may carry the same second as the start.
        since: Some((since.0 / 1000).to_string()),
        until: Some(seconds(UnixMillis::now())),
        filters: Some(HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            ("container".to_owned(), vec![native.to_owned()]),
            ("event".to_owned(), vec!["oom".to_owned()]),
        ])),
    };
    let mut events = docker.events(Some(options));
    matches!(
        tokio::time::timeout(EVENTS_TIMEOUT, events.next()).await,
        Ok(Some(Ok(_)))
    )
}

/// `seconds.nanoseconds`, as the events API takes times.
fn seconds(t: UnixMillis) -> String {
    format!("{}.{:09}", t.0 / 1000, (t.0 % 1000) * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_the_events_api_wants_them() {
        assert_eq!(
            seconds(UnixMillis(1_714_566_896_123)),
            "1714566896.123000000"
        );
    }
}
