//! The binary codec: the only place in Qubix that calls bincode, so the format can be swapped
//! in one file.
//!
//! Every message type declares a maximum encoded size ([`WireMessage::MAX_SIZE`]). Encoding
//! refuses a message over it; decoding checks the input length against it before reading a
//! byte, runs bincode with a hard byte limit (so a forged length prefix cannot make it
//! allocate past the input), and rejects trailing bytes.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The hard ceiling on any decode, whatever the message type. No Qubix message is larger.
pub const MAX_DECODE_BYTES: usize = 4 * 1024 * 1024;

/// A message type that travels on the wire.
pub trait WireMessage: Serialize + DeserializeOwned {
    /// The type tag in the signature domain (`qubix/v1/<TAG>`). Tags are ASCII, end in `/`
    /// and contain no other `/`, so no signed byte string is a prefix of another type's.
    const TAG: &'static str;
    /// The largest encoding of this type that a node sends or accepts.
    const MAX_SIZE: usize;
}

/// Why bytes could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The encoding is larger than the type allows.
    #[error("{kind} is {len} bytes; at most {max} are allowed")]
    TooLarge {
        /// The message type.
        kind: &'static str,
        /// The actual size.
        len: usize,
        /// The limit for this type.
        max: usize,
    },
    /// Bytes were left over after a complete message.
    #[error("{kind} has {extra} trailing bytes after a complete message")]
    TrailingBytes {
        /// The message type.
        kind: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// The bytes are not a valid encoding.
    #[error("{kind} is malformed: {reason}")]
    Malformed {
        /// The message type.
        kind: &'static str,
        /// What the decoder found (never echoes the input).
        reason: String,
    },
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODE_BYTES>()
}

/// Encodes a message, refusing one over its type's maximum size.
pub fn encode<T: WireMessage>(msg: &T) -> Result<Vec<u8>, CodecError> {
    let bytes = encode_value(msg, T::TAG)?;
    if bytes.len() > T::MAX_SIZE {
        return Err(CodecError::TooLarge {
            kind: T::TAG,
            len: bytes.len(),
            max: T::MAX_SIZE,
        });
    }
    Ok(bytes)
}

/// Decodes a message: length check, bounded decode, no trailing bytes.
pub fn decode<T: WireMessage>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > T::MAX_SIZE {
        return Err(CodecError::TooLarge {
            kind: T::TAG,
            len: bytes.len(),
            max: T::MAX_SIZE,
        });
    }
    decode_value(bytes, T::TAG)
}

/// Encodes any serde value with the wire configuration (for values nested in a message or
/// stored on disk). `kind` names it in errors.
pub fn encode_value<T: Serialize + ?Sized>(
    value: &T,
    kind: &'static str,
) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError::Malformed {
        kind,
        reason: e.to_string(),
    })
}

/// Decodes any serde value with the wire configuration, rejecting trailing bytes. Callers
/// bound `bytes` themselves; the decoder never reads or claims past [`MAX_DECODE_BYTES`].
pub fn decode_value<T: DeserializeOwned>(
    bytes: &[u8],
    kind: &'static str,
) -> Result<T, CodecError> {
    if bytes.len() > MAX_DECODE_BYTES {
        return Err(CodecError::TooLarge {
            kind,
            len: bytes.len(),
            max: MAX_DECODE_BYTES,
        });
    }
    let (value, read) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|e| CodecError::Malformed {
            kind,
            reason: redact(e),
        })?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes {
            kind,
            extra: bytes.len() - read,
        });
    }
    Ok(value)
}

/// Describes a decode error without quoting the peer's bytes back.
fn redact(e: bincode::error::DecodeError) -> String {
    use bincode::error::DecodeError as E;
    match e {
        E::UnexpectedEnd { .. } => "message ends early".into(),
        E::LimitExceeded => "claims more bytes than the limit".into(),
        E::InvalidIntegerType { .. } => "bad integer".into(),
        E::UnexpectedVariant { .. } => "unknown enum variant".into(),
        E::Utf8 { .. } => "string is not UTF-8".into(),
        E::InvalidCharEncoding(_) => "bad character".into(),
        E::InvalidBooleanValue(_) => "bad boolean".into(),
        E::OutsideUsizeRange(_) => "length out of range".into(),
        _ => "invalid encoding".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Small {
        a: u32,
        b: Vec<u8>,
    }
    impl WireMessage for Small {
        const TAG: &'static str = "test-small/";
        const MAX_SIZE: usize = 64;
    }

    #[test]
    fn round_trip() {
        let m = Small {
            a: 7,
            b: vec![1, 2, 3],
        };
        let bytes = encode(&m).unwrap();
        assert_eq!(decode::<Small>(&bytes).unwrap(), m);
    }

    #[test]
    fn oversize_is_refused_both_ways() {
        let m = Small {
            a: 7,
            b: vec![0; 100],
        };
        assert!(matches!(encode(&m), Err(CodecError::TooLarge { .. })));
        assert!(matches!(
            decode::<Small>(&[0u8; 65]),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&Small { a: 1, b: vec![] }).unwrap();
        bytes.push(0);
        assert_eq!(
            decode::<Small>(&bytes),
            Err(CodecError::TrailingBytes {
                kind: "test-small/",
                extra: 1
            })
        );
    }

    #[test]
    fn forged_length_prefix_does_not_allocate_past_the_input() {
        // a = 1, then a Vec length of 2^32 followed by nothing.
        let bytes = [1u8, 0xfc, 0, 0, 0, 0x01];
        assert!(matches!(
            decode::<Small>(&bytes),
            Err(CodecError::Malformed { .. })
        ));
    }
}
