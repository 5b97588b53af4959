//! Who may use the admin API: the static bearer token and/or an admin JWT.

use http::HeaderMap;
use http::header;

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

/// Checks the `Authorization` header against the admin settings in force.
pub(crate) fn check(proxy: &Proxy, headers: &HeaderMap) -> AdminAccess {
    let config = proxy.config();
    let Some(token) = &config.admin.token else {
        return AdminAccess::Allowed;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.expose().as_bytes())) {
        AdminAccess::Allowed
    } else {
        AdminAccess::Unauthenticated
    }
}
