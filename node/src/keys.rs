//! The node's identity: an ed25519 key in `<data-dir>/node.key` (mode 0600), created on first
//! start. The same key signs Qubix messages and is the libp2p identity, so the PeerId is the
//! node id everywhere.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use libp2p::identity::Keypair;
use qubix_protocol::NodeId;
use qubix_protocol::secret_file::{SecretFileError, is_missing, read_secret_file};
use rand::RngCore;
use zeroize::Zeroizing;

/// Why the key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("{path}: {source}; check that the data directory is writable by this user")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a key.
    #[error(
        "{path} is not a Qubix node key (expected 32 bytes); move it away to create a new identity"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
    },
    /// The file is not safe to hold a key: a symbolic link, another user's, or readable by
    /// others.
    #[error("node key: {0}")]
    Unsafe(#[source] SecretFileError),
}

/// The node's keys.
#[derive(Clone)]
pub struct NodeKey {
    signing: SigningKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeKey({})", self.node_id())
    }
}

impl NodeKey {
    /// Loads `<dir>/node.key`, creating it (0600) on first start.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join("node.key");
        let io = |source| KeyError::Io {
            path: path.clone(),
            source,
        };
        match read_secret_file(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let secret: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| KeyError::Corrupt { path: path.clone() })?;
                return Ok(Self::from_secret(secret));
            }
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(KeyError::Unsafe(e)),
        }
        fs::create_dir_all(dir).map_err(io)?;
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(secret.as_mut());
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        file.write_all(secret.as_ref()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Self::from_secret(*secret))
    }

    /// A key from 32 secret bytes (tests, benchmarks).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&secret),
        }
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The node id.
    pub fn node_id(&self) -> NodeId {
        NodeId::from_verifying_key(&self.signing.verifying_key())
    }

    /// The libp2p keypair of the same key.
    pub fn libp2p_keypair(&self) -> Keypair {
        let mut secret = Zeroizing::new(self.signing.to_bytes());
        #[allow(clippy::expect_used)]
        Keypair::ed25519_from_bytes(secret.as_mut())
            .expect("32 bytes are always a valid ed25519 secret")
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn created_once_with_0600_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = NodeKey::load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join("node.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let b = NodeKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.node_id(), b.node_id());
        assert_eq!(
            a.libp2p_keypair().public().to_peer_id(),
            a.node_id().to_peer_id()
        );
    }

    #[test]
    fn readable_or_corrupt_keys_are_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        NodeKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join("node.key");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = NodeKey::load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        fs::write(&path, b"short").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            NodeKey::load_or_create(dir.path()),
            Err(KeyError::Corrupt { .. })
        ));
    }
}
