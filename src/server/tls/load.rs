//! Reading `server.https`'s files into a rustls server configuration.
//!
//! Done when the configuration is validated (start, `check`, every reload),
//! so a missing, unreadable, malformed or expired certificate, or a key that
//! is not the certificate's, is an error naming the setting, and a reload
//! with such files changes nothing.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{InconsistentKeys, RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::expiry::not_after;

/// ALPN protocols offered, in the server's order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The oldest TLS version a client may use (`server.https.min_tls_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinTlsVersion {
    /// TLS 1.2 and 1.3.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// TLS 1.3 alone.
static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

impl MinTlsVersion {
    fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        match self {
            Self::Tls12 => rustls::ALL_VERSIONS,
            Self::Tls13 => TLS13_ONLY,
        }
    }
}

/// The files `server.https` names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TlsFiles<'a> {
    pub(crate) cert: &'a Path,
    pub(crate) key: &'a Path,
    pub(crate) client_ca: Option<&'a Path>,
    pub(crate) min_version: MinTlsVersion,
}

/// Why the files cannot serve TLS; `key` is the setting at fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{key}: {message}")]
pub(crate) struct TlsFileError {
    pub(crate) key: &'static str,
    pub(crate) message: String,
}

fn fail(key: &'static str, message: String) -> TlsFileError {
    TlsFileError { key, message }
}

const CERT: &str = "server.https.cert_path";
const KEY: &str = "server.https.key_path";
const CLIENT_CA: &str = "server.https.client_ca_path";

/// A rustls server configuration made from the files, and the certificate's
/// expiry; cheap to clone.
#[derive(Debug, Clone)]
pub struct LoadedTls {
    pub(crate) server: Arc<ServerConfig>,
    /// The leaf certificate's `notAfter`, Unix seconds.
    pub(crate) not_after: i64,
}

/// Reads and checks the files; `now` decides whether the certificate expired.
pub(crate) fn load(files: TlsFiles<'_>, now: SystemTime) -> Result<LoadedTls, TlsFileError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (chain, not_after) = read_chain(files.cert, now)?;
    let key = read_key(files.key)?;
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => fail(
            KEY,
            format!(
                "the key in {} does not match the certificate in {}",
                files.key.display(),
                files.cert.display()
            ),
        ),
        other => fail(
            KEY,
            format!("{}: unusable key: {other}", files.key.display()),
        ),
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(files.min_version.versions())
        .map_err(|e| fail(KEY, format!("no usable TLS version: {e}")))?;
    let builder = match files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => builder.with_client_cert_verifier(client_verifier(path, provider)?),
    };
    let mut server = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    server.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(LoadedTls {
        server: Arc::new(server),
        not_after,
    })
}

/// Every certificate in the file (leaf first) and the leaf's `notAfter`.
fn read_chain(
    path: &Path,
    now: SystemTime,
) -> Result<(Vec<CertificateDer<'static>>, i64), TlsFileError> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| fail(CERT, format!("cannot read {shown}: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| fail(CERT, format!("{shown} is not a valid PEM file")))?;
    let leaf = chain
        .first()
        .ok_or_else(|| fail(CERT, format!("{shown} contains no PEM certificate")))?;
    let not_after = not_after(leaf)
        .ok_or_else(|| fail(CERT, format!("{shown}: the first certificate is not X.509")))?;
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if not_after <= i64::try_from(now).unwrap_or(i64::MAX) {
        let when = UNIX_EPOCH + Duration::from_secs(u64::try_from(not_after).unwrap_or(0));
        return Err(fail(
            CERT,
            format!(
                "the certificate in {shown} expired on {}",
                httpdate::fmt_http_date(when)
            ),
        ));
    }
    Ok((chain, not_after))
}

/// The first private key in the file (PKCS#8, PKCS#1 or SEC1 PEM).
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| fail(KEY, format!("cannot read {shown}: {e}")))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        fail(
            KEY,
            format!("{shown} contains no PEM private key (PKCS#8, PKCS#1 or SEC1)"),
        )
    })
}

/// A verifier requiring a client certificate issued by a CA in `path`.
fn client_verifier(
    path: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsFileError> {
    let shown = path.display();
    let bytes =
        std::fs::read(path).map_err(|e| fail(CLIENT_CA, format!("cannot read {shown}: {e}")))?;
    let mut roots = RootCertStore::empty();
    for item in CertificateDer::pem_slice_iter(&bytes) {
        let cert = item.map_err(|_| fail(CLIENT_CA, format!("{shown} is not a valid PEM file")))?;
        roots
            .add(cert)
            .map_err(|e| fail(CLIENT_CA, format!("{shown}: unusable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(fail(
            CLIENT_CA,
            format!("{shown} contains no PEM certificate"),
        ));
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| fail(CLIENT_CA, format!("{shown}: {e}")))
}
