//! Qubix ledger: money in QU, from keys to a balanced book.
//!
//! ```text
//!             node's payment logic
//!               │            │
//!       Ledger (book)    Settlement trait ──── QubicSettlement ── driver task ── outbox (sled)
//!    double-entry, sled       │                                        │
//!    idempotent, atomic       │ verify_incoming                        │ confirm::Confirmation
//!                             └──────────────── RpcClient ─────────────┘ (pure state machine)
//!                                                   │ HTTPS JSON (SPEC §6)
//!                                      rpc.qubic.org  or  devnet (feature `devnet`)
//! ```
//!
//! - [`qubic`]: Qubic keys, identities, SchnorrQ-with-K12 signatures and transactions,
//!   written from the spec in pure Rust.
//! - [`wallet`]: the node's seed (`wallet.seed` or `QUBIX_WALLET_SEED`), never printed.
//! - [`rpc`]: the Live and Query API client with timeouts, bounded retries and typed errors.
//! - [`settle`]: the [`Settlement`] trait and [`QubicSettlement`]: transfers persisted before
//!   broadcast, one in flight per source identity, confirmed by tick with `moneyFlew`, and
//!   re-signed only once the archive proves the old transaction can never execute.
//! - [`book`]: the double-entry [`Ledger`] on sled: accounts per owner and purpose, every
//!   transaction balanced, idempotent by id and atomic; the console's views.
//! - `devnet` (feature `devnet`): a local Qubic RPC that verifies signatures, schedules
//!   transfers by tick and executes them with `moneyFlew` semantics, with fault injection.
//! - [`bench`](mod@bench): measured figures for the ledger and the signature schemes.
//!
//! Money flows: the consumer's node locks escrow in its [`Ledger`], pays each prepaid
//! window through [`Settlement::pay`] and records it once [`Settlement::wait_final`]
//! returns; the provider checks the payment with [`Settlement::verify_incoming`] and
//! records it in its own ledger; signed receipts move prepaid QU to spent / earned on both
//! sides; ending a rental returns unspent escrow and records the unused prepaid part as a
//! refund owed.

pub mod bench;
pub mod book;
#[cfg(feature = "devnet")]
pub mod devnet;
pub mod qubic;
pub mod rpc;
pub mod settle;
pub mod wallet;

pub use book::{Account, Ledger, LedgerConfig, LedgerError};
pub use rpc::{RpcClient, RpcConfig, RpcError};
pub use settle::{
    ChainTransferIn, FinalTransfer, IncomingScan, IncomingTransfer, PaymentPurpose,
    QubicSettlement, Settlement, SettlementConfig, SettlementError, TransferId, TransferState,
    TransferStatus,
};
pub use wallet::{Wallet, WalletError};
