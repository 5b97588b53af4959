//! Finding the token in a request, and removing query-string tokens from it.

use http::{HeaderMap, Uri, header};

use crate::config::TokenSource;
use crate::query::pairs;

/// The first token found in `sources` order, if any.
///
/// An empty value (`Authorization: Bearer `) counts as absent, so the next
/// source is tried.
pub fn find_token(sources: &[TokenSource], headers: &HeaderMap, uri: &Uri) -> Option<String> {
    sources.iter().find_map(|source| match source {
        TokenSource::Bearer => headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(strip_bearer)
            .map(str::to_owned),
        TokenSource::Header { name, prefix } => headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| match prefix {
                Some(p) => v.strip_prefix(p.as_str()),
                None => Some(v),
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        TokenSource::Query { name } => query_value(uri.query()?, name),
        TokenSource::Cookie { name } => headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| cookie_value(v, name))
            .map(str::to_owned),
    })
}

/// `Bearer <token>` (scheme case-insensitive, RFC 6750).
fn strip_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// The first non-empty value of parameter `name`, read with the proxy's one
/// query parser (decoded names and values, `+` as a space).
fn query_value(query: &str, name: &str) -> Option<String> {
    pairs(query)
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.into_owned())
}

/// Whether one raw `name=value` segment is one of the parameters `names`
/// (its name decoded by the same parser).
fn is_named(pair: &str, names: &[String]) -> bool {
    pairs(pair)
        .next()
        .is_some_and(|(k, _)| names.iter().any(|n| *n == k))
}

/// The names of the query parameters that carry tokens for these sources.
pub fn query_names(sources: &[TokenSource]) -> Vec<String> {
    sources
        .iter()
        .filter_map(|s| match s {
            TokenSource::Query { name } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// `uri` without the parameters named in `names` (the rest kept in order);
/// `None` when there is nothing to remove.
pub fn without_query_params(uri: &Uri, names: &[String]) -> Option<Uri> {
    let query = uri.query()?;
    let is_token = |pair: &str| is_named(pair, names);
    if !query.split('&').any(is_token) {
        return None;
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !is_token(p))
        .collect();
    let path_and_query = if kept.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn sources() -> Vec<TokenSource> {
        vec![
            TokenSource::Bearer,
            TokenSource::Header {
                name: http::HeaderName::from_static("x-auth-token"),
                prefix: Some("Token ".into()),
            },
            TokenSource::Query {
                name: "token".into(),
            },
            TokenSource::Cookie {
                name: "session".into(),
            },
        ]
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn each_source_in_order() {
        let uri: Uri = "/b/k?token=q1&x=1".parse().unwrap();
        let all = headers(&[
            ("authorization", "Bearer b1"),
            ("x-auth-token", "Token h1"),
            ("cookie", "a=1; session=c1"),
        ]);
        assert_eq!(find_token(&sources(), &all, &uri).as_deref(), Some("b1"));
        let h = headers(&[("x-auth-token", "Token h1"), ("cookie", "session=c1")]);
        assert_eq!(find_token(&sources(), &h, &uri).as_deref(), Some("h1"));
        let h = headers(&[("cookie", "session=c1")]);
        assert_eq!(find_token(&sources(), &h, &uri).as_deref(), Some("q1"));
        let plain: Uri = "/b/k".parse().unwrap();
        assert_eq!(find_token(&sources(), &h, &plain).as_deref(), Some("c1"));
        assert_eq!(find_token(&sources(), &HeaderMap::new(), &plain), None);
    }

    #[test]
    fn empty_or_foreign_values_are_skipped() {
        let uri: Uri = "/b/k".parse().unwrap();
        let h = headers(&[("authorization", "Basic abc"), ("cookie", "session=c1")]);
        assert_eq!(find_token(&sources(), &h, &uri).as_deref(), Some("c1"));
        let h = headers(&[("authorization", "bearer   lower  ")]);
        assert_eq!(find_token(&sources(), &h, &uri).as_deref(), Some("lower"));
        let h = headers(&[("x-auth-token", "no-prefix")]);
        assert_eq!(find_token(&sources(), &h, &uri), None);
    }

    #[test]
    fn query_tokens_are_read_with_the_one_parser() {
        let h = HeaderMap::new();
        let uri: Uri = "/b/k?to%6Ben=a+b%2Bc&x=1".parse().unwrap();
        assert_eq!(find_token(&sources(), &h, &uri).as_deref(), Some("a b+c"));
        let uri: Uri = "/b/k?token=&token=second".parse().unwrap();
        assert_eq!(find_token(&sources(), &h, &uri).as_deref(), Some("second"));
    }

    #[test]
    fn query_token_is_removed_and_the_rest_kept() {
        let names = vec!["token".to_owned()];
        let uri: Uri = "/b/k?a=1&token=s3cr3t&b=2".parse().unwrap();
        let cleaned = without_query_params(&uri, &names).unwrap();
        assert_eq!(cleaned.to_string(), "/b/k?a=1&b=2");
        let uri: Uri = "/b/k?token=s3cr3t".parse().unwrap();
        assert_eq!(
            without_query_params(&uri, &names).unwrap().to_string(),
            "/b/k"
        );
        let uri: Uri = "/b/k?other=1".parse().unwrap();
        assert!(without_query_params(&uri, &names).is_none());
        let uri: Uri = "/b/k?to%6Ben=x".parse().unwrap();
        assert_eq!(
            without_query_params(&uri, &names).unwrap().to_string(),
            "/b/k"
        );
    }
}

#[cfg(test)]
mod proptests;
