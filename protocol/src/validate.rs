//! Field validation shared by the wire types: one error type that names the field and says
//! what a valid value looks like.

use serde::{Deserialize, Serialize};

/// A field of a message is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{field}: {problem}")]
pub struct ValidationError {
    /// The field, dotted for nested ones (`gpu.vram_mib`).
    pub field: String,
    /// What is wrong and what is expected.
    pub problem: String,
}

/// `Ok` when `ok`, else a [`ValidationError`] for `field`.
pub fn check(ok: bool, field: &str, problem: &str) -> Result<(), ValidationError> {
    if ok {
        Ok(())
    } else {
        Err(ValidationError {
            field: field.into(),
            problem: problem.into(),
        })
    }
}

/// Non-empty, at most `max` bytes, no control characters.
pub fn check_text(s: &str, field: &str, max: usize) -> Result<(), ValidationError> {
    check(!s.trim().is_empty(), field, "must not be empty")?;
    check(
        s.len() <= max,
        field,
        &format!("must be at most {max} bytes"),
    )?;
    check(
        !s.chars().any(char::is_control),
        field,
        "must not contain control characters",
    )
}

/// The shape of a Qubic identity: 60 upper-case letters. The checksum is verified by the
/// ledger, which owns the Qubic code.
pub fn check_identity_format(s: &str, field: &str) -> Result<(), ValidationError> {
    check(
        s.len() == 60 && s.bytes().all(|b| b.is_ascii_uppercase()),
        field,
        "must be a Qubic identity: 60 upper-case letters A-Z",
    )
}
