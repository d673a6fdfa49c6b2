//! https for the devnet: the [`DevnetTls`] setting (certificate chain and private key,
//! PEM), [`self_signed`] to make a certificate for given names and addresses, and the
//! listener that completes TLS handshakes in front of the same router.
//!
//! ```text
//! TcpListener ──accept──▶ handshake task (one per connection, bounded, timed out)
//!                                  │ TLS stream
//!                                  ▼
//!               bounded queue ──▶ TlsListener::accept ──▶ axum::serve(router)
//! ```
//!
//! Handshakes run in their own tasks so a client that stalls one does not hold up others.
//! The crypto provider is named (ring, as reqwest uses), never the process default, which
//! is ambiguous when another crate enables aws-lc too.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use super::DevnetError;

/// Handshakes in progress at once.
const MAX_HANDSHAKES: usize = 64;
/// Completed connections waiting for the server to take them.
const ACCEPT_QUEUE: usize = 16;
/// The longest a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve https with this certificate chain (leaf first) and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct DevnetTls {
    /// The certificate chain, PEM; the leaf must name the address the devnet is reached at
    /// (`127.0.0.1`).
    pub cert_chain_pem: Vec<u8>,
    /// The leaf's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for DevnetTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevnetTls")
            .field(
                "cert_chain_pem",
                &format!("<{} bytes>", self.cert_chain_pem.len()),
            )
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A self-signed certificate and its key, PEM: the certificate is also the CA a client
/// must trust (`RpcConfig::ca_pem`).
#[derive(Clone)]
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
}

impl fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfSigned")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl SelfSigned {
    /// The devnet setting that serves this certificate.
    pub fn devnet_tls(&self) -> DevnetTls {
        DevnetTls {
            cert_chain_pem: self.cert_pem.clone().into_bytes(),
            key_pem: self.key_pem.clone().into_bytes(),
        }
    }
}

/// A fresh self-signed certificate (ECDSA P-256) valid for each of `names`: an IP address
/// (`127.0.0.1`, `203.0.113.10`, `::1`) becomes an IP name, anything else a DNS name.
pub fn self_signed(names: &[&str]) -> Result<SelfSigned, DevnetError> {
    if names.is_empty() {
        return Err(tls_error(
            "a certificate needs at least one name; pass e.g. [\"127.0.0.1\", \"localhost\"]",
        ));
    }
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| tls_error(format!("making a self-signed certificate failed: {e}")))?;
    Ok(SelfSigned {
        cert_pem: made.cert.pem(),
        key_pem: made.signing_key.serialize_pem(),
    })
}

fn tls_error(reason: impl Into<String>) -> DevnetError {
    DevnetError::Tls {
        reason: reason.into(),
    }
}

/// The rustls server configuration for `tls` (HTTP/1.1, TLS 1.2 and 1.3).
pub(crate) fn server_config(tls: &DevnetTls) -> Result<Arc<ServerConfig>, DevnetError> {
    let chain = CertificateDer::pem_slice_iter(&tls.cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("the certificate chain is not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(tls_error("the certificate chain holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem)
        .map_err(|e| tls_error(format!("the private key is not PEM: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| tls_error(format!("the key does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Connections whose TLS handshake completed, for `axum::serve`.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp` until `cancel`.
    pub(crate) fn start(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        cancel: CancellationToken,
    ) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (sender, ready) = mpsc::channel(ACCEPT_QUEUE);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), sender, cancel));
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop stopped (cancelled): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

type Ready = mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>;

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: Ready,
    cancel: CancellationToken,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            permit = handshakes.clone().acquire_owned() => permit,
        };
        let Ok(permit) = permit else { return };
        let (stream, peer) = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            accepted = tcp.accept() => match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::debug!(error = %e, "devnet could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "devnet TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "devnet TLS handshake timed out"),
            }
            drop(permit);
        });
    }
}
