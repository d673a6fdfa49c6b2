//! QU amounts. QU has no decimals, so an amount is a whole number of QU in a `u64`, and all
//! arithmetic is checked: an overflow is an error, never a wrap or a float rounding.

use std::fmt;
use std::iter::Sum;

use serde::{Deserialize, Serialize};

/// The largest amount the Qubic network accepts in one transfer (SPEC: amounts above 10^15
/// are rejected), and so the largest amount any Qubix message may carry.
pub const MAX_QU: u64 = 1_000_000_000_000_000;

/// An amount of QU.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Qu(pub u64);

/// An arithmetic result that does not fit in a [`Qu`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("QU amount out of range")]
pub struct AmountOverflow;

impl Qu {
    /// Zero QU.
    pub const ZERO: Qu = Qu(0);

    /// `self + other`, or an error on overflow.
    pub fn checked_add(self, other: Qu) -> Result<Qu, AmountOverflow> {
        self.0.checked_add(other.0).map(Qu).ok_or(AmountOverflow)
    }

    /// `self - other`, or an error when `other` is larger.
    pub fn checked_sub(self, other: Qu) -> Result<Qu, AmountOverflow> {
        self.0.checked_sub(other.0).map(Qu).ok_or(AmountOverflow)
    }

    /// `self * n`, or an error on overflow.
    pub fn checked_mul(self, n: u64) -> Result<Qu, AmountOverflow> {
        self.0.checked_mul(n).map(Qu).ok_or(AmountOverflow)
    }

    /// `self - other`, or zero when `other` is larger.
    pub fn saturating_sub(self, other: Qu) -> Qu {
        Qu(self.0.saturating_sub(other.0))
    }

    /// The smaller of two amounts.
    pub fn min(self, other: Qu) -> Qu {
        Qu(self.0.min(other.0))
    }

    /// Whether the amount is within what the Qubic network accepts.
    pub fn is_transferable(self) -> bool {
        self.0 <= MAX_QU
    }

    /// The cost of `gpus` GPUs for `millis` milliseconds at `self` QU per GPU-hour, rounded
    /// up to a whole QU (the provider is never paid less than the time used).
    pub fn cost_for(self, gpus: u32, millis: u64) -> Result<Qu, AmountOverflow> {
        let numerator = (u128::from(self.0) * u128::from(gpus))
            .checked_mul(u128::from(millis))
            .ok_or(AmountOverflow)?;
        let qu = numerator.div_ceil(HOUR_MILLIS);
        u64::try_from(qu).map(Qu).map_err(|_| AmountOverflow)
    }
}

const HOUR_MILLIS: u128 = 3_600_000;

impl fmt::Display for Qu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Thousands separators make large balances readable: 1,250,000 QU.
        let digits = self.0.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        write!(f, "{out} QU")
    }
}

impl fmt::Debug for Qu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Qu({})", self.0)
    }
}

impl<'a> Sum<&'a Qu> for Option<Qu> {
    fn sum<I: Iterator<Item = &'a Qu>>(mut iter: I) -> Self {
        iter.try_fold(Qu::ZERO, |acc, x| acc.checked_add(*x).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_groups_thousands() {
        assert_eq!(Qu(0).to_string(), "0 QU");
        assert_eq!(Qu(999).to_string(), "999 QU");
        assert_eq!(Qu(1_000).to_string(), "1,000 QU");
        assert_eq!(Qu(1_250_000).to_string(), "1,250,000 QU");
    }

    #[test]
    fn cost_rounds_up_to_whole_qu() {
        let price = Qu(1_000);
        assert_eq!(price.cost_for(1, 3_600_000), Ok(Qu(1_000)));
        assert_eq!(price.cost_for(2, 1_800_000), Ok(Qu(1_000)));
        assert_eq!(price.cost_for(1, 1), Ok(Qu(1)));
        assert_eq!(price.cost_for(1, 0), Ok(Qu(0)));
        assert_eq!(
            Qu(u64::MAX).cost_for(u32::MAX, u64::MAX),
            Err(AmountOverflow)
        );
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        assert_eq!(Qu(u64::MAX).checked_add(Qu(1)), Err(AmountOverflow));
        assert_eq!(Qu(1).checked_sub(Qu(2)), Err(AmountOverflow));
        assert_eq!(Qu(u64::MAX).checked_mul(2), Err(AmountOverflow));
        let total: Option<Qu> = [Qu(1), Qu(2)].iter().sum();
        assert_eq!(total, Some(Qu(3)));
        let total: Option<Qu> = [Qu(u64::MAX), Qu(1)].iter().sum();
        assert_eq!(total, None);
    }

    proptest! {
        #[test]
        fn cost_is_monotonic_in_time(price in 0u64..1_000_000, gpus in 0u32..16, a in 0u64..10_000_000, b in 0u64..10_000_000) {
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(Qu(price).cost_for(gpus, lo).unwrap() <= Qu(price).cost_for(gpus, hi).unwrap());
        }

        #[test]
        fn add_then_sub_is_identity(a in 0u64..u64::MAX / 2, b in 0u64..u64::MAX / 2) {
            prop_assert_eq!(Qu(a).checked_add(Qu(b)).unwrap().checked_sub(Qu(b)).unwrap(), Qu(a));
        }
    }
}
