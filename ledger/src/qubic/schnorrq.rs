//! Qubic's signature scheme: FourQlib SchnorrQ with SHA-512 replaced by K12-512 (SPEC §3).
//!
//! Signing is deterministic (the nonce is hashed from the key and the digest), so the same
//! transaction body always yields the same signature and the same transaction id.
//! Verification applies core's 2026 hardening: canonical S, no high bit in byte 15 of the
//! key or of R, and no low-order public keys.

use zeroize::Zeroize;

use super::fourq::{Point, Scalar, decode, encode};
use super::k12::{k12_64, k12_concat};
use super::keys::{PublicKey, Signature};
use super::seed::Subseed;

/// Why a signature was rejected. Every input is public, so the reason can be shown freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Byte 15 of the public key has its high bit set (bit 127 of `y.a`), which no
    /// canonical encoding has.
    #[error("public key is not a canonical point encoding (byte 15 high bit set)")]
    NonCanonicalPublicKey,
    /// Byte 15 of the signature's R has its high bit set.
    #[error("signature R is not a canonical point encoding (byte 15 high bit set)")]
    NonCanonicalR,
    /// The signature scalar S is not below the group order N (a malleated twin).
    #[error("signature scalar S is not below the group order (non-canonical, possibly malleated)")]
    ScalarOutOfRange,
    /// The public key is not a point on FourQ.
    #[error("public key is not a valid FourQ point; check the source identity")]
    InvalidPublicKey,
    /// The public key lies in the small cofactor subgroup (the identity point, i.e. the QX
    /// contract address, among them): signatures for such keys can be forged.
    #[error("public key is a low-order point (e.g. a contract address); nobody can sign for it")]
    LowOrderPublicKey,
    /// The signature is well-formed but does not match this key and digest.
    #[error("signature does not match this public key and digest")]
    Mismatch,
}

/// The public key of a private key: `encode((LE(private) mod N)·G)`, constant time.
pub(crate) fn derive_public_key(private_key: &[u8; 32]) -> PublicKey {
    let a = Scalar::from_bytes_mod_order(private_key);
    PublicKey(encode(&Point::mul_base(&a)))
}

/// Signs a 32-byte digest. `public_key` must be the subseed's own key (FourQlib hashes it
/// into the challenge); [`super::KeyPair::sign_digest`] guarantees that.
///
/// ```text
/// k = K12(subseed, 64); a = LE(k[..32]) mod N
/// r = LE(K12(k[32..] || M, 64)[..32]) mod N;  R = encode(r·G)
/// h = LE(K12(R || A || M, 64)[..32]) mod N;   S = (r − a·h) mod N
/// ```
pub fn sign(subseed: &Subseed, public_key: &PublicKey, digest: &[u8; 32]) -> Signature {
    let mut k = k12_64(subseed.expose_secret());
    let a = Scalar::from_bytes_mod_order(&k[..32]);
    let mut nonce_hash = [0u8; 64];
    k12_concat(&[&k[32..], digest], &mut nonce_hash);
    let r = Scalar::from_bytes_mod_order(&nonce_hash[..32]);
    k.zeroize();
    nonce_hash.zeroize();

    let r_bytes = encode(&Point::mul_base(&r));
    let h = Scalar::from_bytes_mod_order(&challenge(&r_bytes, public_key, digest));
    let s = r.sub(&a.mul(&h));

    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&r_bytes);
    out[32..].copy_from_slice(&s.to_bytes());
    Signature(out)
}

/// Verifies a signature strictly, in the order Qubic core does (SPEC §3 "Verify").
pub fn verify(
    public_key: &PublicKey,
    digest: &[u8; 32],
    signature: &Signature,
) -> Result<(), VerifyError> {
    if public_key.0[15] & 0x80 != 0 {
        return Err(VerifyError::NonCanonicalPublicKey);
    }
    let r_bytes = signature.r_bytes();
    if r_bytes[15] & 0x80 != 0 {
        return Err(VerifyError::NonCanonicalR);
    }
    let s =
        Scalar::from_canonical_bytes(&signature.s_bytes()).ok_or(VerifyError::ScalarOutOfRange)?;
    if is_identity_encoding(public_key) {
        return Err(VerifyError::LowOrderPublicKey);
    }
    let a = decode(public_key.as_bytes()).ok_or(VerifyError::InvalidPublicKey)?;
    if a.is_low_order() {
        return Err(VerifyError::LowOrderPublicKey);
    }
    // Deliberately unreduced, as core feeds it to ecc_mul_double: for keys with a small
    // torsion component, h and h mod N give different points.
    let h = challenge(&r_bytes, public_key, digest);
    let check = encode(&Point::double_mul_vartime(&s, &h, &a));
    if check == r_bytes {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// The first 32 bytes of `K12(R || A || M, 64)`, the only part SchnorrQ uses.
fn challenge(r_bytes: &[u8; 32], public_key: &PublicKey, digest: &[u8; 32]) -> [u8; 32] {
    let mut h = [0u8; 64];
    k12_concat(&[r_bytes, public_key.as_bytes(), digest], &mut h);
    let mut low = [0u8; 32];
    low.copy_from_slice(&h[..32]);
    low
}

/// Core's fast-path check: the key `{1, 0, 0, 0}` with the sign bit masked, i.e. the
/// neutral element, which is also the QX contract address.
fn is_identity_encoding(public_key: &PublicKey) -> bool {
    let mut masked = public_key.0;
    masked[31] &= 0x7F;
    masked[0] == 1 && masked[1..].iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_and_reject_a_changed_digest() {
        let subseed = Subseed::from_bytes([7u8; 32]);
        let pk = subseed.public_key();
        let digest = [42u8; 32];
        let sig = sign(&subseed, &pk, &digest);
        assert_eq!(verify(&pk, &digest, &sig), Ok(()));
        assert_eq!(verify(&pk, &[43u8; 32], &sig), Err(VerifyError::Mismatch));
    }

    #[test]
    fn signing_is_deterministic() {
        let subseed = Subseed::from_bytes([9u8; 32]);
        let pk = subseed.public_key();
        assert_eq!(sign(&subseed, &pk, &[1; 32]), sign(&subseed, &pk, &[1; 32]));
        assert_ne!(sign(&subseed, &pk, &[1; 32]), sign(&subseed, &pk, &[2; 32]));
    }

    #[test]
    fn identity_key_is_rejected_even_with_the_sign_bit() {
        let mut key = PublicKey::contract(1);
        assert!(is_identity_encoding(&key));
        key.0[31] = 0x80;
        assert!(is_identity_encoding(&key));
        assert!(!is_identity_encoding(&PublicKey::contract(2)));
    }
}
