//! `jwt:`, `buckets[i].auth:` and `admin.jwt:`: as written, validated, and
//! the validated types the auth layer is built from.
//!
//! Buckets with `auth.enabled: true` and no `jwt:` of their own inherit the
//! top-level `jwt:` section.
//!
//! (Skeleton: the JWT options are filled in by the authentication work.)

use serde::Deserialize;

use super::authz::{AuthorizationConfig, RawAuthorization};
use super::raw::Bool;
use super::validate::Errors;

/// `buckets[i].auth:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the auth section (a mapping)")]
pub(crate) struct RawBucketAuth {
    #[serde(default)]
    pub(crate) enabled: Option<Bool>,
    #[serde(default)]
    pub(crate) authorization: Option<RawAuthorization>,
}

/// `jwt:` (top level, and per bucket, and under `admin:`) as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the jwt section (a mapping)")]
pub(crate) struct RawJwt {}

/// Access control settings of one bucket.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Whether requests must carry a valid token.
    pub enabled: bool,
    /// Policy evaluated after the token was verified (claims are its input).
    pub authorization: Option<AuthorizationConfig>,
}

/// JWT settings of the admin API (`admin.jwt`).
#[derive(Debug, Clone)]
pub struct AdminJwtConfig {}

/// Validates the top-level `jwt:` section (inherited by buckets).
pub(crate) fn global_jwt(raw: Option<RawJwt>, _errs: &mut Errors) -> Option<Option<()>> {
    Some(raw.map(|_| ()))
}

/// Validates `buckets[i].auth`, with the inherited global JWT settings.
pub(crate) fn bucket_auth(
    raw: Option<RawBucketAuth>,
    _global: Option<&()>,
    at: &str,
    errs: &mut Errors,
) -> Option<AuthConfig> {
    let Some(raw) = raw else {
        return Some(AuthConfig::default());
    };
    let enabled = raw.enabled.is_some_and(|Bool(e)| e);
    if enabled {
        errs.push(
            format!("{at}.auth.enabled"),
            "authentication is not available in this version; refusing to serve the bucket unprotected",
        );
        return None;
    }
    let authorization = match raw.authorization {
        Some(raw) => Some(super::authz::authorization(
            raw,
            &format!("{at}.auth.authorization"),
            errs,
        )?),
        None => None,
    };
    Some(AuthConfig {
        enabled,
        authorization,
    })
}

/// Validates `admin.jwt`.
pub(crate) fn admin_jwt(
    raw: Option<RawJwt>,
    _at: &str,
    _errs: &mut Errors,
) -> Option<Option<AdminJwtConfig>> {
    Some(raw.map(|_| AdminJwtConfig {}))
}
