//! Secrets on disk (the node key, the wallet seed, the API token): read only from a regular
//! file that is not itself a symbolic link (the directories above it are the user's to
//! protect, as with ssh), is owned by the user the process runs as, and that no
//! other user may read or write (mode 0600 or narrower), as ssh treats private keys. The
//! checks are made on the opened file, so the file cannot be swapped between check and read.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest secret file read (a secret is a few dozen bytes; anything larger is not one).
pub const MAX_SECRET_FILE: u64 = 4096;

/// Why a secret file was not read. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFileError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The path is a symbolic link.
    #[error(
        "{path} is a symbolic link; secrets are read only from the file itself: put the file there"
    )]
    Symlink {
        /// The file.
        path: PathBuf,
    },
    /// The path is not a regular file.
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// Another user owns the file.
    #[error(
        "{path} belongs to user {owner}, not to the user this runs as ({us}); run this as its owner (a client may pass the token in QUBIX_TOKEN instead)"
    )]
    Owner {
        /// The file.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// Our effective uid.
        us: u32,
    },
    /// Other users may read or write the file.
    #[error(
        "{path} is readable or writable by other users (mode {mode:04o}); run `chmod 600 {path}` and start again"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is too large to be a secret.
    #[error("{path} is {size} bytes, too large for a secret (at most {MAX_SECRET_FILE})")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
}

/// Reads a secret file after the checks above. `Err(Io)` with `NotFound` when it is absent.
#[cfg(unix)]
pub fn read_secret_file(path: &Path) -> Result<Vec<u8>, SecretFileError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let owned = || path.to_path_buf();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(libc::ELOOP) {
                SecretFileError::Symlink { path: owned() }
            } else {
                SecretFileError::Io {
                    path: owned(),
                    source,
                }
            }
        })?;
    let meta = file.metadata().map_err(|source| SecretFileError::Io {
        path: owned(),
        source,
    })?;
    if !meta.file_type().is_file() {
        return Err(SecretFileError::NotAFile { path: owned() });
    }
    let us = rustix::process::geteuid().as_raw();
    if meta.uid() != us {
        return Err(SecretFileError::Owner {
            path: owned(),
            owner: meta.uid(),
            us,
        });
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::Permissions {
            path: owned(),
            mode,
        });
    }
    if meta.len() > MAX_SECRET_FILE {
        return Err(SecretFileError::TooLarge {
            path: owned(),
            size: meta.len(),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_SECRET_FILE)
        .read_to_end(&mut bytes)
        .map_err(|source| SecretFileError::Io {
            path: owned(),
            source,
        })?;
    Ok(bytes)
}

/// Reads a secret file (no ownership or mode checks off Unix).
#[cfg(not(unix))]
pub fn read_secret_file(path: &Path) -> Result<Vec<u8>, SecretFileError> {
    std::fs::read(path).map_err(|source| SecretFileError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` as a secret: a new file of this user with mode 0600 (created
/// beside it and renamed into place, so readers see the old or the new file whole, and a
/// symbolic link at `path` is replaced, never followed).
#[cfg(unix)]
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Writes a secret file (no mode off Unix).
#[cfg(not(unix))]
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Whether `error` says the file does not exist.
pub fn is_missing(error: &SecretFileError) -> bool {
    matches!(error, SecretFileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn write(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, b"secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_private_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "key", 0o600);
        assert_eq!(read_secret_file(&path).unwrap(), b"secret\n");
        let path = write(dir.path(), "ro", 0o400);
        assert_eq!(read_secret_file(&path).unwrap(), b"secret\n");
    }

    #[test]
    fn readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o666] {
            let path = write(dir.path(), &format!("key{mode:o}"), mode);
            let err = read_secret_file(&path).unwrap_err();
            assert!(
                matches!(err, SecretFileError::Permissions { mode: m, .. } if m == mode),
                "{mode:o}: {err}"
            );
            assert!(err.to_string().contains("chmod 600"));
        }
    }

    #[test]
    fn a_symlink_a_directory_and_a_missing_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = write(dir.path(), "real", 0o600);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            read_secret_file(&link).unwrap_err(),
            SecretFileError::Symlink { .. }
        ));
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(
            read_secret_file(&sub).unwrap_err(),
            SecretFileError::NotAFile { .. }
        ));
        assert!(is_missing(
            &read_secret_file(&dir.path().join("absent")).unwrap_err()
        ));
    }

    #[test]
    fn a_file_of_another_user_is_refused() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: changing a file's owner needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "theirs", 0o600);
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        assert!(matches!(
            read_secret_file(&path).unwrap_err(),
            SecretFileError::Owner { owner: 65534, .. }
        ));
    }

    #[test]
    fn a_written_secret_is_private_and_replaces_a_symlink_without_following_it() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let victim = write(dir.path(), "victim", 0o644);
        let path = dir.path().join("login-url");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_secret_file(&path, b"http://x/#token=1").unwrap();
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            b"secret\n",
            "followed the link"
        );
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(read_secret_file(&path).unwrap(), b"http://x/#token=1");
        write_secret_file(&path, b"again").unwrap();
        assert_eq!(read_secret_file(&path).unwrap(), b"again");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "a temporary file was left"
        );
    }

    #[test]
    fn a_huge_file_is_not_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'a'; 5000]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read_secret_file(&path).unwrap_err(),
            SecretFileError::TooLarge { size: 5000, .. }
        ));
    }
}
