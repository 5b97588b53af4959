//! Validation of `cache.redis:`: one server (`redis_url`) or a Redis
//! Cluster (`cluster_nodes`), and what a cluster rules out.

use super::model::RedisCacheConfig;
use super::raw::RawRedis;
use crate::config::{Errors, Secret, Str, count, millis, seconds};

/// Validates `cache.redis`; `None` when it has errors.
pub(super) fn redis(raw: RawRedis, errs: &mut Errors) -> Option<RedisCacheConfig> {
    let before = errs.count();
    let endpoints = redis_endpoints(raw.redis_url, raw.cluster_nodes, errs);
    let password = raw
        .redis_password
        .filter(|Str(p)| !p.is_empty())
        .map(|Str(p)| Secret::new(p));
    // Redis reads a database index as a C `int`.
    let db = count(raw.redis_db, 0, 0, usize::MAX, "cache.redis.redis_db", errs);
    let key_prefix = raw
        .key_prefix
        .map_or_else(|| "yatagarasu:".to_owned(), |Str(p)| p);
    let ttl = seconds(raw.ttl_seconds, 3600, true, "cache.redis.ttl_seconds", errs);
    let pool_size = count(raw.pool_size, 16, 1, 1024, "cache.redis.pool_size", errs);
    let timeout = millis(raw.timeout_ms, 200, "cache.redis.timeout_ms", errs);
    let (url, cluster_nodes) = endpoints?;
    if !cluster_nodes.is_empty() {
        cluster_limits(db, &key_prefix, errs);
    }
    (errs.count() == before).then_some(RedisCacheConfig {
        url,
        cluster_nodes,
        password,
        db: i64::try_from(db).unwrap_or(0),
        key_prefix,
        ttl,
        pool_size: u32::try_from(pool_size).unwrap_or(16),
        timeout,
    })
}

/// `redis_url` (one server) or `cluster_nodes` (a cluster), exactly one:
/// the URL to use and the cluster's seed nodes (empty for one server).
fn redis_endpoints(
    url: Option<Str>,
    nodes: Option<Vec<Str>>,
    errs: &mut Errors,
) -> Option<(Secret, Vec<Secret>)> {
    const URL: &str = "cache.redis.redis_url";
    const NODES: &str = "cache.redis.cluster_nodes";
    match (url, nodes) {
        (Some(_), Some(_)) => {
            errs.push(
                NODES,
                "set either cache.redis.redis_url (one server) or cache.redis.cluster_nodes \
                 (a cluster), not both",
            );
            None
        }
        (None, None) => {
            errs.push(
                URL,
                "missing (or cache.redis.cluster_nodes for a Redis Cluster)",
            );
            None
        }
        (Some(Str(url)), None) => {
            if let Some(problem) = redis_url_problem(&url) {
                errs.push(URL, problem);
            }
            Some((Secret::new(url), Vec::new()))
        }
        (None, Some(nodes)) => cluster_nodes(nodes, errs),
    }
}

/// `cache.redis.cluster_nodes`: at least one valid URL, all of one scheme
/// (the cluster client uses one TLS mode for every node).
fn cluster_nodes(nodes: Vec<Str>, errs: &mut Errors) -> Option<(Secret, Vec<Secret>)> {
    let before = errs.count();
    if nodes.is_empty() {
        errs.push("cache.redis.cluster_nodes", "must list at least one node");
    }
    let tls = |url: &str| url.trim().starts_with("rediss://");
    let first_tls = nodes.first().is_some_and(|Str(u)| tls(u));
    for (i, Str(url)) in nodes.iter().enumerate() {
        let at = format!("cache.redis.cluster_nodes[{i}]");
        if let Some(problem) = redis_url_problem(url) {
            errs.push(at, problem);
        } else if tls(url) != first_tls {
            errs.push(
                at,
                "must use the scheme of cluster_nodes[0] (all redis:// or all rediss://)",
            );
        }
    }
    if errs.count() == before
        && redis::cluster::ClusterClient::new(nodes.iter().map(|Str(u)| u.trim())).is_err()
    {
        errs.push(
            "cache.redis.cluster_nodes",
            "the nodes must share one user, password, protocol and database",
        );
    }
    let nodes: Vec<Secret> = nodes.into_iter().map(|Str(u)| Secret::new(u)).collect();
    let first = nodes.first()?.clone();
    (errs.count() == before).then_some((first, nodes))
}

/// What Redis Cluster rules out: databases other than 0, and braces in the
/// prefix (a `{…}` there would put every key in one hash slot).
fn cluster_limits(db: usize, key_prefix: &str, errs: &mut Errors) {
    if db != 0 {
        errs.push(
            "cache.redis.redis_db",
            "must be 0 with cluster_nodes (a Redis Cluster has only database 0)",
        );
    }
    if key_prefix.contains(['{', '}']) {
        errs.push(
            "cache.redis.key_prefix",
            "must not contain { or } with cluster_nodes (a hash tag there would put every key \
             in one hash slot)",
        );
    }
}

/// What is wrong with a Redis URL, without echoing it (it may hold a password).
fn redis_url_problem(url: &str) -> Option<&'static str> {
    use redis::IntoConnectionInfo as _;
    let url = url.trim();
    if url.is_empty() {
        return Some("must not be empty");
    }
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Some("must start with redis:// or rediss://");
    }
    url.into_connection_info()
        .err()
        .map(|_| "is not a valid Redis URL")
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn parse(redis: &str) -> Result<Config, Vec<(String, String)>> {
        let yaml = format!(
            "buckets:\n  - name: products\n    path_prefix: /p\n    s3: {{bucket: products-bkt, region: us-east-1, endpoint: 'http://127.0.0.1:9', access_key: A, secret_key: S}}\ncache:\n  cache_layers: [memory, redis]\n  redis: {redis}\n"
        );
        Config::from_yaml_str_with_env(&yaml, &|_| None)
            .map_err(|e| e.0.into_iter().map(|e| (e.path, e.message)).collect())
    }

    fn first_error(redis: &str) -> (String, String) {
        parse(redis).expect_err("should be invalid").remove(0)
    }

    #[test]
    fn cluster_nodes_are_the_seeds_of_a_cluster() {
        let config =
            parse("{cluster_nodes: ['rediss://:pw@h1:7000', 'rediss://:pw@h2:7000']}").unwrap();
        let redis = config.cache.redis.unwrap();
        assert_eq!(redis.cluster_nodes.len(), 2);
        assert_eq!(redis.url.expose(), "rediss://:pw@h1:7000");
        assert!(
            !format!("{redis:?}").contains("pw@"),
            "no password in Debug"
        );
    }

    #[test]
    fn url_and_cluster_nodes_exclude_each_other() {
        let (path, message) =
            first_error("{redis_url: 'redis://h', cluster_nodes: ['redis://h:7000']}");
        assert_eq!(path, "cache.redis.cluster_nodes");
        assert!(message.contains("not both"), "{message}");
        let (path, message) = first_error("{ttl_seconds: 5}");
        assert_eq!(path, "cache.redis.redis_url");
        assert!(message.contains("cluster_nodes"), "{message}");
    }

    #[test]
    fn cluster_nodes_are_checked_one_by_one_without_echoing_them() {
        assert_eq!(
            first_error("{cluster_nodes: []}").0,
            "cache.redis.cluster_nodes"
        );
        let (path, message) =
            first_error("{cluster_nodes: ['redis://h:7000', 'http://u:hunter2@h']}");
        assert_eq!(path, "cache.redis.cluster_nodes[1]");
        assert!(!message.contains("hunter2"), "{message}");
        let (path, message) = first_error("{cluster_nodes: ['redis://h:7000', 'rediss://h:7001']}");
        assert_eq!(path, "cache.redis.cluster_nodes[1]");
        assert!(message.contains("scheme"), "{message}");
    }

    #[test]
    fn a_cluster_has_only_database_0_and_no_braces_in_the_prefix() {
        let (path, _) = first_error("{cluster_nodes: ['redis://h:7000'], redis_db: 2}");
        assert_eq!(path, "cache.redis.redis_db");
        let (path, _) = first_error("{cluster_nodes: ['redis://h:7000'], key_prefix: 'a{b}:'}");
        assert_eq!(path, "cache.redis.key_prefix");
        // One server may keep a prefix with braces.
        parse("{redis_url: 'redis://h', key_prefix: 'a{b}:'}").unwrap();
    }
}
