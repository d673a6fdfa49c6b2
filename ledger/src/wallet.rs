//! The node's wallet: the Qubic seed in `<data-dir>/wallet.seed` (mode 0600, created with a
//! fresh random seed on first start) or given by `QUBIX_WALLET_SEED` (the caller passes the
//! variable's value). The seed never leaves this module except as the signing [`KeyPair`];
//! it is never printed, and `Debug` shows only the public identity.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use qubix_protocol::secret_file::{SecretFileError, is_missing, read_secret_file};

use crate::qubic::{Identity, KeyPair, Seed, SeedError};

/// The seed file's name inside the data directory.
pub const SEED_FILE: &str = "wallet.seed";

/// Where the wallet's seed came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletSource {
    /// The `QUBIX_WALLET_SEED` environment variable.
    Environment,
    /// An existing seed file.
    File(PathBuf),
    /// A seed file created now with a fresh random seed: back it up before funding.
    Created(PathBuf),
}

/// Why the wallet could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// Reading or creating the seed file failed.
    #[error("wallet seed file {path}: {source}; check the data directory's permissions")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The seed file is not safe to hold a seed: a symbolic link, another user's, or
    /// readable by others (a world-readable seed is someone else's money).
    #[error("wallet seed file: {0}")]
    Unsafe(#[source] SecretFileError),
    /// The seed is not 55 lowercase letters (the error never echoes the seed).
    #[error("wallet seed from {origin} is invalid: {source}")]
    Seed {
        /// Where it came from.
        origin: String,
        /// What is wrong.
        #[source]
        source: SeedError,
    },
}

/// The node's wallet: a key pair and where its seed came from.
#[derive(Clone)]
pub struct Wallet {
    key_pair: KeyPair,
    source: WalletSource,
}

impl fmt::Debug for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wallet")
            .field("identity", &self.identity().as_str())
            .field("source", &self.source)
            .field("seed", &"<redacted>")
            .finish()
    }
}

impl Wallet {
    /// Loads the wallet: from `env_seed` when given (the value of `QUBIX_WALLET_SEED`),
    /// else from `<data_dir>/wallet.seed`, creating that file with a fresh seed when absent.
    pub fn load(data_dir: &Path, env_seed: Option<String>) -> Result<Wallet, WalletError> {
        if let Some(text) = env_seed.map(Zeroizing::new) {
            let seed = parse(&text, "QUBIX_WALLET_SEED")?;
            return Ok(Wallet::from_seed(&seed, WalletSource::Environment));
        }
        let path = data_dir.join(SEED_FILE);
        match read_secret_file(&path) {
            Ok(bytes) => from_file(&path, bytes),
            Err(e) if is_missing(&e) => create(data_dir, &path),
            Err(e) => Err(WalletError::Unsafe(e)),
        }
    }

    fn from_seed(seed: &Seed, source: WalletSource) -> Wallet {
        Wallet {
            key_pair: KeyPair::from_seed(seed),
            source,
        }
    }

    /// The 60-letter identity to deposit to.
    pub fn identity(&self) -> Identity {
        self.key_pair.identity()
    }

    /// The signing key pair (hand it to `QubicSettlement::start`).
    pub fn key_pair(&self) -> &KeyPair {
        &self.key_pair
    }

    /// Where the seed came from.
    pub fn source(&self) -> &WalletSource {
        &self.source
    }
}

fn parse(text: &str, origin: &str) -> Result<Seed, WalletError> {
    Seed::new(text.trim()).map_err(|source| WalletError::Seed {
        origin: origin.to_owned(),
        source,
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalletError + '_ {
    move |source| WalletError::Io {
        path: path.to_owned(),
        source,
    }
}

fn from_file(path: &Path, bytes: Vec<u8>) -> Result<Wallet, WalletError> {
    let bytes = Zeroizing::new(bytes);
    let text = std::str::from_utf8(&bytes).map_err(|e| WalletError::Seed {
        origin: path.display().to_string(),
        source: SeedError::InvalidCharacter {
            position: e.valid_up_to() + 1,
        },
    })?;
    let seed = parse(text, &path.display().to_string())?;
    Ok(Wallet::from_seed(
        &seed,
        WalletSource::File(path.to_owned()),
    ))
}

/// Writes a fresh seed to a temporary file (0600) and renames it into place, so a crash
/// never leaves a half-written seed behind.
fn create(dir: &Path, path: &Path) -> Result<Wallet, WalletError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let seed = Seed::generate().map_err(|source| WalletError::Seed {
        origin: "the random generator".into(),
        source,
    })?;
    let tmp = dir.join(format!(".{SEED_FILE}.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    file.write_all(seed.expose_secret().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    let wallet = Wallet::from_seed(&seed, WalletSource::Created(path.to_owned()));
    tracing::info!(identity = %wallet.identity(), path = %path.display(), "created a new wallet; back up its seed file");
    Ok(wallet)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_seed_file_others_can_read_or_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let made = Wallet::load(dir.path(), None).unwrap();
        let path = dir.path().join(SEED_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Wallet::load(dir.path(), None).unwrap_err();
        assert!(
            matches!(
                err,
                WalletError::Unsafe(SecretFileError::Permissions { mode: 0o644, .. })
            ),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let other = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&path, other.path().join(SEED_FILE)).unwrap();
        let err = Wallet::load(other.path(), None).unwrap_err();
        assert!(
            matches!(err, WalletError::Unsafe(SecretFileError::Symlink { .. })),
            "{err}"
        );
        assert_eq!(
            Wallet::load(dir.path(), None).unwrap().identity(),
            made.identity(),
            "the fixed file loads again"
        );
    }

    #[test]
    fn created_once_with_mode_0600_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Wallet::load(dir.path(), None).unwrap();
        assert!(matches!(first.source(), WalletSource::Created(_)));
        let path = dir.path().join(SEED_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = Wallet::load(dir.path(), None).unwrap();
        assert_eq!(first.identity(), again.identity());
        assert!(matches!(again.source(), WalletSource::File(_)));
    }

    #[test]
    fn the_environment_wins_and_errors_never_echo_the_seed() {
        let dir = tempfile::tempdir().unwrap();
        let env = Wallet::load(dir.path(), Some(format!("{}\n", "a".repeat(55)))).unwrap();
        assert_eq!(
            env.identity().as_str(),
            "BZBQFLLBNCXEMGLOBHUVFTLUPLVCPQUASSILFABOFFBCADQSSUPNWLZBQEXK"
        );
        assert!(!dir.path().join(SEED_FILE).exists());
        let secret = format!("{}Q", "x".repeat(54));
        let err = Wallet::load(dir.path(), Some(secret))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("QUBIX_WALLET_SEED") && !err.contains("xxx"),
            "{err}"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::load(dir.path(), Some("q".repeat(55))).unwrap();
        let shown = format!("{wallet:?}");
        assert!(
            shown.contains("<redacted>") && !shown.contains("qqqq"),
            "{shown}"
        );
        assert!(shown.contains(wallet.identity().as_str()));
    }

    #[test]
    fn a_bad_seed_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SEED_FILE);
        fs::write(&path, "short").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = Wallet::load(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains(SEED_FILE) && err.contains("55"), "{err}");
    }
}
