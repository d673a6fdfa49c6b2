//! Arithmetic in the base field GF(p), p = 2^127 − 1 (a Mersenne prime).
//!
//! An element is a `u128` kept in `[0, 2^127)`, so `p` itself is a second representation of
//! zero. Every operation is branch-free; [`Fp::to_canonical`] maps `p` to `0` before
//! anything is compared or encoded.

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

/// The low 127 bits, i.e. the value of `p`.
const MASK127: u128 = (1u128 << 127) - 1;

/// An element of GF(2^127 − 1).
#[derive(Clone, Copy, Debug, Default, Zeroize)]
pub(crate) struct Fp(u128);

impl Fp {
    pub(crate) const ZERO: Fp = Fp(0);
    pub(crate) const ONE: Fp = Fp(1);

    /// Builds an element from a value that is already below 2^127 (`p` itself means zero).
    pub(crate) const fn from_u128_unchecked(v: u128) -> Fp {
        Fp(v & MASK127)
    }

    /// Reads 16 little-endian bytes, rejecting anything `>= p` (strict decoding).
    pub(crate) fn from_canonical_bytes(bytes: [u8; 16]) -> Option<Fp> {
        let v = u128::from_le_bytes(bytes);
        (v < MASK127).then_some(Fp(v))
    }

    /// The canonical 16-byte little-endian encoding (value in `[0, p)`).
    pub(crate) fn to_bytes(self) -> [u8; 16] {
        self.to_canonical().to_le_bytes()
    }

    /// The canonical integer value in `[0, p)`.
    pub(crate) fn to_canonical(self) -> u128 {
        // v in [0, p]; v + 1 in [1, 2^127]; folding the carry bit maps 2^127 to 1.
        let w = self.0 + 1;
        ((w & MASK127) + (w >> 127)) - 1
    }

    /// Reduces a value below 2^128 into `[0, 2^127)` using 2^127 ≡ 1 (mod p).
    fn fold(v: u128) -> Fp {
        let t = (v & MASK127) + (v >> 127);
        Fp((t & MASK127) + (t >> 127))
    }

    pub(crate) fn add(self, rhs: Fp) -> Fp {
        // Both inputs are below 2^127, so the sum fits in a u128.
        Fp::fold(self.0 + rhs.0)
    }

    pub(crate) fn neg(self) -> Fp {
        Fp(MASK127 - self.0)
    }

    pub(crate) fn sub(self, rhs: Fp) -> Fp {
        self.add(rhs.neg())
    }

    pub(crate) fn double(self) -> Fp {
        self.add(self)
    }

    pub(crate) fn mul(self, rhs: Fp) -> Fp {
        let (a0, a1) = (self.0 & u128::from(u64::MAX), self.0 >> 64);
        let (b0, b1) = (rhs.0 & u128::from(u64::MAX), rhs.0 >> 64);
        // a1, b1 < 2^63, so every partial product and `mid` fit in a u128.
        let low = a0 * b0;
        let mid = a0 * b1 + a1 * b0;
        let high = a1 * b1;
        let (lo, carry) = low.overflowing_add(mid << 64);
        let hi = high + (mid >> 64) + u128::from(carry);
        // The product is below 2^254, so hi < 2^126 and 2^128 ≡ 2 (mod p) folds it in.
        Fp::fold((lo & MASK127) + (lo >> 127) + (hi << 1))
    }

    pub(crate) fn square(self) -> Fp {
        self.mul(self)
    }

    /// `self^(2^n)`.
    fn square_n(self, n: u32) -> Fp {
        (0..n).fold(self, |acc, _| acc.square())
    }

    /// `self^(2^125 − 1)`, the shared core of inversion.
    fn pow_2_125_minus_1(self) -> Fp {
        let x2 = self.square().mul(self);
        let x4 = x2.square_n(2).mul(x2);
        let x8 = x4.square_n(4).mul(x4);
        let x16 = x8.square_n(8).mul(x8);
        let x32 = x16.square_n(16).mul(x16);
        let x64 = x32.square_n(32).mul(x32);
        let x96 = x64.square_n(32).mul(x32);
        let x112 = x96.square_n(16).mul(x16);
        let x120 = x112.square_n(8).mul(x8);
        let x124 = x120.square_n(4).mul(x4);
        x124.square().mul(self)
    }

    /// `self^(p − 2) = self^-1`; maps zero to zero. Constant time (fixed exponent).
    pub(crate) fn invert(self) -> Fp {
        // p − 2 = 2^127 − 3 = (2^125 − 1)·4 + 1.
        self.pow_2_125_minus_1().square_n(2).mul(self)
    }

    /// A square root if one exists: `self^((p + 1)/4) = self^(2^125)`, checked by squaring.
    pub(crate) fn sqrt(self) -> Option<Fp> {
        let r = self.square_n(125);
        bool::from(r.square().ct_eq(&self)).then_some(r)
    }

    pub(crate) fn is_zero(self) -> Choice {
        self.to_canonical().ct_eq(&0)
    }

    /// Bit 126 of the canonical value: FourQ's "sign" of a coordinate.
    pub(crate) fn top_bit(self) -> Choice {
        Choice::from(((self.to_canonical() >> 126) & 1) as u8)
    }
}

impl ConstantTimeEq for Fp {
    fn ct_eq(&self, other: &Fp) -> Choice {
        self.to_canonical().ct_eq(&other.to_canonical())
    }
}

impl ConditionallySelectable for Fp {
    fn conditional_select(a: &Fp, b: &Fp, choice: Choice) -> Fp {
        Fp(u128::conditional_select(&a.0, &b.0, choice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u128 = MASK127;

    fn fp(v: u128) -> Fp {
        Fp::from_u128_unchecked(v)
    }

    fn slow_mul(a: u128, b: u128) -> u128 {
        // Double-and-add modulo p with u128 arithmetic that cannot overflow.
        let (mut acc, mut base, mut k) = (0u128, a % P, b % P);
        while k > 0 {
            if k & 1 == 1 {
                acc = (acc + base) % P;
            }
            base = (base * 2) % P;
            k >>= 1;
        }
        acc
    }

    #[test]
    fn p_is_an_alias_of_zero() {
        assert_eq!(fp(P).to_canonical(), 0);
        assert!(bool::from(fp(P).is_zero()));
        assert!(bool::from(fp(P).ct_eq(&Fp::ZERO)));
        assert_eq!(fp(P - 1).to_canonical(), P - 1);
    }

    #[test]
    fn add_sub_neg_wrap_around() {
        assert_eq!(fp(P - 1).add(fp(2)).to_canonical(), 1);
        assert_eq!(fp(1).sub(fp(2)).to_canonical(), P - 1);
        assert_eq!(fp(0).neg().to_canonical(), 0);
        assert_eq!(fp(5).neg().add(fp(5)).to_canonical(), 0);
    }

    #[test]
    fn mul_matches_slow_reference() {
        let samples = [
            0,
            1,
            2,
            P - 1,
            P,
            1 << 126,
            (1 << 126) + 12345,
            u128::from(u64::MAX),
        ];
        for &a in &samples {
            for &b in &samples {
                assert_eq!(fp(a).mul(fp(b)).to_canonical(), slow_mul(a, b), "{a} * {b}");
            }
        }
    }

    #[test]
    fn invert_and_sqrt() {
        let x = fp(0x1234_5678_9abc_def0_1122_3344_5566_7788);
        assert_eq!(x.mul(x.invert()).to_canonical(), 1);
        assert_eq!(Fp::ZERO.invert().to_canonical(), 0);
        let sq = x.square();
        let root = sq.sqrt().map(|r| r.square().to_canonical());
        assert_eq!(root, Some(sq.to_canonical()));
        // −1 is not a square because p ≡ 3 (mod 4).
        assert!(Fp::ONE.neg().sqrt().is_none());
    }

    #[test]
    fn strict_decoding_rejects_p() {
        assert!(Fp::from_canonical_bytes(P.to_le_bytes()).is_none());
        assert!(Fp::from_canonical_bytes((P - 1).to_le_bytes()).is_some());
        assert!(Fp::from_canonical_bytes(u128::MAX.to_le_bytes()).is_none());
    }
}
