use std::sync::Arc;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::body::ProxyBody;
use crate::config::UpstreamConfig;
use crate::config::ranges::MAX_DURATION;

/// The pooled HTTP(S) client used for every request to S3.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, ProxyBody>;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The extra CA certificates hold no usable certificate.
    #[error("CA certificates: {0}")]
    CaCertificates(String),
    /// rustls refused the TLS settings.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// Builds a keep-alive client trusting the webpki roots, plus the PEM
/// certificates in `extra_ca` when given.
pub fn build_client(
    config: &UpstreamConfig,
    extra_ca: Option<&[u8]>,
) -> Result<UpstreamClient, ClientError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca {
        add_ca_certificates(&mut roots, pem)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();

    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(config.connect_timeout));
    http.set_keepalive(Some(std::time::Duration::from_secs(60)));

    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);

    Ok(Client::builder(TokioExecutor::new())
        // Every read asks for exactly this much. hyper's default adaptive
        // buffer resizes between 8 KiB and its maximum, and each resize
        // leaves the old buffer pinned by the body chunks still queued for the
        // client: measured, twice the memory per download at the same speed.
        .http1_read_buf_exact_size(config.read_buffer_bytes)
        .pool_timer(TokioTimer::new())
        // hyper's idle sweeper adds it to the clock: capped, it cannot overflow.
        .pool_idle_timeout(config.pool_idle_timeout.min(MAX_DURATION))
        .pool_max_idle_per_host(config.pool_max_idle_per_host)
        .build(connector))
}

fn add_ca_certificates(roots: &mut RootCertStore, pem: &[u8]) -> Result<(), ClientError> {
    let fail = ClientError::CaCertificates;
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| fail(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| fail(format!("invalid certificate: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(fail("no PEM certificate found".into()));
    }
    Ok(())
}
