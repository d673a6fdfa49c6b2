//! The API token: 32 random bytes, hex, in `<data-dir>/api-token` (mode 0600), created on
//! first start. Programs send it as `Authorization: Bearer <token>`; the console trades it
//! for a session cookie. Its `Debug` is redacted and comparisons take constant time.

use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use qubix_protocol::secret_file::{is_missing, read_secret_file};

use crate::error::GatewayError;

/// The token file's name inside the data directory.
pub const TOKEN_FILE: &str = "api-token";

/// The secret that grants full control of the node's API.
#[derive(Clone)]
pub struct ApiToken(Zeroizing<String>);

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl ApiToken {
    /// A fresh token from the OS's random source.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        Self(Zeroizing::new(hex::encode(bytes.as_ref())))
    }

    /// A token from its text (64 hexadecimal characters), e.g. from `QUBIX_TOKEN`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let ok = text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| Self(Zeroizing::new(text.to_ascii_lowercase())))
    }

    /// The token's text, for the login URL and for clients. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this token, in time independent of where they differ and of
    /// the candidate's length (both sides are hashed first).
    pub fn matches(&self, candidate: &str) -> bool {
        let ours = Sha256::digest(self.0.as_bytes());
        let theirs = Sha256::digest(candidate.trim().to_ascii_lowercase().as_bytes());
        ours.ct_eq(&theirs).into()
    }
}

/// Reads `<data_dir>/api-token`, or creates it (mode 0600) with a fresh token when it does
/// not exist. A token file that is a symbolic link, belongs to another user or that other
/// users can read is refused, as ssh refuses keys.
pub fn load_or_create_token(data_dir: &Path) -> Result<ApiToken, GatewayError> {
    let path = data_dir.join(TOKEN_FILE);
    match read_token_file(&path) {
        Err(GatewayError::TokenUnsafe(e)) if is_missing(&e) => {
            let io = |source| GatewayError::TokenIo {
                path: path.clone(),
                source,
            };
            std::fs::create_dir_all(data_dir).map_err(io)?;
            let token = ApiToken::generate();
            write_private(&path, token.expose()).map_err(io)?;
            tracing::info!(path = %path.display(), "created a new API token");
            Ok(token)
        }
        other => other,
    }
}

/// Reads a token file after checking it as a secret (`qubix_protocol::secret_file`): a
/// regular file of this user, mode 0600, not a symbolic link.
pub fn read_token_file(path: &Path) -> Result<ApiToken, GatewayError> {
    let bytes = Zeroizing::new(read_secret_file(path).map_err(GatewayError::TokenUnsafe)?);
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(ApiToken::parse)
        .ok_or_else(|| GatewayError::TokenMalformed { path: path.into() })
}

#[cfg(unix)]
fn write_private(path: &Path, token: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(format!("{token}\n").as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, token: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(format!("{token}\n").as_bytes())?;
    file.sync_all()
}

/// The URL that logs the console straight in: `http://127.0.0.1:8080/#token=…`. The token
/// rides in the fragment, which browsers never send to a server; the console reads it, posts
/// it to `/api/v1/login` and removes it from the address bar. An unspecified bind address
/// (`0.0.0.0`) is shown as loopback.
pub fn login_url(addr: SocketAddr, token: &ApiToken) -> String {
    format!("{}#token={}", base_url(addr), token.expose())
}

/// `http://host:port/` for a bound address, with loopback for an unspecified one.
pub fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_token_is_private_and_reloads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_token(dir.path()).unwrap();
        let second = load_or_create_token(dir.path()).unwrap();
        assert_eq!(first.expose(), second.expose());
        assert_eq!(first.expose().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_token_file_others_can_read_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        load_or_create_token(dir.path()).unwrap();
        let path = dir.path().join(TOKEN_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_token(dir.path()).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(read_token_file(&path).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_token_file_that_is_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let real = load_or_create_token(dir.path()).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            dir.path().join(TOKEN_FILE),
            elsewhere.path().join(TOKEN_FILE),
        )
        .unwrap();
        let err = load_or_create_token(elsewhere.path()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(
            read_token_file(&dir.path().join(TOKEN_FILE))
                .unwrap()
                .expose(),
            real.expose()
        );
    }

    #[test]
    fn a_file_without_a_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_private(&dir.path().join(TOKEN_FILE), "not a token").unwrap();
        let err = load_or_create_token(dir.path()).unwrap_err();
        assert!(matches!(err, GatewayError::TokenMalformed { .. }), "{err}");
    }

    #[test]
    fn matching_is_exact_and_debug_is_redacted() {
        let token = ApiToken::generate();
        assert!(token.matches(token.expose()));
        assert!(!token.matches(""));
        assert!(!token.matches(&token.expose()[1..]));
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn login_url_puts_the_token_in_the_fragment_on_a_reachable_host() {
        let token = ApiToken::generate();
        let url = login_url("0.0.0.0:8080".parse().unwrap(), &token);
        assert_eq!(
            url,
            format!("http://127.0.0.1:8080/#token={}", token.expose())
        );
        assert_eq!(base_url("[::]:9".parse().unwrap()), "http://[::1]:9/");
    }
}
