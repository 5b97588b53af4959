//! The TLS settings the main listener uses for new connections, replaced
//! whole on reload.
//!
//! Each handshake takes the current rustls configuration once: a connection
//! keeps the certificate it was handshaken with for its whole life, and a
//! reload changes only what later connections get. The whole configuration is
//! swapped, not just the certificate (a `ResolvesServerCert` over an
//! `ArcSwap`), so a changed `client_ca_path` or `min_tls_version` also
//! applies on reload.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::load::LoadedTls;

/// `yatagarasu_tls_certificate_expiry_timestamp_seconds`: when the main
/// listener's certificate expires (its `notAfter`), as a Unix time.
pub const TLS_CERTIFICATE_EXPIRY: &str = "yatagarasu_tls_certificate_expiry_timestamp_seconds";

/// The live TLS settings of the main listener.
#[derive(Debug)]
pub(crate) struct TlsState {
    current: ArcSwap<rustls::ServerConfig>,
    expiry: metrics::Gauge,
}

/// Why a connection's handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    /// The client did not finish the handshake in time.
    #[error("no TLS handshake within {0:?}")]
    TimedOut(Duration),
    /// The handshake failed (protocol, certificate, I/O).
    #[error("TLS handshake failed: {0}")]
    Failed(std::io::Error),
}

impl TlsState {
    /// Starts with `loaded`, and publishes its certificate's expiry.
    pub(crate) fn new(loaded: &LoadedTls) -> Arc<Self> {
        metrics::describe_gauge!(
            TLS_CERTIFICATE_EXPIRY,
            metrics::Unit::Seconds,
            "When the main listener's TLS certificate expires (notAfter), as a Unix time."
        );
        let state = Self {
            current: ArcSwap::new(loaded.server.clone()),
            expiry: metrics::gauge!(TLS_CERTIFICATE_EXPIRY),
        };
        state.expiry.set(loaded.not_after as f64);
        Arc::new(state)
    }

    /// New connections use `loaded` from now on; open ones keep theirs.
    pub(crate) fn replace(&self, loaded: &LoadedTls) {
        self.current.store(loaded.server.clone());
        self.expiry.set(loaded.not_after as f64);
        tracing::info!(
            not_after = loaded.not_after,
            "TLS certificate loaded for new connections"
        );
    }

    /// The server side of a handshake on `stream`, within `timeout`.
    pub(crate) async fn handshake(
        &self,
        stream: TcpStream,
        timeout: Duration,
    ) -> Result<TlsStream<TcpStream>, HandshakeError> {
        let acceptor = TlsAcceptor::from(self.current.load_full());
        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(error)) => Err(HandshakeError::Failed(error)),
            Err(_) => Err(HandshakeError::TimedOut(timeout)),
        }
    }
}
