//! Signed envelopes.
//!
//! An [`Envelope`] is the exact bytes a node signed: `signer (32) ‖ signature (64) ‖ payload`.
//! The signature covers `b"qubix/v2/" ‖ network ‖ b"/" ‖ T::TAG ‖ payload`, so a signature
//! for one message type can never be replayed as another, nor a message signed on one
//! network (a testnet) on another (mainnet). Network names are `a-z 0-9 -` and tags contain
//! a single `/` at their end, so no domain is a prefix of another. Opening an envelope
//! checks, in order: size, the signature (ed25519 `verify_strict`) under the network's
//! domain, then decodes the payload with its byte limit, then checks that the signer is the
//! author the payload names. Nothing is trusted before that.
//! A verified message is a [`Signed<T>`]; the only ways to get one are [`Signed::sign`] and
//! [`Envelope::open`].

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{self, CodecError, WireMessage};
use crate::ids::NodeId;
use crate::topics::Network;

/// The domain prefix of every Qubix signature; the network name and the type tag follow.
pub const DOMAIN: &[u8] = b"qubix/v2/";
/// Bytes before the payload: signer key and signature.
pub const HEADER_LEN: usize = 32 + 64;

/// A message type whose payload names its author, who must be the signer.
pub trait Authored: WireMessage {
    /// The node that must have signed this payload.
    fn author(&self) -> NodeId;
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Fewer bytes than the header.
    #[error("signed message is truncated ({len} bytes; the header alone is {HEADER_LEN})")]
    Truncated {
        /// The length received.
        len: usize,
    },
    /// More bytes than the type allows.
    #[error("signed {kind} is {len} bytes; at most {max} are allowed")]
    TooLarge {
        /// The message type.
        kind: &'static str,
        /// The length received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The signer key is not a valid ed25519 key.
    #[error("signer is not a valid ed25519 public key")]
    BadSignerKey,
    /// The signature does not verify.
    #[error("signature does not verify for this {kind} and signer")]
    BadSignature {
        /// The message type.
        kind: &'static str,
    },
    /// The payload decoded but names another author than the signer.
    #[error("{kind} names {author} as its author but was signed by {signer}")]
    WrongSigner {
        /// The message type.
        kind: &'static str,
        /// The author named in the payload.
        author: NodeId,
        /// The key that signed it.
        signer: NodeId,
    },
    /// The signer is not the peer the message came from.
    #[error("{kind} was signed by {signer} but arrived from {peer}")]
    NotFromPeer {
        /// The message type.
        kind: &'static str,
        /// The key that signed it.
        signer: NodeId,
        /// The peer that delivered it.
        peer: NodeId,
    },
    /// The payload bytes are not a valid encoding.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Signed bytes, not yet verified. Safe to store and forward as evidence; open it to use it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Envelope {
    bytes: Vec<u8>,
}

impl Envelope {
    /// Wraps received bytes after a size check; the signature is checked by [`Envelope::open`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, EnvelopeError> {
        if bytes.len() < HEADER_LEN {
            return Err(EnvelopeError::Truncated { len: bytes.len() });
        }
        if bytes.len() > HEADER_LEN + codec::MAX_DECODE_BYTES {
            return Err(EnvelopeError::TooLarge {
                kind: "envelope",
                len: bytes.len(),
                max: HEADER_LEN + codec::MAX_DECODE_BYTES,
            });
        }
        Ok(Self { bytes })
    }

    /// The exact bytes, as sent on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The claimed signer (unverified until [`Envelope::open`] succeeds).
    pub fn claimed_signer(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.bytes[..32]);
        key
    }

    fn signature(&self) -> Signature {
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&self.bytes[32..HEADER_LEN]);
        Signature::from_bytes(&sig)
    }

    fn payload(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// Verifies the signature under `network`'s domain, decodes the payload and checks its
    /// author.
    pub fn open<T: Authored>(&self, network: &Network) -> Result<Signed<T>, EnvelopeError> {
        let max = HEADER_LEN + T::MAX_SIZE;
        if self.bytes.len() > max {
            return Err(EnvelopeError::TooLarge {
                kind: T::TAG,
                len: self.bytes.len(),
                max,
            });
        }
        let signer =
            NodeId::from_bytes(self.claimed_signer()).map_err(|_| EnvelopeError::BadSignerKey)?;
        let key = signer
            .verifying_key()
            .map_err(|_| EnvelopeError::BadSignerKey)?;
        key.verify_strict(
            &signing_bytes::<T>(network, self.payload()),
            &self.signature(),
        )
        .map_err(|_| EnvelopeError::BadSignature { kind: T::TAG })?;
        let payload: T = codec::decode(self.payload())?;
        let author = payload.author();
        if author != signer {
            return Err(EnvelopeError::WrongSigner {
                kind: T::TAG,
                author,
                signer,
            });
        }
        Ok(Signed {
            payload,
            signer,
            envelope: self.clone(),
        })
    }

    /// [`Envelope::open`], and the signer must be `peer`, the node that delivered it.
    pub fn open_from<T: Authored>(
        &self,
        network: &Network,
        peer: &NodeId,
    ) -> Result<Signed<T>, EnvelopeError> {
        let signed = self.open::<T>(network)?;
        if signed.signer != *peer {
            return Err(EnvelopeError::NotFromPeer {
                kind: T::TAG,
                signer: signed.signer,
                peer: *peer,
            });
        }
        Ok(signed)
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Envelope({} bytes)", self.bytes.len())
    }
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(&self.bytes))
        } else {
            s.serialize_bytes(&self.bytes)
        }
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = if d.is_human_readable() {
            let s = String::deserialize(d)?;
            hex::decode(s).map_err(D::Error::custom)?
        } else {
            serde_bytes_vec(d)?
        };
        Envelope::from_bytes(bytes).map_err(D::Error::custom)
    }
}

fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
    d.deserialize_byte_buf(V)
}

/// The bytes a signature for `T` on `network` covers.
pub fn signing_bytes<T: WireMessage>(network: &Network, payload: &[u8]) -> Vec<u8> {
    let name = network.name().as_bytes();
    let mut msg = Vec::with_capacity(DOMAIN.len() + name.len() + 1 + T::TAG.len() + payload.len());
    msg.extend_from_slice(DOMAIN);
    msg.extend_from_slice(name);
    msg.push(b'/');
    msg.extend_from_slice(T::TAG.as_bytes());
    msg.extend_from_slice(payload);
    msg
}

/// A verified message: its payload, its signer, and the exact envelope it came in.
#[derive(Clone)]
pub struct Signed<T> {
    payload: T,
    signer: NodeId,
    envelope: Envelope,
}

impl<T: Authored> Signed<T> {
    /// Encodes and signs `payload` for `network`. The key must be the payload's author.
    pub fn sign(payload: T, key: &SigningKey, network: &Network) -> Result<Self, SignError> {
        let signer = NodeId::from_verifying_key(&key.verifying_key());
        if payload.author() != signer {
            return Err(SignError::NotAuthor {
                kind: T::TAG,
                author: payload.author(),
                signer,
            });
        }
        let body = codec::encode(&payload)?;
        let signature = key.sign(&signing_bytes::<T>(network, &body));
        let mut bytes = Vec::with_capacity(HEADER_LEN + body.len());
        bytes.extend_from_slice(signer.as_bytes());
        bytes.extend_from_slice(&signature.to_bytes());
        bytes.extend_from_slice(&body);
        Ok(Self {
            payload,
            signer,
            envelope: Envelope { bytes },
        })
    }

    /// Opens received bytes (size, signature on `network`, decode, author).
    pub fn open(bytes: Vec<u8>, network: &Network) -> Result<Self, EnvelopeError> {
        Envelope::from_bytes(bytes)?.open(network)
    }
}

impl<T> Signed<T> {
    /// The verified payload.
    pub fn payload(&self) -> &T {
        &self.payload
    }

    /// Who signed it.
    pub fn signer(&self) -> NodeId {
        self.signer
    }

    /// The exact signed bytes, for forwarding or keeping as evidence.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The exact signed bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.envelope.bytes.clone()
    }

    /// The payload, dropping the signature.
    pub fn into_payload(self) -> T {
        self.payload
    }
}

impl<T: fmt::Debug> fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("signer", &self.signer)
            .field("payload", &self.payload)
            .finish()
    }
}

/// Why a message could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The signing key is not the payload's author.
    #[error("cannot sign {kind} authored by {author} with the key of {signer}")]
    NotAuthor {
        /// The message type.
        kind: &'static str,
        /// The author the payload names.
        author: NodeId,
        /// The key offered for signing.
        signer: NodeId,
    },
    /// The payload could not be encoded within its limit.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Signs exact bytes under `T`'s domain on `network` (for co-signatures over bytes someone
/// else encoded).
pub fn sign_bytes<T: WireMessage>(key: &SigningKey, network: &Network, payload: &[u8]) -> [u8; 64] {
    key.sign(&signing_bytes::<T>(network, payload)).to_bytes()
}

/// Verifies a signature made by [`sign_bytes`].
pub fn verify_bytes<T: WireMessage>(
    signer: &NodeId,
    network: &Network,
    payload: &[u8],
    signature: &[u8; 64],
) -> bool {
    let Ok(key) = signer.verifying_key() else {
        return false;
    };
    key.verify_strict(
        &signing_bytes::<T>(network, payload),
        &Signature::from_bytes(signature),
    )
    .is_ok()
}
