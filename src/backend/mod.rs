//! The per-bucket S3 target: where one bucket's requests go and how they
//! are signed.
//!
//! An [`S3Backend`] owns the bucket's endpoint and addressing style, its
//! signing identity, its signature memo and its pooled client. Each bucket's
//! stack holds its own (the S3 request, signing and upstream layers take it
//! directly), and the readiness probes use the same one.

use std::sync::Arc;

use aws_smithy_runtime_api::client::identity::Identity;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::config::S3Config;
use crate::credentials::LiveCredentials;
use crate::error::ProxyError;
use crate::sigv4::SignatureMemo;
use crate::upstream::UpstreamClient;

/// Bytes S3 wants percent-encoded in a key: everything but `A-Za-z0-9-_.~` and `/`.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Percent-encodes an object key the way SigV4 canonicalises S3 paths (single
/// encoding, uppercase hex, `/` kept), so the path sent is exactly the path signed.
pub fn encode_key(key: &str) -> impl std::fmt::Display + '_ {
    utf8_percent_encode(key, KEY)
}

/// Everything needed to address, sign for and reach one S3 bucket.
///
/// Built once per configuration generation; requests only read it.
pub struct S3Backend {
    scheme: Scheme,
    authority: Authority,
    host: HeaderValue,
    /// `/<bucket>` for path-style addressing, empty for virtual-hosted.
    bucket_path: String,
    /// The signing region.
    pub region: String,
    /// Signing identity from the configuration's keys; `None` for
    /// anonymous buckets and for run-time credentials.
    pub identity: Option<Identity>,
    /// Run-time credentials (`s3.credentials`), read at each signature;
    /// set by [`S3Backend::with_live_credentials`].
    pub credentials: Option<Arc<LiveCredentials>>,
    /// The pooled client (shared across reloads).
    pub client: UpstreamClient,
    /// This second's signatures, for requests that repeat within it.
    pub signatures: SignatureMemo,
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Backend")
            .field("scheme", &self.scheme)
            .field("authority", &self.authority)
            .field("bucket_path", &self.bucket_path)
            .field("region", &self.region)
            .field(
                "signed",
                &(self.identity.is_some() || self.credentials.is_some()),
            )
            .finish_non_exhaustive()
    }
}

impl S3Backend {
    /// Resolves addressing (AWS virtual-hosted, AWS path-style, or a custom
    /// endpoint which is always path-style) and the signing identity.
    pub fn new(s3: &S3Config, client: UpstreamClient) -> Result<Self, String> {
        // Virtual-hosted names with dots break TLS wildcard matching, so those go path-style.
        let path_style = s3.endpoint.is_some() || s3.force_path_style || s3.bucket.contains('.');
        let (scheme, authority) = match &s3.endpoint {
            Some(endpoint) => (
                endpoint.scheme().cloned().unwrap_or(Scheme::HTTPS),
                endpoint
                    .authority()
                    .cloned()
                    .ok_or_else(|| "endpoint has no host".to_owned())?,
            ),
            None => {
                let host = if path_style {
                    format!("s3.{}.amazonaws.com", s3.region)
                } else {
                    format!("{}.s3.{}.amazonaws.com", s3.bucket, s3.region)
                };
                let authority = host
                    .parse::<Authority>()
                    .map_err(|e| format!("invalid S3 host: {e}"))?;
                (Scheme::HTTPS, authority)
            }
        };
        let host = host_header(&scheme, &authority)?;
        let identity = s3.credentials.as_ref().map(|c| {
            aws_credential_types::Credentials::new(
                c.access_key.expose(),
                c.secret_key.expose(),
                c.session_token.as_ref().map(|t| t.expose().to_owned()),
                None,
                "yatagarasu-config",
            )
            .into()
        });
        Ok(Self {
            scheme,
            authority,
            host,
            bucket_path: if path_style {
                format!("/{}", s3.bucket)
            } else {
                String::new()
            },
            region: s3.region.clone(),
            identity,
            credentials: None,
            client,
            signatures: SignatureMemo::default(),
        })
    }

    /// Signs with `credentials` (refreshed in the background) instead of
    /// configured keys.
    pub fn with_live_credentials(mut self, credentials: Arc<LiveCredentials>) -> Self {
        self.identity = None;
        self.credentials = Some(credentials);
        self
    }

    /// The `Host` header value: the authority without a default port, as both
    /// the signer and S3 see it.
    pub fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// The URI of an object, with an already-encoded query (may be empty).
    pub fn object_uri(&self, key: &str, query: &str) -> Result<Uri, ProxyError> {
        let mut path_and_query = format!("{}/{}", self.bucket_path, encode_key(key));
        if !query.is_empty() {
            path_and_query.push('?');
            path_and_query.push_str(query);
        }
        self.uri(&path_and_query)
    }

    /// The URI of the bucket itself (used by readiness probes: HeadBucket).
    pub fn bucket_uri(&self) -> Result<Uri, ProxyError> {
        if self.bucket_path.is_empty() {
            self.uri("/")
        } else {
            self.uri(&self.bucket_path)
        }
    }

    fn uri(&self, path_and_query: &str) -> Result<Uri, ProxyError> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|e| ProxyError::Internal(format!("cannot build the S3 URI: {e}")))
    }

    /// A backend for unit tests that never sends anything.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        let s3 = S3Config {
            bucket: "test-bucket".into(),
            region: "us-east-1".into(),
            endpoint: Some(Uri::from_static("http://127.0.0.1:9")),
            force_path_style: true,
            credentials: None,
            credential_source: None,
            ca_cert_path: None,
        };
        let client = crate::upstream::build_client(
            &crate::config::UpstreamConfig {
                pool_max_idle_per_host: 1,
                pool_idle_timeout: std::time::Duration::from_secs(1),
                connect_timeout: std::time::Duration::from_secs(1),
                ..Default::default()
            },
            None,
        )
        .unwrap_or_else(|e| panic!("test client: {e}"));
        match Self::new(&s3, client) {
            Ok(backend) => backend,
            Err(e) => panic!("test backend: {e}"),
        }
    }
}

fn host_header(scheme: &Scheme, authority: &Authority) -> Result<HeaderValue, String> {
    let default_port = if *scheme == Scheme::HTTP { 80 } else { 443 };
    let host = match authority.port_u16() {
        Some(port) if port == default_port => authority.host().to_owned(),
        _ => authority.as_str().to_owned(),
    };
    HeaderValue::from_str(&host).map_err(|e| format!("invalid host: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, endpoint: Option<&str>, force: bool) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            region: "eu-west-1".into(),
            endpoint: endpoint.map(|e| e.parse().unwrap()),
            force_path_style: force,
            credentials: None,
            credential_source: None,
            ca_cert_path: None,
        }
    }

    fn uri(config: S3Config, key: &str, query: &str) -> String {
        let backend = S3Backend::new(&config, S3Backend::for_tests().client).unwrap();
        backend.object_uri(key, query).unwrap().to_string()
    }

    #[test]
    fn aws_virtual_hosted_and_path_style() {
        assert_eq!(
            uri(s3("my-bkt", None, false), "a/b c.png", ""),
            "https://my-bkt.s3.eu-west-1.amazonaws.com/a/b%20c.png"
        );
        assert_eq!(
            uri(s3("my-bkt", None, true), "k", "versionId=1"),
            "https://s3.eu-west-1.amazonaws.com/my-bkt/k?versionId=1"
        );
        assert_eq!(
            uri(s3("my.dotted.bkt", None, false), "k", ""),
            "https://s3.eu-west-1.amazonaws.com/my.dotted.bkt/k"
        );
    }

    #[test]
    fn custom_endpoint_is_path_style() {
        assert_eq!(
            uri(s3("bkt", Some("http://127.0.0.1:9000"), false), "x/y", ""),
            "http://127.0.0.1:9000/bkt/x/y"
        );
    }

    #[test]
    fn keys_are_encoded_once_with_uppercase_hex() {
        let key = "a b+c=d&e~f!g'h(i)j*k%l#m?n/日";
        assert_eq!(
            encode_key(key).to_string(),
            "a%20b%2Bc%3Dd%26e~f%21g%27h%28i%29j%2Ak%25l%23m%3Fn/%E6%97%A5"
        );
    }

    #[test]
    fn host_drops_default_ports_only() {
        let b = S3Backend::new(
            &s3("bkt", Some("https://s3.example:443"), false),
            S3Backend::for_tests().client,
        )
        .unwrap();
        assert_eq!(b.host(), "s3.example");
        let b = S3Backend::new(
            &s3("bkt", Some("http://127.0.0.1:9000"), false),
            S3Backend::for_tests().client,
        )
        .unwrap();
        assert_eq!(b.host(), "127.0.0.1:9000");
    }
}
