use http::{HeaderName, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Client headers forwarded to S3; every other header is dropped.
pub const FORWARDED_REQUEST_HEADERS: [HeaderName; 6] = [
    header::RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
];

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

/// SigV4 query encoding: everything but `A-Za-z0-9-_.~`.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Keeps the allowlisted parameters of a raw query (first occurrence of each),
/// re-encoded canonically; returns an empty string when nothing is left.
pub fn filter_query(raw: Option<&str>) -> String {
    let Some(raw) = raw else {
        return String::new();
    };
    let mut kept: Vec<(&'static str, String)> = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name);
        let Some(allowed) = FORWARDED_QUERY_PARAMS.iter().find(|p| **p == name) else {
            continue;
        };
        if kept.iter().any(|(n, _)| n == allowed) {
            continue;
        }
        kept.push((allowed, decode(value)));
    }
    let mut out = String::new();
    for (name, value) in kept {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(&utf8_percent_encode(&value, QUERY).to_string());
    }
    out
}

/// Form-style decoding (`+` is a space), as S3 itself reads query strings.
fn decode(s: &str) -> String {
    let plus_as_space = s.replace('+', " ");
    percent_decode_str(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            assert_eq!(filter_query(Some(q)), "", "{q}");
        }
        assert_eq!(filter_query(None), "");
    }

    #[test]
    fn keeps_allowlisted_reencoded_first_only() {
        assert_eq!(
            filter_query(Some("acl&versionId=v%2F1&versionId=v2&token=t")),
            "versionId=v%2F1"
        );
        assert_eq!(
            filter_query(Some(
                "response-content-disposition=attachment%3B%20filename%3D%22a+b.txt%22"
            )),
            "response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22"
        );
        assert_eq!(filter_query(Some("partNumber=2&x=1")), "partNumber=2");
    }
}
