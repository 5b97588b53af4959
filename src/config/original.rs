//! Keys of the original Yatagarasu (the Pingora-based proxy) under other
//! names here: renamed ones are read under their new name, and those whose
//! meaning cannot be kept are refused with the key to use instead.
//!
//! Exists so that an operator pointing this binary at the original's file
//! learns the new key from `check` in one run, instead of reading a list of
//! expected field names. Keys that keep their meaning simply load; the full
//! mapping is `docs/migration.md` (checked by `tests/migration.rs`).

use serde_norway::{Mapping, Value};

use super::ConfigError;

/// `(pattern, new name)`: keys of the original that only changed their name
/// (same meaning, same unit), read as the sibling key `new name`; a `new
/// name` starting with `/` is a path from the top of the document.
const RENAMED: &[(&str, &str)] = &[
    ("server.threads", "worker_threads"),
    ("jwt.keys[].path", "public_key_path"),
    (
        "buckets[].auth.jwt.jwks_refresh_interval_secs",
        "jwks_refresh_interval_seconds",
    ),
    ("buckets[].auth.jwt.keys[].path", "public_key_path"),
    ("buckets[].cache.ttl", "ttl_seconds"),
    ("cache.memory.ttl_seconds", "default_ttl_seconds"),
    ("cache.redis.redis_key_prefix", "key_prefix"),
    ("cache.redis.redis_ttl_seconds", "ttl_seconds"),
    (
        "shutdown.timeout_seconds",
        "/server.graceful_shutdown_timeout_seconds",
    ),
];

/// `(pattern, message)`: a pattern is a dotted path where `name[]` stands for
/// every element of the list `name`.
const REFUSED: &[(&str, &str)] = &[
    (
        "jwt.jwks_refresh_interval_secs",
        "use jwt.jwks_refresh_interval_seconds (only with jwt.jwks_url; a bucket's JWKS has its own)",
    ),
    (
        "server.request_timeout",
        "use server.request_timeout_seconds (the wait for S3's response headers)",
    ),
    (
        "server.coalescing",
        "remove it: concurrent misses of one object are always coalesced by the cache (cache.enabled)",
    ),
    (
        "jwt.enabled",
        "remove it: buckets[i].auth.enabled: true uses the top-level jwt section",
    ),
    (
        "jwt.admin_claims",
        "use admin.jwt (claims_verification, require_claim) to let tokens call the admin API",
    ),
    (
        "buckets[].auth.jwt.enabled",
        "remove it: buckets[i].auth.enabled turns JWT authentication on",
    ),
    (
        "buckets[].s3.timeout",
        "use server.request_timeout_seconds, or timeout on each entry of s3.replicas",
    ),
    (
        "buckets[].s3.connection_pool_size",
        "use upstream.pool_max_idle_per_host (one pool for every bucket) and upstream.max_connections_per_bucket",
    ),
    (
        "buckets[].authorization",
        "use buckets[i].auth.authorization (type: opa with url, or type: openfga with endpoint and store_id; see docs/migration.md)",
    ),
    (
        "buckets[].watermark",
        "remove it: watermarking is not supported",
    ),
    (
        "buckets[].cache.max_size",
        "use buckets[i].cache.max_item_size_mb",
    ),
    (
        "cache.memory.max_capacity",
        "use cache.memory.max_cache_size_mb (MiB, or a size such as \"1GB\")",
    ),
    (
        "cache.disk.sendfile",
        "remove it: the disk tier's files are streamed by the proxy",
    ),
    (
        "cache.redis.redis_max_ttl_seconds",
        "use cache.redis.ttl_seconds (the one expiry of every entry)",
    ),
    (
        "cache.redis.connection_timeout_ms",
        "use cache.redis.timeout_ms",
    ),
    (
        "cache.redis.operation_timeout_ms",
        "use cache.redis.timeout_ms",
    ),
    ("cache.redis.min_pool_size", "use cache.redis.pool_size"),
    ("cache.redis.max_pool_size", "use cache.redis.pool_size"),
    (
        "cache.warming",
        "remove it: cache prewarming is not supported",
    ),
    (
        "limits.max_request_body_size",
        "use server.security_limits.max_body_size",
    ),
    (
        "limits.max_header_size",
        "use server.security_limits.max_header_size",
    ),
    (
        "limits.request_timeout_seconds",
        "use server.request_timeout_seconds",
    ),
    (
        "limits.read_timeout_seconds",
        "use server.header_read_timeout_seconds",
    ),
    ("rate_limiting.enabled", "use server.rate_limit.enabled"),
    (
        "rate_limiting.requests_per_second",
        "use server.rate_limit.per_ip.requests_per_second",
    ),
    (
        "rate_limiting.burst_size",
        "use server.rate_limit.per_ip.burst",
    ),
    (
        "circuit_breaker.failure_threshold",
        "use buckets[i].s3.circuit_breaker.failure_threshold",
    ),
    (
        "circuit_breaker.cooldown_seconds",
        "use buckets[i].s3.circuit_breaker.timeout_seconds",
    ),
    (
        "image_optimization",
        "remove it: image optimization is not supported",
    ),
    (
        "compression",
        "remove it: response compression is not supported",
    ),
    (
        "observability.tracing.endpoint",
        "use observability.tracing.otlp_endpoint (an OTLP/HTTP collector, \
         usually port 4318; 4317 is OTLP/gRPC, not supported)",
    ),
    (
        "logging.request_logging",
        "use observability.request_logging (request and response lines with \
         headers; the access log already has one line per request with its \
         time, and a query string is never logged: it may carry a token)",
    ),
];

/// Renames the original's keys of `document` to this proxy's names (see
/// [`RENAMED`]); an error for each key set under both names.
pub(crate) fn rename_keys(document: &mut Value) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (pattern, new) in RENAMED {
        let segments: Vec<&str> = pattern.split('.').collect();
        match new.strip_prefix('/') {
            Some(target) => move_key(document, &segments, target, &mut errors),
            None => each_parent(
                document,
                &segments,
                String::new(),
                &mut |parent, key, at| {
                    rename_in(parent, key, new, &at, &mut errors);
                },
            ),
        }
    }
    errors
}

/// Renames `key` to `new` in `parent` (at the path `at`), unless both are set.
fn rename_in(parent: &mut Mapping, key: &str, new: &str, at: &str, errors: &mut Vec<ConfigError>) {
    let Some(value) = parent.remove(key) else {
        return;
    };
    if parent.contains_key(new) {
        let path = joined(at, key);
        errors.push(ConfigError::new(
            path,
            format!("the original Yatagarasu's name of {new}, which is set too: keep one"),
        ));
        return;
    }
    parent.insert(Value::from(new), value);
}

/// Moves the value at `segments` (no `[]`) to the dotted path `target`,
/// dropping sections it leaves empty.
fn move_key(document: &mut Value, segments: &[&str], target: &str, errors: &mut Vec<ConfigError>) {
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    let Some(value) = take(document, parents, last) else {
        return;
    };
    let mut node = document;
    let (sections, key) = target.rsplit_once('.').unwrap_or(("", target));
    for part in path_parts(sections) {
        let Some(map) = as_section(node) else {
            return;
        };
        node = map
            .entry(Value::from(part))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
    }
    // A section that is not a mapping fails deserialisation with its path.
    let Some(map) = as_section(node) else {
        return;
    };
    if map.contains_key(key) {
        errors.push(ConfigError::new(
            segments.join("."),
            format!("the original Yatagarasu's name of {target}, which is set too: keep one"),
        ));
        return;
    }
    map.insert(Value::from(key), value);
}

/// `node` as a section to write into: an empty one (`server:` with no
/// value) becomes a mapping.
fn as_section(node: &mut Value) -> Option<&mut Mapping> {
    if node.is_null() {
        *node = Value::Mapping(Mapping::new());
    }
    node.as_mapping_mut()
}

/// The sections of a dotted path (none for the top).
fn path_parts(path: &str) -> impl Iterator<Item = &str> {
    path.split('.').filter(|part| !part.is_empty())
}

/// Removes `parents.last` from `document`, and each parent left empty.
fn take(document: &mut Value, parents: &[&str], last: &str) -> Option<Value> {
    let Some((first, rest)) = parents.split_first() else {
        return document.as_mapping_mut()?.remove(last);
    };
    let map = document.as_mapping_mut()?;
    let child = map.get_mut(*first)?;
    let value = take(child, rest, last)?;
    if child.as_mapping().is_some_and(Mapping::is_empty) {
        map.remove(*first);
    }
    Some(value)
}

/// Calls `found` with the mapping holding the last segment, that segment,
/// and the mapping's concrete path, for every match of `segments`.
fn each_parent(
    value: &mut Value,
    segments: &[&str],
    path: String,
    found: &mut dyn FnMut(&mut Mapping, &str, String),
) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    let Some(map) = value.as_mapping_mut() else {
        return;
    };
    if rest.is_empty() {
        found(map, first, path);
        return;
    }
    let (key, each) = list_segment(first);
    let Some(child) = map.get_mut(key) else {
        return;
    };
    let here = joined(&path, key);
    if !each {
        each_parent(child, rest, here, found);
        return;
    }
    let Some(items) = child.as_sequence_mut() else {
        return;
    };
    for (i, element) in items.iter_mut().enumerate() {
        each_parent(element, rest, format!("{here}[{i}]"), found);
    }
}

/// A pattern's segment: its key, and whether it stands for every element
/// of a list (`name[]`).
fn list_segment(segment: &str) -> (&str, bool) {
    match segment.strip_suffix("[]") {
        Some(key) => (key, true),
        None => (segment, false),
    }
}

/// The concrete path of `key` under `path` (the top when empty).
fn joined(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// One error per key of the original Yatagarasu found in `document` that
/// this proxy does not accept, each naming the key to use instead.
pub(crate) fn refused_keys(document: &Value) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (pattern, message) in REFUSED {
        let segments: Vec<&str> = pattern.split('.').collect();
        find(document, &segments, String::new(), &mut |path| {
            errors.push(ConfigError::new(
                path,
                format!("a key of the original Yatagarasu: {message}"),
            ));
        });
    }
    errors
}

/// Calls `found` with the concrete path of every value matching `segments`.
fn find(value: &Value, segments: &[&str], path: String, found: &mut dyn FnMut(String)) {
    let Some((first, rest)) = segments.split_first() else {
        found(path);
        return;
    };
    let (key, each) = list_segment(first);
    let Some(child) = value.as_mapping().and_then(|m| m.get(key)) else {
        return;
    };
    let here = joined(&path, key);
    if !each {
        find(child, rest, here, found);
        return;
    }
    for (i, element) in child.as_sequence().into_iter().flatten().enumerate() {
        find(element, rest, format!("{here}[{i}]"), found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(yaml: &str) -> Vec<String> {
        let value: Value = serde_norway::from_str(yaml).unwrap();
        refused_keys(&value)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn names_the_concrete_path_and_the_new_key() {
        let errors = refused(
            "buckets:\n  - s3: {}\n  - s3: {connection_pool_size: 5}\nlimits: {max_header_size: 3}\n",
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with(
            "buckets[1].s3.connection_pool_size: a key of the original Yatagarasu: use upstream.pool_max_idle_per_host"
        )));
        assert!(errors.iter().any(|e| e
            == "limits.max_header_size: a key of the original Yatagarasu: use server.security_limits.max_header_size"));
    }

    fn renamed(yaml: &str) -> (Value, Vec<String>) {
        let mut value: Value = serde_norway::from_str(yaml).unwrap();
        let errors = rename_keys(&mut value);
        (value, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn renamed_keys_are_read_under_their_new_name() {
        let (value, errors) = renamed(
            "server: {threads: 4}\nshutdown: {timeout_seconds: 30}\njwt: {keys: [{id: a, path: k.pem}]}\n\
             buckets:\n  - cache: {ttl: 60}\n  - auth: {jwt: {jwks_refresh_interval_secs: 9}}\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let expected: Value = serde_norway::from_str(
            "server: {worker_threads: 4, graceful_shutdown_timeout_seconds: 30}\n\
             jwt: {keys: [{id: a, public_key_path: k.pem}]}\n\
             buckets:\n  - cache: {ttl_seconds: 60}\n  - auth: {jwt: {jwks_refresh_interval_seconds: 9}}\n",
        )
        .unwrap();
        assert_eq!(value, expected);
    }

    #[test]
    fn a_move_into_an_empty_section_keeps_the_value() {
        let (value, errors) = renamed("server:\nshutdown: {timeout_seconds: 30}\n");
        assert!(errors.is_empty(), "{errors:?}");
        let expected: Value =
            serde_norway::from_str("server: {graceful_shutdown_timeout_seconds: 30}\n").unwrap();
        assert_eq!(value, expected);
    }

    #[test]
    fn a_key_under_both_names_is_refused() {
        let (_, errors) = renamed(
            "server: {threads: 4, worker_threads: 2, graceful_shutdown_timeout_seconds: 5}\n\
             shutdown: {timeout_seconds: 30}\n",
        );
        assert_eq!(
            errors,
            [
                "server.threads: the original Yatagarasu's name of worker_threads, which is set too: keep one",
                "shutdown.timeout_seconds: the original Yatagarasu's name of \
                 server.graceful_shutdown_timeout_seconds, which is set too: keep one",
            ]
        );
    }

    #[test]
    fn keys_of_this_proxy_pass() {
        assert!(
            refused("server: {worker_threads: 2}\nbuckets: [{s3: {replicas: [{timeout: 3}]}}]\n")
                .is_empty()
        );
    }
}
