//! `/admin/cache/*`: purge and stats.

use http::{Method, Response};

use crate::body::ProxyBody;
use crate::reload::Proxy;

/// Answers a request under `/admin/cache`; `None` when `path` is not one.
pub(crate) async fn handle(
    _proxy: &Proxy,
    _method: &Method,
    path: &str,
    _request_id: &str,
) -> Option<Response<ProxyBody>> {
    if !path.starts_with("/admin/cache") {
        return None;
    }
    None
}
