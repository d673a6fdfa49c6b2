//! Secret key material: seed → subseed → private key (SPEC §2 steps 1–3).
//!
//! Every type here wipes itself on drop, prints `<redacted>` under `Debug`, and has no
//! `Display`: reading the secret takes an explicit `expose_secret()` call.

use core::fmt;
use core::str::FromStr;

use rand::TryRngCore;
use rand::rngs::OsRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::k12::k12;
use super::keys::PublicKey;
use super::schnorrq::derive_public_key;

/// Number of letters in a wallet seed.
pub const SEED_LENGTH: usize = 55;

/// Largest multiple of 26 that fits in a byte: bytes at or above it are redrawn so every
/// letter is equally likely.
const UNBIASED_LIMIT: u8 = 234;

/// Why a seed was rejected or could not be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// Not exactly 55 characters.
    #[error("wallet seed must be 55 lowercase letters a-z; got {got} characters")]
    WrongLength {
        /// The number of characters received.
        got: usize,
    },
    /// A character outside `a`–`z`. The character itself is not kept, so the error can be
    /// logged without leaking part of the seed.
    #[error("wallet seed must be 55 lowercase letters a-z; character {position} is not")]
    InvalidCharacter {
        /// 1-based position of the first offending character.
        position: usize,
    },
    /// The operating system's random number generator failed.
    #[error("could not read random bytes from the operating system to generate a seed; retry")]
    Entropy(#[source] rand::rand_core::OsError),
}

/// A 55-letter wallet seed, the user's backup of an identity.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Seed([u8; SEED_LENGTH]);

impl Seed {
    /// Validates a seed: exactly 55 characters, each `a`–`z`.
    pub fn new(text: &str) -> Result<Seed, SeedError> {
        let got = text.chars().count();
        if got != SEED_LENGTH {
            return Err(SeedError::WrongLength { got });
        }
        let mut letters = [0u8; SEED_LENGTH];
        for (i, ch) in text.chars().enumerate() {
            if !ch.is_ascii_lowercase() {
                letters.zeroize();
                return Err(SeedError::InvalidCharacter { position: i + 1 });
            }
            letters[i] = ch as u8;
        }
        Ok(Seed(letters))
    }

    /// Draws a fresh seed from the operating system's CSPRNG, uniformly over all 26^55
    /// seeds (about 258 bits).
    pub fn generate() -> Result<Seed, SeedError> {
        let mut letters = [0u8; SEED_LENGTH];
        let mut filled = 0;
        let mut pool = [0u8; 64];
        while filled < SEED_LENGTH {
            OsRng
                .try_fill_bytes(&mut pool)
                .map_err(SeedError::Entropy)?;
            for &byte in pool.iter().filter(|&&b| b < UNBIASED_LIMIT) {
                if filled < SEED_LENGTH {
                    letters[filled] = b'a' + byte % 26;
                    filled += 1;
                }
            }
        }
        pool.zeroize();
        Ok(Seed(letters))
    }

    /// The seed text, e.g. to show it once for backup. Handle with care.
    pub fn expose_secret(&self) -> &str {
        // The bytes are ASCII letters by construction, so this never falls back.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// `K12(seed letters as values 0..25, 32)`: the letters are mapped to `0..=25`, not ASCII.
    pub fn subseed(&self) -> Subseed {
        let mut values = self.0.map(|letter| letter - b'a');
        let mut out = [0u8; 32];
        k12(&values, &mut out);
        values.zeroize();
        Subseed(out)
    }
}

impl FromStr for Seed {
    type Err = SeedError;

    fn from_str(text: &str) -> Result<Seed, SeedError> {
        Seed::new(text)
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

/// The 32-byte subseed: FourQlib's "secret key", the input to signing.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Subseed([u8; 32]);

impl Subseed {
    /// Wraps raw subseed bytes (e.g. from a key store).
    pub fn from_bytes(bytes: [u8; 32]) -> Subseed {
        Subseed(bytes)
    }

    /// The raw subseed bytes. Handle with care.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// `K12(subseed, 32)`.
    pub fn private_key(&self) -> PrivateKey {
        let mut out = [0u8; 32];
        k12(&self.0, &mut out);
        PrivateKey(out)
    }

    /// The public key of this subseed (one constant-time base-point multiplication).
    pub fn public_key(&self) -> PublicKey {
        self.private_key().public_key()
    }
}

impl fmt::Debug for Subseed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Subseed(<redacted>)")
    }
}

/// The 32-byte private key; the signing scalar is this value mod N.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PrivateKey([u8; 32]);

impl PrivateKey {
    /// Wraps raw private-key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> PrivateKey {
        PrivateKey(bytes)
    }

    /// The raw private-key bytes. Handle with care.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// `encode((LE(private key) mod N)·G)`, computed in constant time.
    pub fn public_key(&self) -> PublicKey {
        derive_public_key(&self.0)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_validation_errors() {
        let err = Seed::new(&"a".repeat(54)).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("wallet seed must be 55 lowercase letters a-z; got 54 characters")
        );
        let upper = format!("{}A", "a".repeat(54));
        assert!(matches!(
            Seed::new(&upper),
            Err(SeedError::InvalidCharacter { position: 55 })
        ));
        let accented = format!("é{}", "a".repeat(54));
        assert!(matches!(
            Seed::new(&accented),
            Err(SeedError::InvalidCharacter { position: 1 })
        ));
        assert!(Seed::new(&"z".repeat(55)).is_ok());
    }

    #[test]
    fn invalid_character_error_does_not_echo_the_seed() {
        let seed = format!("{}Q", "x".repeat(54));
        let message = Seed::new(&seed)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            !message.contains('Q') && !message.contains('x'),
            "{message}"
        );
    }

    #[test]
    fn generated_seeds_are_valid_and_differ() {
        let a = Seed::generate().unwrap();
        let b = Seed::generate().unwrap();
        assert!(Seed::new(a.expose_secret()).is_ok());
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn debug_is_redacted() {
        let seed = Seed::new(&"q".repeat(55)).unwrap();
        let subseed = seed.subseed();
        let private = subseed.private_key();
        for shown in [
            format!("{seed:?}"),
            format!("{subseed:?}"),
            format!("{private:?}"),
        ] {
            assert!(
                shown.contains("<redacted>") && !shown.contains("qqq"),
                "{shown}"
            );
        }
    }
}
