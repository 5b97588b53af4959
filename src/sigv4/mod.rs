//! AWS Signature Version 4 signing of the upstream request, with `aws-sigv4`.
//!
//! S3 canonicalises paths with single percent-encoding and no normalisation,
//! and wants `x-amz-content-sha256`; the defaults of `aws-sigv4` suit other
//! services, so the settings are fixed here. The path was encoded by
//! [`crate::upstream::encode_key`], and is sent exactly as signed.
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
