//! Qubic transactions (SPEC §4): an 80-byte header, up to 1024 input bytes and a 64-byte
//! SchnorrQ signature over `K12(header || input, 32)`.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 32 | source public key |
//! | 32 | 32 | destination public key |
//! | 64 | 8 | amount, i64 LE, `0..=10^15` |
//! | 72 | 4 | target tick, u32 LE |
//! | 76 | 2 | input type, u16 LE (0 = plain transfer) |
//! | 78 | 2 | input size, u16 LE, `<= 1024` |
//! | 80 | n | input |
//! | 80 + n | 64 | signature |
//!
//! A [`SignedTransaction`] only exists with a valid signature: it is made by
//! [`UnsignedTransaction::sign`] or by [`SignedTransaction::parse`], which verifies.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::identity::TxId;
use super::k12::k12_32;
use super::keys::{PublicKey, Signature};
use super::schnorrq::{VerifyError, verify};
use super::wallet::KeyPair;

/// The largest amount a transaction may carry, in QU (10^15).
pub const MAX_AMOUNT: u64 = 1_000_000_000_000_000;
/// The largest input payload the network accepts, in bytes.
pub const MAX_INPUT_SIZE: usize = 1024;
/// Size of the fixed header.
pub const HEADER_SIZE: usize = 80;
/// Size of the trailing signature.
pub const SIGNATURE_SIZE: usize = 64;
/// Size of a plain transfer (no input).
pub const TRANSFER_SIZE: usize = HEADER_SIZE + SIGNATURE_SIZE;
/// Size of the largest valid transaction.
pub const MAX_TX_SIZE: usize = TRANSFER_SIZE + MAX_INPUT_SIZE;
/// Length of the base64 form of the largest valid transaction.
const MAX_BASE64_LEN: usize = MAX_TX_SIZE.div_ceil(3) * 4;

/// Why a transaction could not be built, signed or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// The amount is above [`MAX_AMOUNT`].
    #[error("amount {amount} QU exceeds the network maximum of 10^15 QU per transaction; split it")]
    AmountTooLarge {
        /// The requested amount.
        amount: u64,
    },
    /// The input payload is above [`MAX_INPUT_SIZE`].
    #[error("transaction input is {size} bytes; the network accepts at most 1024")]
    InputTooLarge {
        /// The payload size.
        size: usize,
    },
    /// The key pair does not belong to the transaction's source.
    #[error(
        "the key pair signs for {} but the transaction's source is {}; sign with the source's seed",
        .signer.identity(), .tx_source.identity()
    )]
    WrongSigner {
        /// The transaction's source key.
        tx_source: PublicKey,
        /// The key of the key pair that tried to sign.
        signer: PublicKey,
    },
    /// Fewer bytes than the smallest transaction.
    #[error("a transaction is at least 144 bytes (80-byte header + 64-byte signature); got {got}")]
    TooShort {
        /// The number of bytes received.
        got: usize,
    },
    /// The length does not match the input size the header declares.
    #[error(
        "the header declares {input_size} input bytes, so the transaction must be {expected} bytes; got {got}"
    )]
    LengthMismatch {
        /// The header's input size.
        input_size: usize,
        /// `80 + input_size + 64`.
        expected: usize,
        /// The number of bytes received.
        got: usize,
    },
    /// The encoded amount is negative or above [`MAX_AMOUNT`].
    #[error("the encoded amount {raw} is outside 0..=10^15 QU")]
    AmountOutOfRange {
        /// The amount field as a signed integer.
        raw: i64,
    },
    /// The signature does not verify for the source key.
    #[error("transaction signature is invalid: {0}")]
    InvalidSignature(#[source] VerifyError),
    /// Base64 text longer than any valid transaction.
    #[error("base64 transaction is {got} characters; no valid transaction is longer than 1560")]
    Base64TooLong {
        /// The text length.
        got: usize,
    },
    /// Text that is not standard padded base64.
    #[error("transaction is not valid standard base64: {0}")]
    Base64(#[from] base64::DecodeError),
}

/// A transaction body before signing. Fields are validated on construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedTransaction {
    source: PublicKey,
    destination: PublicKey,
    amount: u64,
    tick: u32,
    input_type: u16,
    input: Vec<u8>,
}

impl UnsignedTransaction {
    /// A plain QU transfer (input type 0, no input).
    pub fn transfer(
        source: PublicKey,
        destination: PublicKey,
        amount: u64,
        tick: u32,
    ) -> Result<UnsignedTransaction, TxError> {
        UnsignedTransaction::with_input(source, destination, amount, tick, 0, Vec::new())
    }

    /// A transaction with an input payload, e.g. a smart-contract procedure call where
    /// `input_type` is the procedure index.
    pub fn with_input(
        source: PublicKey,
        destination: PublicKey,
        amount: u64,
        tick: u32,
        input_type: u16,
        input: Vec<u8>,
    ) -> Result<UnsignedTransaction, TxError> {
        if amount > MAX_AMOUNT {
            return Err(TxError::AmountTooLarge { amount });
        }
        if input.len() > MAX_INPUT_SIZE {
            return Err(TxError::InputTooLarge { size: input.len() });
        }
        Ok(UnsignedTransaction {
            source,
            destination,
            amount,
            tick,
            input_type,
            input,
        })
    }

    /// The paying identity's key.
    pub fn source(&self) -> PublicKey {
        self.source
    }

    /// The receiving key (or contract address).
    pub fn destination(&self) -> PublicKey {
        self.destination
    }

    /// The amount in QU (at most [`MAX_AMOUNT`]).
    pub fn amount(&self) -> u64 {
        self.amount
    }

    /// The tick the transaction targets.
    pub fn tick(&self) -> u32 {
        self.tick
    }

    /// The input type (0 for a plain transfer).
    pub fn input_type(&self) -> u16 {
        self.input_type
    }

    /// The input payload.
    pub fn input(&self) -> &[u8] {
        &self.input
    }

    /// The signed bytes: header and input, without the signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_SIZE + self.input.len() + SIGNATURE_SIZE);
        out.extend_from_slice(self.source.as_bytes());
        out.extend_from_slice(self.destination.as_bytes());
        // amount <= MAX_AMOUNT < i64::MAX, so its i64 and u64 encodings are identical.
        out.extend_from_slice(&self.amount.to_le_bytes());
        out.extend_from_slice(&self.tick.to_le_bytes());
        out.extend_from_slice(&self.input_type.to_le_bytes());
        out.extend_from_slice(&(self.input.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.input);
        out
    }

    /// The message that gets signed: `K12(to_bytes(), 32)`.
    pub fn digest(&self) -> [u8; 32] {
        k12_32(&self.to_bytes())
    }

    /// Signs with the source's key pair.
    pub fn sign(self, key_pair: &KeyPair) -> Result<SignedTransaction, TxError> {
        if key_pair.public_key() != self.source {
            return Err(TxError::WrongSigner {
                tx_source: self.source,
                signer: key_pair.public_key(),
            });
        }
        let signature = key_pair.sign_digest(&self.digest());
        Ok(SignedTransaction {
            body: self,
            signature,
        })
    }
}

/// A transaction with a signature that verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTransaction {
    body: UnsignedTransaction,
    signature: Signature,
}

impl SignedTransaction {
    /// Parses wire bytes strictly (exact length, amount range, input size) and verifies
    /// the signature before returning.
    pub fn parse(bytes: &[u8]) -> Result<SignedTransaction, TxError> {
        let (body, signature) = split_wire(bytes)?;
        verify(&body.source, &body.digest(), &signature).map_err(TxError::InvalidSignature)?;
        Ok(SignedTransaction { body, signature })
    }

    /// Parses the standard-base64 form (as the RPC's `encodedTransaction`) and verifies it.
    pub fn from_base64(text: &str) -> Result<SignedTransaction, TxError> {
        if text.len() > MAX_BASE64_LEN {
            return Err(TxError::Base64TooLong { got: text.len() });
        }
        SignedTransaction::parse(&STANDARD.decode(text)?)
    }

    /// The body that was signed.
    pub fn body(&self) -> &UnsignedTransaction {
        &self.body
    }

    /// The signature.
    pub fn signature(&self) -> Signature {
        self.signature
    }

    /// The full wire bytes: body then signature (144 bytes for a plain transfer).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.body.to_bytes();
        out.extend_from_slice(self.signature.as_bytes());
        out
    }

    /// `K12(to_bytes(), 32)`: the hash tick data lists and the id encodes.
    pub fn hash(&self) -> [u8; 32] {
        k12_32(&self.to_bytes())
    }

    /// The transaction id: [`hash`](Self::hash) as 60 lowercase letters.
    pub fn id(&self) -> TxId {
        TxId::from_hash(self.hash())
    }

    /// Standard padded base64 of the wire bytes, for `POST /broadcast-transaction`.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.to_bytes())
    }
}

/// Builds and signs a plain transfer from `key_pair` to `destination`.
pub fn build_transfer(
    key_pair: &KeyPair,
    destination: PublicKey,
    amount: u64,
    tick: u32,
) -> Result<SignedTransaction, TxError> {
    UnsignedTransaction::transfer(key_pair.public_key(), destination, amount, tick)?.sign(key_pair)
}

/// Splits wire bytes into a validated body and the signature, without verifying it.
fn split_wire(bytes: &[u8]) -> Result<(UnsignedTransaction, Signature), TxError> {
    if bytes.len() < TRANSFER_SIZE {
        return Err(TxError::TooShort { got: bytes.len() });
    }
    let input_size = usize::from(u16::from_le_bytes([bytes[78], bytes[79]]));
    if input_size > MAX_INPUT_SIZE {
        return Err(TxError::InputTooLarge { size: input_size });
    }
    let expected = TRANSFER_SIZE + input_size;
    if bytes.len() != expected {
        return Err(TxError::LengthMismatch {
            input_size,
            expected,
            got: bytes.len(),
        });
    }
    let raw = i64::from_le_bytes(array(&bytes[64..72]));
    let amount = u64::try_from(raw)
        .ok()
        .filter(|&a| a <= MAX_AMOUNT)
        .ok_or(TxError::AmountOutOfRange { raw })?;
    let body = UnsignedTransaction {
        source: PublicKey(array(&bytes[..32])),
        destination: PublicKey(array(&bytes[32..64])),
        amount,
        tick: u32::from_le_bytes(array(&bytes[72..76])),
        input_type: u16::from_le_bytes(array(&bytes[76..78])),
        input: bytes[HEADER_SIZE..HEADER_SIZE + input_size].to_vec(),
    };
    let signature = Signature(array(&bytes[HEADER_SIZE + input_size..]));
    Ok((body, signature))
}

/// Copies a slice whose length the caller has already checked into an array.
fn array<const N: usize>(slice: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&slice[..N]);
    out
}
