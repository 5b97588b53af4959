//! Stand-ins for `policy` and `serve` until those modules land: what is
//! storable (200, known length, no `no-store`/`private`, TTL capped by
//! `max-age`), and a full 200 (or HEAD) answer from an entry.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};

use super::{CachedObject, ObjectMeta};
use crate::body::{ProxyBody, empty, full};

/// Metadata for a storable 200 response, or `None` when it must not be stored.
pub(crate) fn storable_meta(headers: &HeaderMap, ttl: Duration) -> Option<ObjectMeta> {
    let content_length = headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    let ttl = ttl_of(headers, ttl)?;
    let now = SystemTime::now();
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if name != header::CONTENT_LENGTH
            && name != header::CONTENT_RANGE
            && name != header::ACCEPT_RANGES
        {
            kept.append(name.clone(), value.clone());
        }
    }
    Some(ObjectMeta {
        content_length,
        etag: headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        last_modified: headers
            .get(header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok()),
        headers: kept,
        stored_at: now,
        fresh_until: now + ttl,
    })
}

/// The entry's TTL: `ttl` capped by `max-age`; `None` for `no-store`/`private`.
fn ttl_of(headers: &HeaderMap, ttl: Duration) -> Option<Duration> {
    let mut ttl = ttl;
    for value in headers.get_all(header::CACHE_CONTROL) {
        let value = value.to_str().ok()?;
        for directive in value.split(',').map(str::trim) {
            let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
            match name.to_ascii_lowercase().as_str() {
                "no-store" | "private" => return None,
                "max-age" => {
                    let secs: u64 = arg.trim_matches('"').parse().ok()?;
                    ttl = ttl.min(Duration::from_secs(secs));
                }
                _ => {}
            }
        }
    }
    Some(ttl)
}

/// The entry after a 304 from S3: fresh again for `ttl`, headers updated.
pub(crate) fn refreshed(object: &CachedObject, headers: &HeaderMap, ttl: Duration) -> CachedObject {
    let now = SystemTime::now();
    let mut meta = ObjectMeta::clone(&object.meta);
    for name in [header::CACHE_CONTROL, header::EXPIRES] {
        if let Some(value) = headers.get(&name) {
            meta.headers.insert(name, value.clone());
        }
    }
    let ttl = ttl_of(&meta.headers, ttl).unwrap_or(Duration::ZERO);
    meta.stored_at = now;
    meta.fresh_until = now + ttl;
    CachedObject {
        meta: Arc::new(meta),
        body: object.body.clone(),
    }
}

/// A full 200 answer (no body for HEAD); the payload is shared, not copied.
pub(crate) fn respond(method: &Method, object: &CachedObject) -> Response<ProxyBody> {
    let body = if method == Method::HEAD {
        empty()
    } else {
        full(object.body.clone())
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.clone_from(&object.meta.headers);
    headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(object.meta.content_length),
    );
    response
}
