//! Topic and protocol ids. Each carries the network name, so testnet traffic can never reach
//! mainnet nodes; a new message shape means a new version suffix. Version 2 carries offers
//! and requests with isolation, paying identity and failover fields, signatures bound to
//! the network, and payments bound to their window.

use crate::validate::{ValidationError, check};

/// A validated network name (`mainnet`, `testnet`, or a custom name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Network(String);

impl Network {
    /// Validates a network name: 1–32 characters of `a-z 0-9 -`.
    pub fn new(name: &str) -> Result<Self, ValidationError> {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        check(
            ok,
            "network",
            "must be 1-32 characters of a-z, 0-9 and '-', e.g. testnet",
        )?;
        Ok(Self(name.to_owned()))
    }

    /// The network name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// Whether this is the production network, where simulation is refused.
    pub fn is_mainnet(&self) -> bool {
        self.0 == "mainnet"
    }

    /// The gossipsub topic offers travel on.
    pub fn offers_topic(&self) -> String {
        format!("/qubix/{}/offers/2", self.0)
    }

    /// The negotiation request-response protocol.
    pub fn negotiate_protocol(&self) -> String {
        format!("/qubix/{}/negotiate/2", self.0)
    }

    /// The job control request-response protocol.
    pub fn job_protocol(&self) -> String {
        format!("/qubix/{}/job/2", self.0)
    }

    /// The offer book sync request-response protocol.
    pub fn offer_sync_protocol(&self) -> String {
        format!("/qubix/{}/offer-sync/2", self.0)
    }

    /// The kademlia protocol, so DHTs of different networks never merge.
    pub fn kad_protocol(&self) -> String {
        format!("/qubix/{}/kad/1", self.0)
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_the_network() {
        let n = Network::new("testnet").unwrap();
        assert_eq!(n.offers_topic(), "/qubix/testnet/offers/2");
        assert_eq!(n.negotiate_protocol(), "/qubix/testnet/negotiate/2");
        assert_eq!(n.job_protocol(), "/qubix/testnet/job/2");
        assert_eq!(n.offer_sync_protocol(), "/qubix/testnet/offer-sync/2");
        assert!(!n.is_mainnet());
        assert!(Network::new("mainnet").unwrap().is_mainnet());
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "Main", "a/b", "x".repeat(33).as_str(), "têst"] {
            assert!(Network::new(bad).is_err(), "{bad}");
        }
    }
}
