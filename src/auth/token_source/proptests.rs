//! Properties of token extraction on any request a client can send: it
//! never panics, the token found is a non-empty piece of the value it came
//! from (or the decoded value of the named query parameter), sources are
//! tried in order, and removing query tokens leaves none behind.

use http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use proptest::prelude::*;

use super::{find_token, query_names, without_query_params};
use crate::config::TokenSource;
use crate::query::pairs;

const CUSTOM: &str = "x-auth-token";

fn sources() -> Vec<TokenSource> {
    vec![
        TokenSource::Bearer,
        TokenSource::Header {
            name: HeaderName::from_static(CUSTOM),
            prefix: Some("Token ".into()),
        },
        TokenSource::Header {
            name: HeaderName::from_static("x-raw-token"),
            prefix: None,
        },
        TokenSource::Query {
            name: "token".into(),
        },
        TokenSource::Cookie {
            name: "session".into(),
        },
    ]
}

/// Header bytes: mostly printable ASCII around the interesting prefixes,
/// sometimes any byte a header value may hold (obs-text included).
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (
            "(Bearer|bearer|BEARER|Token|Basic|)",
            "[ \t]{0,2}",
            "[ -~]{0,12}"
        )
            .prop_map(|(a, b, c)| format!("{a}{b}{c}").into_bytes()),
        (
            "[ -~]{0,8}",
            "(session|other)",
            "[ =\"]{0,2}",
            "[ -~;]{0,10}"
        )
            .prop_map(|(a, b, c, d)| format!("{a}{b}{c}{d}").into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

/// A query string with `token=` pairs likely, percent escapes included.
fn query() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("token=".to_owned()),
            Just("tok%65n=".to_owned()),
            Just("&".to_owned()),
            Just("=".to_owned()),
            Just("+".to_owned()),
            Just("%".to_owned()),
            Just("%2B".to_owned()),
            Just("%26".to_owned()),
            "[a-z0-9]{1,4}",
        ],
        0..10,
    )
    .prop_map(|pieces| pieces.concat())
}

type Lines = Vec<(u8, Vec<u8>)>;

fn request(lines: &Lines, query: &str) -> (HeaderMap, Uri) {
    let names = [
        header::AUTHORIZATION,
        HeaderName::from_static(CUSTOM),
        HeaderName::from_static("x-raw-token"),
        header::COOKIE,
    ];
    let mut headers = HeaderMap::new();
    for (which, bytes) in lines {
        if let Ok(value) = HeaderValue::from_bytes(bytes) {
            headers.append(names[usize::from(*which) % names.len()].clone(), value);
        }
    }
    let uri = format!("/b/key?{query}")
        .parse()
        .unwrap_or_else(|_| Uri::from_static("/b/key"));
    (headers, uri)
}

/// The values a source reads, as text.
fn values_of<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// Where a token found by `source` alone must come from.
fn check_origin(
    source: &TokenSource,
    token: &str,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(), TestCaseError> {
    prop_assert!(!token.is_empty());
    let name = match source {
        TokenSource::Bearer => header::AUTHORIZATION,
        TokenSource::Header { name, .. } => name.clone(),
        TokenSource::Cookie { .. } => header::COOKIE,
        TokenSource::Query { name } => {
            let query = uri.query().unwrap_or_default();
            prop_assert!(
                pairs(query).any(|(k, v)| k == name.as_str() && v == token),
                "{token:?} is not the value of {name} in {query:?}"
            );
            return Ok(());
        }
    };
    let values = values_of(headers, &name);
    prop_assert!(
        values.iter().any(|v| v.contains(token)),
        "{token:?} is in none of {values:?}"
    );
    Ok(())
}

proptest! {
    #[test]
    fn a_token_is_a_piece_of_its_source(
        lines in proptest::collection::vec((any::<u8>(), value()), 0..6),
        query in query(),
    ) {
        let (headers, uri) = request(&lines, &query);
        let all = sources();
        let mut first = None;
        for source in &all {
            let alone = find_token(std::slice::from_ref(source), &headers, &uri);
            if let Some(token) = &alone {
                check_origin(source, token, &headers, &uri)?;
            }
            first = first.or(alone);
        }
        // Sources are tried in order: the first one holding a token wins.
        prop_assert_eq!(find_token(&all, &headers, &uri), first);
    }

    #[test]
    fn removing_query_tokens_leaves_none(query in query()) {
        let (_, uri) = request(&Vec::new(), &query);
        let names = query_names(&sources());
        match without_query_params(&uri, &names) {
            Some(stripped) => {
                prop_assert_eq!(stripped.path(), uri.path());
                let left = stripped.query().unwrap_or_default();
                prop_assert!(
                    pairs(left).all(|(k, _)| !names.iter().any(|n| *n == k)),
                    "{query:?} -> {left:?}"
                );
                prop_assert_eq!(
                    find_token(&[TokenSource::Query { name: "token".into() }], &HeaderMap::new(), &stripped),
                    None
                );
            }
            None => {
                let q = uri.query().unwrap_or_default();
                prop_assert!(pairs(q).all(|(k, _)| !names.iter().any(|n| *n == k)));
            }
        }
    }
}
