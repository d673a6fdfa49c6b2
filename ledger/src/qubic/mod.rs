//! Qubic cryptography in pure Rust: what it takes to hold QU and pay with it.
//!
//! How the parts fit, from a wallet seed to bytes on the wire:
//!
//! ```text
//! Seed (55 letters) ──K12──▶ Subseed ──K12──▶ PrivateKey ──FourQ──▶ PublicKey ──▶ Identity (60 letters)
//!                              │                                        │
//!                              └──────── KeyPair::sign_digest ◀─────────┘
//!                                               │  (SchnorrQ with K12)
//! UnsignedTransaction ──digest──────────────────┘
//!         └──sign──▶ SignedTransaction ──▶ to_bytes / to_base64 / id (TxId, 60 lowercase letters)
//! ```
//!
//! * [`k12`]: KangarooTwelve, the only hash.
//! * `fourq` (crate-private): GF((2^127 − 1)^2), curve points, encoding, scalars mod N.
//!   Secret scalars are multiplied in constant time; verification runs in variable time.
//! * [`schnorrq`]: deterministic signing and strict verification (canonical S, no
//!   low-order keys), matching Qubic core after its 2026 hardening.
//! * [`seed`], [`keys`], [`wallet`]: secret and public key types; secrets wipe on drop and
//!   never print.
//! * [`identity`]: the base-26 codec, [`Identity`] (uppercase addresses) and [`TxId`].
//! * [`tx`], [`send_many`]: the transaction wire format and QUtil `SendToManyV1`.
//!
//! Everything follows `shared/qubic/SPEC.md`; the tests replay every published vector.

mod fourq;
pub mod identity;
pub mod k12;
pub mod keys;
pub mod schnorrq;
pub mod seed;
pub mod send_many;
pub mod tx;
pub mod wallet;

#[cfg(test)]
mod tests;

pub use identity::{Case, Identity, IdentityError, TxId};
pub use keys::{PublicKey, Signature};
pub use schnorrq::VerifyError;
pub use seed::{PrivateKey, Seed, SeedError, Subseed};
pub use send_many::{Payee, SendManyError, send_to_many_v1};
pub use tx::{SignedTransaction, TxError, UnsignedTransaction, build_transfer};
pub use wallet::KeyPair;
