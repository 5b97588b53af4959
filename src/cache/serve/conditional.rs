//! Conditional requests against a cached object (RFC 9110 §13.2.2).
//!
//! Precedence: `If-Match`, else `If-Unmodified-Since` → 412 when false;
//! then `If-None-Match`, else (GET/HEAD only) `If-Modified-Since` → 304
//! when false (412 for other methods). `If-Range` is evaluated by the range
//! step, after these.

use http::{HeaderMap, Method, header};

use super::etag::{EntityTag, list_matches, strong_eq, weak_eq};
use crate::cache::ObjectMeta;
use crate::cache::policy::http_date;

/// What the preconditions decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No precondition stops the request: serve it (200/206).
    Proceed,
    /// The client's copy is current: 304 with the validators.
    NotModified,
    /// A precondition failed: 412.
    Failed,
}

/// Evaluates the request's preconditions against the cached object.
pub fn evaluate(method: &Method, headers: &HeaderMap, meta: &ObjectMeta) -> Precondition {
    let current = || meta.etag.as_deref().map(EntityTag::of_stored);

    // Step 1 and 2: If-Match, else If-Unmodified-Since.
    if headers.contains_key(header::IF_MATCH) {
        let values = headers.get_all(header::IF_MATCH).iter();
        if !list_matches(values, current().as_ref(), strong_eq) {
            return Precondition::Failed;
        }
    } else if let Some(since) = single_date(headers, header::IF_UNMODIFIED_SINCE)
        && let Some(modified) = meta.last_modified
        && modified > since
    {
        return Precondition::Failed;
    }

    let safe = *method == Method::GET || *method == Method::HEAD;
    // Step 3 and 4: If-None-Match, else If-Modified-Since (GET/HEAD only).
    if headers.contains_key(header::IF_NONE_MATCH) {
        let values = headers.get_all(header::IF_NONE_MATCH).iter();
        if list_matches(values, current().as_ref(), weak_eq) {
            return if safe {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if safe
        && let Some(since) = single_date(headers, header::IF_MODIFIED_SINCE)
        && let Some(modified) = meta.last_modified
        && modified <= since
    {
        return Precondition::NotModified;
    }
    Precondition::Proceed
}

/// The date of a field that must appear once as a valid HTTP-date; a
/// missing, repeated or invalid one is ignored (RFC 9110 §13.1.3, §13.1.4).
fn single_date(headers: &HeaderMap, name: header::HeaderName) -> Option<std::time::SystemTime> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    http_date(value)
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};

    use super::*;
    use crate::cache::serve::tests::{at, date};

    fn meta(etag: Option<&str>, modified: Option<i64>) -> ObjectMeta {
        ObjectMeta {
            headers: HeaderMap::new(),
            content_length: 0,
            etag: etag.map(str::to_owned),
            last_modified: modified.map(at),
            stored_at: at(0),
            fresh_until: at(0),
        }
    }

    fn eval_with(method: Method, pairs: &[(&str, &str)], meta: &ObjectMeta) -> Precondition {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        evaluate(&method, &headers, meta)
    }

    fn eval(pairs: &[(&str, &str)]) -> Precondition {
        eval_with(Method::GET, pairs, &meta(Some("\"abc\""), Some(0)))
    }

    use Precondition::{Failed, NotModified, Proceed};

    #[test]
    fn no_conditions_proceed() {
        assert_eq!(eval(&[]), Proceed);
    }

    #[test]
    fn if_match_uses_strong_comparison_lists_and_star() {
        assert_eq!(eval(&[("if-match", "\"abc\"")]), Proceed);
        assert_eq!(eval(&[("if-match", "\"x\", \"abc\"")]), Proceed);
        assert_eq!(
            eval(&[("if-match", "\"x\""), ("if-match", "\"abc\"")]),
            Proceed
        );
        assert_eq!(eval(&[("if-match", "*")]), Proceed);
        assert_eq!(eval(&[("if-match", "\"x\"")]), Failed);
        // A weak tag never matches strongly, even with the same opaque part.
        assert_eq!(eval(&[("if-match", "W/\"abc\"")]), Failed);
        // Garbage is not a match.
        assert_eq!(eval(&[("if-match", "abc")]), Failed);
        // A weak stored ETag never satisfies If-Match, `*` aside.
        let weak = meta(Some("W/\"abc\""), None);
        assert_eq!(
            eval_with(Method::GET, &[("if-match", "\"abc\"")], &weak),
            Failed
        );
        assert_eq!(eval_with(Method::GET, &[("if-match", "*")], &weak), Proceed);
        // No stored ETag: only `*` matches.
        let untagged = meta(None, None);
        assert_eq!(
            eval_with(Method::GET, &[("if-match", "\"abc\"")], &untagged),
            Failed
        );
        assert_eq!(
            eval_with(Method::GET, &[("if-match", "*")], &untagged),
            Proceed
        );
    }

    #[test]
    fn if_unmodified_since_dates_equal_older_newer_and_invalid() {
        assert_eq!(eval(&[("if-unmodified-since", &date(0))]), Proceed);
        assert_eq!(eval(&[("if-unmodified-since", &date(10))]), Proceed);
        assert_eq!(eval(&[("if-unmodified-since", &date(-10))]), Failed);
        assert_eq!(eval(&[("if-unmodified-since", "not a date")]), Proceed);
        // Obsolete formats are accepted (RFC 850, asctime).
        assert_eq!(
            eval(&[("if-unmodified-since", "Sunday, 06-Nov-94 08:49:37 GMT")]),
            Failed
        );
        assert_eq!(
            eval(&[("if-unmodified-since", "Sun Nov  6 08:49:37 1994")]),
            Failed
        );
        // Without a stored Last-Modified the field is ignored.
        let undated = meta(Some("\"abc\""), None);
        assert_eq!(
            eval_with(
                Method::GET,
                &[("if-unmodified-since", &date(-10))],
                &undated
            ),
            Proceed
        );
    }

    #[test]
    fn if_match_takes_precedence_over_if_unmodified_since() {
        // A matching If-Match makes the failing date irrelevant...
        let old = date(-10);
        assert_eq!(
            eval(&[("if-match", "\"abc\""), ("if-unmodified-since", &old)]),
            Proceed
        );
        // ...and a failing If-Match fails even with a passing date.
        let new = date(10);
        assert_eq!(
            eval(&[("if-match", "\"x\""), ("if-unmodified-since", &new)]),
            Failed
        );
    }

    #[test]
    fn if_none_match_uses_weak_comparison_lists_and_star() {
        assert_eq!(eval(&[("if-none-match", "\"abc\"")]), NotModified);
        assert_eq!(eval(&[("if-none-match", "W/\"abc\"")]), NotModified);
        assert_eq!(eval(&[("if-none-match", "\"x\" , W/\"abc\"")]), NotModified);
        assert_eq!(
            eval(&[("if-none-match", "\"x\""), ("if-none-match", "\"abc\"")]),
            NotModified
        );
        assert_eq!(eval(&[("if-none-match", "*")]), NotModified);
        assert_eq!(eval(&[("if-none-match", "\"x\", \"y\"")]), Proceed);
        assert_eq!(eval(&[("if-none-match", "abc")]), Proceed);
        let weak = meta(Some("W/\"abc\""), None);
        assert_eq!(
            eval_with(Method::GET, &[("if-none-match", "\"abc\"")], &weak),
            NotModified
        );
        let untagged = meta(None, None);
        assert_eq!(
            eval_with(Method::GET, &[("if-none-match", "\"abc\"")], &untagged),
            Proceed
        );
        assert_eq!(
            eval_with(Method::GET, &[("if-none-match", "*")], &untagged),
            NotModified
        );
    }

    #[test]
    fn if_none_match_answers_304_to_head_and_412_to_other_methods() {
        let m = meta(Some("\"abc\""), Some(0));
        assert_eq!(
            eval_with(Method::HEAD, &[("if-none-match", "\"abc\"")], &m),
            NotModified
        );
        assert_eq!(
            eval_with(Method::PUT, &[("if-none-match", "\"abc\"")], &m),
            Failed
        );
    }

    #[test]
    fn if_modified_since_dates_equal_older_newer_and_invalid() {
        assert_eq!(eval(&[("if-modified-since", &date(0))]), NotModified);
        assert_eq!(eval(&[("if-modified-since", &date(10))]), NotModified);
        assert_eq!(eval(&[("if-modified-since", &date(-10))]), Proceed);
        assert_eq!(eval(&[("if-modified-since", "garbage")]), Proceed);
        // Two dates in one field are invalid: ignored.
        let two = format!("{}, {}", date(0), date(0));
        assert_eq!(eval(&[("if-modified-since", &two)]), Proceed);
        assert_eq!(
            eval(&[
                ("if-modified-since", &date(0)),
                ("if-modified-since", &date(0))
            ]),
            Proceed
        );
        let undated = meta(Some("\"abc\""), None);
        assert_eq!(
            eval_with(Method::GET, &[("if-modified-since", &date(10))], &undated),
            Proceed
        );
        // Only for GET and HEAD.
        let m = meta(None, Some(0));
        assert_eq!(
            eval_with(Method::HEAD, &[("if-modified-since", &date(0))], &m),
            NotModified
        );
        assert_eq!(
            eval_with(Method::POST, &[("if-modified-since", &date(0))], &m),
            Proceed
        );
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since() {
        let d = date(10);
        // A non-matching If-None-Match serves the object even though the date says 304.
        assert_eq!(
            eval(&[("if-none-match", "\"x\""), ("if-modified-since", &d)]),
            Proceed
        );
        let old = date(-10);
        assert_eq!(
            eval(&[("if-none-match", "\"abc\""), ("if-modified-since", &old)]),
            NotModified
        );
    }

    #[test]
    fn a_failed_if_match_wins_over_a_matching_if_none_match() {
        assert_eq!(
            eval(&[("if-match", "\"x\""), ("if-none-match", "\"abc\"")]),
            Failed
        );
        let old = date(-10);
        assert_eq!(
            eval(&[("if-unmodified-since", &old), ("if-modified-since", &old)]),
            Failed
        );
        assert_eq!(
            eval(&[("if-match", "\"abc\""), ("if-none-match", "\"abc\"")]),
            NotModified
        );
    }
}
