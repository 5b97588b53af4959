//! `buckets:`: the list of routes, each one composing the settings of every
//! concern (S3 target, authentication, cache) under its own path.

use std::collections::HashMap;

use super::model::BucketConfig;
use super::raw::RawBucket;
use super::{Errors, Str};
use crate::auth::config::{JwtConfig, bucket_auth};
use crate::breaker::config::circuit_breaker;
use crate::cache::config::{CacheConfig, bucket_cache};
use crate::config::{ReplicaConfig, S3Config};
use crate::cors::config::cors;
use crate::error_format::config::bucket_errors;
use crate::failover::config::replicas;
use crate::fallback::config::fallback_on_404;
use crate::ip_filter::config::ip_filter;
use crate::rate_limit::config::bucket_rate_limits;
use crate::retry::config::retry as retry_config;
use crate::upstream::config::{RawS3, s3_config};
use crate::website::config::website;

/// Validates `buckets:`: each bucket's name and path prefix (both unique),
/// then its `s3`, `auth` and `cache` sections, each by its own concern.
pub(super) fn buckets(
    raw: Option<Vec<RawBucket>>,
    env: &dyn Fn(&str) -> Option<String>,
    global_jwt: Option<&JwtConfig>,
    cache: &CacheConfig,
    errs: &mut Errors,
) -> Option<Vec<BucketConfig>> {
    let raw = raw.unwrap_or_default();
    if raw.is_empty() {
        errs.push("buckets", "at least one bucket is required");
        return None;
    }
    let before = errs.count();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut prefixes: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    let shared = Shared {
        env,
        global_jwt,
        cache,
    };
    for (i, mut b) in raw.into_iter().enumerate() {
        let at = format!("buckets[{i}]");
        let name = bucket_name(b.name.take(), &at, errs);
        if let Some(name) = &name {
            let path = format!("{at}.name");
            first_use(&mut names, name, i, path, "duplicate bucket name", errs);
        }
        let path_prefix = path_prefix(b.path_prefix.take(), &at, errs);
        if let Some(prefix) = &path_prefix {
            let path = format!("{at}.path_prefix");
            first_use(
                &mut prefixes,
                prefix,
                i,
                path,
                "duplicate path_prefix",
                errs,
            );
        }
        let named = name.zip(path_prefix);
        if let Some(bucket) = bucket_sections(b, named, &shared, &at, errs) {
            out.push(bucket);
        }
    }
    (errs.count() == before).then_some(out)
}

/// What every bucket's sections are validated against.
struct Shared<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    global_jwt: Option<&'a JwtConfig>,
    cache: &'a CacheConfig,
}

/// Validates every section of bucket `at` but its name and path prefix
/// (`named`, already validated), each by its own concern; `None` when one of
/// them is wrong (all are checked, so every error is reported).
fn bucket_sections(
    mut b: RawBucket,
    named: Option<(String, String)>,
    shared: &Shared<'_>,
    at: &str,
    errs: &mut Errors,
) -> Option<BucketConfig> {
    // `s3.rate_limit` is the bucket's limit (the original's place), not the target's.
    let s3_rate = b.s3.as_mut().and_then(|s3| s3.rate_limit.take());
    let rate_limits = bucket_rate_limits(s3_rate, b.rate_limit_per_user, at, errs);
    // Validated beside their layers; settings of the bucket's every S3 target.
    let s3_at = format!("{at}.s3");
    let resilience =
        b.s3.as_mut()
            .map(|s3| (s3.circuit_breaker.take(), s3.retry.take()));
    let (breaker, retry) = resilience.unwrap_or_default();
    let circuit_breaker =
        breaker.map(|raw| circuit_breaker(raw, &format!("{s3_at}.circuit_breaker"), errs));
    let retry = retry.map(|raw| retry_config(raw, &format!("{s3_at}.retry"), errs));
    let (s3, targets) = bucket_s3(b.s3, &s3_at, shared.env, errs);
    let auth = bucket_auth(b.auth, shared.global_jwt, at, errs);
    let cache = bucket_cache(b.cache, shared.cache, at, errs);
    let ip_filter = ip_filter(b.ip_filter, at, errs);
    let cors = cors(b.cors, &format!("{at}.cors"), errs);
    let errors = bucket_errors(b.errors, at, errs);
    let website = website(b.website, at, errs);
    let ((name, path_prefix), s3, auth, cache) = (named?, s3?, auth?, cache?);
    let ((replicas, fallback_on_404), rate_limits) = (targets?, rate_limits?);
    Some(BucketConfig {
        name,
        path_prefix,
        s3,
        auth,
        cache,
        ip_filter,
        replicas,
        fallback_on_404,
        rate_limits,
        circuit_breaker,
        retry,
        cors,
        errors,
        website,
    })
}

/// The s3 section at `at` (required), and its other targets.
fn bucket_s3(
    raw: Option<RawS3>,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> (Option<S3Config>, Option<Targets>) {
    let Some(mut s3) = raw else {
        errs.push(at, "missing");
        return (None, None);
    };
    let targets = s3_targets(&mut s3, at, env, errs);
    (s3_config(s3, at, env, errs), targets)
}

/// A bucket's replicas and its 404 fallback.
type Targets = (Vec<ReplicaConfig>, Option<S3Config>);

/// Takes `replicas` and `fallback_on_404` out of the s3 section at `at` and
/// validates them (each by its own concern); `None` after an error.
fn s3_targets(
    s3: &mut RawS3,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<Targets> {
    let replicas = match s3.replicas.take() {
        Some(raw) => replicas(raw, at, env, errs),
        None => Some(Vec::new()),
    };
    let fallback = match s3.fallback_on_404.take() {
        Some(raw) => Some(fallback_on_404(*raw, at, env, errs)?),
        None => None,
    };
    Some((replicas?, fallback))
}

/// Remembers which bucket used `value` first; a later use is reported at `path`.
fn first_use(
    seen: &mut HashMap<String, usize>,
    value: &str,
    i: usize,
    path: String,
    duplicate: &str,
    errs: &mut Errors,
) {
    match seen.get(value) {
        Some(first) => errs.push(path, format!("{duplicate} (also used by buckets[{first}])")),
        None => {
            seen.insert(value.to_owned(), i);
        }
    }
}

fn bucket_name(raw: Option<Str>, at: &str, errs: &mut Errors) -> Option<String> {
    let path = format!("{at}.name");
    let Some(Str(name)) = raw else {
        errs.push(path, "missing");
        return None;
    };
    if name.is_empty() {
        errs.push(path, "must not be empty");
        return None;
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        errs.push(
            path,
            "may contain only ASCII letters, digits, '_', '.' and '-' (it is a metrics label)",
        );
        return None;
    }
    Some(name)
}

/// Validates a path prefix and returns it without its trailing `/`.
fn path_prefix(raw: Option<Str>, at: &str, errs: &mut Errors) -> Option<String> {
    let path = format!("{at}.path_prefix");
    let Some(Str(prefix)) = raw else {
        errs.push(path, "missing");
        return None;
    };
    match check_path_prefix(&prefix) {
        Ok(normalised) => Some(normalised),
        Err(message) => {
            errs.push(path, message);
            None
        }
    }
}

fn check_path_prefix(prefix: &str) -> Result<String, &'static str> {
    if !prefix.starts_with('/') {
        return Err("must start with '/'");
    }
    if prefix
        .chars()
        .any(|c| matches!(c, '%' | '?' | '#' | '\\') || c.is_whitespace() || c.is_control())
    {
        return Err("must not contain '%', '?', '#', '\\', whitespace or control characters");
    }
    // Anything else outside RFC 3986 `pchar` could never match a request path.
    if !prefix.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '/' | '-'
                    | '.'
                    | '_'
                    | '~'
                    | '!'
                    | '$'
                    | '&'
                    | '\''
                    | '('
                    | ')'
                    | '*'
                    | '+'
                    | ','
                    | ';'
                    | '='
                    | ':'
                    | '@'
            )
    }) {
        return Err("may contain only ASCII letters, digits, '/' and -._~!$&'()*+,;=:@");
    }
    if prefix.contains("//") {
        return Err("must not contain '//'");
    }
    let normalised = match prefix.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => prefix,
    };
    if normalised.split('/').any(|seg| seg == "." || seg == "..") {
        return Err("must not contain '.' or '..' segments");
    }
    let reserved = |r: &str| {
        normalised == r
            || normalised
                .strip_prefix(r)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if reserved("/health") || reserved("/ready") {
        return Err(
            "must not be /health or /ready or lie under them (they are the probe endpoints)",
        );
    }
    Ok(normalised.to_owned())
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{anonymous_bucket, assert_error, load};

    #[test]
    fn bucket_names() {
        let two = |a: &str, b: &str| {
            format!(
                "buckets:\n  - name: {a}\n    path_prefix: /a\n    s3: {{bucket: my-bucket, region: \
                 us-east-1, anonymous: true}}\n  - name: {b}\n    path_prefix: /b\n    s3: \
                 {{bucket: my-bucket, region: us-east-1, anonymous: true}}\n"
            )
        };
        assert_error(
            &two("same", "same"),
            "buckets[1].name",
            "duplicate bucket name (also used by buckets[0])",
        );
        assert_error(&two("a", "\"\""), "buckets[1].name", "must not be empty");
        assert_error(
            &two("a", "\"has space\""),
            "buckets[1].name",
            "may contain only",
        );
        assert_error(&two("a", "\"ünï\""), "buckets[1].name", "may contain only");
        assert_error(&two("a", "\"a/b\""), "buckets[1].name", "may contain only");
        load(&two("A_b.c-9", "x"), &[]).unwrap();
        assert_error(
            "buckets:\n  - path_prefix: /a\n    s3: {bucket: my-bucket, region: us-east-1, anonymous: true}\n",
            "buckets[0].name",
            "missing",
        );
    }

    #[test]
    fn path_prefixes() {
        let ok = |prefix: &str| {
            load(&anonymous_bucket(prefix), &[])
                .unwrap_or_else(|e| panic!("{prefix}: {e:?}"))
                .buckets[0]
                .path_prefix
                .clone()
        };
        assert_eq!(ok("/products"), "/products");
        assert_eq!(ok("/products/"), "/products");
        assert_eq!(ok("/a/b/"), "/a/b");
        assert_eq!(ok("/"), "/");
        assert_eq!(ok("/admin"), "/admin");
        assert_eq!(ok("/metrics"), "/metrics");
        assert_eq!(ok("/healthz"), "/healthz");
        assert_eq!(ok("/readyness"), "/readyness");
        assert_eq!(ok("/v1.2/files"), "/v1.2/files");

        let bad = |prefix: &str, needle: &str| {
            assert_error(&anonymous_bucket(prefix), "buckets[0].path_prefix", needle)
        };
        bad("products", "must start with '/'");
        bad("\"\"", "must start with '/'");
        bad("/a//b", "must not contain '//'");
        bad("//", "must not contain '//'");
        bad("/a/./b", "'.' or '..' segments");
        bad("/a/..", "'.' or '..' segments");
        bad("/..", "'.' or '..' segments");
        bad("/a%20b", "'%'");
        bad("\"/a?b\"", "'?'");
        bad("\"/a#b\"", "'#'");
        bad("\"/a\\\\b\"", "'\\'");
        bad("\"/a b\"", "whitespace");
        bad("\"/a\\tb\"", "whitespace");
        bad("\"/a\\u0001b\"", "control");
        bad("\"/é\"", "may contain only");
        bad("\"/a<b\"", "may contain only");
        bad("/health", "/health or /ready");
        bad("/health/", "/health or /ready");
        bad("/health/x", "/health or /ready");
        bad("/ready", "/health or /ready");
        bad("/ready/x/", "/health or /ready");

        assert_error(
            "buckets:\n  - name: a\n    s3: {bucket: my-bucket, region: us-east-1, anonymous: true}\n",
            "buckets[0].path_prefix",
            "missing",
        );
        let dup = "buckets:\n  - name: a\n    path_prefix: /x\n    s3: {bucket: my-bucket, region: \
                   us-east-1, anonymous: true}\n  - name: b\n    path_prefix: /x/\n    s3: \
                   {bucket: my-bucket, region: us-east-1, anonymous: true}\n";
        assert_error(
            dup,
            "buckets[1].path_prefix",
            "duplicate path_prefix (also used by buckets[0])",
        );
    }
}
