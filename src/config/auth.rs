//! `jwt:`, `buckets[i].auth:` and `admin.jwt:`: as written, validated, and
//! the validated types the auth layer is built from.
//!
//! Buckets with `auth.enabled: true` and no `jwt:` of their own inherit the
//! top-level `jwt:` section (as a whole: the two are never merged).
//!
//! Key material is read and parsed here, once per load, so a bad PEM file is
//! a configuration error (naming the file, never its content) and a reload
//! picks up a rotated key or secret.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::model::Secret;
use super::ranges::{MAX_CACHE_ENTRIES, MAX_LEEWAY_SECONDS};
use super::{Bool, Errors, Str, U64, count, seconds, seconds_within};
use crate::authz::config::{AuthorizationConfig, RawAuthorization};

/// HMAC secrets shorter than this are refused.
const MIN_SECRET_BYTES: usize = 16;
/// HMAC secrets shorter than this are accepted with a warning.
const RECOMMENDED_SECRET_BYTES: usize = 32;

/// `buckets[i].auth:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the auth section (a mapping)"
)]
pub(crate) struct RawBucketAuth {
    pub(crate) enabled: Option<Bool>,
    pub(crate) jwt: Option<RawJwt>,
    pub(crate) authorization: Option<RawAuthorization>,
}

/// `jwt:` (top level, and per bucket, and under `admin:`) as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the jwt section (a mapping)"
)]
pub(crate) struct RawJwt {
    algorithm: Option<Str>,
    secret: Option<Str>,
    rsa_public_key_path: Option<Str>,
    ecdsa_public_key_path: Option<Str>,
    public_key_path: Option<Str>,
    public_key: Option<Str>,
    jwks_url: Option<Str>,
    jwks_refresh_interval_seconds: Option<U64>,
    jwks_min_refresh_interval_seconds: Option<U64>,
    jwks_timeout_seconds: Option<U64>,
    keys: Option<Vec<RawKey>>,
    issuer: Option<Str>,
    audience: Option<RawAudience>,
    leeway_seconds: Option<U64>,
    token_sources: Option<Vec<RawTokenSource>>,
    #[serde(alias = "claims")]
    claims_verification: Option<Vec<RawClaimRule>>,
    token_cache_size: Option<U64>,
    require_claim: Option<RawClaimRule>,
}

/// One entry of `keys:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a key (a mapping)")]
struct RawKey {
    id: Option<Str>,
    algorithm: Option<Str>,
    secret: Option<Str>,
    rsa_public_key_path: Option<Str>,
    ecdsa_public_key_path: Option<Str>,
    public_key_path: Option<Str>,
    public_key: Option<Str>,
}

/// `audience:` is one string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
enum RawAudience {
    One(Str),
    Many(Vec<Str>),
}

/// One entry of `token_sources:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a token source (a mapping)")]
struct RawTokenSource {
    #[serde(rename = "type")]
    kind: Option<Str>,
    name: Option<Str>,
    prefix: Option<Str>,
}

/// One claim rule as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a claim rule (a mapping)")]
struct RawClaimRule {
    claim: Option<Str>,
    operator: Option<Str>,
    value: Option<serde_norway::Value>,
}

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

/// Default `token_cache_size`: tokens remembered per verifier.
pub(crate) const DEFAULT_TOKEN_CACHE_SIZE: usize = 1000;

/// Largest `token_cache_size` accepted (each entry holds a token and its claims).
const MAX_TOKEN_CACHE_SIZE: usize = MAX_CACHE_ENTRIES as usize;

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

/// Validates the top-level `jwt:` section (inherited by buckets).
pub(crate) fn global_jwt(raw: Option<RawJwt>, errs: &mut Errors) -> Option<Option<JwtConfig>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    if raw.require_claim.is_some() {
        errs.push("jwt.require_claim", "only allowed under admin.jwt");
    }
    jwt(raw, "jwt", errs).map(Some)
}

/// Validates `buckets[i].auth`, with the inherited global JWT settings.
pub(crate) fn bucket_auth(
    raw: Option<RawBucketAuth>,
    global: Option<&JwtConfig>,
    at: &str,
    errs: &mut Errors,
) -> Option<AuthConfig> {
    let Some(raw) = raw else {
        return Some(AuthConfig::default());
    };
    let before = errs.count();
    let enabled = raw.enabled.is_some_and(|Bool(e)| e);
    let own = match raw.jwt {
        Some(raw_jwt) => {
            let path = format!("{at}.auth.jwt");
            if raw_jwt.require_claim.is_some() {
                errs.push(
                    format!("{path}.require_claim"),
                    "only allowed under admin.jwt",
                );
            }
            jwt(raw_jwt, &path, errs).map(Arc::new)
        }
        None => None,
    };
    let jwt = own.or_else(|| global.map(|g| Arc::new(g.clone())));
    if enabled && jwt.is_none() && errs.count() == before {
        errs.push(
            format!("{at}.auth.enabled"),
            "requires a jwt section here or at the top level",
        );
    }
    let authorization = match raw.authorization {
        Some(raw) => Some(crate::authz::config::authorization(
            raw,
            &format!("{at}.auth.authorization"),
            errs,
        )?),
        None => None,
    };
    (errs.count() == before).then_some(AuthConfig {
        enabled,
        jwt: if enabled { jwt } else { None },
        authorization,
    })
}

/// Validates `admin.jwt`.
pub(crate) fn admin_jwt(
    raw: Option<RawJwt>,
    at: &str,
    errs: &mut Errors,
) -> Option<Option<AdminJwtConfig>> {
    let Some(mut raw) = raw else {
        return Some(None);
    };
    let before = errs.count();
    let require_claim = raw
        .require_claim
        .take()
        .and_then(|rule| claim_rule(rule, &format!("{at}.require_claim"), errs));
    let mut jwt = jwt(raw, at, errs)?;
    // The admin API builds a verifier per request, so a token cache would
    // never be hit: none is built (documented as not used under admin.jwt).
    jwt.token_cache_size = 0;
    (errs.count() == before).then(|| {
        Some(AdminJwtConfig {
            jwt: Arc::new(jwt),
            require_claim,
        })
    })
}

// ---------------------------------------------------------------- jwt

fn jwt(raw: RawJwt, at: &str, errs: &mut Errors) -> Option<JwtConfig> {
    let before = errs.count();
    let algorithm = raw
        .algorithm
        .and_then(|Str(a)| parse_algorithm(&a, &format!("{at}.algorithm"), errs));
    let material = RawMaterial {
        secret: raw.secret,
        rsa_public_key_path: raw.rsa_public_key_path,
        ecdsa_public_key_path: raw.ecdsa_public_key_path,
        public_key_path: raw.public_key_path,
        public_key: raw.public_key,
    };
    let mut sources: Vec<&str> = material.present();
    if raw.jwks_url.is_some() {
        sources.push("jwks_url");
    }
    if raw.keys.is_some() {
        sources.push("keys");
    }
    let keys = if sources.len() > 1 {
        errs.push(
            at,
            format!(
                "two key sources at once ({}): keep exactly one",
                sources.join(", ")
            ),
        );
        None
    } else if let Some(Str(url)) = raw.jwks_url {
        let source = jwks_source(
            &url,
            raw.jwks_refresh_interval_seconds,
            raw.jwks_min_refresh_interval_seconds,
            raw.jwks_timeout_seconds,
            at,
            errs,
        );
        if algorithm.is_some_and(is_hmac) {
            errs.push(
                format!("{at}.algorithm"),
                "a JWKS publishes public keys: HS algorithms cannot be used with jwks_url",
            );
        }
        source.map(|source| KeySource::Jwks { source, algorithm })
    } else if let Some(keys) = raw.keys {
        if keys.is_empty() {
            errs.push(format!("{at}.keys"), "is empty: give at least one key");
        }
        let mut ids: Vec<String> = Vec::new();
        let parsed: Vec<Option<StaticKey>> = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                let path = format!("{at}.keys[{i}]");
                let id = k.id.map(|Str(id)| id);
                if let Some(id) = &id {
                    if ids.contains(id) {
                        errs.push(format!("{path}.id"), "duplicate key id");
                    }
                    ids.push(id.clone());
                }
                let algorithm = match k.algorithm {
                    Some(Str(a)) => parse_algorithm(&a, &format!("{path}.algorithm"), errs),
                    None if algorithm.is_some() => algorithm,
                    None => {
                        errs.push(format!("{path}.algorithm"), "missing");
                        None
                    }
                };
                let material = RawMaterial {
                    secret: k.secret,
                    rsa_public_key_path: k.rsa_public_key_path,
                    ecdsa_public_key_path: k.ecdsa_public_key_path,
                    public_key_path: k.public_key_path,
                    public_key: k.public_key,
                };
                let algorithm = algorithm?;
                let key = material.load(algorithm, &path, errs)?;
                Some(StaticKey { id, algorithm, key })
            })
            .collect();
        parsed
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(KeySource::Static)
    } else {
        match algorithm {
            Some(algorithm) => material.load(algorithm, at, errs).map(|key| {
                KeySource::Static(vec![StaticKey {
                    id: None,
                    algorithm,
                    key,
                }])
            }),
            None => {
                errs.push(format!("{at}.algorithm"), "missing");
                None
            }
        }
    };
    if !matches!(keys, Some(KeySource::Jwks { .. })) {
        for (key, present) in [
            (
                "jwks_refresh_interval_seconds",
                raw.jwks_refresh_interval_seconds.is_some(),
            ),
            (
                "jwks_min_refresh_interval_seconds",
                raw.jwks_min_refresh_interval_seconds.is_some(),
            ),
            ("jwks_timeout_seconds", raw.jwks_timeout_seconds.is_some()),
        ] {
            if present && sources.len() <= 1 {
                errs.push(format!("{at}.{key}"), "only applies with jwks_url");
            }
        }
    }
    let issuer = match raw.issuer {
        Some(Str(i)) if i.is_empty() => {
            errs.push(format!("{at}.issuer"), "is empty: set it or remove the key");
            None
        }
        other => other.map(|Str(i)| i),
    };
    let audience = match raw.audience {
        None => Vec::new(),
        Some(RawAudience::One(Str(a))) => vec![a],
        Some(RawAudience::Many(list)) => list.into_iter().map(|Str(a)| a).collect(),
    };
    if audience.iter().any(String::is_empty) {
        errs.push(format!("{at}.audience"), "contains an empty value");
    }
    let leeway = seconds_within(
        raw.leeway_seconds,
        0,
        0,
        MAX_LEEWAY_SECONDS,
        &format!("{at}.leeway_seconds"),
        errs,
    );
    let token_sources = token_sources(raw.token_sources, &format!("{at}.token_sources"), errs);
    let claim_rules: Vec<ClaimRule> = raw
        .claims_verification
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, rule)| claim_rule(rule, &format!("{at}.claims_verification[{i}]"), errs))
        .collect();
    let token_cache_size = count(
        raw.token_cache_size,
        DEFAULT_TOKEN_CACHE_SIZE,
        0,
        MAX_TOKEN_CACHE_SIZE,
        &format!("{at}.token_cache_size"),
        errs,
    );
    let keys = keys?;
    (errs.count() == before).then_some(JwtConfig {
        keys,
        issuer,
        audience,
        leeway,
        token_sources,
        claim_rules,
        token_cache_size,
    })
}

fn is_hmac(algorithm: Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    )
}

fn parse_algorithm(name: &str, path: &str, errs: &mut Errors) -> Option<Algorithm> {
    const KNOWN: &str =
        "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA";
    match Algorithm::from_str(name) {
        Ok(a) => Some(a),
        Err(_) => {
            errs.push(path, format!("unknown algorithm; expected one of {KNOWN}"));
            None
        }
    }
}

/// The key options of one `jwt:` section or one `keys[i]` entry.
struct RawMaterial {
    secret: Option<Str>,
    rsa_public_key_path: Option<Str>,
    ecdsa_public_key_path: Option<Str>,
    public_key_path: Option<Str>,
    public_key: Option<Str>,
}

impl RawMaterial {
    fn present(&self) -> Vec<&'static str> {
        [
            ("secret", self.secret.is_some()),
            ("rsa_public_key_path", self.rsa_public_key_path.is_some()),
            (
                "ecdsa_public_key_path",
                self.ecdsa_public_key_path.is_some(),
            ),
            ("public_key_path", self.public_key_path.is_some()),
            ("public_key", self.public_key.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
    }

    /// Reads and parses the one key for `algorithm`.
    fn load(self, algorithm: Algorithm, at: &str, errs: &mut Errors) -> Option<DecodingKey> {
        let present = self.present();
        if present.len() > 1 {
            errs.push(
                at,
                format!(
                    "two key sources at once ({}): keep exactly one",
                    present.join(", ")
                ),
            );
            return None;
        }
        let name = format!("{algorithm:?}");
        if is_hmac(algorithm) {
            let Some(Str(secret)) = self.secret else {
                errs.push(format!("{at}.secret"), format!("{name} requires a secret"));
                return None;
            };
            return hmac_key(&secret, algorithm, &format!("{at}.secret"), errs);
        }
        if self.secret.is_some() {
            errs.push(
                format!("{at}.secret"),
                format!("{name} verifies with a public key, not a secret"),
            );
            return None;
        }
        let family = KeyFamily::of(algorithm);
        let (option, pem, shown) = if let Some(Str(path)) = self.rsa_public_key_path {
            if family != KeyFamily::Rsa {
                errs.push(
                    format!("{at}.rsa_public_key_path"),
                    format!("{name} does not use an RSA key"),
                );
                return None;
            }
            let pem = read_pem(Path::new(&path), &format!("{at}.rsa_public_key_path"), errs)?;
            ("rsa_public_key_path", pem, path)
        } else if let Some(Str(path)) = self.ecdsa_public_key_path {
            if family != KeyFamily::Ec {
                errs.push(
                    format!("{at}.ecdsa_public_key_path"),
                    format!("{name} does not use an ECDSA key"),
                );
                return None;
            }
            let pem = read_pem(
                Path::new(&path),
                &format!("{at}.ecdsa_public_key_path"),
                errs,
            )?;
            ("ecdsa_public_key_path", pem, path)
        } else if let Some(Str(path)) = self.public_key_path {
            let pem = read_pem(Path::new(&path), &format!("{at}.public_key_path"), errs)?;
            ("public_key_path", pem, path)
        } else if let Some(Str(inline)) = self.public_key {
            (
                "public_key",
                inline.into_bytes(),
                "the inline public_key".to_owned(),
            )
        } else {
            errs.push(
                at,
                format!(
                    "{name} requires a key source: rsa_public_key_path, ecdsa_public_key_path, \
                     public_key_path, public_key, jwks_url or keys"
                ),
            );
            return None;
        };
        let parsed = match family {
            KeyFamily::Rsa => DecodingKey::from_rsa_pem(&pem),
            KeyFamily::Ec => DecodingKey::from_ec_pem(&pem),
            KeyFamily::Ed => DecodingKey::from_ed_pem(&pem),
        };
        match parsed {
            Ok(key) => Some(key),
            Err(_) => {
                errs.push(
                    format!("{at}.{option}"),
                    format!("{shown} is not a valid PEM {} public key", family.label()),
                );
                None
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyFamily {
    Rsa,
    Ec,
    Ed,
}

impl KeyFamily {
    fn of(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::ES256 | Algorithm::ES384 => Self::Ec,
            Algorithm::EdDSA => Self::Ed,
            _ => Self::Rsa,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::Ec => "EC",
            Self::Ed => "Ed25519",
        }
    }
}

fn hmac_key(
    secret: &str,
    algorithm: Algorithm,
    path: &str,
    errs: &mut Errors,
) -> Option<DecodingKey> {
    let len = secret.len();
    if len < MIN_SECRET_BYTES {
        errs.push(
            path,
            format!("is {len} bytes; HMAC secrets must be at least {MIN_SECRET_BYTES} bytes (32 or more recommended)"),
        );
        return None;
    }
    if len < RECOMMENDED_SECRET_BYTES {
        tracing::warn!(
            path,
            bytes = len,
            algorithm = ?algorithm,
            "HMAC secret is shorter than the recommended {RECOMMENDED_SECRET_BYTES} bytes"
        );
    }
    let secret = Secret::new(secret);
    Some(DecodingKey::from_secret(secret.expose().as_bytes()))
}

/// Reads a PEM file; the error names the file, never its content.
fn read_pem(path: &Path, at: &str, errs: &mut Errors) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            errs.push(at, format!("cannot read {}: {}", path.display(), e.kind()));
            None
        }
    }
}

fn jwks_source(
    url: &str,
    refresh: Option<U64>,
    min_refresh: Option<U64>,
    timeout: Option<U64>,
    at: &str,
    errs: &mut Errors,
) -> Option<JwksSource> {
    let before = errs.count();
    let uri = match url.parse::<http::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some() =>
        {
            Some(uri)
        }
        _ => {
            errs.push(
                format!("{at}.jwks_url"),
                "must be an absolute http:// or https:// URL",
            );
            None
        }
    };
    let mut secs = |raw: Option<U64>, default: u64, key: &str| {
        seconds(raw, default, true, &format!("{at}.{key}"), errs)
    };
    let refresh_interval = secs(refresh, 3600, "jwks_refresh_interval_seconds");
    let min_refresh_interval = secs(min_refresh, 60, "jwks_min_refresh_interval_seconds");
    let timeout = secs(timeout, 5, "jwks_timeout_seconds");
    let url = uri?;
    (errs.count() == before).then_some(JwksSource {
        url,
        refresh_interval,
        min_refresh_interval,
        timeout,
    })
}

fn token_sources(
    raw: Option<Vec<RawTokenSource>>,
    at: &str,
    errs: &mut Errors,
) -> Vec<TokenSource> {
    let Some(raw) = raw else {
        return vec![TokenSource::Bearer];
    };
    if raw.is_empty() {
        errs.push(
            at,
            "is empty: remove it (bearer is the default) or list sources",
        );
    }
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let path = format!("{at}[{i}]");
            let name = s.name.map(|Str(n)| n).filter(|n| !n.is_empty());
            let kind = s.kind.map(|Str(k)| k);
            let needs_name = |errs: &mut Errors| {
                if name.is_none() {
                    errs.push(format!("{path}.name"), "missing");
                }
            };
            if s.prefix.is_some() && kind.as_deref() != Some("header") {
                errs.push(format!("{path}.prefix"), "only applies to type: header");
            }
            match kind.as_deref() {
                Some("bearer") => {
                    if name.is_some() {
                        errs.push(format!("{path}.name"), "does not apply to type: bearer");
                    }
                    Some(TokenSource::Bearer)
                }
                Some("header") => {
                    needs_name(errs);
                    let header = HeaderName::from_bytes(name?.as_bytes());
                    match header {
                        Ok(name) => Some(TokenSource::Header {
                            name,
                            prefix: s.prefix.map(|Str(p)| p).filter(|p| !p.is_empty()),
                        }),
                        Err(_) => {
                            errs.push(format!("{path}.name"), "is not a valid header name");
                            None
                        }
                    }
                }
                Some("query") => {
                    needs_name(errs);
                    Some(TokenSource::Query { name: name? })
                }
                Some("cookie") => {
                    needs_name(errs);
                    Some(TokenSource::Cookie { name: name? })
                }
                Some(_) => {
                    errs.push(
                        format!("{path}.type"),
                        "unknown token source; expected bearer, header, query or cookie",
                    );
                    None
                }
                None => {
                    errs.push(format!("{path}.type"), "missing");
                    None
                }
            }
        })
        .collect()
}

fn claim_rule(raw: RawClaimRule, at: &str, errs: &mut Errors) -> Option<ClaimRule> {
    let before = errs.count();
    let claim = match raw.claim {
        Some(Str(c)) if !c.is_empty() && c.split('.').all(|s| !s.is_empty()) => Some(c),
        Some(_) => {
            errs.push(
                format!("{at}.claim"),
                "must be a claim name or a dot path (org.id)",
            );
            None
        }
        None => {
            errs.push(format!("{at}.claim"), "missing");
            None
        }
    };
    let value = match raw.value.map(serde_json::to_value) {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            errs.push(
                format!("{at}.value"),
                "must be a scalar or a list of scalars",
            );
            None
        }
        None => None,
    };
    let value_path = format!("{at}.value");
    let scalar = |value: Option<serde_json::Value>, errs: &mut Errors| match value {
        Some(v) if !v.is_array() && !v.is_object() && !v.is_null() => Some(v),
        Some(_) => {
            errs.push(&value_path, "must be a single value");
            None
        }
        None => {
            errs.push(&value_path, "missing");
            None
        }
    };
    let list = |value: Option<serde_json::Value>, errs: &mut Errors| match value {
        Some(serde_json::Value::Array(items)) => Some(items),
        Some(_) => {
            errs.push(&value_path, "must be a list for this operator");
            None
        }
        None => {
            errs.push(&value_path, "missing (a list)");
            None
        }
    };
    let number = |value: Option<serde_json::Value>, errs: &mut Errors| {
        let n = match &value {
            Some(serde_json::Value::Number(n)) => n.as_f64(),
            Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        if n.is_none() {
            errs.push(&value_path, "must be a number for this operator");
        }
        n
    };
    let operator = match raw.operator.map(|Str(o)| o).as_deref() {
        Some("equals") => scalar(value, errs).map(ClaimOperator::Equals),
        Some("not_equals") => scalar(value, errs).map(ClaimOperator::NotEquals),
        Some("in") => list(value, errs).map(ClaimOperator::In),
        Some("not_in") => list(value, errs).map(ClaimOperator::NotIn),
        Some("contains") => scalar(value, errs).map(ClaimOperator::Contains),
        Some("gt") => number(value, errs).map(ClaimOperator::Gt),
        Some("gte") => number(value, errs).map(ClaimOperator::Gte),
        Some("lt") => number(value, errs).map(ClaimOperator::Lt),
        Some("lte") => number(value, errs).map(ClaimOperator::Lte),
        Some("exists") => Some(ClaimOperator::Exists),
        Some("regex") => match value {
            Some(serde_json::Value::String(pattern)) => match regex::Regex::new(&pattern) {
                Ok(re) => Some(ClaimOperator::Regex(re)),
                Err(_) => {
                    errs.push(&value_path, "is not a valid regular expression");
                    None
                }
            },
            _ => {
                errs.push(&value_path, "must be a regular expression (a string)");
                None
            }
        },
        Some(_) => {
            errs.push(
                format!("{at}.operator"),
                "unknown operator; expected equals, not_equals, in, not_in, contains, gt, gte, \
                 lt, lte, exists or regex",
            );
            None
        }
        None => {
            errs.push(format!("{at}.operator"), "missing");
            None
        }
    };
    let claim = claim?;
    let operator = operator?;
    (errs.count() == before).then(|| ClaimRule {
        path: claim.split('.').map(str::to_owned).collect(),
        claim,
        operator,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{ClaimOperator, Config, ConfigError, KeySource, TokenSource};

    const SECRET32: &str = "0123456789abcdef0123456789abcdef";

    fn fixture(name: &str) -> String {
        format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    fn bucket(auth: &str) -> String {
        format!(
            "buckets:\n  - name: b\n    path_prefix: /b\n    s3:\n      bucket: my-bucket\n      \
             region: us-east-1\n      anonymous: true\n    auth:\n{auth}"
        )
    }

    fn load(text: &str) -> Result<Config, Vec<ConfigError>> {
        Config::from_yaml_str_with_env(text, &|_| None).map_err(|e| e.0)
    }

    /// A bucket with `auth.enabled` and this `jwt:` body (indented by 8).
    fn with_jwt(jwt: &str) -> String {
        bucket(&format!("      enabled: true\n      jwt:\n{jwt}"))
    }

    fn errors(text: &str) -> Vec<ConfigError> {
        load(text).expect_err("the configuration should be refused")
    }

    #[track_caller]
    fn assert_refused(text: &str, path: &str, needle: &str) {
        let errs = errors(text);
        assert!(
            errs.iter()
                .any(|e| e.path == path && e.message.contains(needle)),
            "no error at {path} containing {needle:?}: {errs:?}"
        );
    }

    #[test]
    fn global_jwt_is_inherited() {
        let text = format!(
            "jwt:\n  algorithm: HS256\n  secret: {SECRET32}\n  leeway_seconds: 30\n{}",
            bucket("      enabled: true\n")
        );
        let c = load(&text).unwrap();
        let auth = &c.buckets[0].auth;
        assert!(auth.enabled);
        let jwt = auth.jwt.as_ref().unwrap();
        assert_eq!(jwt.leeway.as_secs(), 30);
        assert_eq!(jwt.token_sources, vec![TokenSource::Bearer]);
        assert!(matches!(&jwt.keys, KeySource::Static(k) if k.len() == 1));
        assert_eq!(jwt.token_cache_size, super::DEFAULT_TOKEN_CACHE_SIZE);
    }

    #[test]
    fn token_cache_size_is_set_disabled_or_refused_when_huge() {
        let jwt = |size: &str| {
            with_jwt(&format!(
                "        algorithm: HS256\n        secret: {SECRET32}\n        token_cache_size: {size}\n"
            ))
        };
        let size_of = |text: &str| {
            let c = load(text).unwrap();
            c.buckets[0].auth.jwt.as_ref().unwrap().token_cache_size
        };
        assert_eq!(size_of(&jwt("50")), 50);
        assert_eq!(size_of(&jwt("0")), 0);
        assert_refused(
            &jwt("1000001"),
            "buckets[0].auth.jwt.token_cache_size",
            "must be at most 1000000",
        );
    }

    #[test]
    fn every_key_source_loads() {
        for (alg, option, file) in [
            ("RS256", "rsa_public_key_path", "rsa_public.pem"),
            ("PS512", "rsa_public_key_path", "rsa_public.pem"),
            ("ES256", "ecdsa_public_key_path", "ec256_public.pem"),
            ("ES384", "public_key_path", "ec384_public.pem"),
            ("EdDSA", "public_key_path", "ed25519_public.pem"),
        ] {
            let text = with_jwt(&format!(
                "        algorithm: {alg}\n        {option}: {}\n",
                fixture(file)
            ));
            load(&text).unwrap_or_else(|e| panic!("{alg}: {e:?}"));
        }
        let pem = std::fs::read_to_string(fixture("rsa_public.pem")).unwrap();
        let inline = pem
            .lines()
            .map(|l| format!("          {l}\n"))
            .collect::<String>();
        load(&with_jwt(&format!(
            "        algorithm: RS256\n        public_key: |\n{inline}"
        )))
        .unwrap();
        let c = load(&with_jwt(
            "        jwks_url: https://issuer.example/.well-known/jwks.json\n        \
             audience: api\n        issuer: https://issuer.example/\n",
        ))
        .unwrap();
        let jwt = c.buckets[0].auth.jwt.clone().unwrap();
        assert_eq!(jwt.audience, vec!["api".to_owned()]);
        match &jwt.keys {
            KeySource::Jwks { source, algorithm } => {
                assert_eq!(source.min_refresh_interval.as_secs(), 60);
                assert_eq!(source.refresh_interval.as_secs(), 3600);
                assert!(algorithm.is_none());
            }
            other => panic!("{other:?}"),
        }
        let c = load(&with_jwt(&format!(
            "        keys:\n          - {{id: k1, algorithm: HS256, secret: {SECRET32}}}\n          \
             - {{id: k2, algorithm: RS256, rsa_public_key_path: {}}}\n",
            fixture("rsa_public.pem")
        )))
        .unwrap();
        assert!(
            matches!(&c.buckets[0].auth.jwt.as_ref().unwrap().keys, KeySource::Static(k) if k.len() == 2)
        );
    }

    #[test]
    fn hmac_secret_rules() {
        assert_refused(
            &with_jwt("        algorithm: HS256\n"),
            "buckets[0].auth.jwt.secret",
            "HS256 requires a secret",
        );
        let errs = errors(&with_jwt(
            "        algorithm: HS384\n        secret: short-secret\n",
        ));
        let e = errs
            .iter()
            .find(|e| e.path == "buckets[0].auth.jwt.secret")
            .unwrap();
        assert!(e.message.contains("at least 16 bytes"), "{e}");
        assert!(!e.message.contains("short-secret"), "{e}");
        // 16..32 bytes: accepted (a warning is logged).
        load(&with_jwt(
            "        algorithm: HS256\n        secret: 0123456789abcdef\n",
        ))
        .unwrap();
    }

    #[test]
    fn key_source_errors() {
        assert_refused(
            &with_jwt("        algorithm: RS256\n"),
            "buckets[0].auth.jwt",
            "RS256 requires a key source",
        );
        assert_refused(
            &with_jwt(&format!(
                "        algorithm: RS256\n        secret: {SECRET32}\n        \
                 rsa_public_key_path: {}\n",
                fixture("rsa_public.pem")
            )),
            "buckets[0].auth.jwt",
            "two key sources at once (secret, rsa_public_key_path)",
        );
        assert_refused(
            &with_jwt(&format!(
                "        algorithm: RS256\n        jwks_url: https://x/jwks\n        \
                 public_key_path: {}\n",
                fixture("rsa_public.pem")
            )),
            "buckets[0].auth.jwt",
            "two key sources at once",
        );
        assert_refused(
            &with_jwt(
                "        algorithm: RS256\n        rsa_public_key_path: /nonexistent/key.pem\n",
            ),
            "buckets[0].auth.jwt.rsa_public_key_path",
            "cannot read /nonexistent/key.pem",
        );
        // A private key where a public one is expected, or the wrong family.
        let private = fixture("ec256_private.pem");
        let errs = errors(&with_jwt(&format!(
            "        algorithm: RS256\n        public_key_path: {private}\n"
        )));
        let e = &errs[0];
        assert_eq!(e.path, "buckets[0].auth.jwt.public_key_path");
        assert!(
            e.message.contains(&private) && e.message.contains("not a valid PEM"),
            "{e}"
        );
        let content = std::fs::read_to_string(&private).unwrap();
        let line = content.lines().nth(1).unwrap();
        assert!(!e.message.contains(line), "{e}");
        assert_refused(
            &with_jwt(&format!(
                "        algorithm: ES256\n        rsa_public_key_path: {}\n",
                fixture("rsa_public.pem")
            )),
            "buckets[0].auth.jwt.rsa_public_key_path",
            "does not use an RSA key",
        );
        assert_refused(
            &with_jwt("        algorithm: none\n        secret: x\n"),
            "buckets[0].auth.jwt.algorithm",
            "unknown algorithm",
        );
        assert_refused(
            &with_jwt("        algorithm: HS256\n        jwks_url: https://x/jwks\n"),
            "buckets[0].auth.jwt.algorithm",
            "HS algorithms cannot be used with jwks_url",
        );
        assert_refused(
            &with_jwt("        jwks_url: ftp://x/jwks\n"),
            "buckets[0].auth.jwt.jwks_url",
            "absolute http",
        );
    }

    #[test]
    fn token_sources_and_rules() {
        let c = load(&with_jwt(&format!(
            "        algorithm: HS256\n        secret: {SECRET32}\n        token_sources:\n          \
             - type: header\n            name: X-Auth-Token\n            prefix: 'Token '\n          \
             - type: query\n            name: token\n          - type: cookie\n            name: s\n        \
             claims:\n          - {{claim: org.id, operator: in, value: [acme, initech]}}\n          \
             - {{claim: level, operator: gte, value: '3'}}\n          \
             - {{claim: email, operator: regex, value: '@x\\.com$'}}\n"
        )))
        .unwrap();
        let jwt = c.buckets[0].auth.jwt.clone().unwrap();
        assert_eq!(jwt.token_sources.len(), 3);
        assert!(matches!(&jwt.claim_rules[0].operator, ClaimOperator::In(v) if v.len() == 2));
        assert_eq!(jwt.claim_rules[0].path, vec!["org", "id"]);
        assert!(matches!(jwt.claim_rules[1].operator, ClaimOperator::Gte(n) if n == 3.0));

        let base = format!("        algorithm: HS256\n        secret: {SECRET32}\n");
        let rule = |r: &str| {
            with_jwt(&format!(
                "{base}        claims_verification:\n          - {r}\n"
            ))
        };
        assert_refused(
            &rule("{claim: role, operator: like, value: x}"),
            "buckets[0].auth.jwt.claims_verification[0].operator",
            "unknown operator",
        );
        assert_refused(
            &rule("{claim: role, operator: in, value: admin}"),
            "buckets[0].auth.jwt.claims_verification[0].value",
            "must be a list",
        );
        assert_refused(
            &rule("{claim: role, operator: regex, value: '(unclosed'}"),
            "buckets[0].auth.jwt.claims_verification[0].value",
            "not a valid regular expression",
        );
        assert_refused(
            &rule("{claim: level, operator: gt, value: high}"),
            "buckets[0].auth.jwt.claims_verification[0].value",
            "must be a number",
        );
        assert_refused(
            &with_jwt(&format!(
                "{base}        token_sources:\n          - type: smoke\n"
            )),
            "buckets[0].auth.jwt.token_sources[0].type",
            "unknown token source",
        );
        assert_refused(
            &with_jwt(&format!(
                "{base}        token_sources:\n          - type: query\n"
            )),
            "buckets[0].auth.jwt.token_sources[0].name",
            "missing",
        );
    }

    #[test]
    fn admin_jwt_with_require_claim() {
        let text = format!(
            "admin:\n  jwt:\n    algorithm: HS256\n    secret: {SECRET32}\n    require_claim:\n      \
             claim: role\n      operator: equals\n      value: admin\n{}",
            bucket("      enabled: false\n")
        );
        let c = load(&text).unwrap();
        let admin = c.admin.jwt.unwrap();
        assert_eq!(admin.jwt.token_cache_size, 0, "verified per request");
        assert!(matches!(
            admin.require_claim.unwrap().operator,
            ClaimOperator::Equals(_)
        ));
        let text = format!(
            "jwt:\n  algorithm: HS256\n  secret: {SECRET32}\n  require_claim: {{claim: r, operator: exists}}\n{}",
            bucket("      enabled: true\n")
        );
        assert_refused(&text, "jwt.require_claim", "only allowed under admin.jwt");
    }
}
