//! The origins a bucket answers CORS requests from: parsed and checked once
//! at load time, matched against a request's `Origin` without allocating.

use std::net::Ipv6Addr;

/// The configured `allowed_origins`, in the form a request is matched against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    /// `"*"` was listed: every origin is allowed.
    any: bool,
    /// Exact origins, lower case, without a default port.
    exact: Vec<Box<str>>,
    /// `scheme://*.domain[:port]` as (`scheme://`, `.domain[:port]`).
    subdomains: Vec<(Box<str>, Box<str>)>,
}

/// One entry of `allowed_origins`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `"*"`.
    Any,
    /// `https://app.example.com`, normalised (lower case, no default port).
    Exact(String),
    /// `https://*.example.org`: any subdomain (at any depth), never the
    /// domain itself; as the part before and after the `*`.
    Subdomains {
        /// `https://`.
        prefix: String,
        /// `.example.org`, with its port when one was given.
        suffix: String,
    },
}

impl AllowedOrigins {
    /// The set made of `patterns`.
    pub fn new(patterns: impl IntoIterator<Item = OriginPattern>) -> Self {
        let mut origins = Self::default();
        for pattern in patterns {
            match pattern {
                OriginPattern::Any => origins.any = true,
                OriginPattern::Exact(origin) => origins.exact.push(origin.into()),
                OriginPattern::Subdomains { prefix, suffix } => {
                    origins.subdomains.push((prefix.into(), suffix.into()));
                }
            }
        }
        origins
    }

    /// Whether nothing is allowed (CORS is off).
    pub fn is_empty(&self) -> bool {
        !self.any && self.exact.is_empty() && self.subdomains.is_empty()
    }

    /// Whether `"*"` was listed.
    pub fn is_any(&self) -> bool {
        self.any
    }

    /// Whether the request origin `origin` (an `Origin` header's bytes) is
    /// allowed. Compared ignoring ASCII case; no allocation.
    pub fn matches(&self, origin: &[u8]) -> bool {
        self.any
            || self
                .exact
                .iter()
                .any(|e| e.as_bytes().eq_ignore_ascii_case(origin))
            || (self.subdomains.iter()).any(|(prefix, suffix)| subdomain_of(origin, prefix, suffix))
    }
}

/// Whether `origin` is `prefix` + one or more host labels + `suffix`.
fn subdomain_of(origin: &[u8], prefix: &str, suffix: &str) -> bool {
    let (prefix, suffix) = (prefix.as_bytes(), suffix.as_bytes());
    if origin.len() <= prefix.len() + suffix.len()
        || !origin[..prefix.len()].eq_ignore_ascii_case(prefix)
        || !origin[origin.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    {
        return false;
    }
    let labels = &origin[prefix.len()..origin.len() - suffix.len()];
    labels.split(|&b| b == b'.').all(is_label)
}

/// Parses one entry of `allowed_origins`: `"*"`, `scheme://host[:port]`, or
/// `scheme://*.domain[:port]`. The message explains what is wrong without
/// echoing the value.
pub fn parse_origin(value: &str) -> Result<OriginPattern, &'static str> {
    if value == "*" {
        return Ok(OriginPattern::Any);
    }
    let value = value.to_ascii_lowercase();
    let Some((scheme, authority)) = value.split_once("://") else {
        return Err("must be \"*\" or scheme://host[:port], such as https://app.example.com");
    };
    if !is_scheme(scheme) {
        return Err("the scheme must be a URL scheme such as https");
    }
    if authority.contains(['/', '?', '#', '@']) {
        return Err(
            "must be an origin only: scheme://host[:port], without a path, query, user or trailing '/'",
        );
    }
    let (host, port) = split_port(authority)?;
    let port = match (scheme, port) {
        // Browsers never send a scheme's default port in `Origin`.
        ("https", Some("443")) | ("http", Some("80")) | (_, None) => String::new(),
        (_, Some(port)) => format!(":{port}"),
    };
    if let Some(domain) = host.strip_prefix("*.") {
        if !is_hostname(domain) {
            return Err("after `*.` must come a host name, such as https://*.example.org");
        }
        return Ok(OriginPattern::Subdomains {
            prefix: format!("{scheme}://"),
            suffix: format!(".{domain}{port}"),
        });
    }
    if host.contains('*') {
        return Err("a wildcard may only be the first label: https://*.example.org");
    }
    if !is_hostname(host) && !is_ipv6_literal(host) {
        return Err("the host must be a host name or an IP address");
    }
    Ok(OriginPattern::Exact(format!("{scheme}://{host}{port}")))
}

/// `host[:port]` split, the port checked (1–65535); IPv6 hosts in brackets.
fn split_port(authority: &str) -> Result<(&str, Option<&str>), &'static str> {
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    };
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !valid {
            return Err("the port must be a number from 1 to 65535");
        }
    }
    if host.is_empty() {
        return Err("the host is missing");
    }
    Ok((host, port))
}

/// RFC 3986 `scheme`: a letter, then letters, digits, `+`, `-`, `.`.
fn is_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Dot-separated labels (IPv4 addresses included), at most 253 bytes.
fn is_hostname(host: &str) -> bool {
    host.len() <= 253 && host.split('.').all(|label| is_label(label.as_bytes()))
}

/// One DNS label: 1–63 letters, digits or `-`, not starting or ending with `-`.
fn is_label(label: &[u8]) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.first() != Some(&b'-')
        && label.last() != Some(&b'-')
        && label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

/// `[v6 address]`.
fn is_ipv6_literal(host: &str) -> bool {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|h| h.parse::<Ipv6Addr>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[&str]) -> AllowedOrigins {
        AllowedOrigins::new(entries.iter().map(|e| parse_origin(e).unwrap()))
    }

    #[test]
    fn exact_origins_match_ignoring_case_and_default_ports() {
        let origins = set(&[
            "https://App.Example.com",
            "http://localhost:3000",
            "https://a.io:443",
        ]);
        assert!(origins.matches(b"https://app.example.com"));
        assert!(origins.matches(b"HTTPS://APP.EXAMPLE.COM"));
        assert!(origins.matches(b"http://localhost:3000"));
        assert!(
            origins.matches(b"https://a.io"),
            "the default port is dropped"
        );
        assert!(
            !origins.matches(b"http://app.example.com"),
            "another scheme"
        );
        assert!(
            !origins.matches(b"https://app.example.com:8443"),
            "another port"
        );
        assert!(!origins.matches(b"http://localhost"));
        assert!(!origins.matches(b"https://app.example.com.evil.io"));
        assert!(!origins.matches(b"null"));
        assert!(!origins.matches(b""));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let origins = set(&["https://*.example.org", "http://*.dev.test:8080"]);
        assert!(origins.matches(b"https://a.example.org"));
        assert!(origins.matches(b"https://a.b.example.org"));
        assert!(origins.matches(b"http://x.dev.test:8080"));
        assert!(
            !origins.matches(b"https://example.org"),
            "not the domain itself"
        );
        assert!(!origins.matches(b"https://.example.org"));
        assert!(!origins.matches(b"https://a..example.org"));
        assert!(!origins.matches(b"https://evilexample.org"));
        assert!(!origins.matches(b"https://a.example.org.evil.io"));
        assert!(!origins.matches(b"https://a.example.org:444"));
        assert!(!origins.matches(b"http://a.example.org"));
        assert!(!origins.matches(b"https://a/b.example.org"));
        assert!(!origins.matches(b"https://a:1.example.org"));
        assert!(
            !origins.matches(b"http://x.dev.test"),
            "the port is part of it"
        );
    }

    #[test]
    fn a_star_allows_everything_and_nothing_allows_nothing() {
        let any = set(&["*"]);
        assert!(any.is_any() && !any.is_empty());
        assert!(any.matches(b"https://anything.example") && any.matches(b"null"));
        let none = set(&[]);
        assert!(none.is_empty());
        assert!(!none.matches(b"https://a.example"));
    }

    #[test]
    fn ip_literals_and_other_schemes() {
        let origins = set(&[
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
            "capacitor://localhost",
        ]);
        assert!(origins.matches(b"http://127.0.0.1:8080"));
        assert!(origins.matches(b"http://[::1]:3000"));
        assert!(origins.matches(b"capacitor://localhost"));
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://app.example.com?q",
            "https://user@app.example.com",
            "https://",
            "https://:443",
            "https://a.com:0",
            "https://a.com:65536",
            "https://a.com:x",
            "https://a.com:",
            "https://a.*.com",
            "https://*",
            "https://*.",
            "https://*.-a.com",
            "https://a_b.com",
            "1http://a.com",
            "://a.com",
            "null",
            "https://[::1",
            "https://[nope]",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad} was accepted");
        }
    }
}
