//! Integers modulo the prime subgroup order N (246 bits), as four little-endian u64 limbs.
//!
//! Reduction is bit-serial (shift in one bit, conditionally subtract N), which is slow-ish
//! but simple and constant time: signing handles secret scalars here.

use subtle::{Choice, ConditionallySelectable};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The order N of FourQ's prime subgroup, little-endian limbs (FourQlib `CURVE_ORDER_0..3`).
pub(crate) const CURVE_ORDER: [u64; 4] = [
    0x2FB2_540E_C776_8CE7,
    0xDFBD_004D_FE0F_7999,
    0xF053_9782_9CBC_14E5,
    0x0029_CBC1_4E5E_0A72,
];

/// A scalar in `[0, N)`. Wiped on drop because signing keys and nonces live here.
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Scalar([u64; 4]);

impl core::fmt::Debug for Scalar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Scalar(<redacted>)")
    }
}

/// `a − b` over four limbs, returning the difference and the final borrow (0 or 1).
fn sub_with_borrow(a: &[u64; 4], b: &[u64; 4]) -> ([u64; 4], u64) {
    let mut out = [0u64; 4];
    let mut borrow = 0u64;
    for i in 0..4 {
        let (d1, b1) = a[i].overflowing_sub(b[i]);
        let (d2, b2) = d1.overflowing_sub(borrow);
        out[i] = d2;
        borrow = u64::from(b1 | b2);
    }
    (out, borrow)
}

/// `a + b` over four limbs, ignoring the carry out (callers know it cannot happen).
fn add_limbs(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let mut out = [0u64; 4];
    let mut carry = 0u64;
    for i in 0..4 {
        let (s1, c1) = a[i].overflowing_add(b[i]);
        let (s2, c2) = s1.overflowing_add(carry);
        out[i] = s2;
        carry = u64::from(c1 | c2);
    }
    out
}

/// Replaces `r` by `r − N` when `r >= N`, without branching on `r`.
fn subtract_order_if_needed(r: &mut [u64; 4]) {
    let (diff, borrow) = sub_with_borrow(r, &CURVE_ORDER);
    let keep = Choice::from(borrow as u8); // borrow means r < N
    for (limb, d) in r.iter_mut().zip(diff) {
        *limb = u64::conditional_select(&d, limb, keep);
    }
}

/// Reduces a little-endian multi-limb integer of any length modulo N, one bit at a time
/// from the most significant end. The running value stays below N < 2^246, so shifting in a
/// bit never overflows four limbs.
fn reduce_limbs(limbs: &[u64]) -> [u64; 4] {
    let mut r = [0u64; 4];
    for limb in limbs.iter().rev() {
        for bit in (0..64).rev() {
            let incoming = (limb >> bit) & 1;
            r = [
                (r[0] << 1) | incoming,
                (r[1] << 1) | (r[0] >> 63),
                (r[2] << 1) | (r[1] >> 63),
                (r[3] << 1) | (r[2] >> 63),
            ];
            subtract_order_if_needed(&mut r);
        }
    }
    r
}

/// Splits little-endian bytes into u64 limbs, zero-padding the last one.
fn bytes_to_limbs(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks(8)
        .map(|chunk| {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            u64::from_le_bytes(buf)
        })
        .collect()
}

impl Scalar {
    /// Interprets little-endian bytes (any length, e.g. 32 or 64) as an integer mod N.
    pub(crate) fn from_bytes_mod_order(bytes: &[u8]) -> Scalar {
        let mut limbs = bytes_to_limbs(bytes);
        let scalar = Scalar(reduce_limbs(&limbs));
        limbs.zeroize();
        scalar
    }

    /// Accepts 32 little-endian bytes only if they encode an integer `< N` (strict, as the
    /// signature's S must be). Variable time: S is public.
    pub(crate) fn from_canonical_bytes(bytes: &[u8; 32]) -> Option<Scalar> {
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(chunk);
            *limb = u64::from_le_bytes(buf);
        }
        let (_, borrow) = sub_with_borrow(&limbs, &CURVE_ORDER);
        (borrow == 1).then_some(Scalar(limbs))
    }

    pub(crate) fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    /// `self · rhs mod N`: schoolbook 256×256 → 512-bit product, then reduction.
    pub(crate) fn mul(&self, rhs: &Scalar) -> Scalar {
        let mut wide = [0u64; 8];
        for i in 0..4 {
            let mut carry = 0u128;
            for j in 0..4 {
                let t =
                    u128::from(self.0[i]) * u128::from(rhs.0[j]) + u128::from(wide[i + j]) + carry;
                wide[i + j] = t as u64;
                carry = t >> 64;
            }
            wide[i + 4] = carry as u64;
        }
        let product = Scalar(reduce_limbs(&wide));
        wide.zeroize();
        product
    }

    /// `self − rhs mod N`, adding N back without branching when the subtraction borrows.
    pub(crate) fn sub(&self, rhs: &Scalar) -> Scalar {
        let (diff, borrow) = sub_with_borrow(&self.0, &rhs.0);
        let wrapped = add_limbs(&diff, &CURVE_ORDER);
        let mut out = [0u64; 4];
        for i in 0..4 {
            out[i] = u64::conditional_select(&diff[i], &wrapped[i], Choice::from(borrow as u8));
        }
        Scalar(out)
    }

    /// The 4-bit window `index` (0 = least significant), for fixed-window multiplication.
    pub(crate) fn nibble(&self, index: usize) -> u8 {
        let limb = self.0[index / 16];
        ((limb >> ((index % 16) * 4)) & 0xF) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order_bytes() -> [u8; 32] {
        Scalar(CURVE_ORDER).to_bytes()
    }

    #[test]
    fn order_reduces_to_zero() {
        assert_eq!(
            Scalar::from_bytes_mod_order(&order_bytes()),
            Scalar::default()
        );
        let mut n_plus_5 = CURVE_ORDER;
        n_plus_5[0] += 5;
        let reduced = Scalar::from_bytes_mod_order(&Scalar(n_plus_5).to_bytes());
        assert_eq!(reduced, Scalar([5, 0, 0, 0]));
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).unwrap();
        out
    }

    #[test]
    fn wide_reductions_match_python() {
        // Expected values: Python `pow(2, 256, N)` and `int.from_bytes(range(64)) % N`.
        let mut two_256 = [0u8; 64];
        two_256[32] = 1;
        assert_eq!(
            Scalar::from_bytes_mod_order(&two_256).to_bytes(),
            hex32("20f9e0497a25bddbbb3537e14b225e9a05000000000000000000000000000000")
        );
        let counting: Vec<u8> = (0..64).collect();
        assert_eq!(
            Scalar::from_bytes_mod_order(&counting).to_bytes(),
            hex32("a3241bb05263e58a915b91e1395565771ef9ff5e3c14fc729bb3b488d6060600")
        );
    }

    #[test]
    fn mul_matches_python() {
        let a: Vec<u8> = (1..33).collect();
        let b: Vec<u8> = (100..132).collect();
        let product = Scalar::from_bytes_mod_order(&a).mul(&Scalar::from_bytes_mod_order(&b));
        assert_eq!(
            product.to_bytes(),
            hex32("7adf964bddb9beede606e120d4ae3fc9e2565830a31262eb307aa59a72561a00")
        );
    }

    #[test]
    fn canonical_check_is_strict() {
        assert!(Scalar::from_canonical_bytes(&order_bytes()).is_none());
        let mut below = CURVE_ORDER;
        below[0] -= 1;
        assert!(Scalar::from_canonical_bytes(&Scalar(below).to_bytes()).is_some());
    }

    #[test]
    fn sub_wraps_and_mul_by_minus_one() {
        let one = Scalar([1, 0, 0, 0]);
        let zero = Scalar::default();
        let minus_one = zero.sub(&one);
        let mut n_minus_1 = CURVE_ORDER;
        n_minus_1[0] -= 1;
        assert_eq!(minus_one, Scalar(n_minus_1));
        assert_eq!(minus_one.mul(&minus_one), one);
    }

    #[test]
    fn nibbles_cover_the_scalar() {
        let s = Scalar([0x0123_4567_89AB_CDEF, 0, 0, 0xF000_0000_0000_0000]);
        assert_eq!(s.nibble(0), 0xF);
        assert_eq!(s.nibble(15), 0x0);
        assert_eq!(s.nibble(63), 0xF);
    }
}
