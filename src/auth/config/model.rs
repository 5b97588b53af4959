//! The validated authentication settings the auth layer is built from.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::authz::config::AuthorizationConfig;

/// Access control settings of one bucket.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Whether requests must carry a valid token.
    pub enabled: bool,
    /// How tokens are verified (the bucket's own `jwt:` or the inherited top-level one);
    /// always set when `enabled`.
    pub jwt: Option<Arc<JwtConfig>>,
    /// Policy evaluated after the token was verified (claims are its input).
    pub authorization: Option<AuthorizationConfig>,
}

/// How tokens are found and verified.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// Where the verification keys come from.
    pub keys: KeySource,
    /// The accepted `iss`, when enforced.
    pub issuer: Option<String>,
    /// The accepted `aud` values (any one of them), when enforced.
    pub audience: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Where the token is looked for, in order; the first one found is verified.
    pub token_sources: Vec<TokenSource>,
    /// Rules the verified claims must all satisfy.
    pub claim_rules: Vec<ClaimRule>,
    /// How many verified tokens are remembered, so a token sent again is not
    /// verified again (0: verify every request).
    pub token_cache_size: usize,
}

/// Where verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Keys given in the configuration (a secret, PEM files, or `keys:`).
    Static(Vec<StaticKey>),
    /// Keys published at a JWKS URL.
    Jwks {
        /// Where and how often to fetch (the cache key of the shared key set).
        source: JwksSource,
        /// When set, the only algorithm accepted; otherwise each key's own
        /// (`alg`, or the usual one for its key type).
        algorithm: Option<Algorithm>,
    },
}

/// One configured verification key.
#[derive(Debug, Clone)]
pub struct StaticKey {
    /// The `kid` that selects it, when given.
    pub id: Option<String>,
    /// The only algorithm it verifies.
    pub algorithm: Algorithm,
    /// The parsed key (its `Debug` is redacted).
    pub key: DecodingKey,
}

/// A JWKS endpoint and its refresh policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JwksSource {
    /// The JWKS document's URL.
    pub url: http::Uri,
    /// How often the key set is re-fetched in the background.
    pub refresh_interval: Duration,
    /// Shortest time between two fetches (unknown `kid`, retries after failures).
    pub min_refresh_interval: Duration,
    /// Longest wait for the JWKS document.
    pub timeout: Duration,
}

/// One place a token may be carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// A custom header, with an optional prefix that is stripped.
    Header {
        /// The header's name.
        name: HeaderName,
        /// Stripped from the value when present (e.g. `Token `).
        prefix: Option<String>,
    },
    /// A query parameter (removed from the request before anything else sees it).
    Query {
        /// The parameter's name.
        name: String,
    },
    /// A cookie.
    Cookie {
        /// The cookie's name.
        name: String,
    },
}

/// A condition on one (possibly nested) claim.
#[derive(Debug, Clone)]
pub struct ClaimRule {
    /// The claim's dot path as written (`org.id`), for messages.
    pub claim: String,
    /// The path's segments.
    pub path: Vec<String>,
    /// What must hold.
    pub operator: ClaimOperator,
}

/// The comparison a [`ClaimRule`] makes.
#[derive(Debug, Clone)]
pub enum ClaimOperator {
    /// The claim equals the value.
    Equals(serde_json::Value),
    /// The claim is present and differs from the value.
    NotEquals(serde_json::Value),
    /// The claim (or one of its elements) is in the list.
    In(Vec<serde_json::Value>),
    /// The claim (and none of its elements) is in the list.
    NotIn(Vec<serde_json::Value>),
    /// The claim (a list) contains the value, or (a string) contains it as a substring.
    Contains(serde_json::Value),
    /// The claim is a number greater than the value.
    Gt(f64),
    /// The claim is a number greater than or equal to the value.
    Gte(f64),
    /// The claim is a number less than the value.
    Lt(f64),
    /// The claim is a number less than or equal to the value.
    Lte(f64),
    /// The claim is present and not null.
    Exists,
    /// The claim is a string matching the (unanchored) expression.
    Regex(regex::Regex),
}

/// JWT settings of the admin API (`admin.jwt`).
#[derive(Debug, Clone)]
pub struct AdminJwtConfig {
    /// How admin tokens are verified.
    pub jwt: Arc<JwtConfig>,
    /// The claim that grants admin access (a valid token without it gets 403).
    pub require_claim: Option<ClaimRule>,
}
