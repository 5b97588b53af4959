//! Keys of the original Yatagarasu (the Pingora-based proxy) whose meaning
//! cannot be kept here, refused with the key to use instead.
//!
//! Exists so that an operator pointing this binary at the original's file
//! learns the new key from `check` in one run, instead of reading a list of
//! expected field names. Keys that keep their meaning simply load; the full
//! mapping is `docs/migration.md` (checked by `tests/migration.rs`).

use serde_norway::Value;

use super::ConfigError;

/// `(pattern, message)`: a pattern is a dotted path where `name[]` stands for
/// every element of the list `name`.
const REFUSED: &[(&str, &str)] = &[
    ("server.threads", "use server.worker_threads"),
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
        "jwt.jwks_refresh_interval_secs",
        "use jwt.jwks_refresh_interval_seconds",
    ),
    (
        "jwt.keys[].path",
        "use public_key_path (or rsa_public_key_path, ecdsa_public_key_path)",
    ),
    (
        "buckets[].auth.jwt.enabled",
        "remove it: buckets[i].auth.enabled turns JWT authentication on",
    ),
    (
        "buckets[].auth.jwt.jwks_refresh_interval_secs",
        "use jwks_refresh_interval_seconds",
    ),
    (
        "buckets[].auth.jwt.keys[].path",
        "use public_key_path (or rsa_public_key_path, ecdsa_public_key_path)",
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
    ("buckets[].cache.ttl", "use buckets[i].cache.ttl_seconds"),
    (
        "buckets[].cache.max_size",
        "use buckets[i].cache.max_item_size_mb",
    ),
    (
        "cache.memory.max_capacity",
        "use cache.memory.max_cache_size_mb (MiB, or a size such as \"1GB\")",
    ),
    (
        "cache.memory.ttl_seconds",
        "use cache.memory.default_ttl_seconds",
    ),
    (
        "cache.disk.sendfile",
        "remove it: the disk tier's files are streamed by the proxy",
    ),
    ("cache.redis.redis_key_prefix", "use cache.redis.key_prefix"),
    (
        "cache.redis.redis_ttl_seconds",
        "use cache.redis.ttl_seconds",
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
        "shutdown.timeout_seconds",
        "use server.graceful_shutdown_timeout_seconds",
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
        "observability.request_logging",
        "use audit_log for a record of every request",
    ),
];

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
    let (key, each) = match first.strip_suffix("[]") {
        Some(key) => (key, true),
        None => (*first, false),
    };
    let Some(child) = value.as_mapping().and_then(|m| m.get(key)) else {
        return;
    };
    let here = if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    };
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
            "buckets:\n  - s3: {}\n  - s3: {connection_pool_size: 5}\nshutdown: {timeout_seconds: 3}\n",
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with(
            "buckets[1].s3.connection_pool_size: a key of the original Yatagarasu: use upstream.pool_max_idle_per_host"
        )));
        assert!(errors.iter().any(|e| e
            == "shutdown.timeout_seconds: a key of the original Yatagarasu: use server.graceful_shutdown_timeout_seconds"));
    }

    #[test]
    fn keys_of_this_proxy_pass() {
        assert!(
            refused("server: {worker_threads: 2}\nbuckets: [{s3: {replicas: [{timeout: 3}]}}]\n")
                .is_empty()
        );
    }
}
