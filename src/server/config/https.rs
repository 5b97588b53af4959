//! `server.https`: TLS on the main listener, and an optional plain-HTTP
//! listener beside it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Deserialize;

use super::address::listen_address;
use super::model::HttpsConfig;
use crate::config::{Bool, Errors, Str};
use crate::server::tls::{MinTlsVersion, TlsFiles, load};

/// `server.https` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the server.https section (a mapping)"
)]
pub(crate) struct RawHttps {
    enabled: Option<Bool>,
    cert_path: Option<Str>,
    key_path: Option<Str>,
    min_tls_version: Option<Str>,
    plain_address: Option<Str>,
    client_ca_path: Option<Str>,
}

/// Only used to fill a missing port, which `plain_address` must carry.
const NO_DEFAULT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// Validates `server.https`: `None` when absent or disabled (nothing is read
/// then). Enabled, the files are read and checked now.
pub(crate) fn https(raw: Option<RawHttps>, errs: &mut Errors) -> Option<HttpsConfig> {
    let raw = raw?;
    let before = errs.count();
    let min_tls_version = min_tls_version(raw.min_tls_version, errs);
    let plain_address = raw.plain_address.and_then(|Str(a)| {
        listen_address(
            Some(a),
            None,
            NO_DEFAULT,
            "server.https.plain_address",
            None,
            errs,
        )
    });
    if !raw.enabled.is_some_and(|Bool(b)| b) {
        return None;
    }
    let mut required = |value: Option<Str>, key: &str| match value {
        Some(Str(path)) if !path.trim().is_empty() => Some(PathBuf::from(path)),
        _ => {
            errs.push(key, "is required when server.https.enabled is true");
            None
        }
    };
    let cert_path = required(raw.cert_path, "server.https.cert_path");
    let key_path = required(raw.key_path, "server.https.key_path");
    let client_ca_path = raw.client_ca_path.map(|Str(p)| PathBuf::from(p));
    if client_ca_path.is_some() && plain_address.is_some() {
        // Every request on the plain listener would skip the certificate.
        errs.push(
            "server.https.plain_address",
            "not allowed with client_ca_path: it would serve clients without a certificate",
        );
    }
    let (Some(cert_path), Some(key_path)) = (cert_path, key_path) else {
        return None;
    };
    if errs.count() != before {
        return None;
    }
    let files = TlsFiles {
        cert: &cert_path,
        key: &key_path,
        client_ca: client_ca_path.as_deref(),
        min_version: min_tls_version,
    };
    match load(files, SystemTime::now()) {
        Ok(loaded) => Some(HttpsConfig {
            cert_path,
            key_path,
            min_tls_version,
            plain_address,
            client_ca_path,
            loaded,
        }),
        Err(error) => {
            errs.push(error.key, error.message);
            None
        }
    }
}

/// `"1.2"` (the default) or `"1.3"`.
fn min_tls_version(raw: Option<Str>, errs: &mut Errors) -> MinTlsVersion {
    match raw.as_ref().map(|Str(v)| v.trim()) {
        None | Some("1.2") => MinTlsVersion::Tls12,
        Some("1.3") => MinTlsVersion::Tls13,
        Some(_) => {
            errs.push("server.https.min_tls_version", "must be \"1.2\" or \"1.3\"");
            MinTlsVersion::Tls12
        }
    }
}
