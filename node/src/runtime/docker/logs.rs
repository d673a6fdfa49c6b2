//! Container logs: Docker's multiplexed stdout/stderr frames, asked for with
//! `timestamps=true`, decoded into [`LogLine`]s. The stream is pulled, so a slow reader
//! slows the engine's socket rather than filling memory.

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use qubix_protocol::api::{LogLine, LogStream};
use qubix_protocol::time::UnixMillis;

use super::engine_error;
use crate::runtime::MAX_LOG_LINE_BYTES;
use crate::runtime::error::RuntimeError;
use crate::runtime::timestamp::split_log_timestamp;

/// The log stream of container `native`: the last `tail` lines (all when `None`), then,
/// with `follow`, new lines until the container stops.
pub(crate) fn logs(
    docker: &Docker,
    native: &str,
    follow: bool,
    tail: Option<usize>,
) -> BoxStream<'static, Result<LogLine, RuntimeError>> {
    let options = LogsOptions {
        follow,
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: tail.map_or_else(|| "all".to_owned(), |n| n.to_string()),
        ..Default::default()
    };
    let native = native.to_owned();
    docker
        .logs(&native, Some(options))
        .flat_map(move |frame| {
            let lines: Vec<Result<LogLine, RuntimeError>> = match frame {
                Ok(frame) => decode_frame(&frame, UnixMillis::now())
                    .into_iter()
                    .map(Ok)
                    .collect(),
                Err(e) => vec![Err(engine_error("logs", &native, e))],
            };
            stream::iter(lines)
        })
        .boxed()
}

/// The lines of one frame. Docker sends one frame per log line, but a line over 16 KiB
/// arrives in several frames and a frame may hold several lines; each piece keeps the
/// time stamped on it, or the frame's, or `now`.
pub(crate) fn decode_frame(frame: &LogOutput, now: UnixMillis) -> Vec<LogLine> {
    let (stream, bytes) = match frame {
        LogOutput::StdOut { message } => (LogStream::Stdout, message),
        LogOutput::StdErr { message } => (LogStream::Stderr, message),
        LogOutput::Console { message } => (LogStream::Stdout, message),
        LogOutput::StdIn { .. } => return Vec::new(),
    };
    let text = String::from_utf8_lossy(bytes);
    let mut last_at = now;
    text.strip_suffix('\n')
        .unwrap_or(&text)
        .split('\n')
        .map(|piece| {
            let piece = piece.strip_suffix('\r').unwrap_or(piece);
            let (at, line) = split_log_timestamp(piece).unwrap_or((last_at, piece));
            last_at = at;
            LogLine {
                at,
                stream,
                line: truncate(line, MAX_LOG_LINE_BYTES),
            }
        })
        .collect()
}

/// At most `max` bytes of `line`, cut at a character boundary.
pub(crate) fn truncate(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_owned();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(text: &str) -> LogOutput {
        LogOutput::StdOut {
            message: text.as_bytes().to_vec().into(),
        }
    }

    #[test]
    fn timestamped_frames_become_lines() {
        let frame = LogOutput::StdErr {
            message: b"2024-05-01T12:34:56.5Z oops: bad\n".to_vec().into(),
        };
        let lines = decode_frame(&frame, UnixMillis(1));
        let want = LogLine {
            at: UnixMillis(1_714_566_896_500),
            stream: LogStream::Stderr,
            line: "oops: bad".into(),
        };
        assert_eq!(lines, vec![want]);
    }

    #[test]
    fn several_lines_in_one_frame_keep_their_order_and_times() {
        let lines = decode_frame(&out("2024-05-01T12:34:56Z a\r\nno stamp\n"), UnixMillis(1));
        let texts: Vec<_> = lines.iter().map(|l| (l.line.as_str(), l.at.0)).collect();
        assert_eq!(
            texts,
            vec![("a", 1_714_566_896_000), ("no stamp", 1_714_566_896_000)]
        );
    }

    #[test]
    fn empty_lines_survive_and_long_ones_are_cut() {
        let lines = decode_frame(&out("2024-05-01T12:34:56Z \n"), UnixMillis(1));
        assert_eq!(lines[0].line, "");
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("hello", 10), "hello");
    }
}
