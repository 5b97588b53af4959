//! Logging and metrics setup, and the names of every metric the proxy emits.
//!
//! - `config`, `logging`: the `logging:` section and the log writer.
//! - `metrics`: metric names, descriptions, the Prometheus recorder.
//! - `otel`: `observability:` — OpenTelemetry traces and the slow-request log.
//! - `process`: process and runtime gauges, sampled when `/metrics` is scraped.

pub mod config;
pub mod logging;
pub mod metrics;
pub mod otel;
pub mod process;
