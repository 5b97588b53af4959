//! `Range` and `If-Range` against a cached object (RFC 9110 §14).
//!
//! Choices where the RFC leaves room:
//! - a syntactically invalid `Range`, an unknown unit or several `Range`
//!   lines are ignored (200 with the whole object);
//! - more than [`MAX_RANGES`] range-specs are ignored too (200): serving the
//!   whole object is bounded by the item limit, while many parts are the
//!   classic amplification attack;
//! - overlapping or adjacent ranges are coalesced (sorted and merged), so
//!   the answer never repeats bytes (its payload never exceeds the object:
//!   with at most [`MAX_RANGES`] part headers, a multipart answer cannot
//!   amplify); non-overlapping ranges keep the order the client asked
//!   for; when a single range remains it is a plain 206;
//! - unsatisfiable range-specs are dropped; when none is left → 416;
//! - a zero-length object has no satisfiable `first-last` range (416), and a
//!   suffix range on it is answered with the (empty) whole object, since
//!   `Content-Range` cannot express an empty range.

use http::{HeaderMap, header};

use super::etag::{EntityTag, strong_eq};
use crate::cache::ObjectMeta;
use crate::cache::policy::http_date;

/// The most range-specs honoured in one request; beyond it the whole object is served.
pub const MAX_RANGES: usize = 16;

/// One satisfiable byte range, both ends inclusive, within the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub first: u64,
    /// Last byte (inclusive).
    pub last: u64,
}

impl ByteRange {
    /// How many bytes the range covers.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true: a satisfiable range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The range as an index range into the body.
    pub fn as_index(&self) -> std::ops::Range<usize> {
        // Within the body, whose length fits in usize.
        self.first as usize..self.last as usize + 1
    }
}

/// What the `Range` field asks of an object of a given length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeDecision {
    /// No (usable) `Range`: the whole object, 200.
    Full,
    /// Satisfiable ranges in the order they are served (never empty): 206.
    Partial(Vec<ByteRange>),
    /// No range-spec overlaps the object: 416.
    Unsatisfiable,
}

/// Reads the request's `Range` field for an object of `length` bytes.
pub fn decide(headers: &HeaderMap, length: u64) -> RangeDecision {
    let mut values = headers.get_all(header::RANGE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return RangeDecision::Full;
    };
    match value.to_str() {
        Ok(text) => parse(text, length),
        Err(_) => RangeDecision::Full,
    }
}

/// A range-spec as written.
#[derive(Debug, Clone, Copy)]
enum Spec {
    /// `first-` or `first-last`.
    From { first: u64, last: Option<u64> },
    /// `-suffix`.
    Suffix(u64),
}

/// Parses a `Range` field value (`bytes=0-1,-5,10-`) for an object of `length` bytes.
pub fn parse(text: &str, length: u64) -> RangeDecision {
    let Some((unit, set)) = text.split_once('=') else {
        return RangeDecision::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeDecision::Full;
    }
    let mut ranges = Vec::new();
    let mut specs = 0;
    let mut nonzero_suffix = false;
    for element in set.split(',').map(|e| e.trim_matches([' ', '\t'])) {
        if element.is_empty() {
            continue;
        }
        specs += 1;
        if specs > MAX_RANGES {
            return RangeDecision::Full;
        }
        let Some(spec) = parse_spec(element) else {
            return RangeDecision::Full;
        };
        nonzero_suffix |= matches!(spec, Spec::Suffix(n) if n > 0);
        if let Some(range) = satisfiable(spec, length) {
            ranges.push(range);
        }
    }
    if specs == 0 || length == 0 && nonzero_suffix {
        return RangeDecision::Full;
    }
    if ranges.is_empty() {
        return RangeDecision::Unsatisfiable;
    }
    RangeDecision::Partial(coalesce(ranges))
}

/// Parses one range-spec; `None` when it is not valid syntax.
fn parse_spec(element: &str) -> Option<Spec> {
    let (first, last) = element.split_once('-')?;
    if first.is_empty() {
        return Some(Spec::Suffix(digits(last)?));
    }
    let first = digits(first)?;
    if last.is_empty() {
        return Some(Spec::From { first, last: None });
    }
    let last = digits(last)?;
    // RFC 9110 §14.1.1: last-pos below first-pos is invalid.
    (last >= first).then_some(Spec::From {
        first,
        last: Some(last),
    })
}

/// `1*DIGIT`, saturating at `u64::MAX` (a huge position is still a position).
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

/// The part of `spec` inside an object of `length` bytes, if any.
fn satisfiable(spec: Spec, length: u64) -> Option<ByteRange> {
    if length == 0 {
        return None;
    }
    match spec {
        Spec::From { first, last } => (first < length).then(|| ByteRange {
            first,
            last: last.map_or(length - 1, |last| last.min(length - 1)),
        }),
        Spec::Suffix(0) => None,
        Spec::Suffix(n) => Some(ByteRange {
            first: length.saturating_sub(n),
            last: length - 1,
        }),
    }
}

/// Keeps the client's order unless ranges overlap or touch; then sorts and merges them.
fn coalesce(mut ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    if ranges.len() < 2 {
        return ranges;
    }
    let mut sorted = ranges.clone();
    sorted.sort_unstable_by_key(|r| r.first);
    let touching = sorted
        .windows(2)
        .any(|pair| pair[1].first <= pair[0].last.saturating_add(1));
    if !touching {
        return ranges;
    }
    ranges.clear();
    for range in sorted {
        match ranges.last_mut() {
            Some(previous) if range.first <= previous.last.saturating_add(1) => {
                previous.last = previous.last.max(range.last);
            }
            _ => ranges.push(range),
        }
    }
    ranges
}

/// Whether `If-Range` lets the `Range` apply (RFC 9110 §13.1.5): true when
/// absent, or when it names the cached representation — an entity tag by
/// strong comparison, or a date equal to `Last-Modified`. Otherwise (other
/// validator, weak tag, invalid value) the whole object is served.
pub fn if_range_allows(headers: &HeaderMap, meta: &ObjectMeta) -> bool {
    let mut values = headers.get_all(header::IF_RANGE).iter();
    let Some(value) = values.next() else {
        return true;
    };
    if values.next().is_some() {
        return false;
    }
    let Ok(text) = value.to_str() else {
        return false;
    };
    let text = text.trim();
    if text.starts_with('"') || text.starts_with("W/") {
        match (EntityTag::parse(text), meta.etag.as_deref()) {
            (Some(asked), Some(stored)) => strong_eq(&asked, &EntityTag::of_stored(stored)),
            _ => false,
        }
    } else {
        match (http_date(value), meta.last_modified) {
            (Some(asked), Some(modified)) => asked == modified,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use http::HeaderValue;

    use super::*;

    fn r(first: u64, last: u64) -> ByteRange {
        ByteRange { first, last }
    }

    fn partial(ranges: &[(u64, u64)]) -> RangeDecision {
        RangeDecision::Partial(ranges.iter().map(|&(a, b)| r(a, b)).collect())
    }

    #[test]
    fn single_ranges_of_every_form() {
        assert_eq!(parse("bytes=0-0", 100), partial(&[(0, 0)]));
        assert_eq!(parse("bytes=0-99", 100), partial(&[(0, 99)]));
        assert_eq!(parse("bytes=10-19", 100), partial(&[(10, 19)]));
        // last-pos beyond the end is clamped.
        assert_eq!(parse("bytes=90-1000", 100), partial(&[(90, 99)]));
        // Open-ended.
        assert_eq!(parse("bytes=95-", 100), partial(&[(95, 99)]));
        assert_eq!(parse("bytes=0-", 100), partial(&[(0, 99)]));
        // Suffix, including one longer than the object.
        assert_eq!(parse("bytes=-10", 100), partial(&[(90, 99)]));
        assert_eq!(parse("bytes=-100", 100), partial(&[(0, 99)]));
        assert_eq!(parse("bytes=-1000", 100), partial(&[(0, 99)]));
        // Huge numbers saturate.
        assert_eq!(
            parse("bytes=5-99999999999999999999999", 100),
            partial(&[(5, 99)])
        );
        assert_eq!(
            parse("bytes=-99999999999999999999999", 100),
            partial(&[(0, 99)])
        );
    }

    #[test]
    fn unit_and_whitespace_are_lenient_where_the_grammar_allows() {
        assert_eq!(parse("Bytes=1-2", 100), partial(&[(1, 2)]));
        assert_eq!(parse("bytes=1-2 , 5-6", 100), partial(&[(1, 2), (5, 6)]));
        assert_eq!(parse("bytes=1-2,\t,5-6,", 100), partial(&[(1, 2), (5, 6)]));
    }

    #[test]
    fn unsatisfiable_ranges() {
        assert_eq!(parse("bytes=100-", 100), RangeDecision::Unsatisfiable);
        assert_eq!(parse("bytes=100-200", 100), RangeDecision::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 100), RangeDecision::Unsatisfiable);
        assert_eq!(
            parse("bytes=200-300, -0", 100),
            RangeDecision::Unsatisfiable
        );
        assert_eq!(
            parse("bytes=99999999999999999999999-", 100),
            RangeDecision::Unsatisfiable
        );
        // Unsatisfiable specs are dropped when another one is satisfiable.
        assert_eq!(parse("bytes=200-300, 0-4", 100), partial(&[(0, 4)]));
    }

    #[test]
    fn invalid_syntax_is_ignored() {
        for bad in [
            "bytes",
            "bytes=",
            "bytes=,",
            "bytes=abc",
            "bytes=5",
            "bytes=5-4",
            "bytes=-",
            "bytes=--5",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=1 -2",
            "bytes=0x10-20",
            "bytes=1-2,3",
            "items=0-5",
            "=0-5",
        ] {
            assert_eq!(parse(bad, 100), RangeDecision::Full, "{bad}");
        }
    }

    #[test]
    fn several_range_lines_or_non_ascii_values_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.append(header::RANGE, HeaderValue::from_static("bytes=0-1"));
        assert_eq!(decide(&headers, 10), partial(&[(0, 1)]));
        headers.append(header::RANGE, HeaderValue::from_static("bytes=2-3"));
        assert_eq!(decide(&headers, 10), RangeDecision::Full);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::RANGE,
            HeaderValue::from_bytes(b"bytes=0-1\xff").unwrap(),
        );
        assert_eq!(decide(&headers, 10), RangeDecision::Full);
        assert_eq!(decide(&HeaderMap::new(), 10), RangeDecision::Full);
    }

    #[test]
    fn multiple_ranges_keep_their_order_unless_they_overlap() {
        assert_eq!(parse("bytes=50-59,0-9", 100), partial(&[(50, 59), (0, 9)]));
        assert_eq!(parse("bytes=0-9,-10", 100), partial(&[(0, 9), (90, 99)]));
        // Overlapping: sorted and merged.
        assert_eq!(
            parse("bytes=50-59,0-9,55-70", 100),
            partial(&[(0, 9), (50, 70)])
        );
        // Adjacent ranges merge into one: a plain single range.
        assert_eq!(parse("bytes=0-9,10-19", 100), partial(&[(0, 19)]));
        // The overlap-abuse pattern collapses to one range, or beyond
        // MAX_RANGES specs to the whole object.
        let abuse = vec!["0-"; MAX_RANGES].join(",");
        assert_eq!(parse(&format!("bytes={abuse}"), 100), partial(&[(0, 99)]));
        let abuse = vec!["0-"; MAX_RANGES + 1].join(",");
        assert_eq!(parse(&format!("bytes={abuse}"), 100), RangeDecision::Full);
        assert_eq!(parse("bytes=0-,-100,0-99", 100), partial(&[(0, 99)]));
    }

    #[test]
    fn more_than_max_ranges_serves_the_whole_object() {
        let specs: Vec<String> = (0..MAX_RANGES as u64)
            .map(|i| format!("{}-{}", i * 2, i * 2))
            .collect();
        match parse(&format!("bytes={}", specs.join(",")), 1000) {
            RangeDecision::Partial(ranges) => assert_eq!(ranges.len(), MAX_RANGES),
            other => panic!("{other:?}"),
        }
        let specs: Vec<String> = (0..=MAX_RANGES as u64)
            .map(|i| format!("{}-{}", i * 2, i * 2))
            .collect();
        assert_eq!(
            parse(&format!("bytes={}", specs.join(",")), 1000),
            RangeDecision::Full
        );
    }

    #[test]
    fn a_zero_length_object() {
        assert_eq!(parse("bytes=0-", 0), RangeDecision::Unsatisfiable);
        assert_eq!(parse("bytes=0-0", 0), RangeDecision::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 0), RangeDecision::Unsatisfiable);
        assert_eq!(parse("bytes=-5", 0), RangeDecision::Full);
    }

    fn meta(etag: Option<&str>, modified: Option<SystemTime>) -> ObjectMeta {
        ObjectMeta {
            headers: HeaderMap::new(),
            content_length: 10,
            etag: etag.map(str::to_owned),
            last_modified: modified,
            stored_at: SystemTime::UNIX_EPOCH,
            fresh_until: SystemTime::UNIX_EPOCH,
        }
    }

    fn if_range(values: &[&str], meta: &ObjectMeta) -> bool {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::IF_RANGE, HeaderValue::from_str(value).unwrap());
        }
        if_range_allows(&headers, meta)
    }

    #[test]
    fn if_range_with_an_entity_tag_needs_a_strong_match() {
        let m = meta(Some("\"abc\""), None);
        assert!(if_range(&[], &m));
        assert!(if_range(&["\"abc\""], &m));
        assert!(if_range(&[" \"abc\" "], &m));
        assert!(!if_range(&["\"xyz\""], &m));
        assert!(!if_range(&["W/\"abc\""], &m));
        assert!(!if_range(&["\"abc"], &m));
        assert!(!if_range(&["\"abc\"", "\"abc\""], &m));
        assert!(!if_range(&["\"abc\", \"xyz\""], &m));
        assert!(!if_range(&["W/\"abc\""], &meta(Some("W/\"abc\""), None)));
        assert!(!if_range(&["\"abc\""], &meta(None, None)));
    }

    #[test]
    fn if_range_with_a_date_needs_an_exact_last_modified() {
        let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let m = meta(Some("\"abc\""), Some(modified));
        let exact = httpdate::fmt_http_date(modified);
        let later = httpdate::fmt_http_date(modified + Duration::from_secs(1));
        let earlier = httpdate::fmt_http_date(modified - Duration::from_secs(1));
        assert!(if_range(&[&exact], &m));
        assert!(!if_range(&[&later], &m));
        assert!(!if_range(&[&earlier], &m));
        assert!(!if_range(&["yesterday"], &m));
        assert!(!if_range(&[&exact], &meta(Some("\"abc\""), None)));
    }
}

#[cfg(test)]
mod proptests;
