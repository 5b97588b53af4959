//! `buckets[i].auth.authorization:`: the policy engine consulted after JWT
//! verification (embedded Rego, OPA over HTTP, OpenFGA), as written and
//! validated.
//!
//! (Skeleton: filled in by the authorization work.)

use serde::Deserialize;

use super::validate::Errors;

/// `authorization:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "the authorization section (a mapping)"
)]
pub(crate) struct RawAuthorization {}

/// Which policy engine decides, and how.
#[derive(Debug, Clone)]
pub struct AuthorizationConfig {}

/// Validates an `authorization:` section found at `at`.
pub(crate) fn authorization(
    _raw: RawAuthorization,
    at: &str,
    errs: &mut Errors,
) -> Option<AuthorizationConfig> {
    errs.push(at, "authorization is not available in this version");
    None
}
