//! Authentication: JWT verification for private buckets and the admin API.
//!
//! Sits after routing (it needs the resolved bucket) and before the cache, so
//! only authenticated requests ever reach cached bytes. For a private bucket
//! the token is taken from the configured sources in order, verified with
//! `jsonwebtoken` (algorithm fixed by configuration, `kid` selecting among
//! configured or JWKS keys, `exp`/`nbf` with leeway, `iss`, `aud`, and no
//! `crit` header, RFC 7515 §4.1.11), then the claim rules are checked. The
//! verified claims travel to later layers as a [`VerifiedClaims`] request
//! extension. Public buckets ignore tokens.
//!
//! Tokens are never logged; the access log records the token's `sub` and the
//! verifying key's `kid`. A token carried in a query parameter is removed
//! from the request URI here, so no later layer (nor S3) sees it.
//!
//! Every answer of a private bucket leaves marked `Cache-Control: private`
//! (`private_answer`), so no shared cache in front of the proxy stores it.

pub mod admin;
pub mod admin_guard;
mod claims_rules;
pub mod config;
mod critical;
mod jwks;
mod key_sets;
mod keys;
mod layer;
mod metrics;
mod prepared_keys;
mod private_answer;
mod service;
mod token_cache;
mod token_source;
mod verifier;

pub use jwks::{JwksCache, JwksError};
pub(crate) use key_sets::KeySets;
pub use keys::{KeySet, Selection, VerifyKey};
pub use layer::AuthLayer;
pub use prepared_keys::install_crypto_provider;
pub use service::{Auth, AuthFuture};
pub use token_source::{find_token, query_names, without_query_params};
pub use verifier::{JwtVerifier, Verified, VerifyError};

use std::sync::Arc;

/// The verified token's claims, for the layers after authentication
/// (authorization, rate limiting by user, audit logging).
#[derive(Debug, Clone)]
pub struct VerifiedClaims {
    /// The `sub` claim, when present.
    pub subject: Option<String>,
    /// The `kid` of the key that verified the token, when it had one.
    pub key_id: Option<String>,
    /// Every claim of the token.
    pub claims: Arc<serde_json::Map<String, serde_json::Value>>,
    /// The token's payload segment (base64url, as sent) that `claims` were
    /// decoded from: equal payloads mean equal claims, so the authorization
    /// decision cache keys on these few bytes instead of re-serialising the
    /// claims. `None` when the claims did not come from a token; it must
    /// never name a payload other than the one `claims` came from.
    pub payload: Option<Arc<str>>,
}

/// State that survives reloads: JWKS key sets keyed by their configuration.
#[derive(Debug, Default)]
pub struct AuthShared {
    pub(crate) jwks: jwks::JwksRegistry,
}
