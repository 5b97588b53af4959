//! CORS for browsers (`cors` and `buckets[i].cors`): the proxy answers
//! preflights itself and adds the CORS fields to a bucket's answers.
//!
//! The first layer of a bucket's stack (after routing, before the IP filter,
//! rate limits and authentication), so a preflight `OPTIONS` (`Origin` and
//! `Access-Control-Request-Method`) is answered without a token, is never
//! counted by a rate limit and never reaches the cache or S3: 204 with the
//! allowed values, or a 403 `CorsRejected` JSON error without any
//! `Access-Control-Allow-*` field when the origin, the method or a header is
//! not allowed. Every other answer of the bucket, error answers of inner
//! layers included (401, 403, 404, 416, 429, 503, … so a page can read
//! them), gets `Access-Control-Allow-Origin` when its `Origin` is allowed,
//! with `Access-Control-Expose-Headers` and `Access-Control-Allow-Credentials`
//! as configured, and always `Vary: Origin`. The fields are added on the way
//! out and never stored, so a cached answer never carries another origin's.
//!
//! The security limits refuse every method but GET and HEAD; they let a
//! preflight through only when some bucket answers CORS
//! ([`any_bucket_answers`]). A bucket without CORS then gets this layer
//! without rules, which refuses the preflight with the same 405 as before;
//! with no CORS anywhere the layer is absent and nothing changes.
//!
//! Answers refused before a bucket is chosen (405, 414, 431, 413, 400 and
//! 404 for a path naming no bucket) get the top-level `cors` fields from
//! [`UnroutedCorsLayer`], above the security limits.
//!
//! `Origin` itself is never forwarded to S3 (it is not on the request
//! allowlist, [`crate::headers`]), and S3's own `Access-Control-*` fields
//! never come back: a bucket's CORS rules in S3 play no part.
//!
//! Why not `tower_http::cors::CorsLayer`: it answers every `OPTIONS` with
//! 200 whatever the origin, method or headers asked (no 403), does not check
//! the requested method and headers, adds its fields only to `Ok` answers
//! (inner layers here answer errors as `Err(ProxyError)`), builds a header
//! map per request, and panics on a wildcard with credentials where a
//! configuration error with its path is wanted.

pub mod config;
mod layer;
mod origin;
mod policy;
mod service;
mod unrouted;

pub use config::{CorsConfig, any_bucket_answers, effective};
pub use layer::CorsLayer;
pub use origin::{AllowedOrigins, OriginPattern, parse_origin};
pub use service::{Cors, ResponseFuture};
pub use unrouted::{UnroutedCors, UnroutedCorsLayer, UnroutedFuture};

use http::header::{ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::{Method, Request};

/// Whether `request` is a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub fn is_preflight<B>(request: &Request<B>) -> bool {
    request.method() == Method::OPTIONS
        && request.headers().contains_key(ORIGIN)
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}
