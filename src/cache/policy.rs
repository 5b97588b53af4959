//! Whether an upstream answer may be stored, for how long, and how a 304
//! revalidation refreshes a stored entry (RFC 9111, shared-cache rules).
//!
//! Decisions, in the order they are checked by [`storable`]:
//! - only a `200` is stored (a `Content-Range` on it marks a partial answer: not stored);
//! - `Cache-Control: no-store` or `private` (qualified or not) → not stored;
//! - `Vary: *`, or a `Vary` naming a request header other than the CORS ones
//!   (`Origin`, `Access-Control-Request-Method`, `Access-Control-Request-Headers`),
//!   → not stored, because the cache key ignores request headers;
//! - a missing or invalid `Content-Length`, or one above the item limit → not
//!   stored (the size must be known before a byte is buffered);
//! - `Cache-Control: no-cache` → **stored, but never fresh**: every use is
//!   revalidated with S3 (`If-None-Match`), which still saves the download. It
//!   also forbids serving the entry stale (see [`stale_window`]).
//!
//! Freshness: the configured TTL, capped by what the response says:
//! `s-maxage` (it wins for a shared cache), else `max-age`, else
//! `Expires − Date`; minus the response's `Age`. An invalid `max-age`,
//! `s-maxage` or `Expires` counts as "already stale" (RFC 9111 §5.3, §1.2.2).
//! A directive repeated uses its first occurrence.
//!
//! The replayed headers are exactly those of [`crate::headers::is_object_header`];
//! `Content-Length` is kept as [`ObjectMeta::content_length`] and re-emitted
//! when the entry is served.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use super::ObjectMeta;
use crate::config::ranges::{MAX_DURATION, MAX_SECONDS};

/// The limits a bucket's cache applies when storing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoragePolicy {
    /// Longest time an entry is served without revalidation.
    pub ttl: Duration,
    /// Largest body stored, in bytes.
    pub max_item_size: u64,
}

/// Why an upstream answer is not stored; the caller streams it through untouched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotStorable {
    /// Only a complete `200` is stored.
    #[error("status {0} is not a full 200 answer")]
    Status(StatusCode),
    /// A `Content-Range` marks a partial answer.
    #[error("a partial answer (Content-Range) is not stored")]
    Partial,
    /// `Cache-Control: no-store`.
    #[error("Cache-Control: no-store")]
    NoStore,
    /// `Cache-Control: private` (a shared cache must not store it).
    #[error("Cache-Control: private")]
    Private,
    /// `Vary` names request headers the cache key does not include.
    #[error("the answer varies on request headers")]
    Varies,
    /// No (valid, single) `Content-Length`: the size is not known up front.
    #[error("no valid Content-Length")]
    UnknownLength,
    /// The body is larger than the item limit.
    #[error("{length} bytes exceed the {limit}-byte item limit")]
    TooLarge {
        /// The announced body length.
        length: u64,
        /// The configured item limit.
        limit: u64,
    },
    /// A 304 revalidation names another representation than the stored one.
    #[error("the revalidation answered for a different representation")]
    ValidatorChanged,
}

/// Decides whether an upstream answer is stored and builds its metadata.
///
/// `now` becomes `stored_at`; `fresh_until` is `now` plus the freshness
/// lifetime (see the module docs). The body is not looked at: the caller
/// checks that the bytes received match `content_length` before inserting.
pub fn storable(
    status: StatusCode,
    headers: &HeaderMap,
    now: SystemTime,
    policy: &StoragePolicy,
) -> Result<ObjectMeta, NotStorable> {
    if status != StatusCode::OK {
        return Err(NotStorable::Status(status));
    }
    if headers.contains_key(header::CONTENT_RANGE) {
        return Err(NotStorable::Partial);
    }
    let directives = CacheControl::parse(headers);
    refuses_storage(&directives)?;
    if varies_on_request(headers) {
        return Err(NotStorable::Varies);
    }
    let content_length =
        single_u64(headers, &header::CONTENT_LENGTH).ok_or(NotStorable::UnknownLength)?;
    if content_length > policy.max_item_size {
        return Err(NotStorable::TooLarge {
            length: content_length,
            limit: policy.max_item_size,
        });
    }
    let replay = replay_headers(headers);
    let lifetime = freshness_lifetime(&directives, &replay, headers, now, policy.ttl);
    Ok(ObjectMeta {
        etag: etag_of(&replay),
        last_modified: last_modified_of(&replay),
        headers: replay,
        content_length,
        stored_at: now,
        fresh_until: expiry(now, lifetime),
    })
}

/// Refreshes a stored entry from S3's `304 Not Modified` to a revalidation
/// (RFC 9111 §4.3.4): the 304's replayable headers replace the stored ones
/// (new validators, `Cache-Control`, `Expires`, metadata), `stored_at`
/// becomes `now` and the freshness is computed again from the merged headers.
///
/// Fails when the 304 carries a validator naming another representation (the
/// entry must be dropped and fetched again), or when the merged
/// `Cache-Control` now forbids storing.
pub fn refresh(
    stored: &ObjectMeta,
    not_modified: &HeaderMap,
    now: SystemTime,
    policy: &StoragePolicy,
) -> Result<ObjectMeta, NotStorable> {
    let new_etag = etag_of(not_modified);
    if let Some(new) = &new_etag {
        if stored.etag.as_deref().map(str::trim) != Some(new.trim()) {
            return Err(NotStorable::ValidatorChanged);
        }
    } else if let Some(new) = last_modified_of(not_modified)
        && stored.last_modified != Some(new)
    {
        return Err(NotStorable::ValidatorChanged);
    }

    let mut merged = stored.headers.clone();
    let updates = replay_headers(not_modified);
    for name in updates.keys() {
        merged.remove(name);
    }
    for (name, value) in &updates {
        merged.append(name.clone(), value.clone());
    }

    let directives = CacheControl::parse(&merged);
    refuses_storage(&directives)?;
    let lifetime = freshness_lifetime(&directives, &merged, not_modified, now, policy.ttl);
    Ok(ObjectMeta {
        etag: etag_of(&merged),
        last_modified: last_modified_of(&merged),
        headers: merged,
        content_length: stored.content_length,
        stored_at: now,
        fresh_until: expiry(now, lifetime),
    })
}

/// How long past `fresh_until` the entry may be served when S3 fails.
///
/// Zero when the stored `Cache-Control` forbids serving it stale
/// (`no-cache`, `must-revalidate`, `proxy-revalidate`, `s-maxage`; RFC 9111
/// §4.2.4); otherwise `configured`, capped by a `stale-if-error=N` directive
/// (RFC 5861) when present.
pub fn stale_window(meta: &ObjectMeta, configured: Duration) -> Duration {
    let directives = CacheControl::parse(&meta.headers);
    if directives.no_cache
        || directives.must_revalidate
        || directives.proxy_revalidate
        || directives.s_maxage.is_some()
    {
        return Duration::ZERO;
    }
    match directives.stale_if_error {
        Some(Seconds::Valid(limit)) => configured.min(limit),
        Some(Seconds::Invalid) => Duration::ZERO,
        None => configured,
    }
}

/// Whether a response header is replayed from the cache: exactly the
/// headers that describe the object (Content-Length is kept separately).
pub use crate::headers::is_object_header as is_replay_header;

/// The replayed subset of `headers`, every value of each kept name.
///
/// Values are copied: hyper parses a response's header values as slices of
/// the connection's read buffer, so keeping them would pin that whole buffer
/// (8 KiB or more) for as long as the entry lives, many times the size of a
/// small cached object and invisible to the tier's byte accounting.
fn replay_headers(headers: &HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for (name, value) in headers {
        if is_replay_header(name) {
            kept.append(name.clone(), detached(value));
        }
    }
    kept
}

/// `value` in its own allocation, sharing nothing with the message it came from.
fn detached(value: &HeaderValue) -> HeaderValue {
    let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
    copy.set_sensitive(value.is_sensitive());
    copy
}

fn refuses_storage(directives: &CacheControl) -> Result<(), NotStorable> {
    if directives.no_store {
        return Err(NotStorable::NoStore);
    }
    if directives.private {
        return Err(NotStorable::Private);
    }
    Ok(())
}

/// `Vary: *`, or a `Vary` on a request header other than the CORS ones.
fn varies_on_request(headers: &HeaderMap) -> bool {
    const HARMLESS: [&str; 3] = [
        "origin",
        "access-control-request-method",
        "access-control-request-headers",
    ];
    headers
        .get_all(header::VARY)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("*").split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .any(|name| !HARMLESS.iter().any(|ok| ok.eq_ignore_ascii_case(name)))
}

fn etag_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::ETAG)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn last_modified_of(headers: &HeaderMap) -> Option<SystemTime> {
    http_date(headers.get(header::LAST_MODIFIED)?)
}

/// Parses an HTTP-date (IMF-fixdate, RFC 850 or asctime); `None` when invalid.
pub(crate) fn http_date(value: &HeaderValue) -> Option<SystemTime> {
    httpdate::parse_http_date(value.to_str().ok()?.trim()).ok()
}

/// The value of a header that must appear once and be a decimal number.
fn single_u64(headers: &HeaderMap, name: &HeaderName) -> Option<u64> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_decimal(value.to_str().ok()?.trim())
}

/// Digits only (no sign, no spaces); `None` on overflow.
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// How long the response stays fresh, capped by the configured `ttl`.
///
/// `stored` provides `Cache-Control` (already parsed) and `Expires`;
/// `response` provides `Date` and `Age` of the answer just received.
fn freshness_lifetime(
    directives: &CacheControl,
    stored: &HeaderMap,
    response: &HeaderMap,
    now: SystemTime,
    ttl: Duration,
) -> Duration {
    if directives.no_cache {
        return Duration::ZERO;
    }
    let declared = match directives.s_maxage.or(directives.max_age) {
        Some(Seconds::Valid(lifetime)) => Some(lifetime),
        Some(Seconds::Invalid) => Some(Duration::ZERO),
        None => stored.get(header::EXPIRES).map(|expires| {
            let base = response
                .get(header::DATE)
                .and_then(http_date)
                .unwrap_or(now);
            http_date(expires)
                .and_then(|expires| expires.duration_since(base).ok())
                .unwrap_or(Duration::ZERO)
        }),
    };
    let age = single_u64(response, &header::AGE).map_or(Duration::ZERO, Duration::from_secs);
    declared.map_or(ttl, |lifetime| ttl.min(lifetime.saturating_sub(age)))
}

/// `now + lifetime`, which never overflows: the lifetime is at most
/// [`MAX_DURATION`] (RFC 9111 §1.2.2's 2^31 seconds), and a clock so far in
/// the future that even that overflows gives an entry that is already stale.
fn expiry(now: SystemTime, lifetime: Duration) -> SystemTime {
    now.checked_add(lifetime.min(MAX_DURATION)).unwrap_or(now)
}

/// A delta-seconds directive argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seconds {
    Valid(Duration),
    /// Present but not a number: treated as zero.
    Invalid,
}

/// The `Cache-Control` response directives the cache acts on.
#[derive(Debug, Default, PartialEq, Eq)]
struct CacheControl {
    no_store: bool,
    no_cache: bool,
    private: bool,
    must_revalidate: bool,
    proxy_revalidate: bool,
    max_age: Option<Seconds>,
    s_maxage: Option<Seconds>,
    stale_if_error: Option<Seconds>,
}

impl CacheControl {
    /// Parses every `Cache-Control` line; unknown directives are ignored.
    fn parse(headers: &HeaderMap) -> Self {
        let mut parsed = Self::default();
        for value in headers.get_all(header::CACHE_CONTROL) {
            let Ok(text) = value.to_str() else {
                continue;
            };
            for directive in split_directives(text) {
                let (name, argument) = match directive.split_once('=') {
                    Some((name, argument)) => (name.trim(), Some(argument.trim())),
                    None => (directive, None),
                };
                let seconds = || {
                    let text = argument.unwrap_or("").trim_matches('"');
                    // RFC 9111 §1.2.2: values beyond 2^31 mean 2^31.
                    match parse_decimal(text) {
                        Some(value) => Seconds::Valid(Duration::from_secs(value.min(MAX_SECONDS))),
                        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                            Seconds::Valid(MAX_DURATION)
                        }
                        None => Seconds::Invalid,
                    }
                };
                match name.to_ascii_lowercase().as_str() {
                    "no-store" => parsed.no_store = true,
                    "no-cache" => parsed.no_cache = true,
                    "private" => parsed.private = true,
                    "must-revalidate" => parsed.must_revalidate = true,
                    "proxy-revalidate" => parsed.proxy_revalidate = true,
                    "max-age" => {
                        parsed.max_age.get_or_insert_with(seconds);
                    }
                    "s-maxage" => {
                        parsed.s_maxage.get_or_insert_with(seconds);
                    }
                    "stale-if-error" => {
                        parsed.stale_if_error.get_or_insert_with(seconds);
                    }
                    _ => {}
                }
            }
        }
        parsed
    }
}

/// Splits a `Cache-Control` line at commas outside quoted strings.
fn split_directives(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let mut in_quotes = false;
            let mut escaped = false;
            let mut end = rest.len();
            for (i, byte) in rest.bytes().enumerate() {
                match byte {
                    _ if escaped => escaped = false,
                    b'\\' if in_quotes => escaped = true,
                    b'"' => in_quotes = !in_quotes,
                    b',' if !in_quotes => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let directive = rest[..end].trim();
            rest = rest.get(end + 1..).unwrap_or("");
            if !directive.is_empty() {
                return Some(directive);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_SECS: u64 = 1_700_000_000;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS)
    }

    fn policy() -> StoragePolicy {
        StoragePolicy {
            ttl: Duration::from_secs(3600),
            max_item_size: 1000,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ok(pairs: &[(&str, &str)]) -> Result<ObjectMeta, NotStorable> {
        let mut all = vec![("content-length", "10")];
        all.extend_from_slice(pairs);
        storable(StatusCode::OK, &headers(&all), now(), &policy())
    }

    #[test]
    fn stored_headers_do_not_pin_the_received_buffer() {
        // As hyper parses them: every value a slice of one read buffer.
        let buffer = bytes::Bytes::from(format!("text/plain\"abc\"{}", "x".repeat(8192)));
        let mut received = HeaderMap::new();
        received.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        let shared = |range: std::ops::Range<usize>| {
            HeaderValue::from_maybe_shared(buffer.slice(range)).unwrap()
        };
        received.insert(header::CONTENT_TYPE, shared(0..10));
        received.insert(header::ETAG, shared(10..15));
        let meta = storable(StatusCode::OK, &received, now(), &policy()).unwrap();
        let inside = buffer.as_ptr_range();
        for (name, value) in &meta.headers {
            assert!(
                !inside.contains(&value.as_bytes().as_ptr()),
                "{name} still points into the received buffer"
            );
        }
        assert_eq!(meta.headers[header::CONTENT_TYPE], "text/plain");
        assert_eq!(meta.headers[header::ETAG], "\"abc\"");
        let refreshed = refresh(&meta, &received, now(), &policy()).unwrap();
        for value in refreshed.headers.values() {
            assert!(!inside.contains(&value.as_bytes().as_ptr()));
        }
    }

    #[test]
    fn huge_lifetimes_are_capped_never_an_overflow() {
        let forever = StoragePolicy {
            ttl: Duration::MAX,
            max_item_size: 1000,
        };
        let huge = [
            ("content-length", "10"),
            ("cache-control", "max-age=99999999999999999999999999"),
        ];
        for response in [&huge[..], &huge[..1]] {
            let meta = storable(StatusCode::OK, &headers(response), now(), &forever).unwrap();
            assert_eq!(lifetime(&meta), 1 << 31);
            let meta = refresh(&meta, &headers(response), now(), &forever).unwrap();
            assert_eq!(lifetime(&meta), 1 << 31);
        }
        // Far-future Expires with the configured TTL: the TTL wins, as usual.
        let meta = ok(&[("expires", "Fri, 31 Dec 9999 23:59:59 GMT")]).unwrap();
        assert_eq!(lifetime(&meta), 3600);
        // A clock at its very end: already stale rather than a panic.
        let end = SystemTime::UNIX_EPOCH + Duration::from_secs(i64::MAX as u64);
        let headers = headers(&[("content-length", "10")]);
        let meta = storable(StatusCode::OK, &headers, end, &forever).unwrap();
        assert_eq!(meta.fresh_until, end);
    }

    fn lifetime(meta: &ObjectMeta) -> u64 {
        meta.fresh_until
            .duration_since(meta.stored_at)
            .unwrap()
            .as_secs()
    }

    fn date(offset: i64) -> String {
        httpdate::fmt_http_date(if offset >= 0 {
            now() + Duration::from_secs(offset as u64)
        } else {
            now() - Duration::from_secs(offset.unsigned_abs())
        })
    }

    #[test]
    fn a_plain_200_is_stored_for_the_ttl() {
        let meta = ok(&[("content-type", "text/plain")]).unwrap();
        assert_eq!(meta.content_length, 10);
        assert_eq!(meta.stored_at, now());
        assert_eq!(lifetime(&meta), 3600);
    }

    #[test]
    fn only_200_is_stored() {
        for status in [
            StatusCode::PARTIAL_CONTENT,
            StatusCode::NOT_MODIFIED,
            StatusCode::NOT_FOUND,
            StatusCode::NO_CONTENT,
        ] {
            let got = storable(
                status,
                &headers(&[("content-length", "10")]),
                now(),
                &policy(),
            );
            assert_eq!(got, Err(NotStorable::Status(status)));
        }
    }

    #[test]
    fn content_range_is_not_stored() {
        assert_eq!(
            ok(&[("content-range", "bytes 0-9/100")]),
            Err(NotStorable::Partial)
        );
    }

    #[test]
    fn no_store_and_private_are_not_stored_in_any_spelling() {
        for value in ["no-store", "public, No-Store", "max-age=60,no-store"] {
            assert_eq!(
                ok(&[("cache-control", value)]),
                Err(NotStorable::NoStore),
                "{value}"
            );
        }
        for value in [
            "private",
            "PRIVATE",
            "private=\"set-cookie, x\"",
            "public, private",
        ] {
            assert_eq!(
                ok(&[("cache-control", value)]),
                Err(NotStorable::Private),
                "{value}"
            );
        }
        // Two Cache-Control lines are one list.
        let both = ok(&[("cache-control", "max-age=5"), ("cache-control", "private")]);
        assert_eq!(both, Err(NotStorable::Private));
    }

    #[test]
    fn a_comma_inside_a_quoted_argument_does_not_split_directives() {
        // `no-store` inside quotes is an argument, not a directive.
        let meta = ok(&[("cache-control", "community=\"a, no-store\", max-age=7")]).unwrap();
        assert_eq!(lifetime(&meta), 7);
    }

    #[test]
    fn no_cache_is_stored_but_never_fresh_and_never_served_stale() {
        let meta = ok(&[("cache-control", "no-cache")]).unwrap();
        assert_eq!(meta.fresh_until, meta.stored_at);
        assert_eq!(
            stale_window(&meta, Duration::from_secs(300)),
            Duration::ZERO
        );
    }

    #[test]
    fn content_length_missing_invalid_repeated_or_too_large_is_not_stored() {
        let only =
            |pairs: &[(&str, &str)]| storable(StatusCode::OK, &headers(pairs), now(), &policy());
        assert_eq!(only(&[]), Err(NotStorable::UnknownLength));
        assert_eq!(
            only(&[("content-length", "ten")]),
            Err(NotStorable::UnknownLength)
        );
        assert_eq!(
            only(&[("content-length", "+10")]),
            Err(NotStorable::UnknownLength)
        );
        assert_eq!(
            only(&[("content-length", "-1")]),
            Err(NotStorable::UnknownLength)
        );
        assert_eq!(
            only(&[("content-length", "10"), ("content-length", "10")]),
            Err(NotStorable::UnknownLength)
        );
        assert_eq!(
            only(&[("content-length", "99999999999999999999999")]),
            Err(NotStorable::UnknownLength)
        );
        assert_eq!(
            only(&[("content-length", "1001")]),
            Err(NotStorable::TooLarge {
                length: 1001,
                limit: 1000
            })
        );
        // Exactly at the limit is stored; so is an empty object.
        assert_eq!(
            only(&[("content-length", "1000")]).unwrap().content_length,
            1000
        );
        assert_eq!(only(&[("content-length", "0")]).unwrap().content_length, 0);
    }

    #[test]
    fn vary_on_request_headers_is_not_stored_but_cors_vary_is() {
        assert_eq!(ok(&[("vary", "*")]), Err(NotStorable::Varies));
        assert_eq!(ok(&[("vary", "Accept-Encoding")]), Err(NotStorable::Varies));
        assert_eq!(ok(&[("vary", "Origin, Accept")]), Err(NotStorable::Varies));
        assert!(
            ok(&[(
                "vary",
                "Origin, Access-Control-Request-Headers, access-control-request-method"
            )])
            .is_ok()
        );
    }

    #[test]
    fn max_age_shorter_than_the_ttl_caps_it_and_longer_does_not_extend_it() {
        assert_eq!(
            lifetime(&ok(&[("cache-control", "max-age=60")]).unwrap()),
            60
        );
        assert_eq!(
            lifetime(&ok(&[("cache-control", "max-age=\"60\"")]).unwrap()),
            60
        );
        assert_eq!(
            lifetime(&ok(&[("cache-control", "public, max-age=86400")]).unwrap()),
            3600
        );
        assert_eq!(lifetime(&ok(&[("cache-control", "max-age=0")]).unwrap()), 0);
        // Huge values saturate instead of failing.
        assert_eq!(
            lifetime(&ok(&[("cache-control", "max-age=999999999999999999999999")]).unwrap()),
            3600
        );
    }

    #[test]
    fn s_maxage_wins_over_max_age_for_a_shared_cache() {
        let meta = ok(&[("cache-control", "max-age=10, s-maxage=120")]).unwrap();
        assert_eq!(lifetime(&meta), 120);
        let meta = ok(&[("cache-control", "s-maxage=5, max-age=600")]).unwrap();
        assert_eq!(lifetime(&meta), 5);
    }

    #[test]
    fn an_invalid_or_repeated_max_age_is_conservative() {
        assert_eq!(
            lifetime(&ok(&[("cache-control", "max-age=soon")]).unwrap()),
            0
        );
        assert_eq!(lifetime(&ok(&[("cache-control", "max-age")]).unwrap()), 0);
        // The first occurrence is used.
        assert_eq!(
            lifetime(&ok(&[("cache-control", "max-age=30, max-age=90")]).unwrap()),
            30
        );
    }

    #[test]
    fn expires_caps_the_ttl_relative_to_date_when_there_is_no_max_age() {
        let meta = ok(&[("expires", &date(600))]).unwrap();
        assert_eq!(lifetime(&meta), 600);
        // Relative to the response's Date, not to our clock.
        let meta = ok(&[("date", &date(-100)), ("expires", &date(200))]).unwrap();
        assert_eq!(lifetime(&meta), 300);
        // In the past, or invalid ("0" is the classic): already stale.
        assert_eq!(lifetime(&ok(&[("expires", &date(-5))]).unwrap()), 0);
        assert_eq!(lifetime(&ok(&[("expires", "0")]).unwrap()), 0);
        // Far future: the TTL still rules.
        assert_eq!(lifetime(&ok(&[("expires", &date(86400))]).unwrap()), 3600);
        // max-age overrides Expires.
        let meta = ok(&[("expires", &date(-5)), ("cache-control", "max-age=50")]).unwrap();
        assert_eq!(lifetime(&meta), 50);
    }

    #[test]
    fn the_upstream_age_is_subtracted_from_the_declared_lifetime() {
        let meta = ok(&[("cache-control", "max-age=100"), ("age", "30")]).unwrap();
        assert_eq!(lifetime(&meta), 70);
        let meta = ok(&[("cache-control", "max-age=100"), ("age", "300")]).unwrap();
        assert_eq!(lifetime(&meta), 0);
    }

    #[test]
    fn exactly_the_replay_headers_are_kept_with_validators_parsed() {
        let lm = date(-3600);
        let meta = ok(&[
            ("content-type", "image/png"),
            ("etag", "\"abc\""),
            ("last-modified", &lm),
            ("cache-control", "public"),
            ("content-disposition", "inline"),
            ("content-encoding", "gzip"),
            ("content-language", "en"),
            ("expires", &date(60)),
            ("x-amz-meta-author", "me"),
            ("x-amz-meta-Colour", "blue"),
            ("x-amz-version-id", "v1"),
            ("x-amz-request-id", "REQ"),
            ("x-amz-id-2", "ID2"),
            ("server", "AmazonS3"),
            ("date", &date(0)),
            ("accept-ranges", "bytes"),
            ("set-cookie", "a=b"),
            ("connection", "keep-alive"),
        ])
        .unwrap();
        let mut names: Vec<&str> = meta.headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "cache-control",
                "content-disposition",
                "content-encoding",
                "content-language",
                "content-type",
                "etag",
                "expires",
                "last-modified",
                "x-amz-meta-author",
                "x-amz-meta-colour",
                "x-amz-version-id",
            ]
        );
        assert_eq!(meta.etag.as_deref(), Some("\"abc\""));
        assert_eq!(meta.last_modified, Some(now() - Duration::from_secs(3600)));
    }

    #[test]
    fn an_invalid_last_modified_is_replayed_but_not_used_as_a_date() {
        let meta = ok(&[("last-modified", "yesterday")]).unwrap();
        assert_eq!(meta.last_modified, None);
        assert_eq!(meta.headers[header::LAST_MODIFIED], "yesterday");
    }

    fn stored() -> ObjectMeta {
        ok(&[
            ("etag", "\"v1\""),
            ("cache-control", "max-age=60"),
            ("content-type", "text/plain"),
            ("x-amz-meta-a", "1"),
        ])
        .unwrap()
    }

    #[test]
    fn a_304_refreshes_freshness_and_headers_without_touching_the_body_length() {
        let later = now() + Duration::from_secs(1000);
        let fresh = refresh(
            &stored(),
            &headers(&[
                ("etag", "\"v1\""),
                ("cache-control", "max-age=120"),
                ("x-amz-request-id", "ignored"),
            ]),
            later,
            &policy(),
        )
        .unwrap();
        assert_eq!(fresh.stored_at, later);
        assert_eq!(fresh.fresh_until, later + Duration::from_secs(120));
        assert_eq!(fresh.content_length, 10);
        assert_eq!(fresh.headers[header::CACHE_CONTROL], "max-age=120");
        assert_eq!(fresh.headers[header::CONTENT_TYPE], "text/plain");
        assert_eq!(fresh.headers["x-amz-meta-a"], "1");
        assert!(!fresh.headers.contains_key("x-amz-request-id"));
        assert_eq!(
            fresh.headers.get_all(header::CACHE_CONTROL).iter().count(),
            1
        );
    }

    #[test]
    fn a_304_without_cache_control_keeps_the_stored_directives() {
        let later = now() + Duration::from_secs(1000);
        let fresh = refresh(&stored(), &headers(&[]), later, &policy()).unwrap();
        assert_eq!(fresh.fresh_until, later + Duration::from_secs(60));
    }

    #[test]
    fn a_304_for_another_representation_or_forbidding_storage_drops_the_entry() {
        let got = refresh(&stored(), &headers(&[("etag", "\"v2\"")]), now(), &policy());
        assert_eq!(got, Err(NotStorable::ValidatorChanged));
        let got = refresh(
            &stored(),
            &headers(&[("cache-control", "no-store")]),
            now(),
            &policy(),
        );
        assert_eq!(got, Err(NotStorable::NoStore));
        let dated = ok(&[("last-modified", &date(-10))]).unwrap();
        let got = refresh(
            &dated,
            &headers(&[("last-modified", &date(-5))]),
            now(),
            &policy(),
        );
        assert_eq!(got, Err(NotStorable::ValidatorChanged));
        let same = refresh(
            &dated,
            &headers(&[("last-modified", &date(-10))]),
            now(),
            &policy(),
        );
        assert!(same.is_ok());
    }

    #[test]
    fn stale_window_honours_revalidation_directives_and_stale_if_error() {
        let window = Duration::from_secs(300);
        assert_eq!(stale_window(&ok(&[]).unwrap(), window), window);
        for cc in [
            "must-revalidate",
            "proxy-revalidate",
            "s-maxage=10",
            "no-cache",
        ] {
            let meta = ok(&[("cache-control", cc)]).unwrap();
            assert_eq!(stale_window(&meta, window), Duration::ZERO, "{cc}");
        }
        let meta = ok(&[("cache-control", "max-age=10, stale-if-error=60")]).unwrap();
        assert_eq!(stale_window(&meta, window), Duration::from_secs(60));
        let meta = ok(&[("cache-control", "stale-if-error=6000")]).unwrap();
        assert_eq!(stale_window(&meta, window), window);
    }
}
