//! FourQ: the twisted Edwards curve `−x^2 + y^2 = 1 + d·x^2·y^2` over GF((2^127 − 1)^2)
//! that Qubic signs with.
//!
//! Layers, bottom up: [`fp`] (GF(p)), [`fp2`] (GF(p^2)), [`point`] (extended coordinates,
//! complete HWCD formulas, constant-time fixed-base and variable-time double-scalar
//! multiplication), [`codec`] (32-byte encoding) and [`scalar`] (integers mod the subgroup
//! order N). Textbook arithmetic only: none of FourQ's endomorphisms or precomputed comb
//! tables, which settlement volumes do not need.

pub(crate) mod codec;
pub(crate) mod fp;
pub(crate) mod fp2;
pub(crate) mod point;
pub(crate) mod scalar;

pub(crate) use codec::{decode, encode};
pub(crate) use point::Point;
pub(crate) use scalar::Scalar;
