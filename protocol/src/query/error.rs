//! The one error a query can produce: a message and the byte span of the token it is about.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a query did not parse, pointing at the offending part of the input.
///
/// `start..end` are byte offsets into the input (always at character boundaries); an error
/// about something missing at the end has `start == end == input.len()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryError {
    /// What is wrong and what would be right, e.g.
    /// "unknown field `gpu_rma`; did you mean `gpu_ram`?".
    pub message: String,
    /// Byte offset where the offending token starts.
    pub start: usize,
    /// Byte offset just after the offending token.
    pub end: usize,
}

impl QueryError {
    pub(crate) fn new(message: impl Into<String>, start: usize, end: usize) -> Self {
        Self {
            message: message.into(),
            start,
            end: end.max(start),
        }
    }

    /// The message and where the offending token starts, counted in characters from 1, for
    /// an API answer: "unknown field `colour`; fields: … (at character 12)".
    pub fn describe(&self, input: &str) -> String {
        let start = clamp_to_boundary(input, self.start);
        let at = input.get(..start).map_or(0, |s| s.chars().count()) + 1;
        format!("{} (at character {at})", self.message)
    }

    /// The input on one line, a caret line under the offending span, and the message, for
    /// a terminal:
    ///
    /// ```text
    /// gpu_rma>=24 price<=1500
    /// ^^^^^^^
    /// unknown field `gpu_rma`; did you mean `gpu_ram`?
    /// ```
    ///
    /// Control characters (a newline inside quotes) are shown as spaces so the carets stay
    /// aligned; a span that does not fit `input` is clamped to its end.
    pub fn render(&self, input: &str) -> String {
        let start = clamp_to_boundary(input, self.start);
        let end = clamp_to_boundary(input, self.end).max(start);
        let before = input.get(..start).map_or(0, |s| s.chars().count());
        let width = input
            .get(start..end)
            .map_or(0, |s| s.chars().count())
            .max(1);
        let echo: String = input
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!(
            "{echo}\n{}{}\n{}",
            " ".repeat(before),
            "^".repeat(width),
            self.message
        )
    }
}

/// The largest character boundary of `input` at or below `at`.
fn clamp_to_boundary(input: &str, at: usize) -> usize {
    let mut at = at.min(input.len());
    while !input.is_char_boundary(at) {
        at -= 1;
    }
    at
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}

#[cfg(test)]
mod describe_tests {
    use super::*;

    #[test]
    fn the_position_counts_characters_from_one() {
        let e = QueryError::new("unknown field `colour`", 11, 17);
        assert_eq!(
            e.describe("price<=100 colour=red"),
            "unknown field `colour` (at character 12)"
        );
        // Characters, not bytes: `é` is two bytes.
        let e = QueryError::new("bad", 3, 4);
        assert_eq!(e.describe("é x"), "bad (at character 3)");
    }
}
