//! Who may use the admin API: the static bearer token and/or an admin JWT.
//!
//! An admin JWT is verified like a bucket's token (same `jwt:` options) and
//! must then satisfy `require_claim` and any `claims_verification` rules; a
//! valid token that does not is refused with 403, anything else with 401.
//! JWKS keys come from the cache the current generation keeps fresh; the
//! admin API never triggers a fetch itself.

use http::{HeaderMap, Uri, header};

use super::claims_rules;
use super::jwks::JwksKey;
use super::token_source::find_token;
use super::verifier::JwtVerifier;
use crate::config::{AdminJwtConfig, KeySource};
use crate::reload::Proxy;

/// The admin API's verdict on a request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAccess {
    /// Go ahead.
    Allowed,
    /// No (valid) credential: 401.
    Unauthenticated,
    /// A valid JWT without the required admin claim: 403.
    Forbidden,
}

/// Compares in time independent of where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the request's credentials against the admin settings in force.
pub(crate) fn check(proxy: &Proxy, headers: &HeaderMap) -> AdminAccess {
    let config = proxy.config();
    let admin = &config.admin;
    if admin.token.is_none() && admin.jwt.is_none() {
        return AdminAccess::Allowed;
    }
    if let Some(token) = &admin.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.expose().as_bytes())) {
            return AdminAccess::Allowed;
        }
    }
    match &admin.jwt {
        Some(jwt) => check_jwt(proxy, jwt, headers),
        None => AdminAccess::Unauthenticated,
    }
}

fn check_jwt(proxy: &Proxy, admin: &AdminJwtConfig, headers: &HeaderMap) -> AdminAccess {
    let Some(token) = find_token(&admin.jwt.token_sources, headers, &Uri::from_static("/")) else {
        return AdminAccess::Unauthenticated;
    };
    let verifier = match &admin.jwt.keys {
        KeySource::Static(_) => JwtVerifier::from_static_config(&admin.jwt),
        KeySource::Jwks { source, algorithm } => {
            let key = JwksKey {
                source: source.clone(),
                algorithm: *algorithm,
            };
            proxy
                .shared()
                .auth
                .jwks
                .get(&key)
                .map(|cache| JwtVerifier::with_jwks(&admin.jwt, cache))
        }
    };
    let Some(Ok(verified)) = verifier.map(|v| v.verify(&token)) else {
        return AdminAccess::Unauthenticated;
    };
    let claim_ok = admin
        .require_claim
        .as_ref()
        .is_none_or(|rule| claims_rules::holds(rule, &verified.claims));
    // The verifier was built from `admin.jwt`, so `rules_hold` is its rules' outcome.
    if claim_ok && verified.rules_hold {
        AdminAccess::Allowed
    } else {
        AdminAccess::Forbidden
    }
}
