//! Public key and signature byte types. Neither carries an invariant: any 32 bytes can be a
//! destination (contract addresses are not curve points), and any 64 bytes can be checked.

use core::fmt;

use super::identity::{Case, Identity, IdentityError, encode};

/// A 32-byte Qubic public key: an encoded FourQ point, or a contract address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Wraps raw key bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }

    /// The raw key bytes.
    pub const fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Borrows the raw key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The address of smart contract `index`: the key `[index as u64 LE, 0, 0, 0]`
    /// (e.g. 1 = QX, 4 = QUtil). Index 0 is the all-zero "null/burn" address.
    pub const fn contract(index: u32) -> PublicKey {
        let mut bytes = [0u8; 32];
        let le = index.to_le_bytes();
        bytes[0] = le[0];
        bytes[1] = le[1];
        bytes[2] = le[2];
        bytes[3] = le[3];
        PublicKey(bytes)
    }

    /// The 60-letter uppercase identity (address) of this key.
    pub fn identity(&self) -> Identity {
        Identity::from_public_key(self)
    }

    /// Parses an uppercase 60-letter identity, validating its checksum.
    pub fn from_identity(identity: &str) -> Result<PublicKey, IdentityError> {
        identity.parse::<Identity>().map(|id| id.public_key())
    }

    /// The lowercase hex form, for logs and debugging.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl From<[u8; 32]> for PublicKey {
    fn from(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }
}

impl AsRef<[u8]> for PublicKey {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", encode(&self.0, Case::Upper))
    }
}

/// A 64-byte SchnorrQ signature: the encoded commitment R, then the scalar S (LE).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// Wraps raw signature bytes.
    pub const fn from_bytes(bytes: [u8; 64]) -> Signature {
        Signature(bytes)
    }

    /// The raw signature bytes.
    pub const fn to_bytes(&self) -> [u8; 64] {
        self.0
    }

    /// Borrows the raw signature bytes.
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// The encoded commitment point R (bytes 0..32).
    pub fn r_bytes(&self) -> [u8; 32] {
        let mut r = [0u8; 32];
        r.copy_from_slice(&self.0[..32]);
        r
    }

    /// The scalar S, little-endian (bytes 32..64).
    pub fn s_bytes(&self) -> [u8; 32] {
        let mut s = [0u8; 32];
        s.copy_from_slice(&self.0[32..]);
        s
    }
}

impl Default for Signature {
    fn default() -> Signature {
        Signature([0u8; 64])
    }
}

impl From<[u8; 64]> for Signature {
    fn from(bytes: [u8; 64]) -> Signature {
        Signature(bytes)
    }
}

impl AsRef<[u8]> for Signature {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_addresses_have_the_index_in_the_first_limb() {
        assert_eq!(PublicKey::contract(0), PublicKey([0u8; 32]));
        let qutil = PublicKey::contract(4);
        assert_eq!(qutil.0[0], 4);
        assert!(qutil.0[1..].iter().all(|&b| b == 0));
        assert_eq!(PublicKey::contract(0x0102).0[..2], [2, 1]);
    }

    #[test]
    fn debug_shows_the_identity_and_signature_halves_split() {
        let debug = format!("{:?}", PublicKey::contract(4));
        assert!(debug.contains("EAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAVWRF"));
        let mut bytes = [0u8; 64];
        bytes[0] = 1;
        bytes[63] = 2;
        let sig = Signature(bytes);
        assert_eq!(sig.r_bytes()[0], 1);
        assert_eq!(sig.s_bytes()[31], 2);
    }
}
