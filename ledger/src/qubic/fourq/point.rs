//! FourQ points in extended twisted Edwards coordinates `(X : Y : Z : T)` with
//! `x = X/Z`, `y = Y/Z`, `T = XY/Z`, on `−x^2 + y^2 = 1 + d·x^2·y^2`.
//!
//! The HWCD formulas below are complete on FourQ (a = −1 is a square, d is not), so adding
//! the neutral element, a point to itself or to its negation needs no special case. That is
//! what lets the fixed-base multiplication run without secret-dependent branches.

use std::sync::OnceLock;

use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

use super::fp2::Fp2;
use super::scalar::Scalar;

/// Curve constant d (FourQlib `PARAMETER_d`).
pub(crate) const CURVE_D: Fp2 = Fp2::from_limbs([
    0x0000_0000_0000_0142,
    0x0000_0000_0000_00E4,
    0xB382_1488_F1FC_0C8D,
    0x5E47_2F84_6657_E0FC,
]);

/// `2d`, the constant in the addition formula.
fn curve_2d() -> Fp2 {
    CURVE_D.double()
}

const GEN_X: Fp2 = Fp2::from_limbs([
    0x2865_92AD_7B38_33AA,
    0x1A34_7223_7C2F_B305,
    0x9686_9FB3_60AC_77F6,
    0x1E1F_553F_2878_AA9C,
]);
const GEN_Y: Fp2 = Fp2::from_limbs([
    0xB924_A246_2BCB_B287,
    0x0E3F_EE9B_A120_785A,
    0x49A7_C344_844C_8B5C,
    0x6E1C_4AF8_630E_0242,
]);

/// The cofactor: the full group has order 392·N.
const COFACTOR: u64 = 392;

/// A curve point in extended coordinates.
#[derive(Clone, Copy, Debug, Zeroize)]
pub(crate) struct Point {
    x: Fp2,
    y: Fp2,
    z: Fp2,
    t: Fp2,
}

impl Point {
    /// The neutral element `(0, 1)`.
    pub(crate) const IDENTITY: Point = Point {
        x: Fp2::ZERO,
        y: Fp2::ONE,
        z: Fp2::ONE,
        t: Fp2::ZERO,
    };

    /// Lifts an affine point; the caller guarantees it is on the curve.
    pub(crate) fn from_affine(x: Fp2, y: Fp2) -> Point {
        Point {
            x,
            y,
            z: Fp2::ONE,
            t: x.mul(y),
        }
    }

    /// The generator G of the order-N subgroup.
    pub(crate) fn generator() -> Point {
        Point::from_affine(GEN_X, GEN_Y)
    }

    /// Affine `(x, y)`; one field inversion, constant time.
    pub(crate) fn affine(&self) -> (Fp2, Fp2) {
        let z_inv = self.z.invert();
        (self.x.mul(z_inv), self.y.mul(z_inv))
    }

    /// Complete addition (HWCD, a = −1, k = 2d).
    pub(crate) fn add(&self, other: &Point) -> Point {
        let a = self.y.sub(self.x).mul(other.y.sub(other.x));
        let b = self.y.add(self.x).mul(other.y.add(other.x));
        let c = self.t.mul(curve_2d()).mul(other.t);
        let d = self.z.mul(other.z).double();
        let (e, f, g, h) = (b.sub(a), d.sub(c), d.add(c), b.add(a));
        Point::from_efgh(e, f, g, h)
    }

    /// Doubling (HWCD, a = −1); does not read T.
    pub(crate) fn double(&self) -> Point {
        let a = self.x.square();
        let b = self.y.square();
        let c = self.z.square().double();
        let d = a.neg();
        let e = self.x.add(self.y).square().sub(a).sub(b);
        let g = d.add(b);
        let f = g.sub(c);
        let h = d.sub(b);
        Point::from_efgh(e, f, g, h)
    }

    fn from_efgh(e: Fp2, f: Fp2, g: Fp2, h: Fp2) -> Point {
        Point {
            x: e.mul(f),
            y: g.mul(h),
            z: f.mul(g),
            t: e.mul(h),
        }
    }

    /// `X == 0` and `Y == Z`, i.e. the point is the neutral element.
    pub(crate) fn is_identity(&self) -> bool {
        bool::from(self.x.is_zero() & self.y.ct_eq(&self.z))
    }

    /// `k·self` by plain double-and-add for a small public `k`.
    pub(crate) fn mul_small_vartime(&self, k: u64) -> Point {
        (0..64).rev().fold(Point::IDENTITY, |acc, bit| {
            let acc = acc.double();
            if (k >> bit) & 1 == 1 {
                acc.add(self)
            } else {
                acc
            }
        })
    }

    /// True when `392·self` is the neutral element: the point lies in the small cofactor
    /// subgroup, and a public key there makes signatures forgeable.
    pub(crate) fn is_low_order(&self) -> bool {
        self.mul_small_vartime(COFACTOR).is_identity()
    }

    /// `[0·P, 1·P, …, 15·P]`, the table for 4-bit windows.
    fn window_table(&self) -> [Point; 16] {
        let mut table = [Point::IDENTITY; 16];
        for i in 1..16 {
            table[i] = table[i - 1].add(self);
        }
        table
    }

    /// `s·G` for a secret scalar, in constant time: 64 fixed 4-bit windows, each four
    /// doublings and one addition of a table entry chosen by scanning all 16 entries with
    /// `conditional_select`, so neither branches nor memory addresses depend on `s`.
    pub(crate) fn mul_base(s: &Scalar) -> Point {
        let table = base_table();
        let mut acc = Point::IDENTITY;
        for window in (0..64).rev() {
            acc = acc.double().double().double().double();
            let digit = s.nibble(window);
            let mut entry = Point::IDENTITY;
            for (j, candidate) in (0u8..).zip(table.iter()) {
                entry.conditional_assign(candidate, digit.ct_eq(&j));
            }
            acc = acc.add(&entry);
        }
        acc
    }

    /// `s·G + h·A` in variable time (verification only: every input is public). `h` is the
    /// full 256-bit little-endian hash, deliberately not reduced mod N, as Qubic core does.
    pub(crate) fn double_mul_vartime(s: &Scalar, h: &[u8; 32], a: &Point) -> Point {
        let s_bytes = s.to_bytes();
        let (g_table, a_table) = (base_table(), a.window_table());
        let mut acc = Point::IDENTITY;
        for window in (0..64).rev() {
            acc = acc.double().double().double().double();
            let (sd, hd) = (nibble(&s_bytes, window), nibble(h, window));
            if sd != 0 {
                acc = acc.add(&g_table[sd]);
            }
            if hd != 0 {
                acc = acc.add(&a_table[hd]);
            }
        }
        acc
    }
}

/// Nibble `index` (0 = least significant) of a little-endian 32-byte integer.
fn nibble(bytes: &[u8; 32], index: usize) -> usize {
    usize::from((bytes[index / 2] >> ((index % 2) * 4)) & 0xF)
}

/// `[0·G, …, 15·G]`, computed once. G is public, so caching it leaks nothing.
fn base_table() -> &'static [Point; 16] {
    static TABLE: OnceLock<[Point; 16]> = OnceLock::new();
    TABLE.get_or_init(|| Point::generator().window_table())
}

impl ConditionallySelectable for Point {
    fn conditional_select(p: &Point, q: &Point, choice: subtle::Choice) -> Point {
        Point {
            x: Fp2::conditional_select(&p.x, &q.x, choice),
            y: Fp2::conditional_select(&p.y, &q.y, choice),
            z: Fp2::conditional_select(&p.z, &q.z, choice),
            t: Fp2::conditional_select(&p.t, &q.t, choice),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::scalar::CURVE_ORDER;
    use super::*;

    fn same_point(p: &Point, q: &Point) -> bool {
        // Cross-multiplied comparison of projective coordinates.
        bool::from(p.x.mul(q.z).ct_eq(&q.x.mul(p.z)) & p.y.mul(q.z).ct_eq(&q.y.mul(p.z)))
    }

    fn on_curve(p: &Point) -> bool {
        let (x, y) = p.affine();
        let (x2, y2) = (x.square(), y.square());
        let rhs = Fp2::ONE.add(CURVE_D.mul(x2).mul(y2));
        bool::from(y2.sub(x2).ct_eq(&rhs))
    }

    fn order_bytes() -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(CURVE_ORDER) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    #[test]
    fn generator_is_on_curve_and_has_order_n() {
        let g = Point::generator();
        assert!(on_curve(&g));
        // N·G = O, computed as 0·G + N·G through the double-scalar routine (h unreduced).
        let n_g = Point::double_mul_vartime(&Scalar::default(), &order_bytes(), &g);
        assert!(n_g.is_identity());
        assert!(!g.is_low_order());
    }

    #[test]
    fn add_double_and_identity_agree() {
        let g = Point::generator();
        assert!(same_point(&g.add(&g), &g.double()));
        assert!(same_point(&g.add(&Point::IDENTITY), &g));
        let three = g.double().add(&g);
        assert!(same_point(&three, &g.mul_small_vartime(3)));
        assert!(on_curve(&three));
    }

    #[test]
    fn fixed_base_matches_double_and_add() {
        let s = Scalar::from_bytes_mod_order(&[0xA5; 32]);
        let expected =
            Point::double_mul_vartime(&Scalar::default(), &s.to_bytes(), &Point::generator());
        assert!(same_point(&Point::mul_base(&s), &expected));
        assert!(Point::mul_base(&Scalar::default()).is_identity());
    }

    #[test]
    fn neutral_element_is_low_order() {
        assert!(Point::IDENTITY.is_low_order());
    }
}
