//! AWS Signature Version 4 signing of the upstream request, with `aws-sigv4`.
//!
//! S3 canonicalises paths with single percent-encoding and no normalisation,
//! and wants `x-amz-content-sha256`; the defaults of `aws-sigv4` suit other
//! services, so the settings are fixed here. The path was encoded by
//! [`crate::backend::encode_key`], and is sent exactly as signed.
//!
//! Each backend reuses a signature for the same request within the same
//! second ([`SignatureMemo`]): the signer would produce the same bytes.

mod layer;
mod memo;
mod service;
mod sign;

pub use layer::SigV4Layer;
pub use memo::{SignatureMemo, Signed};
pub use service::SigV4;
pub use sign::sign_request;

/// A signing backend for the unit tests (nothing is ever sent to it).
#[cfg(test)]
fn backend_for_tests(session_token: Option<&str>) -> crate::backend::S3Backend {
    use crate::config::{S3Config, S3Credentials, Secret, UpstreamConfig};
    let s3 = S3Config {
        bucket: "signing-tests".into(),
        region: "eu-west-1".into(),
        endpoint: Some(http::Uri::from_static("http://127.0.0.1:9000")),
        force_path_style: true,
        credentials: Some(S3Credentials {
            access_key: Secret::new("AKIDEXAMPLE"),
            secret_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: session_token.map(Secret::new),
        }),
        credential_source: None,
        ca_cert_path: None,
    };
    let client = crate::upstream::build_client(&UpstreamConfig::default(), None)
        .unwrap_or_else(|e| panic!("test client: {e}"));
    crate::backend::S3Backend::new(&s3, client).unwrap_or_else(|e| panic!("test backend: {e}"))
}
