//! [`RpcConfig`]: where the Qubic RPC is and how to talk to it, and the rules a usable
//! configuration follows:
//!
//! * the base URL is `http(s)://host[:port][/prefix]`, without query or fragment; the API
//!   suffixes (`/live/v1`, `/query/v1`, `/v1`) are trimmed ([`normalize_base`]);
//! * plain `http://` only to this machine (127.0.0.0/8, `[::1]`, `localhost`): anything
//!   else carries payments and must use https;
//! * an extra root certificate ([`RpcConfig::ca_pem`]) must be PEM;
//! * a response body is read up to [`RpcConfig::max_body_bytes`], never further.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::Certificate;
use url::{Host, Url};

use super::RpcError;

/// The public Qubic RPC.
pub const MAINNET_RPC: &str = "https://rpc.qubic.org";

/// The default limit of one response body: 1 MiB, a full page of 1,000 archive
/// transactions with room to spare.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;

/// How the client talks to the RPC.
#[derive(Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// Base URL; the client appends `/live/v1/…` and `/query/v1/…`. A base that already ends
    /// in `/live/v1`, `/query/v1` or `/v1` is accepted and trimmed. Plain `http://` is
    /// accepted only for a loopback host.
    pub base_url: String,
    /// Limit for one HTTP attempt.
    pub timeout: Duration,
    /// Retries after the first attempt, for transient failures.
    pub retries: u32,
    /// Delay before the first retry; doubles each time.
    pub backoff: Duration,
    /// The longest delay between retries.
    pub max_backoff: Duration,
    /// The largest response body read; a larger one is refused
    /// ([`RpcError::BodyTooLarge`]) without reading the rest.
    pub max_body_bytes: u64,
    /// An extra trusted root certificate (PEM; several may be concatenated), for an RPC
    /// whose certificate a private CA signed (a devnet, a company proxy). The public roots
    /// stay trusted too.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            base_url: MAINNET_RPC.to_owned(),
            timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            ca_pem: None,
        }
    }
}

impl fmt::Debug for RpcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ca = self
            .ca_pem
            .as_ref()
            .map(|pem| format!("<{} bytes of PEM>", pem.len()));
        f.debug_struct("RpcConfig")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .field("max_backoff", &self.max_backoff)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("ca_pem", &ca)
            .finish()
    }
}

impl RpcConfig {
    /// The default configuration with another base URL.
    pub fn with_base_url(base_url: impl Into<String>) -> RpcConfig {
        RpcConfig {
            base_url: base_url.into(),
            ..RpcConfig::default()
        }
    }

    /// Checks every rule of the module docs; [`RpcClient::new`](super::RpcClient::new)
    /// applies it too.
    pub fn validate(&self) -> Result<(), RpcError> {
        let base = normalize_base(&self.base_url)?;
        require_https_off_loopback(&base)?;
        if self.max_body_bytes == 0 {
            return Err(RpcError::BadConfig {
                reason: "max_body_bytes is 0, so no answer could be read; use 1 MiB or more".into(),
            });
        }
        self.root_certificates().map(|_| ())
    }

    /// The extra root certificates, parsed (none without [`RpcConfig::ca_pem`]).
    pub(crate) fn root_certificates(&self) -> Result<Vec<Certificate>, RpcError> {
        let Some(pem) = &self.ca_pem else {
            return Ok(Vec::new());
        };
        let bad = |reason: String| RpcError::BadCertificate { reason };
        let certificates = Certificate::from_pem_bundle(pem).map_err(|e| bad(e.to_string()))?;
        if certificates.is_empty() {
            return Err(bad("it holds no \"BEGIN CERTIFICATE\" block".into()));
        }
        Ok(certificates)
    }
}

/// Trims a base URL to scheme, host and any path prefix, without the API suffixes.
pub fn normalize_base(url: &str) -> Result<String, RpcError> {
    let bad = |reason: &str| RpcError::BadBaseUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = Url::parse(url.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(bad("it must be an http:// or https:// URL with a host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("it must not carry a query or fragment"));
    }
    let mut base = parsed.as_str().trim_end_matches('/').to_owned();
    for suffix in ["/live/v1", "/query/v1", "/v1"] {
        if let Some(stripped) = base.strip_suffix(suffix) {
            base = stripped.to_owned();
            break;
        }
    }
    Ok(base)
}

/// Refuses `http://` to any host but this machine: payments and balances must not travel
/// in the clear, or through anyone who could change them.
pub(crate) fn require_https_off_loopback(url: &str) -> Result<(), RpcError> {
    let parsed = Url::parse(url).map_err(|e| RpcError::BadBaseUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    if parsed.scheme() == "https" || parsed.host().is_some_and(|h| is_loopback(&h)) {
        return Ok(());
    }
    Err(RpcError::InsecureUrl {
        url: url.to_owned(),
    })
}

/// 127.0.0.0/8, `::1` and the name `localhost`.
fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised() {
        for (given, want) in [
            ("https://rpc.qubic.org", "https://rpc.qubic.org"),
            ("https://rpc.qubic.org/", "https://rpc.qubic.org"),
            ("https://rpc.qubic.org/live/v1", "https://rpc.qubic.org"),
            ("https://rpc.qubic.org/live/v1/", "https://rpc.qubic.org"),
            ("https://rpc.qubic.org/query/v1", "https://rpc.qubic.org"),
            ("https://rpc.qubic.org/v1", "https://rpc.qubic.org"),
            ("http://127.0.0.1:8080/proxy", "http://127.0.0.1:8080/proxy"),
        ] {
            assert_eq!(normalize_base(given).unwrap(), want, "{given}");
        }
        for bad in ["rpc.qubic.org", "ftp://x", "https://x/?a=1", ""] {
            let err = normalize_base(bad).unwrap_err().to_string();
            assert!(err.contains("https://rpc.qubic.org"), "{err}");
        }
    }

    #[test]
    fn plain_http_is_only_for_loopback() {
        let allowed = [
            "https://rpc.qubic.org",
            "https://203.0.113.10:8443/live/v1",
            "https://[2001:db8::1]",
            "http://127.0.0.1:9000",
            "http://127.8.9.10",
            "http://127.1",
            "http://[::1]:80/prefix",
            "http://localhost:1234",
            "http://LOCALHOST",
        ];
        for url in allowed {
            RpcConfig::with_base_url(url).validate().expect(url);
        }
        let refused = [
            "http://rpc.qubic.org",
            "http://203.0.113.10:8080",
            "http://128.0.0.1",
            "http://0.0.0.0:80",
            "http://[::]:80",
            "http://[2001:db8::1]",
            "http://[::ffff:10.0.0.1]",
            "http://localhost.example.com",
            "http://mylocalhost",
            "http://10.0.0.2/live/v1",
        ];
        for url in refused {
            let err = RpcConfig::with_base_url(url).validate().unwrap_err();
            assert!(
                matches!(err, RpcError::InsecureUrl { .. }),
                "{url}: {err:?}"
            );
            let text = err.to_string();
            assert!(
                text.contains("must use https unless it is on this machine (loopback)"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_ca_must_be_pem_and_a_body_limit_positive() {
        let garbage = RpcConfig {
            ca_pem: Some(b"not a certificate".to_vec()),
            ..RpcConfig::default()
        };
        let err = garbage.validate().unwrap_err();
        assert!(matches!(err, RpcError::BadCertificate { .. }), "{err:?}");
        assert!(format!("{garbage:?}").contains("<17 bytes of PEM>"));
        let zero = RpcConfig {
            max_body_bytes: 0,
            ..RpcConfig::default()
        };
        assert!(
            zero.validate()
                .unwrap_err()
                .to_string()
                .contains("max_body_bytes")
        );
    }
}
