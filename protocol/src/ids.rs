//! Identifiers: node ids (ed25519 public keys, which are also libp2p PeerIds), offer,
//! agreement and request ids.
//!
//! Every id serializes as raw bytes in the binary codec and as a string in JSON, so the wire
//! stays compact and the API stays readable.

use std::fmt;
use std::str::FromStr;

use libp2p_identity::PeerId;
use rand::RngCore;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string or byte slice is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The value is not of the expected length or alphabet.
    #[error("{kind} must be {expected}; got {got:?}")]
    Malformed {
        /// Which kind of id was being parsed.
        kind: &'static str,
        /// What a valid value looks like.
        expected: &'static str,
        /// The offending input (ids are public, so echoing them is safe).
        got: String,
    },
    /// The bytes are not a valid ed25519 public key.
    #[error("not a valid ed25519 public key")]
    InvalidKey,
    /// The PeerId does not embed an ed25519 key (Qubix nodes always use ed25519).
    #[error("peer id {0} does not embed an ed25519 public key; Qubix node ids are ed25519 keys")]
    NotEd25519(String),
}

/// A node's identity: its ed25519 public key. Its libp2p [`PeerId`] is derived from it, and
/// that PeerId (base58) is how the node is shown everywhere.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId([u8; 32]);

impl NodeId {
    /// Wraps a public key after checking that it decodes as an ed25519 point.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, IdError> {
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| IdError::InvalidKey)?;
        Ok(Self(bytes))
    }

    /// The node id of a verifying key.
    pub fn from_verifying_key(key: &ed25519_dalek::VerifyingKey) -> Self {
        Self(key.to_bytes())
    }

    /// The raw public key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The ed25519 verifying key.
    pub fn verifying_key(&self) -> Result<ed25519_dalek::VerifyingKey, IdError> {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0).map_err(|_| IdError::InvalidKey)
    }

    /// The libp2p PeerId of this node.
    pub fn to_peer_id(&self) -> PeerId {
        #[allow(clippy::expect_used)]
        let key = libp2p_identity::ed25519::PublicKey::try_from_bytes(&self.0)
            .expect("a NodeId only ever holds a key that decoded as ed25519");
        libp2p_identity::PublicKey::from(key).to_peer_id()
    }

    /// The node id embedded in a PeerId (ed25519 PeerIds inline the public key).
    pub fn from_peer_id(peer: &PeerId) -> Result<Self, IdError> {
        let not_ed = || IdError::NotEd25519(peer.to_base58());
        let mh = peer.as_ref();
        if mh.code() != 0x00 {
            return Err(not_ed());
        }
        let public =
            libp2p_identity::PublicKey::try_decode_protobuf(mh.digest()).map_err(|_| not_ed())?;
        let ed = public.try_into_ed25519().map_err(|_| not_ed())?;
        Self::from_bytes(ed.to_bytes())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_peer_id())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.to_peer_id())
    }
}

impl FromStr for NodeId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let peer = PeerId::from_str(s).map_err(|_| IdError::Malformed {
            kind: "node id",
            expected: "a base58 libp2p peer id such as 12D3KooW…",
            got: s.chars().take(80).collect(),
        })?;
        Self::from_peer_id(&peer)
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(D::Error::custom)
        } else {
            let bytes = <[u8; 32]>::deserialize(d)?;
            Self::from_bytes(bytes).map_err(D::Error::custom)
        }
    }
}

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 16]);

        impl $name {
            /// A fresh random id.
            pub fn random() -> Self {
                let mut bytes = [0u8; 16];
                rand::rng().fill_bytes(&mut bytes);
                Self(bytes)
            }

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), hex::encode(self.0))
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut bytes = [0u8; 16];
                hex::decode_to_slice(s, &mut bytes).map_err(|_| IdError::Malformed {
                    kind: $kind,
                    expected: "32 hexadecimal characters",
                    got: s.chars().take(80).collect(),
                })?;
                Ok(Self(bytes))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    s.parse().map_err(D::Error::custom)
                } else {
                    Ok(Self(<[u8; 16]>::deserialize(d)?))
                }
            }
        }
    };
}

random_id!(
    /// Identifies one offer of one provider; a newer sequence number under the same id
    /// replaces the older offer.
    OfferId,
    "offer id"
);
random_id!(
    /// Identifies an agreement, and so the job and instance that run under it.
    AgreementId,
    "agreement id"
);
random_id!(
    /// A single-use value in a request; a provider refuses a nonce it has seen.
    Nonce,
    "nonce"
);

/// An offer as users name it: `<offer id>@<provider>`. Providers choose their offer ids,
/// so only the pair names one offer, and a stranger who publishes another provider's id
/// shadows nothing. Where the provider is left out (`<offer id>` alone), the id names the
/// offer only while a single provider publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OfferRef {
    /// The provider's id of the offer.
    pub offer_id: OfferId,
    /// The provider, when named.
    pub provider: Option<NodeId>,
}

impl OfferRef {
    /// The full name of `provider`'s offer `offer_id`.
    pub fn new(provider: NodeId, offer_id: OfferId) -> Self {
        Self {
            offer_id,
            provider: Some(provider),
        }
    }
}

impl fmt::Display for OfferRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.provider {
            Some(p) => write!(f, "{}@{p}", self.offer_id),
            None => write!(f, "{}", self.offer_id),
        }
    }
}

impl FromStr for OfferRef {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, provider) = match s.split_once('@') {
            Some((id, provider)) => (id, Some(provider.parse::<NodeId>()?)),
            None => (s, None),
        };
        Ok(Self {
            offer_id: id.parse()?,
            provider,
        })
    }
}

impl Serialize for OfferRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OfferRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_refs_name_the_provider_and_parse_back() {
        let full = OfferRef::new(node(), OfferId::from_bytes([0xab; 16]));
        let text = full.to_string();
        assert_eq!(text, format!("{}@{}", "ab".repeat(16), node()));
        assert_eq!(text.parse::<OfferRef>().unwrap(), full);
        let bare: OfferRef = "ab".repeat(16).parse().unwrap();
        assert_eq!((bare.offer_id, bare.provider), (full.offer_id, None));
        let json = serde_json::to_string(&full).unwrap();
        assert_eq!(serde_json::from_str::<OfferRef>(&json).unwrap(), full);
        assert!(
            format!("{}@nobody", "ab".repeat(16))
                .parse::<OfferRef>()
                .is_err()
        );
        assert!("zz@".parse::<OfferRef>().is_err());
    }

    fn node() -> NodeId {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        NodeId::from_verifying_key(&key.verifying_key())
    }

    #[test]
    fn node_id_round_trips_through_peer_id_and_string() {
        let id = node();
        let peer = id.to_peer_id();
        assert_eq!(NodeId::from_peer_id(&peer).unwrap(), id);
        assert_eq!(id.to_string().parse::<NodeId>().unwrap(), id);
        assert!(id.to_string().starts_with("12D3KooW"));
    }

    #[test]
    fn node_id_matches_libp2p_keypair_peer_id() {
        let kp = libp2p_identity::Keypair::ed25519_from_bytes([9u8; 32]).unwrap();
        let ed = kp.public().try_into_ed25519().unwrap();
        let id = NodeId::from_bytes(ed.to_bytes()).unwrap();
        assert_eq!(id.to_peer_id(), kp.public().to_peer_id());
    }

    #[test]
    fn non_ed25519_peer_id_is_refused() {
        // A sha2-256 multihash peer id, as RSA and large keys use.
        let mut bytes = vec![0x12, 0x20];
        bytes.extend_from_slice(&[5u8; 32]);
        let peer = PeerId::from_bytes(&bytes).unwrap();
        let err = NodeId::from_peer_id(&peer).unwrap_err();
        assert!(matches!(err, IdError::NotEd25519(_)), "{err}");
    }

    #[test]
    fn bad_strings_are_refused_with_the_expected_shape() {
        let err = "nope".parse::<NodeId>().unwrap_err();
        assert!(err.to_string().contains("base58"), "{err}");
        let err = "abc".parse::<OfferId>().unwrap_err();
        assert!(err.to_string().contains("32 hexadecimal"), "{err}");
    }

    #[test]
    fn ids_are_strings_in_json() {
        let id = OfferId::from_bytes([0xab; 16]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(16)));
        assert_eq!(serde_json::from_str::<OfferId>(&json).unwrap(), id);
        let n = node();
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(serde_json::from_str::<NodeId>(&json).unwrap(), n);
    }
}
