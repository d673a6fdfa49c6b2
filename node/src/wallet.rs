//! The node's wallet identity: the Qubic seed in `<data-dir>/wallet.seed` (0600, created on
//! first start) or `QUBIX_WALLET_SEED`. Only the public identity leaves this module; the
//! seed is never printed.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use qubix_ledger::qubic::{KeyPair, Seed};

/// Why the wallet could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// Reading or creating the seed file failed.
    #[error("wallet seed file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The seed is not 55 lowercase letters.
    #[error("wallet seed ({origin}): {source}")]
    Seed {
        /// Where it came from.
        origin: &'static str,
        /// What is wrong.
        source: qubix_ledger::qubic::SeedError,
    },
}

/// Loads (or creates) the wallet and returns its 60-letter identity.
pub fn load_identity(dir: &Path, env_seed: Option<String>) -> Result<String, WalletError> {
    Ok(load(dir, env_seed)?.identity().to_string())
}

/// Loads (or creates) the wallet's key pair.
pub fn load(dir: &Path, env_seed: Option<String>) -> Result<KeyPair, WalletError> {
    if let Some(text) = env_seed {
        let seed = Seed::new(text.trim()).map_err(|source| WalletError::Seed {
            origin: "QUBIX_WALLET_SEED",
            source,
        })?;
        return Ok(KeyPair::from_seed(&seed));
    }
    let path = dir.join("wallet.seed");
    let io = |source| WalletError::Io {
        path: path.display().to_string(),
        source,
    };
    if path.exists() {
        let text = zeroize::Zeroizing::new(fs::read_to_string(&path).map_err(io)?);
        let seed = Seed::new(text.trim()).map_err(|source| WalletError::Seed {
            origin: "wallet.seed",
            source,
        })?;
        return Ok(KeyPair::from_seed(&seed));
    }
    fs::create_dir_all(dir).map_err(io)?;
    let (seed, pair) = KeyPair::generate().map_err(|source| WalletError::Seed {
        origin: "generated",
        source,
    })?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    file.write_all(seed.expose_secret().as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_stable_and_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_identity(dir.path(), None).unwrap();
        assert_eq!(a, load_identity(dir.path(), None).unwrap());
        assert_eq!(a.len(), 60);
        let env = load_identity(dir.path(), Some("a".repeat(55))).unwrap();
        assert_eq!(
            env,
            "BZBQFLLBNCXEMGLOBHUVFTLUPLVCPQUASSILFABOFFBCADQSSUPNWLZBQEXK"
        );
        let err = load_identity(dir.path(), Some("short".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("55"), "{err}");
    }
}
