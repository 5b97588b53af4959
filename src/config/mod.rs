//! Loading, `${VAR}` expansion and validation of the YAML configuration.
//!
//! The pipeline is: parse the text into a YAML value, expand `${VAR}` in every
//! string scalar (`env.rs`), deserialise into loosely typed "raw" structs that
//! reject unknown keys (`raw.rs`), then check every semantic rule and build the
//! validated [`model`] types (`validate.rs`). Every problem is reported with the
//! path of the offending key, and no error ever contains a value that came from
//! the environment.
//!
//! Each concern owns its part of the configuration next to its layer: raw
//! types, validated types and validation live in `server::config` (listeners),
//! `upstream::config` (the S3 target), `auth::config`, `authz::config`,
//! `cache::config` and `telemetry::config` (logging). This module keeps what
//! they share:
//!
//! - `env.rs`: `${VAR}` expansion;
//! - `scalars.rs`, `numbers.rs`, [`ranges`]: lenient scalars, and durations
//!   and counts checked against their ranges;
//! - `errors.rs`: the accumulator every validation step reports to, at the
//!   YAML path it was given;
//! - `raw.rs`: the top-level document; `buckets.rs`: the bucket list;
//! - `original.rs`: keys of the original Yatagarasu refused with their new key;
//! - `validate.rs`: calls each concern's validation with its path, in order;
//! - [`model`]: the top-level [`Config`], and a re-export of every validated
//!   type, so `crate::config::S3Config` and the like keep working.

pub mod model;
pub use model::*;
pub mod ranges;

mod buckets;
mod env;
mod errors;
mod numbers;
mod original;
#[cfg(test)]
mod proptests;
mod raw;
mod scalars;
#[cfg(test)]
pub(crate) mod test_support;
mod validate;

pub(crate) use errors::Errors;
pub(crate) use numbers::{count, millis, seconds, seconds_within};
pub(crate) use scalars::{Bool, Str, U64};

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

/// One problem in a configuration, with its path.
///
/// Exists so that `yatagarasu check` and reloads can point the operator at the
/// exact key to fix (`buckets[2].s3.region: missing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the problem is, such as `buckets[2].s3.region`; empty for the whole document or file.
    pub path: String,
    /// What is wrong; never contains a secret or a value taken from the environment.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one configuration (never empty).
///
/// Exists so that an operator fixes a configuration in one round trip instead
/// of one error at a time.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads and validates the configuration file at `path`, expanding `${VAR}`
    /// from the process environment.
    ///
    /// # Errors
    ///
    /// A file that cannot be read gives a single error naming the file;
    /// otherwise as [`Config::from_yaml_str_with_env`].
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                "",
                format!("cannot read configuration file {}: {e}", path.display()),
            )])
        })?;
        Self::from_yaml_str(&text)
    }

    /// Parses and validates a configuration, expanding `${VAR}` from the
    /// process environment.
    ///
    /// # Errors
    ///
    /// As [`Config::from_yaml_str_with_env`].
    pub fn from_yaml_str(text: &str) -> Result<Config, ConfigErrors> {
        Self::from_yaml_str_with_env(text, &|name| std::env::var(name).ok())
    }

    /// Parses and validates a configuration, looking variables up with `env`
    /// instead of the process environment.
    ///
    /// Exists for tests and for the `demo` command, which supply their own
    /// variables. `env` is used both for `${VAR}` expansion and for the
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`
    /// credential fallback.
    ///
    /// # Errors
    ///
    /// Every problem found, each with its path: invalid YAML or a bad `${...}`
    /// reference, then the first type error or unknown key (deserialisation
    /// stops there), otherwise every violated validation rule.
    pub fn from_yaml_str_with_env(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let mut value: serde_norway::Value = serde_norway::from_str(text)
            .map_err(|e| ConfigErrors(vec![ConfigError::new("", format!("invalid YAML: {e}"))]))?;
        value.apply_merge().map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                "",
                format!("invalid YAML merge key (<<): {e}"),
            )])
        })?;

        // The original Yatagarasu's keys: renamed ones read under their new
        // name; those that changed meaning all named at once, with their new key.
        let mut original = original::rename_keys(&mut value);
        original.extend(original::refused_keys(&value));
        if !original.is_empty() {
            return Err(ConfigErrors(original));
        }

        let expansion = env::expand_document(&mut value, env);
        let raw = raw::deserialize(value, &expansion.substituted);

        if !expansion.errors.is_empty() {
            let mut errors = expansion.errors;
            // A failed reference leaves an empty string behind; a type error at
            // that very path would only repeat the same problem. An unknown key
            // is a different problem and is still worth reporting.
            match raw {
                Err(e) => {
                    if !expansion.failed.contains(&e.path) || raw::is_unknown_field(&e.message) {
                        errors.push(e);
                    }
                }
                // Report every other problem too, so one run of `check` shows them all;
                // problems at the paths whose variable failed would only repeat it.
                Ok(raw) => {
                    if let Err(more) = validate::validate(raw, env) {
                        errors.extend(
                            more.into_iter()
                                .filter(|e| !expansion.failed.contains(&e.path)),
                        );
                    }
                }
            }
            return Err(ConfigErrors(errors));
        }
        let raw = raw.map_err(|e| ConfigErrors(vec![e]))?;
        validate::validate(raw, env).map_err(ConfigErrors)
    }
}

/// Paths (in [`ConfigError::path`] syntax) of scalars whose value came from `${VAR}`.
pub(crate) type PathSet = HashSet<String>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const MINIMAL: &str = "
buckets:
  - name: products
    path_prefix: /products
    s3:
      bucket: my-products-bucket
      region: us-east-1
      anonymous: true
";

    #[test]
    fn display_of_errors() {
        let e = ConfigError::new("buckets[2].s3.region", "missing");
        assert_eq!(e.to_string(), "buckets[2].s3.region: missing");
        assert_eq!(ConfigError::new("", "boom").to_string(), "boom");
        let all = ConfigErrors(vec![e, ConfigError::new("a", "b")]);
        assert_eq!(all.to_string(), "buckets[2].s3.region: missing\na: b");
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_yaml_str_with_env(MINIMAL, &env_of(&[])).unwrap();
        assert_eq!(c.server.address, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.server.request_timeout.as_secs(), 30);
        assert_eq!(c.server.graceful_shutdown_timeout.as_secs(), 30);
        assert_eq!(c.server.header_read_timeout.as_secs(), 10);
        assert_eq!(c.server.readiness_probe_interval.as_secs(), 10);
        assert_eq!(c.server.max_connections, 10_000);
        assert_eq!(c.server.max_header_bytes, 65_536);
        assert_eq!(c.admin.address, Some("127.0.0.1:9091".parse().unwrap()));
        assert!(c.admin.token.is_none());
        assert_eq!(c.upstream.pool_max_idle_per_host, 64);
        assert_eq!(c.upstream.pool_idle_timeout.as_secs(), 90);
        assert_eq!(c.upstream.connect_timeout.as_secs(), 5);
        assert_eq!(c.logging.level, "info");
        assert_eq!(c.logging.format, LogFormat::Json);
        assert!(c.metrics.enabled);
        assert_eq!(c.metrics.address, "0.0.0.0:9090".parse().unwrap());
        let b = &c.buckets[0];
        assert_eq!(b.name, "products");
        assert_eq!(b.path_prefix, "/products");
        assert_eq!(b.s3.bucket, "my-products-bucket");
        assert_eq!(b.s3.region, "us-east-1");
        assert!(b.s3.endpoint.is_none());
        assert!(!b.s3.force_path_style);
        assert!(b.s3.credentials.is_none());
        assert!(b.s3.ca_cert_path.is_none());
        assert!(!b.auth.enabled);
    }

    #[test]
    fn empty_document_needs_a_bucket() {
        let e = Config::from_yaml_str_with_env("", &env_of(&[])).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].path, "buckets");
        let e = Config::from_yaml_str_with_env("buckets: []", &env_of(&[])).unwrap_err();
        assert_eq!(e.0[0].path, "buckets");
    }

    #[test]
    fn unknown_keys_are_reported_with_their_path() {
        let text = MINIMAL.replace("region:", "regoin:");
        let e = Config::from_yaml_str_with_env(&text, &env_of(&[])).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert!(
            e.to_string()
                .starts_with("buckets[0].s3.regoin: unknown field `regoin`, expected one of"),
            "{e}"
        );
    }

    #[test]
    fn invalid_yaml_is_reported() {
        let e = Config::from_yaml_str_with_env("server: [", &env_of(&[])).unwrap_err();
        assert_eq!(e.0[0].path, "");
        assert!(e.0[0].message.starts_with("invalid YAML"), "{e}");
        let e = Config::from_yaml_str_with_env("- a\n- b\n", &env_of(&[])).unwrap_err();
        assert_eq!(e.0[0].path, "");
    }

    #[test]
    fn load_reads_a_file_and_names_it_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, MINIMAL).unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.buckets.len(), 1);

        let missing = dir.path().join("nope.yaml");
        let e = Config::load(&missing).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert!(e.0[0].message.contains("nope.yaml"), "{e}");
    }

    #[test]
    fn merge_keys_are_applied() {
        let text = "
x-s3: &s3
  region: us-east-1
  anonymous: true
buckets:
  - name: a
    path_prefix: /a
    s3:
      <<: *s3
      bucket: bucket-a
";
        // The anchor holder is an unknown top-level key, so it is rejected…
        let e = Config::from_yaml_str_with_env(text, &env_of(&[])).unwrap_err();
        assert_eq!(e.0[0].path, "x-s3");
        // …but a merge inside the buckets list works.
        let text = "
buckets:
  - name: a
    path_prefix: /a
    s3: &s3
      bucket: bucket-a
      region: us-east-1
      anonymous: true
  - name: b
    path_prefix: /b
    s3:
      <<: *s3
      bucket: bucket-b
";
        let c = Config::from_yaml_str_with_env(text, &env_of(&[])).unwrap();
        assert_eq!(c.buckets[1].s3.bucket, "bucket-b");
        assert_eq!(c.buckets[1].s3.region, "us-east-1");
    }

    fn demo_env() -> impl Fn(&str) -> Option<String> {
        env_of(&[
            ("DEMO_ADDRESS", "127.0.0.1:0"),
            ("DEMO_ADMIN_ADDRESS", "127.0.0.1:0"),
            ("DEMO_METRICS_ADDRESS", "127.0.0.1:0"),
            ("DEMO_S3_ENDPOINT", "http://127.0.0.1:45678"),
            ("DEMO_ACCESS_KEY", "demo-access"),
            ("DEMO_SECRET_KEY", "demo-secret"),
            ("DEMO_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ])
    }

    #[test]
    fn shipped_demo_config_loads() {
        let text = include_str!("../../configs/demo.yaml");
        let c = Config::from_yaml_str_with_env(text, &demo_env()).unwrap();
        assert_eq!(c.server.address, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.admin.address, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(c.metrics.address, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.server.readiness_probe_interval.as_secs(), 5);
        assert_eq!(c.logging.format, LogFormat::Text);
        assert_eq!(c.logging.level, "info");
        let names: Vec<_> = c.buckets.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["assets", "docs", "private"]);
        let prefixes: Vec<_> = c.buckets.iter().map(|b| b.path_prefix.as_str()).collect();
        assert_eq!(prefixes, ["/assets", "/docs", "/private"]);
        let s3: Vec<_> = c.buckets.iter().map(|b| b.s3.bucket.as_str()).collect();
        assert_eq!(s3, ["demo-assets", "demo-docs", "demo-private"]);
        let private: Vec<_> = c.buckets.iter().map(|b| b.auth.enabled).collect();
        assert_eq!(private, [false, false, true]);
        for b in &c.buckets {
            assert_eq!(b.s3.region, "us-east-1");
            assert!(b.s3.force_path_style);
            assert_eq!(
                b.s3.endpoint.as_ref().unwrap().to_string(),
                "http://127.0.0.1:45678/"
            );
            let creds = b.s3.credentials.as_ref().unwrap();
            assert_eq!(creds.access_key.expose(), "demo-access");
            assert_eq!(creds.secret_key.expose(), "demo-secret");
            assert!(creds.session_token.is_none());
        }
    }

    #[test]
    fn shipped_minio_config_loads_with_and_without_variables() {
        let text = include_str!("../../configs/minio.yaml");
        let c = Config::from_yaml_str_with_env(text, &env_of(&[])).unwrap();
        let b = &c.buckets[0];
        assert!(b.s3.force_path_style);
        assert_eq!(b.s3.endpoint.as_ref().unwrap().host(), Some("127.0.0.1"));
        assert_eq!(b.s3.endpoint.as_ref().unwrap().port_u16(), Some(9000));
        let creds = b.s3.credentials.as_ref().unwrap();
        assert_eq!(creds.access_key.expose(), "minioadmin");
        assert_eq!(creds.secret_key.expose(), "minioadmin");

        let env = env_of(&[("MINIO_ACCESS_KEY", "ak"), ("MINIO_SECRET_KEY", "sk")]);
        let c = Config::from_yaml_str_with_env(text, &env).unwrap();
        let creds = c.buckets[0].s3.credentials.as_ref().unwrap();
        assert_eq!(creds.access_key.expose(), "ak");
        assert_eq!(creds.secret_key.expose(), "sk");
    }

    #[test]
    fn shipped_example_config_loads() {
        let text = include_str!("../../configs/example.yaml");
        let env = env_of(&[
            ("ADMIN_TOKEN", "admin-token-value"),
            ("AWS_ACCESS_KEY_PRODUCTS", "AKIAEXAMPLEPRODUCTS"),
            ("AWS_SECRET_KEY_PRODUCTS", "products-secret"),
            ("MINIO_ACCESS_KEY", "media-ak"),
            ("MINIO_SECRET_KEY", "media-sk"),
        ]);
        let c = Config::from_yaml_str_with_env(text, &env).unwrap();
        assert!(c.buckets.len() >= 3);
        assert_eq!(
            c.admin.token.as_ref().map(Secret::expose),
            Some("admin-token-value")
        );
        assert!(c.buckets.iter().any(|b| b.s3.credentials.is_none()));
        assert!(c.buckets.iter().any(|b| b.s3.endpoint.is_some()));
    }

    #[test]
    fn shipped_example_config_mentions_every_option() {
        let text = include_str!("../../configs/example.yaml");
        for key in [
            "address:",
            "port:",
            "request_timeout_seconds:",
            "graceful_shutdown_timeout_seconds:",
            "shutdown_delay_seconds:",
            "header_read_timeout_seconds:",
            "readiness_probe_interval_seconds:",
            "max_connections:",
            "max_header_bytes:",
            "worker_threads:",
            "enabled:",
            "token:",
            "pool_max_idle_per_host:",
            "pool_idle_timeout_seconds:",
            "connect_timeout_seconds:",
            "read_buffer_bytes:",
            "audit_log:",
            "observability:",
            "exporter:",
            "otlp_endpoint:",
            "service_name:",
            "sampling_ratio:",
            "slow_query:",
            "threshold_ms:",
            "include_breakdown:",
            "request_logging:",
            "log_requests:",
            "log_responses:",
            "include_paths:",
            "exclude_paths:",
            "status_codes:",
            "redact_headers:",
            "log_request_body:",
            "log_response_body:",
            "max_body_size:",
            "outputs:",
            "log_level:",
            "include_claims:",
            "max_file_size_mb:",
            "max_backup_files:",
            "rotation_policy:",
            "buffer_size:",
            "facility:",
            "protocol:",
            "s3_export:",
            "export_interval_seconds:",
            "secret_key:",
            "name:",
            "path_prefix:",
            "bucket:",
            "region:",
            "endpoint:",
            "force_path_style:",
            "access_key:",
            "secret_key:",
            "session_token:",
            "anonymous:",
            "ca_cert_path:",
            "auth:",
            "level:",
            "format:",
            "max_concurrent_requests:",
            "security_limits:",
            "trusted_proxies:",
            "rate_limit:",
            "max_tracked_ips:",
            "max_connections_per_bucket:",
            "connection_wait_ms:",
            "retry:",
            "circuit_breaker:",
            "replicas:",
            "fallback_on_404:",
            "ip_filter:",
            "rate_limit_per_user:",
            "cors:",
            "allowed_origins:",
            "allowed_methods:",
            "allowed_headers:",
            "expose_headers:",
            "allow_credentials:",
            "max_age_seconds:",
            "errors:",
            "website:",
            "index_document:",
            "error_document:",
            "spa_fallback:",
            "slice_size_mb:",
            "https:",
            "cert_path:",
            "key_path:",
            "min_tls_version:",
            "plain_address:",
            "client_ca_path:",
            "cluster_nodes:",
            "credentials:",
            "source:",
            "role_arn:",
            "token_file:",
            "session_name:",
            "external_id:",
            "profile:",
            "base:",
        ] {
            assert!(text.contains(key), "example.yaml does not mention {key}");
        }
    }
}
