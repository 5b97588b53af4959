//! `server:` and `metrics:`: the data and Prometheus listeners, and the rule
//! that no two enabled listeners share a port.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::address::{listen_address, port};
use super::https::https;
use super::model::{AdminConfig, MetricsConfig, ServerConfig};
use super::{RawMetrics, RawServer};
use crate::client_addr::config::trusted_proxies;
use crate::config::{Bool, Errors, count, seconds, seconds_within};
use crate::limits::config::security_limits;
use crate::rate_limit::config::rate_limit;

/// Where the proxy listens by default: every interface, port 8080.
const DEFAULT_SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);
/// Where `/metrics` is served by default: every interface, port 9090.
const DEFAULT_METRICS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 9090);

/// Validates the `server:` section.
pub(crate) fn server(mut raw: RawServer, errs: &mut Errors) -> Option<ServerConfig> {
    let before = errs.count();
    let port = port(raw.port, "server.port", errs);
    let address = listen_address(
        raw.address.take().map(|s| s.0),
        port,
        DEFAULT_SERVER,
        "server.address",
        Some("server.port"),
        errs,
    );
    let timeouts = timeouts(&raw, errs);
    let limits = limits(&raw, errs);
    let connections = connections(&raw, errs);
    let security_limits = security_limits(std::mem::take(&mut raw.security_limits), errs);
    let trusted_proxies = trusted_proxies(raw.trusted_proxies.take(), errs);
    let rate_limit = rate_limit(raw.rate_limit.take(), errs);
    let https = https(raw.https.take(), errs);
    (errs.count() == before).then(|| ServerConfig {
        address: address.unwrap_or(DEFAULT_SERVER),
        request_timeout: timeouts.request,
        graceful_shutdown_timeout: timeouts.graceful_shutdown,
        shutdown_delay: timeouts.shutdown_delay,
        header_read_timeout: timeouts.header_read,
        idle_timeout: connections.idle_timeout,
        readiness_probe_interval: timeouts.readiness_probe_interval,
        max_connections: limits.max_connections,
        max_header_bytes: limits.max_header_bytes,
        http2_max_concurrent_streams: connections.http2_max_concurrent_streams,
        worker_threads: limits.worker_threads,
        max_concurrent_requests: limits.max_concurrent_requests,
        security_limits,
        trusted_proxies,
        rate_limit,
        https,
    })
}

/// The `*_seconds` options of `server:` but the idle timeout.
struct Timeouts {
    request: Duration,
    graceful_shutdown: Duration,
    shutdown_delay: Duration,
    header_read: Duration,
    readiness_probe_interval: Duration,
}

fn timeouts(raw: &RawServer, errs: &mut Errors) -> Timeouts {
    let mut secs = |value, default, positive, key: &str| {
        seconds(value, default, positive, &format!("server.{key}"), errs)
    };
    Timeouts {
        request: secs(
            raw.request_timeout_seconds,
            30,
            true,
            "request_timeout_seconds",
        ),
        graceful_shutdown: secs(
            raw.graceful_shutdown_timeout_seconds,
            30,
            false,
            "graceful_shutdown_timeout_seconds",
        ),
        shutdown_delay: secs(
            raw.shutdown_delay_seconds,
            0,
            false,
            "shutdown_delay_seconds",
        ),
        header_read: secs(
            raw.header_read_timeout_seconds,
            10,
            true,
            "header_read_timeout_seconds",
        ),
        readiness_probe_interval: secs(
            raw.readiness_probe_interval_seconds,
            10,
            true,
            "readiness_probe_interval_seconds",
        ),
    }
}

/// How much the server takes on: connections, request head size, threads.
struct Limits {
    max_connections: usize,
    max_concurrent_requests: usize,
    max_header_bytes: usize,
    worker_threads: Option<usize>,
}

fn limits(raw: &RawServer, errs: &mut Errors) -> Limits {
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
    let max_concurrent_requests = count(
        raw.max_concurrent_requests,
        10_000,
        0,
        1_000_000,
        "server.max_concurrent_requests",
        errs,
    );
    let worker_threads = raw
        .worker_threads
        .map(|threads| count(Some(threads), 1, 1, 1024, "server.worker_threads", errs));
    Limits {
        max_connections,
        max_concurrent_requests,
        max_header_bytes,
        worker_threads,
    }
}

/// How long an idle connection is kept, and how many HTTP/2 streams it may carry.
struct Connections {
    idle_timeout: Duration,
    http2_max_concurrent_streams: u32,
}

fn connections(raw: &RawServer, errs: &mut Errors) -> Connections {
    let idle_timeout = seconds_within(
        raw.idle_timeout_seconds,
        ServerConfig::DEFAULT_IDLE_TIMEOUT_SECONDS,
        1,
        ServerConfig::MAX_IDLE_TIMEOUT_SECONDS,
        "server.idle_timeout_seconds",
        errs,
    );
    let streams = count(
        raw.http2_max_concurrent_streams,
        ServerConfig::DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS as usize,
        1,
        ServerConfig::MAX_HTTP2_MAX_CONCURRENT_STREAMS as usize,
        "server.http2_max_concurrent_streams",
        errs,
    );
    Connections {
        idle_timeout,
        http2_max_concurrent_streams: u32::try_from(streams)
            .unwrap_or(ServerConfig::DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS),
    }
}

/// Validates the `metrics:` section.
pub(crate) fn metrics(raw: RawMetrics, errs: &mut Errors) -> Option<MetricsConfig> {
    let before = errs.count();
    let enabled = raw.enabled.is_none_or(|Bool(b)| b);
    let port = port(raw.port, "metrics.port", errs);
    let address = listen_address(
        raw.address.map(|s| s.0),
        port,
        DEFAULT_METRICS,
        "metrics.address",
        Some("metrics.port"),
        errs,
    );
    (errs.count() == before).then(|| MetricsConfig {
        enabled,
        address: address.unwrap_or(DEFAULT_METRICS),
    })
}

/// Rejects two enabled listeners on the same port of overlapping addresses:
/// the second bind would fail at start-up anyway, with a worse message.
pub(crate) fn listener_conflicts(
    server: &ServerConfig,
    admin: &AdminConfig,
    metrics: &MetricsConfig,
    errs: &mut Errors,
) {
    let mut listeners = vec![("server.address", server.address)];
    if let Some(plain) = server.https.as_ref().and_then(|h| h.plain_address) {
        listeners.push(("server.https.plain_address", plain));
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::test_support::{assert_error, load, with_section};

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
    fn https_is_read_only_when_enabled() {
        let disabled = "server:\n  https:\n    enabled: false\n    cert_path: /nonexistent/c.pem\n    \
                        key_path: /nonexistent/k.pem\n    min_tls_version: \"1.3\"";
        let c = load(&with_section(disabled), &[]).unwrap();
        assert!(c.server.https.is_none(), "disabled: no file is read");
        assert_error(
            &with_section(
                "server:\n  https:\n    enabled: true\n    cert_path: /nonexistent/c.pem",
            ),
            "server.https.key_path",
            "is required when server.https.enabled is true",
        );
        assert_error(
            &with_section(
                "server:\n  https:\n    enabled: true\n    cert_path: /nonexistent/c.pem\n    \
                 key_path: /nonexistent/k.pem",
            ),
            "server.https.cert_path",
            "cannot read /nonexistent/c.pem",
        );
        // The plain listener would serve clients without a certificate.
        assert_error(
            &with_section(
                "server:\n  https:\n    enabled: true\n    cert_path: /nonexistent/c.pem\n    \
                 key_path: /nonexistent/k.pem\n    client_ca_path: /nonexistent/ca.pem\n    \
                 plain_address: \"127.0.0.1:8081\"",
            ),
            "server.https.plain_address",
            "not allowed with client_ca_path",
        );
        assert_error(
            &with_section("server:\n  https:\n    min_tls_version: \"1.0\""),
            "server.https.min_tls_version",
            "must be \"1.2\" or \"1.3\"",
        );
        assert_error(
            &with_section("server:\n  https:\n    ciphers: [a]"),
            "server.https.ciphers",
            "unknown field",
        );
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
}
