//! Arithmetic in GF(p^2) = GF(p)(i) with i^2 = −1, the field FourQ is defined over.

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

use super::fp::Fp;

/// The element `a + b·i`.
#[derive(Clone, Copy, Debug, Default, Zeroize)]
pub(crate) struct Fp2 {
    pub(crate) a: Fp,
    pub(crate) b: Fp,
}

impl Fp2 {
    pub(crate) const ZERO: Fp2 = Fp2::new(Fp::ZERO, Fp::ZERO);
    pub(crate) const ONE: Fp2 = Fp2::new(Fp::ONE, Fp::ZERO);

    pub(crate) const fn new(a: Fp, b: Fp) -> Fp2 {
        Fp2 { a, b }
    }

    /// Builds a constant from four little-endian u64 limbs `[a_lo, a_hi, b_lo, b_hi]`,
    /// the layout FourQlib's parameter file uses.
    pub(crate) const fn from_limbs(l: [u64; 4]) -> Fp2 {
        let a = (l[0] as u128) | ((l[1] as u128) << 64);
        let b = (l[2] as u128) | ((l[3] as u128) << 64);
        Fp2::new(Fp::from_u128_unchecked(a), Fp::from_u128_unchecked(b))
    }

    pub(crate) fn add(self, rhs: Fp2) -> Fp2 {
        Fp2::new(self.a.add(rhs.a), self.b.add(rhs.b))
    }

    pub(crate) fn sub(self, rhs: Fp2) -> Fp2 {
        Fp2::new(self.a.sub(rhs.a), self.b.sub(rhs.b))
    }

    pub(crate) fn neg(self) -> Fp2 {
        Fp2::new(self.a.neg(), self.b.neg())
    }

    pub(crate) fn double(self) -> Fp2 {
        Fp2::new(self.a.double(), self.b.double())
    }

    /// Karatsuba: three base-field multiplications.
    pub(crate) fn mul(self, rhs: Fp2) -> Fp2 {
        let t0 = self.a.mul(rhs.a);
        let t1 = self.b.mul(rhs.b);
        let cross = self.a.add(self.b).mul(rhs.a.add(rhs.b));
        Fp2::new(t0.sub(t1), cross.sub(t0).sub(t1))
    }

    /// `(a + bi)^2 = (a + b)(a − b) + 2ab·i`.
    pub(crate) fn square(self) -> Fp2 {
        let re = self.a.add(self.b).mul(self.a.sub(self.b));
        let im = self.a.mul(self.b).double();
        Fp2::new(re, im)
    }

    /// `1 / (a + bi) = (a − bi) / (a^2 + b^2)`; maps zero to zero. Constant time.
    pub(crate) fn invert(self) -> Fp2 {
        let norm_inv = self.a.square().add(self.b.square()).invert();
        Fp2::new(self.a.mul(norm_inv), self.b.neg().mul(norm_inv))
    }

    pub(crate) fn is_zero(self) -> Choice {
        self.a.is_zero() & self.b.is_zero()
    }

    /// FourQ's sign of a coordinate: bit 126 of `a`, or of `b` when `a == 0`.
    pub(crate) fn sign(self) -> Choice {
        Choice::conditional_select(&self.a.top_bit(), &self.b.top_bit(), self.a.is_zero())
    }

    /// A square root, or `None` for a non-square. Variable time: only ever applied to public
    /// data (decoding a public key). Mirrors `fp2_sqrt` in the reference model so decoding
    /// picks exactly the same candidate roots.
    pub(crate) fn sqrt_vartime(self) -> Option<Fp2> {
        if bool::from(self.b.is_zero()) {
            return match self.a.sqrt() {
                Some(r) => Some(Fp2::new(r, Fp::ZERO)),
                // A non-square `a` has the square root `sqrt(−a)·i` (−1 is not a square).
                None => self.a.neg().sqrt().map(|r| Fp2::new(Fp::ZERO, r)),
            };
        }
        let norm_root = self.a.square().add(self.b.square()).sqrt()?;
        let half = Fp::ONE.double().invert();
        [norm_root, norm_root.neg()].into_iter().find_map(|n| {
            let x0 = self.a.add(n).mul(half).sqrt()?;
            if bool::from(x0.is_zero()) {
                return None;
            }
            let x1 = self.b.mul(x0.double().invert());
            let root = Fp2::new(x0, x1);
            bool::from(root.square().ct_eq(&self)).then_some(root)
        })
    }
}

impl ConstantTimeEq for Fp2 {
    fn ct_eq(&self, other: &Fp2) -> Choice {
        self.a.ct_eq(&other.a) & self.b.ct_eq(&other.b)
    }
}

impl ConditionallySelectable for Fp2 {
    fn conditional_select(x: &Fp2, y: &Fp2, choice: Choice) -> Fp2 {
        Fp2::new(
            Fp::conditional_select(&x.a, &y.a, choice),
            Fp::conditional_select(&x.b, &y.b, choice),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Fp2 {
        Fp2::from_limbs([0x1111, 0x2222, 0x3333_4444, 0x0555_6666_7777_8888])
    }

    #[test]
    fn i_squared_is_minus_one() {
        let i = Fp2::new(Fp::ZERO, Fp::ONE);
        assert!(bool::from(i.square().ct_eq(&Fp2::ONE.neg())));
        assert!(bool::from(i.mul(i).ct_eq(&Fp2::ONE.neg())));
    }

    #[test]
    fn square_matches_mul_and_inverse_works() {
        let x = sample();
        assert!(bool::from(x.square().ct_eq(&x.mul(x))));
        assert!(bool::from(x.mul(x.invert()).ct_eq(&Fp2::ONE)));
        assert!(bool::from(Fp2::ZERO.invert().is_zero()));
    }

    #[test]
    fn sqrt_of_a_square_squares_back() {
        for x in [
            sample(),
            Fp2::from_limbs([7, 0, 0, 0]),
            Fp2::from_limbs([0, 0, 9, 0]),
        ] {
            let sq = x.square();
            let root = sq.sqrt_vartime().map(Fp2::square);
            assert!(root.is_some_and(|r| bool::from(r.ct_eq(&sq))));
        }
        // Every element of GF(p) is a square in GF(p^2).
        let minus_three = Fp2::from_limbs([3, 0, 0, 0]).neg();
        assert!(minus_three.sqrt_vartime().is_some());
    }

    #[test]
    fn sign_uses_b_only_when_a_is_zero() {
        let top = 1u64 << 62; // bit 126 of the 127-bit value lives in the high limb
        assert!(bool::from(Fp2::from_limbs([0, top, 0, 0]).sign()));
        assert!(!bool::from(Fp2::from_limbs([1, 0, 0, top]).sign()));
        assert!(bool::from(Fp2::from_limbs([0, 0, 0, top]).sign()));
    }
}
