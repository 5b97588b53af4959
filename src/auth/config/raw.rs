//! `jwt:`, `buckets[i].auth:` and `admin.jwt:` as written.

use serde::Deserialize;

use crate::authz::config::RawAuthorization;
use crate::config::{Bool, Str, U64};

/// `buckets[i].auth:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the auth section (a mapping)"
)]
pub(crate) struct RawBucketAuth {
    pub(super) enabled: Option<Bool>,
    pub(super) jwt: Option<RawJwt>,
    pub(super) authorization: Option<RawAuthorization>,
}

/// `jwt:` (top level, and per bucket, and under `admin:`) as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the jwt section (a mapping)"
)]
pub(crate) struct RawJwt {
    pub(super) algorithm: Option<Str>,
    pub(super) secret: Option<Str>,
    pub(super) rsa_public_key_path: Option<Str>,
    pub(super) ecdsa_public_key_path: Option<Str>,
    pub(super) public_key_path: Option<Str>,
    pub(super) public_key: Option<Str>,
    pub(super) jwks_url: Option<Str>,
    pub(super) jwks_refresh_interval_seconds: Option<U64>,
    pub(super) jwks_min_refresh_interval_seconds: Option<U64>,
    pub(super) jwks_timeout_seconds: Option<U64>,
    pub(super) keys: Option<Vec<RawKey>>,
    pub(super) issuer: Option<Str>,
    pub(super) audience: Option<RawAudience>,
    pub(super) leeway_seconds: Option<U64>,
    pub(super) token_sources: Option<Vec<RawTokenSource>>,
    #[serde(alias = "claims")]
    pub(super) claims_verification: Option<Vec<RawClaimRule>>,
    pub(super) token_cache_size: Option<U64>,
    pub(super) require_claim: Option<RawClaimRule>,
}

/// One entry of `keys:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a key (a mapping)")]
pub(super) struct RawKey {
    pub(super) id: Option<Str>,
    pub(super) algorithm: Option<Str>,
    pub(super) secret: Option<Str>,
    pub(super) rsa_public_key_path: Option<Str>,
    pub(super) ecdsa_public_key_path: Option<Str>,
    pub(super) public_key_path: Option<Str>,
    pub(super) public_key: Option<Str>,
}

/// `audience:` is one string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
pub(super) enum RawAudience {
    One(Str),
    Many(Vec<Str>),
}

/// One entry of `token_sources:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a token source (a mapping)")]
pub(super) struct RawTokenSource {
    #[serde(rename = "type")]
    pub(super) kind: Option<Str>,
    pub(super) name: Option<Str>,
    pub(super) prefix: Option<Str>,
}

/// One claim rule as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a claim rule (a mapping)")]
pub(super) struct RawClaimRule {
    pub(super) claim: Option<Str>,
    pub(super) operator: Option<Str>,
    pub(super) value: Option<serde_norway::Value>,
}
