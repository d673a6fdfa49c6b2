//! The 60-letter base-26 encoding of 32-byte values (SPEC §2 steps 5–6).
//!
//! Four groups of 14 letters, one per little-endian u64 of the value, least significant
//! base-26 digit first, then a 4-letter checksum taken from an 18-bit K12 hash. Uppercase
//! strings are addresses ([`Identity`]); lowercase strings are hashes such as transaction
//! ids ([`TxId`]). The two are never accepted in place of each other, so a transaction id
//! pasted into a payment form cannot turn into an unspendable destination.

use core::fmt;
use core::str::FromStr;

use super::k12::k12;
use super::keys::PublicKey;

/// Length of every identity string.
pub const IDENTITY_LENGTH: usize = 60;

const GROUPS: usize = 4;
const GROUP_LETTERS: usize = 14;
const CHECKSUM_MASK: u32 = 0x3FFFF;

/// Which alphabet an encoding uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// `A`–`Z`: public-key identities (addresses).
    Upper,
    /// `a`–`z`: hash identities such as transaction ids.
    Lower,
}

impl Case {
    fn base(self) -> u8 {
        match self {
            Case::Upper => b'A',
            Case::Lower => b'a',
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Case::Upper => "uppercase A-Z (a Qubic address)",
            Case::Lower => "lowercase a-z (a transaction id or hash)",
        }
    }
}

/// Why a 60-letter string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Not exactly 60 characters.
    #[error("a Qubic identity must be exactly 60 letters; got {got} characters")]
    WrongLength {
        /// The number of characters received.
        got: usize,
    },
    /// A character that is not an ASCII letter.
    #[error("character {position} of the identity is {found:?}; identities contain only letters")]
    NotALetter {
        /// 1-based position of the offending character.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// Letters of the other case (or mixed case).
    #[error("character {position} has the wrong case; expected {}", .expected.describe())]
    WrongCase {
        /// 1-based position of the first letter in the wrong case.
        position: usize,
        /// The case that was expected.
        expected: Case,
    },
    /// A 14-letter group encodes a number that does not fit in 64 bits.
    #[error(
        "letters {first}-{last} of the identity encode a number above 2^64, so it cannot be \
         valid; check it for a typo"
    )]
    ValueOverflow {
        /// 1-based position of the group's first letter.
        first: usize,
        /// 1-based position of the group's last letter.
        last: usize,
    },
    /// The last four letters do not match the checksum of the first 56.
    #[error("the identity's checksum (its last 4 letters) does not match; check it for a typo")]
    ChecksumMismatch,
}

/// Encodes 32 bytes as 60 letters of the given case.
pub fn encode(bytes: &[u8; 32], case: Case) -> String {
    let base = case.base();
    let mut out = String::with_capacity(IDENTITY_LENGTH);
    for chunk in bytes.chunks_exact(8) {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(chunk);
        let mut fragment = u64::from_le_bytes(buf);
        for _ in 0..GROUP_LETTERS {
            out.push(char::from(base + (fragment % 26) as u8));
            fragment /= 26;
        }
    }
    let mut checksum = checksum(bytes);
    for _ in 0..4 {
        out.push(char::from(base + (checksum % 26) as u8));
        checksum /= 26;
    }
    out
}

/// Decodes 60 letters of the given case back to 32 bytes, checking length, alphabet, case,
/// 64-bit overflow of each group and the checksum (equivalent to re-encoding and comparing).
pub fn decode(text: &str, case: Case) -> Result<[u8; 32], IdentityError> {
    let digits = letter_values(text, case)?;
    let mut bytes = [0u8; 32];
    for group in 0..GROUPS {
        let letters = &digits[group * GROUP_LETTERS..(group + 1) * GROUP_LETTERS];
        let value = letters
            .iter()
            .rev()
            .fold(0u128, |v, &d| v * 26 + u128::from(d));
        let value = u64::try_from(value).map_err(|_| IdentityError::ValueOverflow {
            first: group * GROUP_LETTERS + 1,
            last: (group + 1) * GROUP_LETTERS,
        })?;
        bytes[group * 8..(group + 1) * 8].copy_from_slice(&value.to_le_bytes());
    }
    let mut expected = checksum(&bytes);
    for &digit in &digits[GROUPS * GROUP_LETTERS..] {
        if u32::from(digit) != expected % 26 {
            return Err(IdentityError::ChecksumMismatch);
        }
        expected /= 26;
    }
    Ok(bytes)
}

/// The 18-bit checksum: the first 3 bytes of K12(bytes) as a little-endian integer.
fn checksum(bytes: &[u8; 32]) -> u32 {
    let mut hash = [0u8; 3];
    k12(bytes, &mut hash);
    u32::from_le_bytes([hash[0], hash[1], hash[2], 0]) & CHECKSUM_MASK
}

/// Maps each letter to 0..26, rejecting wrong length, non-letters and the wrong case.
fn letter_values(text: &str, case: Case) -> Result<[u8; IDENTITY_LENGTH], IdentityError> {
    let got = text.chars().count();
    if got != IDENTITY_LENGTH {
        return Err(IdentityError::WrongLength { got });
    }
    let mut digits = [0u8; IDENTITY_LENGTH];
    for (i, ch) in text.chars().enumerate() {
        let position = i + 1;
        if !ch.is_ascii_alphabetic() {
            return Err(IdentityError::NotALetter {
                position,
                found: ch,
            });
        }
        let in_case = match case {
            Case::Upper => ch.is_ascii_uppercase(),
            Case::Lower => ch.is_ascii_lowercase(),
        };
        if !in_case {
            return Err(IdentityError::WrongCase {
                position,
                expected: case,
            });
        }
        // `ch` is an ASCII letter of the right case, so this is in 0..26.
        digits[i] = (ch as u8) - case.base();
    }
    Ok(digits)
}

/// A validated uppercase 60-letter identity: the address form of a [`PublicKey`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    text: String,
    key: PublicKey,
}

impl Identity {
    /// The identity of a public key (always valid).
    pub fn from_public_key(key: &PublicKey) -> Identity {
        Identity {
            text: encode(key.as_bytes(), Case::Upper),
            key: *key,
        }
    }

    /// The public key this identity encodes.
    pub fn public_key(&self) -> PublicKey {
        self.key
    }

    /// The 60 uppercase letters.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Identity {
    type Err = IdentityError;

    /// Parses an uppercase identity. Lowercase is rejected on purpose: lowercase 60-letter
    /// strings are transaction ids, and treating one as an address would burn the funds.
    fn from_str(text: &str) -> Result<Identity, IdentityError> {
        let bytes = decode(text, Case::Upper)?;
        Ok(Identity {
            text: text.to_owned(),
            key: PublicKey(bytes),
        })
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.text)
    }
}

impl AsRef<str> for Identity {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// A transaction id: K12 of the full signed transaction, shown as 60 lowercase letters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId {
    text: String,
    hash: [u8; 32],
}

impl TxId {
    /// The id of a 32-byte transaction hash.
    pub fn from_hash(hash: [u8; 32]) -> TxId {
        TxId {
            text: encode(&hash, Case::Lower),
            hash,
        }
    }

    /// The 32-byte hash (what tick data lists as the transaction digest).
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The 60 lowercase letters, as the RPC's `transactionId` and `hash` fields carry them.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for TxId {
    type Err = IdentityError;

    /// Parses a lowercase transaction id, validating its checksum.
    fn from_str(text: &str) -> Result<TxId, IdentityError> {
        let hash = decode(text, Case::Lower)?;
        Ok(TxId {
            text: text.to_owned(),
            hash,
        })
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxId({})", self.text)
    }
}

impl AsRef<str> for TxId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NULL_ID: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAFXIB";

    #[test]
    fn errors_name_the_problem() {
        let short = &NULL_ID[..59];
        assert_eq!(
            decode(short, Case::Upper),
            Err(IdentityError::WrongLength { got: 59 })
        );
        let digit = NULL_ID.replacen('A', "1", 1);
        assert_eq!(
            decode(&digit, Case::Upper),
            Err(IdentityError::NotALetter {
                position: 1,
                found: '1'
            })
        );
        assert_eq!(
            decode(&NULL_ID.to_lowercase(), Case::Upper),
            Err(IdentityError::WrongCase {
                position: 1,
                expected: Case::Upper
            })
        );
        let mixed = format!("{}b", &NULL_ID[..59]);
        assert!(matches!(
            decode(&mixed, Case::Upper),
            Err(IdentityError::WrongCase { position: 60, .. })
        ));
    }

    #[test]
    fn overflowing_group_is_reported() {
        // 'Z' as the 14th letter of a group makes 25·26^13 > 2^64.
        let overflow = format!("{}Z{}", &NULL_ID[..13], &NULL_ID[14..]);
        assert_eq!(
            decode(&overflow, Case::Upper),
            Err(IdentityError::ValueOverflow { first: 1, last: 14 })
        );
    }

    #[test]
    fn multibyte_characters_count_as_characters() {
        let text = format!("{}é", &NULL_ID[..59]);
        assert!(matches!(
            decode(&text, Case::Upper),
            Err(IdentityError::NotALetter {
                position: 60,
                found: 'é'
            })
        ));
    }

    #[test]
    fn error_messages_are_actionable() {
        let msg = IdentityError::WrongCase {
            position: 3,
            expected: Case::Upper,
        }
        .to_string();
        assert!(msg.contains("uppercase"), "{msg}");
        let msg = IdentityError::WrongLength { got: 56 }.to_string();
        assert!(msg.contains("60 letters") && msg.contains("56"), "{msg}");
    }
}
