//! `observability:` (the original Yatagarasu's keys): `tracing` (OpenTelemetry
//! export), `slow_query` (the slow-request log) and `request_logging` (see
//! [`crate::request_log`]), as written and validated.

use std::time::Duration;

use serde::Deserialize;

use crate::config::{Bool, Errors, Str, U64};
use crate::request_log::config::{RawRequestLogging, RequestLogConfig, request_logging};

/// Where spans go when `otlp_endpoint` is not set: a local collector's OTLP/HTTP port.
pub const DEFAULT_OTLP_ENDPOINT: &str = "http://127.0.0.1:4318";
/// `slow_query.threshold_ms` when not set.
const DEFAULT_THRESHOLD_MS: u64 = 1000;

/// `observability:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the observability section (a mapping)"
)]
pub(crate) struct RawObservability {
    tracing: Option<RawTracing>,
    slow_query: Option<RawSlowQuery>,
    request_logging: Option<RawRequestLogging>,
}

/// `observability.tracing:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the tracing section (a mapping)"
)]
struct RawTracing {
    enabled: Option<Bool>,
    exporter: Option<Str>,
    otlp_endpoint: Option<Str>,
    protocol: Option<Str>,
    service_name: Option<Str>,
    sampling_ratio: Option<Ratio>,
    /// The original's Jaeger and Zipkin exporters' addresses: read only with
    /// `exporter: jaeger` / `zipkin` there, which is refused here.
    jaeger_endpoint: Option<Str>,
    zipkin_endpoint: Option<Str>,
    propagate_context: Option<Bool>,
}

/// `observability.slow_query:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the slow query section (a mapping)"
)]
struct RawSlowQuery {
    enabled: Option<Bool>,
    threshold_ms: Option<U64>,
    include_breakdown: Option<Bool>,
    /// The original's level of the line: only `warn`, the level it has here.
    log_level: Option<Str>,
}

/// A number as written (`0.1`, `1`, `"0.5"`); `None`: not a number.
#[derive(Debug)]
struct Ratio(Option<f64>);

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Ratio;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number from 0 to 1")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Ratio, E> {
                Ok(Ratio(Some(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ratio, E> {
                Ok(Ratio(Some(v as f64)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ratio, E> {
                Ok(Ratio(Some(v as f64)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Ratio, E> {
                Ok(Ratio(v.trim().parse().ok().filter(|r: &f64| r.is_finite())))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ratio, E> {
                Ok(Ratio(None))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The validated `observability:` section: tracing and the slow log are
/// fixed at start, request logging follows reloads.
#[derive(Debug, Clone, Default)]
pub struct ObservabilityConfig {
    /// OpenTelemetry trace export, when enabled.
    pub tracing: Option<TracingConfig>,
    /// The slow-request log, when enabled.
    pub slow_query: Option<SlowQueryConfig>,
    /// Request and response lines, when either is on.
    pub request_logging: Option<RequestLogConfig>,
}

/// `observability.tracing`, when enabled: OTLP over HTTP/protobuf.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// The collector's traces URL (`…/v1/traces`, added to a base URL).
    pub endpoint: String,
    /// `service.name` of every span.
    pub service_name: String,
    /// Fraction of new traces sampled (a client's sampled `traceparent`
    /// is followed whatever the ratio).
    pub sampling_ratio: f64,
    /// Whether a client's `traceparent`/`tracestate` is continued
    /// (`propagate_context`, default true); false starts a trace of our own.
    pub propagate_context: bool,
}

/// `observability.slow_query`, when enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowQueryConfig {
    /// Requests taking longer (arrival to last byte) are logged at WARN.
    pub threshold: Duration,
    /// Whether the line carries the time in each phase.
    pub include_breakdown: bool,
}

/// Validates `observability:`.
pub(crate) fn observability(
    raw: Option<RawObservability>,
    errs: &mut Errors,
) -> ObservabilityConfig {
    let raw = raw.unwrap_or_default();
    ObservabilityConfig {
        tracing: raw.tracing.and_then(|t| tracing(t, errs)),
        slow_query: raw.slow_query.and_then(|s| slow_query(s, errs)),
        request_logging: raw.request_logging.and_then(|r| request_logging(r, errs)),
    }
}

fn tracing(raw: RawTracing, errs: &mut Errors) -> Option<TracingConfig> {
    const AT: &str = "observability.tracing";
    let before = errs.count();
    // The original's `none`: tracing on, nothing exported: no spans at all.
    let none = (raw.exporter.as_ref()).is_some_and(|Str(e)| e.trim().eq_ignore_ascii_case("none"));
    if let Some(Str(exporter)) = &raw.exporter
        && !exporter.trim().eq_ignore_ascii_case("otlp")
        && !none
    {
        errs.push(
            format!("{AT}.exporter"),
            "must be otlp (Jaeger takes OTLP/HTTP itself on port 4318; an OpenTelemetry \
             Collector forwards to Zipkin)",
        );
    }
    if let Some(Str(protocol)) = &raw.protocol {
        let protocol = protocol.trim();
        if protocol.eq_ignore_ascii_case("grpc") {
            errs.push(
                format!("{AT}.protocol"),
                "grpc is not supported; use http/protobuf (a collector's port 4318)",
            );
        } else if !protocol.eq_ignore_ascii_case("http/protobuf") {
            errs.push(format!("{AT}.protocol"), "must be http/protobuf");
        }
    }
    let endpoint = raw.otlp_endpoint.map_or_else(
        || DEFAULT_OTLP_ENDPOINT.to_owned(),
        |Str(e)| e.trim().to_owned(),
    );
    let endpoint = traces_url(&endpoint).map_err(|m| errs.push(format!("{AT}.otlp_endpoint"), m));
    let service_name = raw
        .service_name
        .map_or_else(|| "yatagarasu".to_owned(), |Str(s)| s.trim().to_owned());
    if service_name.is_empty() {
        errs.push(format!("{AT}.service_name"), "must not be empty");
    }
    let sampling_ratio = match raw.sampling_ratio {
        None => 1.0,
        Some(Ratio(Some(r))) if (0.0..=1.0).contains(&r) => r,
        Some(_) => {
            errs.push(
                format!("{AT}.sampling_ratio"),
                "must be a number from 0 to 1",
            );
            0.0
        }
    };
    let enabled = raw.enabled.is_some_and(|Bool(b)| b) && !none;
    match endpoint {
        Ok(endpoint) if enabled && errs.count() == before => Some(TracingConfig {
            endpoint,
            service_name,
            sampling_ratio,
            propagate_context: raw.propagate_context.is_none_or(|Bool(b)| b),
        }),
        _ => None,
    }
}

/// The OTLP/HTTP traces URL for `endpoint`: a base URL gets `/v1/traces`
/// (as `OTEL_EXPORTER_OTLP_ENDPOINT` does); one ending in it is kept.
fn traces_url(endpoint: &str) -> Result<String, &'static str> {
    const BAD: &str = "must be an http:// or https:// URL such as http://127.0.0.1:4318";
    let uri: http::Uri = endpoint.parse().map_err(|_| BAD)?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) || uri.query().is_some() {
        return Err(BAD);
    }
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        Ok(base.to_owned())
    } else {
        Ok(format!("{base}/v1/traces"))
    }
}

fn slow_query(raw: RawSlowQuery, errs: &mut Errors) -> Option<SlowQueryConfig> {
    let threshold_ms = match raw.threshold_ms {
        None => DEFAULT_THRESHOLD_MS,
        Some(U64(0)) => {
            errs.push(
                "observability.slow_query.threshold_ms",
                "must be greater than 0",
            );
            return None;
        }
        Some(U64(ms)) => ms,
    };
    if let Some(Str(level)) = &raw.log_level
        && !level.trim().eq_ignore_ascii_case("warn")
    {
        errs.push(
            "observability.slow_query.log_level",
            "must be warn: the slow-request line is a WARN",
        );
        return None;
    }
    let enabled = raw.enabled.is_some_and(|Bool(b)| b);
    enabled.then_some(SlowQueryConfig {
        threshold: Duration::from_millis(threshold_ms),
        include_breakdown: raw.include_breakdown.is_none_or(|Bool(b)| b),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{assert_error, load, with_section};

    #[test]
    fn the_originals_keys_load() {
        let c = load(
            &with_section(
                "observability:\n  tracing: { enabled: true, exporter: otlp, otlp_endpoint: \
                 \"http://127.0.0.1:4318\", protocol: http/protobuf, service_name: yatagarasu, \
                 sampling_ratio: 0.1 }\n  slow_query: { enabled: true, threshold_ms: 1000, \
                 include_breakdown: true }",
            ),
            &[],
        )
        .unwrap();
        let tracing = c.observability.tracing.unwrap();
        assert_eq!(tracing.endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(tracing.service_name, "yatagarasu");
        assert!((tracing.sampling_ratio - 0.1).abs() < f64::EPSILON);
        let slow = c.observability.slow_query.unwrap();
        assert_eq!(slow.threshold, Duration::from_secs(1));
        assert!(slow.include_breakdown);
    }

    #[test]
    fn the_originals_other_exporters_keys_and_propagation_load() {
        let c = load(
            &with_section(
                "observability:\n  tracing: { enabled: true, exporter: otlp, jaeger_endpoint: \
                 \"http://jaeger:14268/api/traces\", zipkin_endpoint: \"http://zipkin:9411\", \
                 propagate_context: false }\n  slow_query: { enabled: true, log_level: WARN }",
            ),
            &[],
        )
        .unwrap();
        assert!(!c.observability.tracing.unwrap().propagate_context);
        assert!(c.observability.slow_query.is_some());
        let c = load(
            &with_section("observability:\n  tracing: { enabled: true }"),
            &[],
        )
        .unwrap();
        assert!(c.observability.tracing.unwrap().propagate_context);
        let c = load(
            &with_section("observability:\n  tracing: { enabled: true, exporter: none }"),
            &[],
        )
        .unwrap();
        assert!(
            c.observability.tracing.is_none(),
            "exporter none exports nothing"
        );
        assert_error(
            &with_section("observability:\n  slow_query: { enabled: true, log_level: info }"),
            "observability.slow_query.log_level",
            "must be warn",
        );
    }

    #[test]
    fn absent_or_disabled_means_off() {
        let c = load(&with_section(""), &[]).unwrap();
        assert!(c.observability.tracing.is_none() && c.observability.slow_query.is_none());
        let c = load(
            &with_section("observability:\n  tracing: { enabled: false }\n  slow_query: {}"),
            &[],
        )
        .unwrap();
        assert!(c.observability.tracing.is_none() && c.observability.slow_query.is_none());
    }

    #[test]
    fn bad_values_name_their_path() {
        let t = |s: &str| {
            with_section(&format!(
                "observability:\n  tracing: {{ enabled: true, {s} }}"
            ))
        };
        assert_error(
            &t("sampling_ratio: 1.5"),
            "observability.tracing.sampling_ratio",
            "from 0 to 1",
        );
        assert_error(
            &t("sampling_ratio: -0.1"),
            "observability.tracing.sampling_ratio",
            "from 0 to 1",
        );
        assert_error(
            &t("sampling_ratio: lots"),
            "observability.tracing.sampling_ratio",
            "from 0 to 1",
        );
        assert_error(
            &t("protocol: grpc"),
            "observability.tracing.protocol",
            "grpc is not supported",
        );
        assert_error(
            &t("protocol: http/json"),
            "observability.tracing.protocol",
            "http/protobuf",
        );
        assert_error(
            &t("exporter: jaeger"),
            "observability.tracing.exporter",
            "must be otlp",
        );
        for bad in ["localhost:4318", "ftp://x:1", "http://", "not a url"] {
            assert_error(
                &t(&format!("otlp_endpoint: \"{bad}\"")),
                "observability.tracing.otlp_endpoint",
                "URL",
            );
        }
        assert_error(
            &with_section("observability:\n  slow_query: { enabled: true, threshold_ms: 0 }"),
            "observability.slow_query.threshold_ms",
            "greater than 0",
        );
        assert_error(
            &with_section("observability:\n  tracing: { enabled: true, sample: 1 }"),
            "observability.tracing.sample",
            "unknown field",
        );
    }

    #[test]
    fn a_full_traces_url_is_kept() {
        assert_eq!(
            traces_url("https://c.example/v1/traces/").unwrap(),
            "https://c.example/v1/traces"
        );
        assert_eq!(
            traces_url("http://c:4318/otel").unwrap(),
            "http://c:4318/otel/v1/traces"
        );
    }
}
