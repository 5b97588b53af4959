//! Semantic validation: from [`RawConfig`] to the validated [`Config`].
//!
//! Every rule is checked for every bucket, and every violation is collected,
//! so that one run of `yatagarasu check` lists everything to fix. No message
//! contains an option's value: it may come from the environment or be secret.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use super::model::{AdminConfig, BucketConfig, Config, MetricsConfig, Secret, ServerConfig};
use super::raw::{RawAdmin, RawBucket, RawConfig, RawMetrics, RawServer};
use super::{Bool, ConfigError, Errors, Str, U64, count, seconds, seconds_within};

const ANY_V4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
const LOCALHOST_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Checks every rule and builds the validated configuration, or returns every violation.
pub(crate) fn validate(
    raw: RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let mut errs = Errors::default();
    let server = server(raw.server, &mut errs);
    let admin = admin(raw.admin, &mut errs);
    let upstream = crate::upstream::config::upstream(raw.upstream, &mut errs);
    let global_jwt = crate::auth::config::global_jwt(raw.jwt, &mut errs);
    let cache = crate::cache::config::cache(raw.cache, &mut errs);
    let buckets = match (&global_jwt, &cache) {
        (Some(jwt), Some(cache)) => buckets(raw.buckets, env, jwt.as_ref(), cache, &mut errs),
        _ => None,
    };
    let logging = crate::telemetry::config::logging(raw.logging, &mut errs);
    let metrics = metrics(raw.metrics, &mut errs);
    if let (Some(server), Some(admin), Some(metrics)) = (&server, &admin, &metrics) {
        listener_conflicts(server, admin, metrics, &mut errs);
    }
    match (server, admin, upstream, buckets, logging, metrics, cache) {
        (
            Some(server),
            Some(admin),
            Some(upstream),
            Some(buckets),
            Some(logging),
            Some(metrics),
            Some(cache),
        ) if errs.0.is_empty() => Ok(Config {
            server,
            admin,
            upstream,
            buckets,
            logging,
            metrics,
            cache,
        }),
        _ => {
            debug_assert!(!errs.0.is_empty(), "a section failed without an error");
            Err(errs.0)
        }
    }
}

// ---------------------------------------------------------------- listeners

fn server(raw: RawServer, errs: &mut Errors) -> Option<ServerConfig> {
    let before = errs.count();
    let port = port(raw.port, "server.port", errs);
    let address = listen_address(
        raw.address.map(|s| s.0),
        port,
        SocketAddr::new(ANY_V4, 8080),
        "server.address",
        Some("server.port"),
        errs,
    );
    let request_timeout = seconds(
        raw.request_timeout_seconds,
        30,
        true,
        "server.request_timeout_seconds",
        errs,
    );
    let graceful_shutdown_timeout = seconds(
        raw.graceful_shutdown_timeout_seconds,
        30,
        false,
        "server.graceful_shutdown_timeout_seconds",
        errs,
    );
    let header_read_timeout = seconds(
        raw.header_read_timeout_seconds,
        10,
        true,
        "server.header_read_timeout_seconds",
        errs,
    );
    let readiness_probe_interval = seconds(
        raw.readiness_probe_interval_seconds,
        10,
        true,
        "server.readiness_probe_interval_seconds",
        errs,
    );
    let max_connections = count(
        raw.max_connections,
        10_000,
        1,
        usize::MAX,
        "server.max_connections",
        errs,
    );
    let max_header_bytes = count(
        raw.max_header_bytes,
        65_536,
        4096,
        1_048_576,
        "server.max_header_bytes",
        errs,
    );
    let worker_threads = raw
        .worker_threads
        .map(|threads| count(Some(threads), 1, 1, 1024, "server.worker_threads", errs));
    let idle_timeout = seconds_within(
        raw.idle_timeout_seconds,
        ServerConfig::DEFAULT_IDLE_TIMEOUT_SECONDS,
        1,
        ServerConfig::MAX_IDLE_TIMEOUT_SECONDS,
        "server.idle_timeout_seconds",
        errs,
    );
    let http2_max_concurrent_streams = count(
        raw.http2_max_concurrent_streams,
        ServerConfig::DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS as usize,
        1,
        ServerConfig::MAX_HTTP2_MAX_CONCURRENT_STREAMS as usize,
        "server.http2_max_concurrent_streams",
        errs,
    );
    (errs.count() == before).then(|| ServerConfig {
        address: address.unwrap_or(SocketAddr::new(ANY_V4, 8080)),
        request_timeout,
        graceful_shutdown_timeout,
        header_read_timeout,
        idle_timeout,
        readiness_probe_interval,
        max_connections,
        max_header_bytes,
        http2_max_concurrent_streams: u32::try_from(http2_max_concurrent_streams)
            .unwrap_or(ServerConfig::DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS),
        worker_threads,
    })
}

fn admin(raw: RawAdmin, errs: &mut Errors) -> Option<AdminConfig> {
    let before = errs.count();
    let enabled = raw.enabled.is_none_or(|Bool(b)| b);
    let address = listen_address(
        raw.address.map(|s| s.0),
        None,
        SocketAddr::new(LOCALHOST_V4, 9091),
        "admin.address",
        None,
        errs,
    );
    let token = match raw.token {
        Some(Str(t)) if t.is_empty() => {
            errs.push("admin.token", "is empty: set a token or remove the key");
            None
        }
        Some(Str(t)) => Some(Secret::new(t)),
        None => None,
    };
    let jwt = crate::auth::config::admin_jwt(raw.jwt, "admin.jwt", errs);
    let allowed_hosts = admin_allowed_hosts(raw.allowed_hosts.unwrap_or_default(), errs);
    match jwt {
        Some(jwt) if errs.count() == before => Some(AdminConfig {
            address: if enabled { address } else { None },
            token,
            jwt,
            allowed_hosts,
        }),
        _ => None,
    }
}

/// `admin.allowed_hosts`: each entry a host name or an IP address (IPv6 with
/// or without brackets), without scheme, port or path; names are lowercased
/// and addresses written in canonical form.
fn admin_allowed_hosts(raw: Vec<Str>, errs: &mut Errors) -> Vec<String> {
    let mut hosts = Vec::with_capacity(raw.len());
    for (i, Str(entry)) in raw.into_iter().enumerate() {
        let entry = entry.trim();
        let unbracketed = entry
            .strip_prefix('[')
            .and_then(|e| e.strip_suffix(']'))
            .unwrap_or(entry);
        if let Ok(ip) = unbracketed.parse::<std::net::IpAddr>() {
            hosts.push(ip.to_string());
        } else if is_dns_name(entry) {
            hosts.push(entry.to_ascii_lowercase());
        } else {
            errs.push(
                format!("admin.allowed_hosts[{i}]"),
                "not a host name or IP address (no scheme, port, path or wildcard)",
            );
        }
    }
    hosts
}

/// A DNS name: dot-separated labels of 1–63 letters, digits, `-` or `_`, not
/// starting or ending with `-`, 253 characters at most.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn metrics(raw: RawMetrics, errs: &mut Errors) -> Option<MetricsConfig> {
    let before = errs.count();
    let enabled = raw.enabled.is_none_or(|Bool(b)| b);
    let port = port(raw.port, "metrics.port", errs);
    let address = listen_address(
        raw.address.map(|s| s.0),
        port,
        SocketAddr::new(ANY_V4, 9090),
        "metrics.address",
        Some("metrics.port"),
        errs,
    );
    (errs.count() == before).then(|| MetricsConfig {
        enabled,
        address: address.unwrap_or(SocketAddr::new(ANY_V4, 9090)),
    })
}

/// Rejects two enabled listeners on the same port of overlapping addresses:
/// the second bind would fail at start-up anyway, with a worse message.
fn listener_conflicts(
    server: &ServerConfig,
    admin: &AdminConfig,
    metrics: &MetricsConfig,
    errs: &mut Errors,
) {
    let mut listeners = vec![("server.address", server.address)];
    if let Some(a) = admin.address {
        listeners.push(("admin.address", a));
    }
    if metrics.enabled {
        listeners.push(("metrics.address", metrics.address));
    }
    for (i, (path, addr)) in listeners.iter().enumerate() {
        if let Some((other, _)) = listeners[..i].iter().find(|(_, earlier)| {
            addr.port() != 0
                && earlier.port() == addr.port()
                && (earlier.ip() == addr.ip()
                    || earlier.ip().is_unspecified()
                    || addr.ip().is_unspecified())
        }) {
            errs.push(*path, format!("uses the same port as {other}"));
        }
    }
}

fn port(raw: Option<U64>, path: &str, errs: &mut Errors) -> Option<u16> {
    let U64(p) = raw?;
    match u16::try_from(p) {
        Ok(p) => Some(p),
        Err(_) => {
            errs.push(path, "must be a port number (0 to 65535)");
            None
        }
    }
}

/// What an `address` option holds.
#[derive(Debug, PartialEq, Eq)]
enum AddressSpec {
    /// `host:port`, already resolved.
    Full(SocketAddr),
    /// A bare IP address: the port comes from elsewhere.
    Ip(IpAddr),
    /// A bare host name: resolved once the port is known.
    Host(String),
}

const BAD_ADDRESS: &str = "not a valid address (expected host:port)";

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !s.starts_with(['-', '.'])
}

fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    (host, port).to_socket_addrs().ok()?.next()
}

/// Parses `host:port`, `ip`, `[ipv6]` or `host`; `Err` carries the message.
fn parse_address(s: &str) -> Result<AddressSpec, &'static str> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(AddressSpec::Full(addr));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(AddressSpec::Ip(ip));
    }
    if let Some(ip) = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|s| s.parse::<Ipv6Addr>().ok())
    {
        return Ok(AddressSpec::Ip(IpAddr::V6(ip)));
    }
    match s.rsplit_once(':') {
        Some((host, port)) => {
            let port: u16 = port.parse().map_err(|_| BAD_ADDRESS)?;
            if !is_host_name(host) {
                return Err(BAD_ADDRESS);
            }
            resolve(host, port)
                .map(AddressSpec::Full)
                .ok_or("not a valid address (expected host:port): the host name does not resolve")
        }
        None if is_host_name(s) => Ok(AddressSpec::Host(s.to_owned())),
        None => Err(BAD_ADDRESS),
    }
}

/// Combines an `address` option (either form) with an optional `port` option.
///
/// Returns `None` after recording an error.
fn listen_address(
    address: Option<String>,
    port: Option<u16>,
    default: SocketAddr,
    address_path: &str,
    port_path: Option<&str>,
    errs: &mut Errors,
) -> Option<SocketAddr> {
    let Some(address) = address else {
        return Some(port.map_or(default, |p| SocketAddr::new(default.ip(), p)));
    };
    let spec = match parse_address(&address) {
        Ok(spec) => spec,
        Err(message) => {
            errs.push(address_path, message);
            return None;
        }
    };
    match (spec, port) {
        (AddressSpec::Full(addr), None) => Some(addr),
        (AddressSpec::Full(addr), Some(p)) if addr.port() == p => Some(addr),
        (AddressSpec::Full(_), Some(_)) => {
            errs.push(
                port_path.unwrap_or(address_path),
                format!("differs from the port given in {address_path}"),
            );
            None
        }
        (AddressSpec::Ip(ip), Some(p)) => Some(SocketAddr::new(ip, p)),
        (AddressSpec::Host(host), Some(p)) => match resolve(&host, p) {
            Some(addr) => Some(addr),
            None => {
                errs.push(
                    address_path,
                    "not a valid address (expected host:port): the host name does not resolve",
                );
                None
            }
        },
        (AddressSpec::Ip(_) | AddressSpec::Host(_), None) => {
            let message = match port_path {
                Some(port_path) => format!("has no port: write host:port or set {port_path}"),
                None => BAD_ADDRESS.to_owned(),
            };
            errs.push(address_path, message);
            None
        }
    }
}

// ---------------------------------------------------------------- buckets

fn buckets(
    raw: Option<Vec<RawBucket>>,
    env: &dyn Fn(&str) -> Option<String>,
    global_jwt: Option<&crate::auth::config::JwtConfig>,
    cache: &crate::cache::config::CacheConfig,
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
    for (i, b) in raw.into_iter().enumerate() {
        let at = format!("buckets[{i}]");
        let name = bucket_name(b.name, &at, errs);
        if let Some(name) = &name {
            if let Some(first) = names.get(name) {
                errs.push(
                    format!("{at}.name"),
                    format!("duplicate bucket name (also used by buckets[{first}])"),
                );
            } else {
                names.insert(name.clone(), i);
            }
        }
        let path_prefix = path_prefix(b.path_prefix, &at, errs);
        if let Some(prefix) = &path_prefix {
            if let Some(first) = prefixes.get(prefix) {
                errs.push(
                    format!("{at}.path_prefix"),
                    format!("duplicate path_prefix (also used by buckets[{first}])"),
                );
            } else {
                prefixes.insert(prefix.clone(), i);
            }
        }
        let s3 = match b.s3 {
            Some(s3) => crate::upstream::config::s3_config(s3, &format!("{at}.s3"), env, errs),
            None => {
                errs.push(format!("{at}.s3"), "missing");
                None
            }
        };
        let auth = crate::auth::config::bucket_auth(b.auth, global_jwt, &at, errs);
        let bucket_cache = crate::cache::config::bucket_cache(b.cache, cache, &at, errs);
        if let (Some(name), Some(path_prefix), Some(s3), Some(auth), Some(cache)) =
            (name, path_prefix, s3, auth, bucket_cache)
        {
            out.push(BucketConfig {
                name,
                path_prefix,
                s3,
                auth,
                cache,
            });
        }
    }
    (errs.count() == before).then_some(out)
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
    use std::time::Duration;

    use crate::config::test_support::{
        anonymous_bucket, assert_error, load, one_error, with_s3, with_section,
    };

    // ------------------------------------------------------------ server

    #[test]
    fn server_address_forms() {
        let host_port = load(&with_section("server:\n  address: \"127.0.0.1:8081\""), &[]).unwrap();
        assert_eq!(host_port.server.address, "127.0.0.1:8081".parse().unwrap());

        let split = load(
            &with_section("server:\n  address: \"127.0.0.1\"\n  port: 8081"),
            &[],
        )
        .unwrap();
        assert_eq!(split.server.address, "127.0.0.1:8081".parse().unwrap());

        let both_agree = load(
            &with_section("server:\n  address: \"127.0.0.1:8081\"\n  port: 8081"),
            &[],
        )
        .unwrap();
        assert_eq!(both_agree.server.address, "127.0.0.1:8081".parse().unwrap());

        let port_only = load(&with_section("server:\n  port: 8082"), &[]).unwrap();
        assert_eq!(port_only.server.address, "0.0.0.0:8082".parse().unwrap());

        let v6 = load(&with_section("server:\n  address: \"[::1]:8083\""), &[]).unwrap();
        assert_eq!(v6.server.address, "[::1]:8083".parse().unwrap());
        let v6 = load(
            &with_section("server:\n  address: \"::\"\n  port: 8083"),
            &[],
        )
        .unwrap();
        assert_eq!(v6.server.address, "[::]:8083".parse().unwrap());

        let named = load(&with_section("server:\n  address: \"localhost:8084\""), &[]).unwrap();
        assert_eq!(named.server.address.port(), 8084);
        assert!(named.server.address.ip().is_loopback());
        let named = load(
            &with_section("server:\n  address: localhost\n  port: 8085"),
            &[],
        )
        .unwrap();
        assert_eq!(named.server.address.port(), 8085);
    }

    #[test]
    fn server_address_errors() {
        assert_error(
            &with_section("server:\n  address: \"127.0.0.1:8081\"\n  port: 8080"),
            "server.port",
            "differs from the port given in server.address",
        );
        assert_error(
            &with_section("server:\n  address: \"127.0.0.1\""),
            "server.address",
            "has no port",
        );
        for bad in [
            "\"not an address!\"",
            "\"1.2.3.4:99999\"",
            "\":80\"",
            "\"\"",
        ] {
            assert_error(
                &with_section(&format!("server:\n  address: {bad}")),
                "server.address",
                "not a valid address (expected host:port)",
            );
        }
        assert_error(
            &with_section("server:\n  port: 70000"),
            "server.port",
            "port number",
        );
    }

    #[test]
    fn server_numbers() {
        for key in [
            "request_timeout_seconds",
            "header_read_timeout_seconds",
            "readiness_probe_interval_seconds",
            "max_connections",
        ] {
            assert_error(
                &with_section(&format!("server:\n  {key}: 0")),
                &format!("server.{key}"),
                "must be greater than 0",
            );
        }
        let c = load(
            &with_section("server:\n  graceful_shutdown_timeout_seconds: 0"),
            &[],
        )
        .unwrap();
        assert_eq!(c.server.graceful_shutdown_timeout, Duration::ZERO);
        for bad in [4095, 1_048_577] {
            assert_error(
                &with_section(&format!("server:\n  max_header_bytes: {bad}")),
                "server.max_header_bytes",
                "between 4096 and 1048576",
            );
        }
        for good in [4096, 1_048_576] {
            let c = load(
                &with_section(&format!("server:\n  max_header_bytes: {good}")),
                &[],
            )
            .unwrap();
            assert_eq!(c.server.max_header_bytes, good);
        }
        for bad in [0, 1025] {
            assert_error(
                &with_section(&format!("server:\n  worker_threads: {bad}")),
                "server.worker_threads",
                "between 1 and 1024",
            );
        }
        let c = load(&with_section("server:\n  worker_threads: 1"), &[]).unwrap();
        assert_eq!(
            (c.server.worker_threads, c.server.runtime_threads()),
            (Some(1), 1)
        );
        let c = load(&with_section("server:\n  max_connections: 5"), &[]).unwrap();
        assert_eq!(c.server.worker_threads, None, "one per CPU by default");
        assert!(c.server.runtime_threads() >= 1);
        let c = load(
            &with_section(
                "server:\n  request_timeout_seconds: 7\n  graceful_shutdown_timeout_seconds: 8\n  \
                 header_read_timeout_seconds: 9\n  readiness_probe_interval_seconds: 11\n  \
                 max_connections: 12",
            ),
            &[],
        )
        .unwrap();
        assert_eq!(c.server.request_timeout.as_secs(), 7);
        assert_eq!(c.server.graceful_shutdown_timeout.as_secs(), 8);
        assert_eq!(c.server.header_read_timeout.as_secs(), 9);
        assert_eq!(c.server.readiness_probe_interval.as_secs(), 11);
        assert_eq!(c.server.max_connections, 12);
    }

    #[test]
    fn server_connection_settings() {
        let c = load(&with_section("server:\n  max_connections: 5"), &[]).unwrap();
        assert_eq!(c.server.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.server.http2_max_concurrent_streams, 100);
        for bad in [0, 3601] {
            assert_error(
                &with_section(&format!("server:\n  idle_timeout_seconds: {bad}")),
                "server.idle_timeout_seconds",
                "between 1 and 3600",
            );
        }
        for bad in [0, 1001] {
            assert_error(
                &with_section(&format!("server:\n  http2_max_concurrent_streams: {bad}")),
                "server.http2_max_concurrent_streams",
                "between 1 and 1000",
            );
        }
        let c = load(
            &with_section(
                "server:\n  idle_timeout_seconds: 3600\n  http2_max_concurrent_streams: 1000",
            ),
            &[],
        )
        .unwrap();
        assert_eq!(c.server.idle_timeout, Duration::from_secs(3600));
        assert_eq!(c.server.http2_max_concurrent_streams, 1000);
        let c = load(
            &with_section("server:\n  idle_timeout_seconds: 1\n  http2_max_concurrent_streams: 1"),
            &[],
        )
        .unwrap();
        assert_eq!(c.server.idle_timeout, Duration::from_secs(1));
        assert_eq!(c.server.http2_max_concurrent_streams, 1);
    }

    // ------------------------------------------------------------ admin, upstream, metrics

    #[test]
    fn admin_section() {
        let c = load(
            &with_section(
                "admin:\n  enabled: true\n  address: \"127.0.0.1:9999\"\n  token: \"${TOK}\"",
            ),
            &[("TOK", "t0ken")],
        )
        .unwrap();
        assert_eq!(c.admin.address, Some("127.0.0.1:9999".parse().unwrap()));
        assert_eq!(c.admin.token.as_ref().unwrap().expose(), "t0ken");

        let c = load(&with_section("admin:\n  enabled: false"), &[]).unwrap();
        assert_eq!(c.admin.address, None);

        let e = one_error(&with_section("admin:\n  token: \"${TOK}\""), &[("TOK", "")]);
        assert_eq!(e.path, "admin.token");
        assert!(e.message.contains("set a token or remove the key"), "{e}");

        assert_error(
            &with_section("admin:\n  address: \"127.0.0.1\""),
            "admin.address",
            "not a valid address (expected host:port)",
        );
    }

    #[test]
    fn admin_allowed_hosts() {
        let c = load(&with_section("admin:\n  address: \"0.0.0.0:9091\""), &[]).unwrap();
        assert!(c.admin.allowed_hosts.is_empty());
        let c = load(
            &with_section(
                "admin:\n  allowed_hosts: [\"Admin.Internal\", \"${IP}\", \"[FD00::0:7]\", \"fd00::8\"]",
            ),
            &[("IP", "192.168.1.20")],
        )
        .unwrap();
        assert_eq!(
            c.admin.allowed_hosts,
            ["admin.internal", "192.168.1.20", "fd00::7", "fd00::8"]
        );
        for bad in [
            "\"\"",
            "\"admin.internal:9091\"",
            "\"http://admin.internal\"",
            "\"*.internal\"",
            "\"admin..internal\"",
            "\"-admin.internal\"",
            "\"admin/x\"",
        ] {
            assert_error(
                &with_section(&format!("admin:\n  allowed_hosts: [{bad}]")),
                "admin.allowed_hosts[0]",
                "not a host name or IP address",
            );
        }
    }

    #[test]
    fn metrics_address_forms() {
        let c = load(&with_section("metrics:\n  port: 9191"), &[]).unwrap();
        assert_eq!(c.metrics.address, "0.0.0.0:9191".parse().unwrap());
        let c = load(
            &with_section("metrics:\n  address: \"127.0.0.1:9192\""),
            &[],
        )
        .unwrap();
        assert_eq!(c.metrics.address, "127.0.0.1:9192".parse().unwrap());
        let c = load(
            &with_section("metrics:\n  address: \"127.0.0.1:9193\"\n  port: 9193"),
            &[],
        )
        .unwrap();
        assert_eq!(c.metrics.address, "127.0.0.1:9193".parse().unwrap());
        let c = load(
            &with_section("metrics:\n  address: \"127.0.0.1\"\n  port: 9194"),
            &[],
        )
        .unwrap();
        assert_eq!(c.metrics.address, "127.0.0.1:9194".parse().unwrap());
        assert_error(
            &with_section("metrics:\n  address: \"127.0.0.1:9193\"\n  port: 9194"),
            "metrics.port",
            "differs from the port given in metrics.address",
        );
        let c = load(&with_section("metrics:\n  enabled: false"), &[]).unwrap();
        assert!(!c.metrics.enabled);
    }

    #[test]
    fn listeners_must_not_collide() {
        assert_error(
            &with_section("metrics:\n  port: 8080"),
            "metrics.address",
            "uses the same port as server.address",
        );
        assert_error(
            &with_section("admin:\n  address: \"127.0.0.1:8080\""),
            "admin.address",
            "uses the same port as server.address",
        );
        // Disabled listeners and port 0 do not count.
        load(
            &with_section("metrics:\n  enabled: false\n  port: 8080"),
            &[],
        )
        .unwrap();
        load(
            &with_section(
                "server:\n  address: \"127.0.0.1:0\"\nadmin:\n  address: \"127.0.0.1:0\"",
            ),
            &[],
        )
        .unwrap();
    }

    // ------------------------------------------------------------ buckets

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

    #[test]
    fn secrets_never_appear_in_errors() {
        let secret = "Zq9-very-secret-value";
        let text = "
admin:
  token: \"${SECRET}\"
  address: \"${SECRET}\"
server:
  port: \"${SECRET}\"
buckets:
  - name: \"${SECRET}\"
    path_prefix: \"${SECRET}\"
    s3:
      bucket: \"${SECRET}\"
      region: \"${SECRET}\"
      endpoint: \"${SECRET}\"
      access_key: \"${SECRET}\"
      anonymous: true
";
        let errors = load(text, &[("SECRET", secret)]).unwrap_err();
        assert!(!errors.is_empty());
        for e in &errors {
            assert!(!e.to_string().contains(secret), "{e}");
            assert!(!e.to_string().contains("very-secret"), "{e}");
        }
        // Sections replaced wholesale by a substituted string are redacted too.
        let errors = load("buckets: \"${SECRET}\"\n", &[("SECRET", secret)]).unwrap_err();
        assert_eq!(errors[0].path, "buckets");
        assert!(!errors[0].message.contains(secret), "{}", errors[0]);
        // Validated configurations do not leak through Debug either.
        let c = load(
            &with_s3("      access_key: \"${SECRET}\"\n      secret_key: \"${SECRET}\"\n"),
            &[("SECRET", secret)],
        )
        .unwrap();
        assert!(!format!("{c:?}").contains(secret));
    }

    // ------------------------------------------------------------ ${VAR} through the loader

    #[test]
    fn variable_expansion_through_the_loader() {
        let text = with_s3(
            "      access_key: \"${AK}\"\n      secret_key: \"${SK:-default-secret}\"\n      \
             endpoint: \"http://${HOST}:9000\"\n",
        )
        .replace("name: b", "name: \"cost$$center\"");
        let e = one_error(&text, &[("AK", "a"), ("HOST", "minio")]);
        // `$$` became `$`, which is not allowed in a name: expansion happened first.
        assert_eq!(e.path, "buckets[0].name");

        let text = text.replace("\"cost$$center\"", "b");
        let c = load(&text, &[("AK", "a"), ("HOST", "minio")]).unwrap();
        let s3 = &c.buckets[0].s3;
        assert_eq!(
            s3.credentials.as_ref().unwrap().secret_key.expose(),
            "default-secret"
        );
        assert_eq!(s3.endpoint.as_ref().unwrap().host(), Some("minio"));
        let c = load(&text, &[("AK", "a"), ("HOST", "minio"), ("SK", "")]).unwrap();
        assert_eq!(
            c.buckets[0]
                .s3
                .credentials
                .as_ref()
                .unwrap()
                .secret_key
                .expose(),
            "default-secret"
        );
    }

    #[test]
    fn missing_variable_names_variable_and_path() {
        let text = with_s3("      access_key: \"${AWS_KEY}\"\n      secret_key: \"${SK}\"\n");
        let errors = load(&text, &[("SK", "the-secret")]).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].to_string(),
            "buckets[0].s3.access_key: environment variable AWS_KEY is not set"
        );
        let errors = load(&with_s3("      region2: \"${NOPE}\"\n"), &[]).unwrap_err();
        // The unknown key is reported too, after the expansion error.
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["buckets[0].s3.region2", "buckets[0].s3.region2"]);
        assert!(errors[1].message.contains("unknown field"));
        // An unset variable in a number is not reported twice.
        let errors = load(&with_section("server:\n  port: \"${NOPE}\""), &[]).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let errors = load(&with_section("server:\n  port: \"${NOPE\""), &[]).unwrap_err();
        assert_eq!(errors[0].path, "server.port");
        assert!(errors[0].message.contains("unterminated"), "{errors:?}");
    }

    // ------------------------------------------------------------ all errors at once

    #[test]
    fn every_problem_is_reported() {
        let text = "
server:
  request_timeout_seconds: 0
  max_header_bytes: 10
admin:
  token: ''
logging:
  level: loud
buckets:
  - name: 'bad name'
    path_prefix: /health
    s3:
      bucket: BAD
      endpoint: 'ftp://x'
    auth:
      enabled: true
  - name: ok
    path_prefix: nope
    s3:
      bucket: fine-bucket
      region: us-east-1
      access_key: only-one
  - name: ok
    path_prefix: /ok
";
        let errors = load(text, &[]).unwrap_err();
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let expected_paths = [
            "server.request_timeout_seconds",
            "server.max_header_bytes",
            "admin.token",
            "buckets[0].name",
            "buckets[0].path_prefix",
            "buckets[0].s3.bucket",
            "buckets[0].s3.endpoint",
            "buckets[0].s3.region",
            "buckets[0].s3.access_key",
            "buckets[0].auth.enabled",
            "buckets[1].path_prefix",
            "buckets[1].s3.secret_key",
            "buckets[2].name",
            "buckets[2].s3",
            "logging.level",
        ];
        for path in expected_paths {
            assert!(
                errors.iter().any(|e| e.path == path),
                "no error at {path}:\n{}",
                lines.join("\n")
            );
        }
        assert!(!lines.iter().any(|l| l.contains("only-one")));
        assert!(
            lines.contains(
                &"buckets[2].name: duplicate bucket name (also used by buckets[1])".to_owned()
            ),
            "{}",
            lines.join("\n")
        );
    }
}
