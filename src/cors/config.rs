//! `cors:` (the default of every bucket) and `buckets[i].cors` (which
//! replaces it for that bucket), validated with the path of every entry.

use std::time::Duration;

use http::{HeaderName, Method};
use serde::Deserialize;

use super::origin::{AllowedOrigins, parse_origin};
use crate::config::{Bool, BucketConfig, Config, Errors, Str, U64, seconds_within};

/// The longest `max_age_seconds`: a day (Firefox's cap; Chromium caps at 2 hours).
pub const MAX_AGE_LIMIT: u64 = 86_400;

/// `cors:` as written, at the top level or in a bucket.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the CORS rules (a mapping with `allowed_origins`, `allowed_methods`, …)"
)]
pub(crate) struct RawCors {
    allowed_origins: Option<Vec<Str>>,
    allowed_methods: Option<Vec<Str>>,
    allowed_headers: Option<Vec<Str>>,
    expose_headers: Option<Vec<Str>>,
    allow_credentials: Option<Bool>,
    max_age_seconds: Option<U64>,
}

/// Validated CORS rules of one bucket (or the default of all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    /// Origins answered; empty: CORS is off for the bucket.
    pub allowed_origins: AllowedOrigins,
    /// Methods a preflight may ask for (GET and HEAD: the proxy serves no other).
    pub allowed_methods: Vec<Method>,
    /// Request headers a preflight may ask for; `*` allows any (each
    /// preflight is answered with the headers it asked for).
    pub allowed_headers: Vec<HeaderName>,
    /// Response headers a page may read (`Access-Control-Expose-Headers`).
    pub expose_headers: Vec<HeaderName>,
    /// Whether cookies and `Authorization` may be sent (the request's
    /// origin is then always echoed, never `*`).
    pub allow_credentials: bool,
    /// How long a browser may cache a preflight answer; `None`: not sent.
    pub max_age: Option<Duration>,
}

impl CorsConfig {
    /// Whether the rules allow no origin (the bucket answers no CORS request).
    pub fn is_off(&self) -> bool {
        self.allowed_origins.is_empty()
    }
}

/// The rules that apply to `bucket`: its own block, else the top-level
/// default; `None` when neither exists or the one that applies allows no origin.
pub fn effective<'a>(config: &'a Config, bucket: &'a BucketConfig) -> Option<&'a CorsConfig> {
    (bucket.cors.as_ref().or(config.cors.as_ref())).filter(|cors| !cors.is_off())
}

/// Whether some bucket answers CORS requests: only then do preflight
/// `OPTIONS` requests get past the security limits.
pub fn any_bucket_answers(config: &Config) -> bool {
    (config.buckets.iter()).any(|bucket| effective(config, bucket).is_some())
}

/// Validates the CORS block `raw` at `at` (`cors` or `buckets[i].cors`);
/// `None` when absent or wrong (every error is recorded).
pub(crate) fn cors(raw: Option<RawCors>, at: &str, errs: &mut Errors) -> Option<CorsConfig> {
    let raw = raw?;
    let before = errs.count();
    let origins_at = format!("{at}.allowed_origins");
    let Some(origins) = raw.allowed_origins else {
        errs.push(
            origins_at,
            "missing (list the origins, or [] to turn CORS off)",
        );
        return None;
    };
    let allowed_origins = AllowedOrigins::new(each(origins, &origins_at, errs, parse_origin));
    let allowed_methods = methods(raw.allowed_methods, &format!("{at}.allowed_methods"), errs);
    let allowed_headers = headers(raw.allowed_headers, &format!("{at}.allowed_headers"), errs);
    let expose_headers = headers(raw.expose_headers, &format!("{at}.expose_headers"), errs);
    let allow_credentials = raw.allow_credentials.is_some_and(|Bool(b)| b);
    let max_age = (raw.max_age_seconds).map(|secs| {
        let path = format!("{at}.max_age_seconds");
        seconds_within(Some(secs), 0, 0, MAX_AGE_LIMIT, &path, errs)
    });
    let cors = CorsConfig {
        allowed_origins,
        allowed_methods,
        allowed_headers,
        expose_headers,
        allow_credentials,
        max_age,
    };
    credentials_conflicts(&cors, at, errs);
    (errs.count() == before).then_some(cors)
}

/// Browsers refuse credentials together with a wildcard origin or wildcard
/// exposed headers, so such a block would never work: refused at load.
fn credentials_conflicts(cors: &CorsConfig, at: &str, errs: &mut Errors) {
    if !cors.allow_credentials {
        return;
    }
    if cors.allowed_origins.is_any() {
        errs.push(
            format!("{at}.allow_credentials"),
            "cannot be true when allowed_origins holds \"*\" (browsers refuse credentials \
             with a wildcard origin); list the origins instead",
        );
    }
    if cors.expose_headers.iter().any(|h| h.as_str() == "*") {
        errs.push(
            format!("{at}.allow_credentials"),
            "cannot be true when expose_headers holds \"*\" (with credentials browsers read \
             it as a header name); list the headers instead",
        );
    }
}

/// `allowed_methods`: GET and/or HEAD (any case); the default is both.
fn methods(raw: Option<Vec<Str>>, path: &str, errs: &mut Errors) -> Vec<Method> {
    let Some(raw) = raw else {
        return vec![Method::GET, Method::HEAD];
    };
    if raw.is_empty() {
        errs.push(path, "must list at least one method (GET, HEAD)");
    }
    let listed = each(raw, path, errs, |value| {
        match value.to_ascii_uppercase().as_str() {
            "GET" => Ok(Method::GET),
            "HEAD" => Ok(Method::HEAD),
            _ => Err("must be GET or HEAD (the proxy serves no other method)"),
        }
    });
    let mut methods = Vec::with_capacity(listed.len());
    for method in listed {
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    methods
}

/// A list of header names (`*` kept as it is; see [`CorsConfig`]).
fn headers(raw: Option<Vec<Str>>, path: &str, errs: &mut Errors) -> Vec<HeaderName> {
    each(raw.unwrap_or_default(), path, errs, |value| {
        HeaderName::from_bytes(value.as_bytes()).map_err(|_| "not a valid header name")
    })
}

/// Parses each entry of a list at `path`, reporting a bad one at `path[i]`
/// (without its value: it may come from `${VAR}`).
fn each<T>(
    raw: Vec<Str>,
    path: &str,
    errs: &mut Errors,
    parse: impl Fn(&str) -> Result<T, &'static str>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, Str(value)) in raw.iter().enumerate() {
        match parse(value) {
            Ok(parsed) => out.push(parsed),
            Err(message) => errs.push(format!("{path}[{i}]"), message),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{anonymous_bucket, load};
    use crate::config::{Config, ConfigError};

    /// A global `cors:` block (`global`, may be empty) and bucket `b`'s own
    /// (`own`, may be empty), in flow style.
    fn config(global: &str, own: &str) -> Result<Config, Vec<ConfigError>> {
        let mut text = anonymous_bucket("/b");
        if !own.is_empty() {
            text.push_str(&format!("    cors: {own}\n"));
        }
        if !global.is_empty() {
            text.push_str(&format!("cors: {global}\n"));
        }
        load(&text, &[])
    }

    fn errors(global: &str, own: &str) -> Vec<(String, String)> {
        let errors = config(global, own).unwrap_err();
        errors.into_iter().map(|e| (e.path, e.message)).collect()
    }

    #[test]
    fn defaults() {
        let c = config("{allowed_origins: [\"https://a.example\"]}", "").unwrap();
        let cors = c.cors.as_ref().unwrap();
        assert_eq!(
            cors.allowed_methods,
            [http::Method::GET, http::Method::HEAD]
        );
        assert!(cors.allowed_headers.is_empty() && cors.expose_headers.is_empty());
        assert!(!cors.allow_credentials);
        assert_eq!(cors.max_age, None);
        assert!(c.buckets[0].cors.is_none());
        assert_eq!(super::effective(&c, &c.buckets[0]), Some(cors));
        assert!(super::any_bucket_answers(&c));
    }

    #[test]
    fn a_bucket_block_replaces_the_default_and_an_empty_list_turns_it_off() {
        let global = "{allowed_origins: [\"https://a.example\"], max_age_seconds: 600}";
        let c = config(global, "{allowed_origins: [\"*\"]}").unwrap();
        let own = super::effective(&c, &c.buckets[0]).unwrap();
        assert!(own.allowed_origins.is_any());
        assert_eq!(own.max_age, None, "nothing is inherited from the default");
        let c = config(global, "{allowed_origins: []}").unwrap();
        assert_eq!(super::effective(&c, &c.buckets[0]), None);
        assert!(!super::any_bucket_answers(&c));
        let c = config("", "").unwrap();
        assert!(c.cors.is_none() && !super::any_bucket_answers(&c));
    }

    #[test]
    fn every_key_is_validated_at_its_path() {
        let e = errors(
            "{allowed_origins: [\"https://a.example\", \"https://a.example/\"], \
             allowed_methods: [get, PUT], allowed_headers: [range, \"bad header\"], \
             expose_headers: [\"x:y\"], max_age_seconds: 86401}",
            "{allowed_origins: [nope]}",
        );
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "cors.allowed_origins[1]",
                "cors.allowed_methods[1]",
                "cors.allowed_headers[1]",
                "cors.expose_headers[0]",
                "cors.max_age_seconds",
                "buckets[0].cors.allowed_origins[0]",
            ],
            "{e:?}"
        );
        assert!(e[1].1.contains("GET or HEAD"), "{e:?}");
        assert!(e[4].1.contains("86400"), "{e:?}");
    }

    #[test]
    fn a_wildcard_with_credentials_is_refused() {
        let e = errors("", "{allowed_origins: [\"*\"], allow_credentials: true}");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "buckets[0].cors.allow_credentials");
        assert!(e[0].1.contains("\"*\""), "{e:?}");
        let e = errors(
            "{allowed_origins: [\"https://a.example\"], expose_headers: [\"*\"], \
             allow_credentials: true}",
            "",
        );
        assert_eq!(e[0].0, "cors.allow_credentials", "{e:?}");
        let ok = "{allowed_origins: [\"https://*.example.org\"], allow_credentials: true}";
        assert!(config(ok, "").unwrap().cors.unwrap().allow_credentials);
    }

    #[test]
    fn missing_origins_unknown_keys_and_empty_methods() {
        let e = errors("", "{allowed_methods: [GET]}");
        assert_eq!(e[0].0, "buckets[0].cors.allowed_origins", "{e:?}");
        let e = errors("{allowed_origin: [\"*\"]}", "");
        assert_eq!(e[0].0, "cors.allowed_origin", "{e:?}");
        let e = errors("{allowed_origins: [\"*\"], allowed_methods: []}", "");
        assert_eq!(e[0].0, "cors.allowed_methods", "{e:?}");
    }
}
