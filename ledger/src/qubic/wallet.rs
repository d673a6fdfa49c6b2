//! [`KeyPair`]: a subseed with its public key, the object that signs for one identity.

use core::fmt;

use super::identity::Identity;
use super::k12::k12_32;
use super::keys::{PublicKey, Signature};
use super::schnorrq::sign;
use super::seed::{Seed, SeedError, Subseed};

/// A signing identity. Holds the subseed (wiped on drop) and its derived public key, so the
/// key used in the challenge always matches the secret.
#[derive(Clone)]
pub struct KeyPair {
    subseed: Subseed,
    public_key: PublicKey,
}

impl KeyPair {
    /// From a 55-letter seed string; see [`Seed::new`] for the validation rules.
    pub fn from_seed_str(seed: &str) -> Result<KeyPair, SeedError> {
        Seed::new(seed).map(|seed| KeyPair::from_seed(&seed))
    }

    /// From a validated seed.
    pub fn from_seed(seed: &Seed) -> KeyPair {
        KeyPair::from_subseed(seed.subseed())
    }

    /// From a subseed (FourQlib's "secret key").
    pub fn from_subseed(subseed: Subseed) -> KeyPair {
        let public_key = subseed.public_key();
        KeyPair {
            subseed,
            public_key,
        }
    }

    /// A fresh random wallet. Returns the seed too: it is the only backup, so show it to
    /// the user (or store it encrypted) before funding the identity.
    pub fn generate() -> Result<(Seed, KeyPair), SeedError> {
        let seed = Seed::generate()?;
        let pair = KeyPair::from_seed(&seed);
        Ok((seed, pair))
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// The 60-letter uppercase identity (address).
    pub fn identity(&self) -> Identity {
        Identity::from_public_key(&self.public_key)
    }

    /// Signs a 32-byte digest (for transactions, `K12(body, 32)`).
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Signature {
        sign(&self.subseed, &self.public_key, digest)
    }

    /// Signs an arbitrary message by signing its digest `K12(message, 32)`.
    pub fn sign_message(&self, message: &[u8]) -> Signature {
        self.sign_digest(&k12_32(message))
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("identity", &self.identity().as_str())
            .field("subseed", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::schnorrq::verify;
    use super::*;

    #[test]
    fn generated_pair_signs_verifiably() {
        let (seed, pair) = KeyPair::generate().unwrap();
        let again = KeyPair::from_seed_str(seed.expose_secret()).unwrap();
        assert_eq!(pair.public_key(), again.public_key());
        let sig = pair.sign_message(b"qubix");
        assert_eq!(verify(&pair.public_key(), &k12_32(b"qubix"), &sig), Ok(()));
    }

    #[test]
    fn debug_hides_the_subseed() {
        let pair = KeyPair::from_subseed(Subseed::from_bytes([3u8; 32]));
        let shown = format!("{pair:?}");
        assert!(shown.contains("<redacted>") && shown.contains(pair.identity().as_str()));
    }
}
