//! End-to-end checks of [`respond`]: status, headers and bytes as the client sees them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::BodyExt;

use super::*;
use crate::cache::ObjectMeta;

const T: u64 = 1_700_000_000;

/// `T` plus `offset` seconds (shared with the other `serve` test modules).
pub(super) fn at(offset: i64) -> SystemTime {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(T);
    if offset >= 0 {
        base + Duration::from_secs(offset as u64)
    } else {
        base - Duration::from_secs(offset.unsigned_abs())
    }
}

/// [`at`] as an HTTP date.
pub(super) fn date(offset: i64) -> String {
    httpdate::fmt_http_date(at(offset))
}

/// Bytes 0..len, each `i % 251`, so every slice is distinguishable.
fn payload(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn object_with(body: Bytes, content_type: Option<&str>) -> CachedObject {
    let mut headers = HeaderMap::new();
    if let Some(content_type) = content_type {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
    }
    headers.insert(header::ETAG, HeaderValue::from_static("\"abc\""));
    headers.insert(
        header::LAST_MODIFIED,
        HeaderValue::from_str(&date(-3600)).unwrap(),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=600"),
    );
    headers.insert(header::EXPIRES, HeaderValue::from_str(&date(600)).unwrap());
    headers.insert("x-amz-meta-owner", HeaderValue::from_static("me"));
    CachedObject {
        meta: Arc::new(ObjectMeta {
            headers,
            content_length: body.len() as u64,
            etag: Some("\"abc\"".to_owned()),
            last_modified: Some(at(-3600)),
            stored_at: at(-42),
            fresh_until: at(558),
        }),
        body,
    }
}

fn object() -> CachedObject {
    object_with(payload(1000), Some("text/plain"))
}

fn request(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

fn get(object: &CachedObject, pairs: &[(&str, &str)]) -> Result<Response<ProxyBody>, ProxyError> {
    respond(object, &Method::GET, &request(pairs), at(0))
}

fn head(object: &CachedObject, pairs: &[(&str, &str)]) -> Result<Response<ProxyBody>, ProxyError> {
    respond(object, &Method::HEAD, &request(pairs), at(0))
}

async fn bytes(response: Response<ProxyBody>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

fn header<'a>(response: &'a Response<ProxyBody>, name: &str) -> &'a str {
    response.headers()[name].to_str().unwrap()
}

#[tokio::test]
async fn a_get_replays_the_headers_and_shares_the_cached_bytes() {
    let object = object();
    let response = get(&object, &[]).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "text/plain");
    assert_eq!(header(&response, "content-length"), "1000");
    assert_eq!(header(&response, "etag"), "\"abc\"");
    assert_eq!(header(&response, "x-amz-meta-owner"), "me");
    assert_eq!(header(&response, "accept-ranges"), "bytes");
    assert_eq!(header(&response, "age"), "42");
    assert!(!response.headers().contains_key("content-range"));
    // The one data frame is the cached buffer itself, not a copy.
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(frame.as_ptr(), object.body.as_ptr());
    assert_eq!(frame, object.body);
    assert!(body.frame().await.is_none());
}

#[tokio::test]
async fn head_sends_the_full_length_and_no_body() {
    let response = head(&object(), &[]).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-length"), "1000");
    assert_eq!(header(&response, "accept-ranges"), "bytes");
    assert!(bytes(response).await.is_empty());
}

#[tokio::test]
async fn head_ignores_range() {
    let response = head(&object(), &[("range", "bytes=0-9")]).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-length"), "1000");
    assert!(!response.headers().contains_key("content-range"));
    assert!(bytes(response).await.is_empty());
}

#[test]
fn age_counts_from_stored_at_and_never_goes_negative() {
    let object = object();
    let response = respond(&object, &Method::GET, &HeaderMap::new(), at(1000)).unwrap();
    assert_eq!(header(&response, "age"), "1042");
    let response = respond(&object, &Method::GET, &HeaderMap::new(), at(-100)).unwrap();
    assert_eq!(header(&response, "age"), "0");
}

#[test]
fn other_methods_are_refused() {
    let got = respond(&object(), &Method::PUT, &HeaderMap::new(), at(0));
    assert!(matches!(got, Err(ProxyError::MethodNotAllowed(m)) if m == Method::PUT));
}

#[tokio::test]
async fn not_modified_carries_the_validators_and_no_body() {
    let modified = date(-3600);
    for pairs in [
        [("if-none-match", "\"abc\"")],
        [("if-none-match", "W/\"abc\"")],
        [("if-none-match", "*")],
        [("if-modified-since", modified.as_str())],
    ] {
        for method in [Method::GET, Method::HEAD] {
            let response = respond(&object(), &method, &request(&pairs), at(0)).unwrap();
            assert_eq!(
                response.status(),
                StatusCode::NOT_MODIFIED,
                "{pairs:?} {method}"
            );
            assert_eq!(header(&response, "etag"), "\"abc\"");
            assert_eq!(header(&response, "last-modified"), date(-3600));
            assert_eq!(header(&response, "cache-control"), "max-age=600");
            assert_eq!(header(&response, "expires"), date(600));
            assert_eq!(header(&response, "age"), "42");
            for absent in [
                "content-type",
                "content-length",
                "x-amz-meta-owner",
                "accept-ranges",
            ] {
                assert!(!response.headers().contains_key(absent), "{absent}");
            }
            assert!(bytes(response).await.is_empty());
        }
    }
}

#[tokio::test]
async fn failed_conditions_serve_the_object() {
    let (older, modified) = (date(-7200), date(-3600));
    for pairs in [
        [("if-none-match", "\"other\"")],
        [("if-modified-since", older.as_str())],
        [("if-modified-since", "not a date")],
        [("if-match", "\"abc\"")],
        [("if-unmodified-since", modified.as_str())],
        [("if-unmodified-since", "not a date")],
    ] {
        let response = get(&object(), &pairs).unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{pairs:?}");
        assert_eq!(bytes(response).await.len(), 1000);
    }
}

#[test]
fn failed_preconditions_are_412() {
    let before = date(-3601);
    for pairs in [
        [("if-match", "\"other\"")],
        [("if-match", "W/\"abc\"")],
        [("if-unmodified-since", before.as_str())],
    ] {
        let got = get(&object(), &pairs);
        assert!(
            matches!(got, Err(ProxyError::PreconditionFailed)),
            "{pairs:?}"
        );
        let got = head(&object(), &pairs);
        assert!(
            matches!(got, Err(ProxyError::PreconditionFailed)),
            "{pairs:?}"
        );
    }
    let rendered = ProxyError::PreconditionFailed.into_response(None);
    assert_eq!(rendered.status(), StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn a_single_range_is_a_206_slice_of_the_cached_bytes() {
    let object = object();
    let cases = [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        ("bytes=990-5000", 990, 999),
        ("bytes=995-", 995, 999),
        ("bytes=-7", 993, 999),
        ("bytes=-5000", 0, 999),
    ];
    for (range, first, last) in cases {
        let response = get(&object, &[("range", range)]).unwrap();
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&response, "content-range"),
            format!("bytes {first}-{last}/1000")
        );
        assert_eq!(
            header(&response, "content-length"),
            (last - first + 1).to_string()
        );
        assert_eq!(header(&response, "content-type"), "text/plain");
        assert_eq!(header(&response, "accept-ranges"), "bytes");
        assert_eq!(header(&response, "etag"), "\"abc\"");
        let mut body = response.into_body();
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(frame, object.body.slice(first..=last), "{range}");
        // A slice of the cached buffer, not a copy.
        assert_eq!(frame.as_ptr(), object.body[first..].as_ptr());
    }
}

#[tokio::test]
async fn an_invalid_range_is_ignored() {
    for range in ["bytes=5-1", "bytes=x-", "lines=1-2", "bytes="] {
        let response = get(&object(), &[("range", range)]).unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{range}");
        assert_eq!(bytes(response).await.len(), 1000);
    }
}

#[test]
fn an_unsatisfiable_range_is_416_with_the_length() {
    for range in [
        "bytes=1000-",
        "bytes=2000-3000",
        "bytes=-0",
        "bytes=1000-1000, 5000-",
    ] {
        let got = get(&object(), &[("range", range)]);
        match got {
            Err(error @ ProxyError::RangeNotSatisfiable { length: 1000 }) => {
                let rendered = error.into_response(None);
                assert_eq!(rendered.status(), StatusCode::RANGE_NOT_SATISFIABLE);
                assert_eq!(rendered.headers()["content-range"], "bytes */1000");
            }
            other => panic!("{range}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn if_range_decides_between_206_and_200() {
    let modified = date(-3600);
    let allowed: [&[(&str, &str)]; 2] = [
        &[("range", "bytes=0-9"), ("if-range", "\"abc\"")],
        &[("range", "bytes=0-9"), ("if-range", &modified)],
    ];
    for pairs in allowed {
        let response = get(&object(), pairs).unwrap();
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{pairs:?}");
    }
    let other_date = date(-3599);
    let refused: [&[(&str, &str)]; 5] = [
        &[("range", "bytes=0-9"), ("if-range", "\"other\"")],
        &[("range", "bytes=0-9"), ("if-range", "W/\"abc\"")],
        &[("range", "bytes=0-9"), ("if-range", &other_date)],
        &[("range", "bytes=0-9"), ("if-range", "garbage")],
        // A failed If-Range ignores even an unsatisfiable Range.
        &[("range", "bytes=5000-"), ("if-range", "\"other\"")],
    ];
    for pairs in refused {
        let response = get(&object(), pairs).unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{pairs:?}");
        assert!(!response.headers().contains_key("content-range"));
        assert_eq!(bytes(response).await.len(), 1000);
    }
}

#[tokio::test]
async fn preconditions_are_evaluated_before_ranges() {
    let response = get(
        &object(),
        &[("range", "bytes=0-9"), ("if-none-match", "\"abc\"")],
    )
    .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    let got = get(
        &object(),
        &[("range", "bytes=5000-"), ("if-match", "\"x\"")],
    );
    assert!(matches!(got, Err(ProxyError::PreconditionFailed)));
    let got = get(
        &object(),
        &[("range", "bytes=5000-"), ("if-none-match", "\"x\"")],
    );
    assert!(matches!(
        got,
        Err(ProxyError::RangeNotSatisfiable { length: 1000 })
    ));
}

/// One part of a parsed `multipart/byteranges` body.
#[derive(Debug)]
struct Part {
    content_type: Option<String>,
    content_range: String,
    data: Bytes,
}

/// Parses a `multipart/byteranges` payload strictly (RFC 2046 framing).
fn parse_multipart(body: &Bytes, boundary: &str) -> Vec<Part> {
    let opening = format!("--{boundary}\r\n");
    assert!(
        body.starts_with(opening.as_bytes()),
        "opens with the boundary"
    );
    let closing = format!("\r\n--{boundary}--\r\n");
    assert!(
        body.ends_with(closing.as_bytes()),
        "ends with the close delimiter"
    );
    let inner = &body[opening.len()..body.len() - closing.len()];
    let delimiter = format!("\r\n--{boundary}\r\n");
    let mut parts = Vec::new();
    let mut rest = inner;
    loop {
        let end = find(rest, delimiter.as_bytes()).unwrap_or(rest.len());
        let part = &rest[..end];
        let split = find(part, b"\r\n\r\n").expect("headers end with an empty line");
        let head = std::str::from_utf8(&part[..split]).unwrap();
        let mut content_type = None;
        let mut content_range = None;
        for line in head.split("\r\n") {
            let (name, value) = line.split_once(": ").expect("a header line");
            match name {
                "Content-Type" => content_type = Some(value.to_owned()),
                "Content-Range" => content_range = Some(value.to_owned()),
                other => panic!("unexpected part header {other}"),
            }
        }
        parts.push(Part {
            content_type,
            content_range: content_range.expect("every part has a Content-Range"),
            data: body.slice_ref(&part[split + 4..]),
        });
        if end == rest.len() {
            break;
        }
        rest = &rest[end + delimiter.len()..];
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn boundary_of(response: &Response<ProxyBody>) -> String {
    let content_type = header(response, "content-type");
    content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("a multipart/byteranges content type")
        .to_owned()
}

async fn check_multipart(object: &CachedObject, range: &str, expected: &[(u64, u64)]) {
    let response = get(object, &[("range", range)]).unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert!(!response.headers().contains_key("content-range"));
    assert_eq!(header(&response, "accept-ranges"), "bytes");
    let boundary = boundary_of(&response);
    assert!(!boundary.is_empty() && boundary.len() <= 70);
    let declared: usize = header(&response, "content-length").parse().unwrap();
    let body = bytes(response).await;
    assert_eq!(declared, body.len());
    let parts = parse_multipart(&body, &boundary);
    assert_eq!(parts.len(), expected.len());
    let total = object.body.len();
    let content_type = object
        .meta
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    for (part, &(first, last)) in parts.iter().zip(expected) {
        assert_eq!(part.content_type, content_type);
        assert_eq!(part.content_range, format!("bytes {first}-{last}/{total}"));
        assert_eq!(part.data, object.body.slice(first as usize..=last as usize));
    }
}

#[tokio::test]
async fn multiple_ranges_are_multipart_byteranges() {
    let object = object();
    check_multipart(
        &object,
        "bytes=0-9,20-29,-5",
        &[(0, 9), (20, 29), (995, 999)],
    )
    .await;
    // The client's order is kept when nothing overlaps.
    check_multipart(&object, "bytes=500-,0-0", &[(500, 999), (0, 0)]).await;
    // Overlaps are merged and sorted.
    check_multipart(&object, "bytes=50-60,0-9,55-70", &[(0, 9), (50, 70)]).await;
    // Unsatisfiable specs are dropped.
    check_multipart(&object, "bytes=0-1,4000-,3-4", &[(0, 1), (3, 4)]).await;
}

#[tokio::test]
async fn a_large_multipart_body_is_streamed_as_slices() {
    let object = object_with(payload(1 << 20), Some("application/octet-stream"));
    let range = "bytes=0-99999,400000-499999,-100000";
    let expected = [(0, 99_999), (400_000, 499_999), (948_576, 1_048_575)];
    check_multipart(&object, range, &expected).await;
    // The data chunks point into the cached buffer.
    let response = get(&object, &[("range", range)]).unwrap();
    let mut body = response.into_body();
    let mut shared = 0;
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        let start = object.body.as_ptr() as usize;
        let at = data.as_ptr() as usize;
        if at >= start && at < start + object.body.len() {
            shared += data.len();
        }
    }
    assert_eq!(shared, 300_000);
}

#[tokio::test]
async fn parts_have_no_content_type_when_the_object_has_none() {
    check_multipart(
        &object_with(payload(100), None),
        "bytes=0-1,5-6",
        &[(0, 1), (5, 6)],
    )
    .await;
}

#[tokio::test]
async fn overlapping_ranges_that_merge_into_one_are_a_plain_206() {
    let response = get(&object(), &[("range", "bytes=0-9,5-19,-1000")]).unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&response, "content-range"), "bytes 0-999/1000");
    assert_eq!(header(&response, "content-type"), "text/plain");
}

#[test]
fn each_multipart_answer_gets_its_own_boundary() {
    let a = get(&object(), &[("range", "bytes=0-1,5-6")]).unwrap();
    let b = get(&object(), &[("range", "bytes=0-1,5-6")]).unwrap();
    assert_ne!(boundary_of(&a), boundary_of(&b));
}

#[tokio::test]
async fn too_many_ranges_serve_the_whole_object() {
    let specs: Vec<String> = (0..=range::MAX_RANGES)
        .map(|i| format!("{}-{}", i * 3, i * 3))
        .collect();
    let value = format!("bytes={}", specs.join(","));
    let response = get(&object(), &[("range", &value)]).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(bytes(response).await.len(), 1000);
}

#[tokio::test]
async fn an_empty_object() {
    let object = object_with(Bytes::new(), Some("text/plain"));
    let response = get(&object, &[]).unwrap();
    assert_eq!(header(&response, "content-length"), "0");
    assert!(bytes(response).await.is_empty());
    let got = get(&object, &[("range", "bytes=0-")]);
    assert!(matches!(
        got,
        Err(ProxyError::RangeNotSatisfiable { length: 0 })
    ));
    let response = get(&object, &[("range", "bytes=-5")]).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
