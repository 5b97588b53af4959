//! `Cache-Control: private` on every answer of a bucket with authentication.
//!
//! The proxy's own cache sits after authentication, but a CDN or shared cache
//! in front of the proxy does not know that the object needed a token: a
//! `public` or merely `max-age` answer would be stored there and served to
//! anyone. So answers of private buckets (cache hits and misses alike) are
//! marked `private`: S3's other directives (`max-age`, `no-cache`, …) are
//! kept, `public`, `s-maxage` and any field-limited `private="…"` are
//! dropped, and an answer S3 already marked `no-store` is left as it is
//! (stricter). Refusals are rendered with `no-store` (`crate::error`).

use http::{HeaderMap, HeaderValue, Response, header};

use crate::body::ProxyBody;

/// Directives that let a shared cache store the answer, or that only
/// concern shared caches (replaced by the plain `private`).
const SHARED: [&str; 3] = ["public", "s-maxage", "private"];

/// Marks an answer of a private bucket as not storable by shared caches.
pub(crate) fn privatize(mut response: Response<ProxyBody>) -> Response<ProxyBody> {
    make_private(response.headers_mut());
    response
}

/// Rewrites `Cache-Control` in `headers` as described in the module docs.
pub(crate) fn make_private(headers: &mut HeaderMap) {
    let mut kept = String::from("private");
    for value in headers.get_all(header::CACHE_CONTROL) {
        // An unreadable value is dropped: `private` alone is the safe answer.
        let Ok(value) = value.to_str() else { continue };
        for directive in directives(value) {
            let name = directive.split('=').next().unwrap_or_default().trim();
            if name.eq_ignore_ascii_case("no-store") {
                return;
            }
            if !SHARED.iter().any(|s| name.eq_ignore_ascii_case(s)) {
                kept.push_str(", ");
                kept.push_str(directive);
            }
        }
    }
    let value = HeaderValue::from_str(&kept).unwrap_or(HeaderValue::from_static("private"));
    headers.insert(header::CACHE_CONTROL, value);
}

/// The non-empty, trimmed directives of one `Cache-Control` value, split on
/// the commas outside quoted strings (`no-cache="a, b"` is one directive).
fn directives(value: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut escaped = false;
    value
        .split(move |c: char| {
            if escaped {
                escaped = false;
            } else if quoted && c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = !quoted;
            }
            c == ',' && !quoted
        })
        .map(str::trim)
        .filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn privatized(values: &[&str]) -> Vec<String> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
        }
        make_private(&mut headers);
        headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn absent_becomes_private() {
        assert_eq!(privatized(&[]), ["private"]);
    }

    #[test]
    fn shared_directives_are_dropped_and_the_rest_kept() {
        assert_eq!(
            privatized(&["public, max-age=600, s-maxage=900"]),
            ["private, max-age=600"]
        );
        assert_eq!(
            privatized(&["max-age=60", "Public", "must-revalidate"]),
            ["private, max-age=60, must-revalidate"]
        );
        assert_eq!(privatized(&["private"]), ["private"]);
        assert_eq!(
            privatized(&["private=\"set-cookie, x\", no-cache=\"a, b\", max-age=5"]),
            ["private, no-cache=\"a, b\", max-age=5"]
        );
        assert_eq!(
            privatized(&["S-MaxAge=5,,  immutable "]),
            ["private, immutable"]
        );
    }

    #[test]
    fn no_store_is_kept_as_it_is() {
        assert_eq!(privatized(&["public, no-store"]), ["public, no-store"]);
        assert_eq!(
            privatized(&["max-age=1", "No-Store"]),
            ["max-age=1", "No-Store"]
        );
    }

    #[test]
    fn an_unreadable_value_leaves_private_alone() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_bytes(b"public, max-age=\xff").unwrap(),
        );
        make_private(&mut headers);
        assert_eq!(headers[header::CACHE_CONTROL], "private");
    }
}
