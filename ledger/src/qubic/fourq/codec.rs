//! The 32-byte point encoding (FourQlib `encode`/`decode`, SPEC §1.3).
//!
//! Bytes 0..16 hold `y.a` and bytes 16..32 hold `y.b` (little-endian, 127 bits each); bit 7
//! of byte 31 holds the sign of x, which is bit 126 of `x.a`, or of `x.b` when `x.a == 0`.

use subtle::ConstantTimeEq;

use super::fp::Fp;
use super::fp2::Fp2;
use super::point::{CURVE_D, Point};

/// Encodes a point. Constant time (used on `r·G` while signing).
pub(crate) fn encode(point: &Point) -> [u8; 32] {
    let (x, y) = point.affine();
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&y.a.to_bytes());
    out[16..].copy_from_slice(&y.b.to_bytes());
    out[31] |= x.sign().unwrap_u8() << 7;
    out
}

/// Decodes a point strictly: rejects bit 127 of `y.a` (byte 15's high bit), coordinates
/// `>= p`, y values with no matching x, and the non-canonical "x = 0 with sign 1".
/// Variable time: inputs are public keys.
pub(crate) fn decode(bytes: &[u8; 32]) -> Option<Point> {
    if bytes[15] & 0x80 != 0 {
        return None;
    }
    let y = decode_y(bytes)?;
    let sign = bytes[31] >> 7;
    let y2 = y.square();
    let u = y2.sub(Fp2::ONE);
    let v = CURVE_D.mul(y2).add(Fp2::ONE);
    // When v == 0, invert gives 0 and the on-curve check below rejects the point.
    let x = u.mul(v.invert()).sqrt_vartime()?;
    [x, x.neg()]
        .into_iter()
        .find(|c| c.sign().unwrap_u8() == sign && is_on_curve(c, &y))
        .map(|c| Point::from_affine(c, y))
}

/// Reads y with the sign bit cleared, rejecting either half `>= p`.
fn decode_y(bytes: &[u8; 32]) -> Option<Fp2> {
    let mut lo = [0u8; 16];
    let mut hi = [0u8; 16];
    lo.copy_from_slice(&bytes[..16]);
    hi.copy_from_slice(&bytes[16..]);
    hi[15] &= 0x7F;
    Some(Fp2::new(
        Fp::from_canonical_bytes(lo)?,
        Fp::from_canonical_bytes(hi)?,
    ))
}

fn is_on_curve(x: &Fp2, y: &Fp2) -> bool {
    let (x2, y2) = (x.square(), y.square());
    let rhs = Fp2::ONE.add(CURVE_D.mul(x2).mul(y2));
    bool::from(y2.sub(x2).ct_eq(&rhs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).unwrap();
        out
    }

    const ENCODED_G: &str = "87b2cb2b46a224b95a7820a19bee3f0e5c8b4c8444c3a74942020e63f84a1c6e";

    #[test]
    fn generator_encoding_matches_spec() {
        assert_eq!(hex::encode(encode(&Point::generator())), ENCODED_G);
    }

    #[test]
    fn decode_round_trips_multiples_of_g() {
        let mut p = Point::generator();
        for _ in 0..8 {
            let bytes = encode(&p);
            let back = decode(&bytes).map(|q| encode(&q));
            assert_eq!(back, Some(bytes));
            p = p.double().add(&Point::generator());
        }
    }

    #[test]
    fn decode_rejects_malformed_encodings() {
        let mut high_bit = hex32(ENCODED_G);
        high_bit[15] |= 0x80;
        assert!(decode(&high_bit).is_none());
        // y.a = p is a non-canonical alias of y.a = 0.
        let mut y_is_p = [0xFFu8; 32];
        y_is_p[15] = 0x7F;
        y_is_p[16..].fill(0);
        assert!(decode(&y_is_p).is_none());
        // y = 1 gives x = 0, whose only valid sign bit is 0.
        let mut neutral_with_sign = [0u8; 32];
        neutral_with_sign[0] = 1;
        assert!(decode(&neutral_with_sign).is_some());
        neutral_with_sign[31] = 0x80;
        assert!(decode(&neutral_with_sign).is_none());
    }

    #[test]
    fn some_y_values_are_not_on_the_curve() {
        // About half of all y values have no x; find one among small y and check rejection
        // happens without panicking.
        let rejected = (2u8..40).filter(|&v| {
            let mut bytes = [0u8; 32];
            bytes[0] = v;
            decode(&bytes).is_none()
        });
        assert!(rejected.count() > 0);
    }
}
