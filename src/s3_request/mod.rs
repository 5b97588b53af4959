//! Rewrites the client's request into the S3 GetObject/HeadObject request.
//!
//! This is where the client's control over what the proxy's credentials do
//! ends: only an allowlist of headers (`Range` and the conditionals) and of
//! query parameters (`versionId`, `partNumber`, `response-*`) survives, so a
//! client can never turn a GET into `?acl`, `?tagging`, a listing or an upload.

mod filter;
mod layer;
mod service;

pub use filter::{FORWARDED_QUERY_PARAMS, FORWARDED_REQUEST_HEADERS, filter_query};
pub use layer::S3RequestLayer;
pub use service::S3Request;
