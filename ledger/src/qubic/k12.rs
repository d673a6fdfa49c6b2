//! KangarooTwelve (KT128, RFC 9861) with an empty customization string, the only hash Qubic
//! uses: 32-byte digests, 64-byte signing hashes and the 3-byte identity checksum.
//!
//! A shorter output is a prefix of a longer one (`k12_64(x)[..32] == k12_32(x)`); Qubic
//! core relies on that when it splits a 64-byte hash into a private key and a nonce seed.

use ::k12::{ExtendableOutput, Kt128, Update, XofReader};

/// Fills `out` with the K12 hash of `data`. Any output length works.
pub fn k12(data: &[u8], out: &mut [u8]) {
    k12_concat(&[data], out);
}

/// K12 of the concatenation of `parts`, without building the concatenated buffer.
pub fn k12_concat(parts: &[&[u8]], out: &mut [u8]) {
    let mut hasher = Kt128::default();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize_xof().read(out);
}

/// The 32-byte K12 digest of `data` (transaction digests, private keys, tx ids).
pub fn k12_32(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    k12(data, &mut out);
    out
}

/// The 64-byte K12 hash of `data` (SchnorrQ's hash function).
pub fn k12_64(data: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    k12(data, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_equals_hash_of_concatenation() {
        let mut split = [0u8; 48];
        k12_concat(&[b"qubic ", b"", b"k12"], &mut split);
        let mut whole = [0u8; 48];
        k12(b"qubic k12", &mut whole);
        assert_eq!(split, whole);
    }

    #[test]
    fn empty_output_is_fine() {
        k12(b"anything", &mut []);
    }
}
