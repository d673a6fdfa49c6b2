//! Starting the gateway: bind (port 0 picks a free port), warn when the address is not
//! loopback, serve until the shutdown future completes, then close the live streams.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::{GatewayConfig, Shutdown};
use crate::error::GatewayError;
use crate::node_api::NodeApi;
use crate::token::{ApiToken, base_url};

/// Where a node serves the gateway unless told otherwise: loopback only.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    local_addr: SocketAddr,
    task: JoinHandle<Result<(), GatewayError>>,
}

impl Gateway {
    /// The address it listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until it has shut down (after the shutdown future completed).
    pub async fn wait(self) -> Result<(), GatewayError> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(GatewayError::Serve(std::io::Error::other(e))),
        }
    }
}

/// Serves the API and console on `addr` with the default [`GatewayConfig`] until `shutdown`
/// completes. Returns once listening.
pub async fn serve<A: NodeApi>(
    addr: SocketAddr,
    api: Arc<A>,
    token: ApiToken,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Gateway, GatewayError> {
    serve_with(addr, api, token, GatewayConfig::default(), shutdown).await
}

/// [`serve`] with explicit limits.
pub async fn serve_with<A: NodeApi>(
    addr: SocketAddr,
    api: Arc<A>,
    token: ApiToken,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Gateway, GatewayError> {
    config.validate()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| bind_error(addr, e))?;
    let local_addr = listener.local_addr().map_err(|e| bind_error(addr, e))?;
    if !local_addr.ip().is_loopback() {
        tracing::warn!(
            addr = %local_addr,
            "the gateway listens on a non-loopback address and the API is plain HTTP: put it behind a TLS \
             proxy; anyone who can reach it and holds the token controls this node"
        );
    }
    let (switch, signal) = Shutdown::new();
    let app = crate::build(api, token, config, signal);
    let task = tokio::spawn(async move {
        let stop = async move {
            shutdown.await;
            tracing::info!("gateway shutting down");
            let _ = switch.send(true);
        };
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
            .map_err(GatewayError::Serve)
    });
    tracing::info!(addr = %local_addr, url = %base_url(local_addr), "gateway listening");
    Ok(Gateway { local_addr, task })
}

fn bind_error(addr: SocketAddr, source: std::io::Error) -> GatewayError {
    if source.kind() == std::io::ErrorKind::AddrInUse {
        GatewayError::AddrInUse { addr }
    } else {
        GatewayError::Bind { addr, source }
    }
}
