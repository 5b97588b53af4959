//! The client's query string, parsed once, the way S3 reads it.
//!
//! A query is read by three layers: authentication (a token in a query
//! parameter), the cache (the `versionId` of the key, and whether the answer
//! differs from the plain object) and the S3 request builder (the
//! allowlisted parameters forwarded to S3). When two of them parse the same
//! bytes differently, a request can be stored under the key of another:
//! `?response%2Dcontent-type=text/html` read raw by the cache (no override,
//! cacheable) but decoded by the S3 request (an override) poisons the
//! plain object's entry. So there is one parser, [`pairs`], with
//! `application/x-www-form-urlencoded` semantics (`+` is a space, names and
//! values percent-decoded), and one parsed form of what is forwarded,
//! [`ForwardedQuery`], from which the cache builds its decisions and the S3
//! request its query.

use std::borrow::Cow;

use http::Request;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Query parameters forwarded to S3; every other parameter is dropped.
pub const FORWARDED_QUERY_PARAMS: [&str; 8] = [
    "versionId",
    "partNumber",
    "response-content-type",
    "response-content-language",
    "response-expires",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
];

/// The parameter that selects an object version (part of the cache key).
const VERSION_ID: &str = "versionId";

/// The parameter that selects one part of a multipart object.
const PART_NUMBER: &str = "partNumber";

/// SigV4 query encoding: everything but `A-Za-z0-9-_.~`.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The decoded `(name, value)` pairs of a raw query, in order: the one query
/// parser of the proxy (`application/x-www-form-urlencoded`: `+` is a space,
/// `%XX` decoded in names and values, invalid UTF-8 replaced).
pub fn pairs(raw: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(raw.as_bytes())
}

/// The allowlisted parameters of a request, decoded: exactly what S3 receives.
///
/// Only the first occurrence of each name counts. Computed once per request
/// ([`ForwardedQuery::remember`]) after authentication removed query tokens,
/// and read by the cache and the S3 request builder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardedQuery {
    params: Vec<(&'static str, String)>,
}

/// The parsed form of a request without forwarded parameters.
static EMPTY: ForwardedQuery = ForwardedQuery { params: Vec::new() };

impl ForwardedQuery {
    /// Parses a raw query (without the `?`), keeping the allowlisted names.
    pub fn parse(raw: &str) -> Self {
        let mut params: Vec<(&'static str, String)> = Vec::new();
        for (name, value) in pairs(raw) {
            let Some(allowed) = FORWARDED_QUERY_PARAMS.iter().find(|p| **p == name) else {
                continue;
            };
            if params.iter().any(|(n, _)| n == allowed) {
                continue;
            }
            params.push((allowed, value.into_owned()));
        }
        Self { params }
    }

    /// The request's forwarded parameters: the form stored by
    /// [`ForwardedQuery::remember`], or parsed from the URI now. A request
    /// without a query costs no parse and no allocation.
    pub fn of<B>(request: &Request<B>) -> Cow<'_, Self> {
        let Some(raw) = request.uri().query() else {
            return Cow::Borrowed(&EMPTY);
        };
        match request.extensions().get::<Self>() {
            Some(parsed) => Cow::Borrowed(parsed),
            None => Cow::Owned(Self::parse(raw)),
        }
    }

    /// Parses the request's query once and stores the result as an
    /// extension, so every later reader sees the same form. Call it only
    /// once the URI is final (query tokens removed).
    pub fn remember<B>(request: &mut Request<B>) {
        let Some(raw) = request.uri().query() else {
            return;
        };
        if request.extensions().get::<Self>().is_none() {
            let parsed = Self::parse(raw);
            request.extensions_mut().insert(parsed);
        }
    }

    /// The decoded value of a forwarded parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The decoded `versionId`, when one is forwarded.
    pub fn version_id(&self) -> Option<&str> {
        self.get(VERSION_ID)
    }

    /// Whether S3's answer differs from the plain object's: one part
    /// (`partNumber`) or overridden headers (any `response-*`).
    pub fn alters_answer(&self) -> bool {
        self.params
            .iter()
            .any(|(name, _)| *name == PART_NUMBER || name.starts_with("response-"))
    }

    /// Whether nothing is forwarded.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The query sent to S3: the parameters in the order received, values
    /// re-encoded for SigV4; empty (and not allocated) when nothing is kept.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.params {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(name);
            out.push('=');
            out.extend(utf8_percent_encode(value, QUERY));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(raw: &str) -> String {
        ForwardedQuery::parse(raw).encode()
    }

    #[test]
    fn the_parser_decodes_names_values_and_plus() {
        let parsed: Vec<(String, String)> = pairs("a+b=c+d&e%2Df=%2B&&g&h=1=2&%ZZ=%")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let expected = [
            ("a b", "c d"),
            ("e-f", "+"),
            ("g", ""),
            ("h", "1=2"),
            ("%ZZ", "%"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(parsed, expected);
    }

    #[test]
    fn drops_everything_not_allowlisted() {
        for q in [
            "acl",
            "tagging",
            "list-type=2",
            "uploads",
            "torrent",
            "delete",
            "policy",
            "X-Amz-Signature=abc",
            "VersionId=1",
            "response-foo=1",
            "",
        ] {
            let parsed = ForwardedQuery::parse(q);
            assert!(parsed.is_empty(), "{q}");
            assert_eq!(parsed.encode(), "", "{q}");
        }
    }

    #[test]
    fn keeps_allowlisted_reencoded_first_only() {
        assert_eq!(
            encoded("acl&versionId=v%2F1&versionId=v2&token=t"),
            "versionId=v%2F1"
        );
        assert_eq!(
            encoded("response-content-disposition=attachment%3B%20filename%3D%22a+b.txt%22"),
            "response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22"
        );
        assert_eq!(encoded("partNumber=2&x=1"), "partNumber=2");
    }

    #[test]
    fn names_are_judged_decoded() {
        let q = ForwardedQuery::parse(
            "response%2Dcontent-type=text/html&respons%65-content-disposition=inline%3Bfilename%3Dx.html",
        );
        assert!(q.alters_answer());
        assert_eq!(q.get("response-content-type"), Some("text/html"));
        assert_eq!(
            q.get("response-content-disposition"),
            Some("inline;filename=x.html")
        );
        // The first decoded occurrence wins, whatever its spelling.
        let q = ForwardedQuery::parse("version%49d=OLD&versionId=NEW");
        assert_eq!(q.version_id(), Some("OLD"));
        assert_eq!(q.encode(), "versionId=OLD");
        assert!(!q.alters_answer());
        assert!(ForwardedQuery::parse("part%4Eumber=1").alters_answer());
    }

    #[test]
    fn plus_is_a_space_and_an_escaped_plus_a_plus() {
        let spaced = ForwardedQuery::parse("versionId=Ab+Cd");
        let plus = ForwardedQuery::parse("versionId=Ab%2BCd");
        assert_eq!(spaced.version_id(), Some("Ab Cd"));
        assert_eq!(plus.version_id(), Some("Ab+Cd"));
        assert_eq!(spaced.encode(), "versionId=Ab%20Cd");
        assert_eq!(plus.encode(), "versionId=Ab%2BCd");
        assert_eq!(spaced, ForwardedQuery::parse("versionId=Ab%20Cd"));
    }

    #[test]
    fn remembered_once_and_read_back() {
        let mut request = Request::builder()
            .uri("/b/k?versionId=1&acl")
            .body(())
            .unwrap();
        ForwardedQuery::remember(&mut request);
        assert!(matches!(ForwardedQuery::of(&request), Cow::Borrowed(_)));
        assert_eq!(ForwardedQuery::of(&request).version_id(), Some("1"));
        let plain = Request::builder().uri("/b/k").body(()).unwrap();
        assert!(ForwardedQuery::of(&plain).is_empty());
        let mut plain = plain;
        ForwardedQuery::remember(&mut plain);
        assert!(plain.extensions().get::<ForwardedQuery>().is_none());
    }
}
