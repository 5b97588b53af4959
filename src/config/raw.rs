//! The configuration as written, before semantic validation: the top-level
//! document and a bucket entry; each section's own raw type lives with its
//! concern (`server::config`, `upstream::config`, …).
//!
//! Every struct rejects unknown keys, and every option is optional here so that
//! [`super::validate`] can report all missing keys at once instead of serde
//! stopping at the first one (one container-level `#[serde(default)]` per
//! struct). Scalars use lenient wrappers ([`Str`], [`U64`](super::U64), [`Bool`](super::Bool)) because
//! a value produced by `${VAR}` expansion is always a string: `port:
//! "${PORT}"` must still give a number.

use serde::Deserialize;

use super::{ConfigError, PathSet, Str};
use crate::audit::config::RawAuditLog;
use crate::auth::config::{RawBucketAuth, RawJwt};
use crate::cache::config::{RawBucketCache, RawCache};
use crate::cors::config::RawCors;
use crate::ip_filter::config::RawIpFilter;
use crate::rate_limit::config::RawUserRate;
use crate::server::config::{RawAdmin, RawMetrics, RawServer};
use crate::telemetry::config::RawLogging;
use crate::telemetry::otel::config::RawObservability;
use crate::upstream::config::{RawS3, RawUpstream};
use crate::website::config::RawWebsite;

/// Deserialises the expanded document, reporting the first type error or
/// unknown key with its path.
///
/// When the error is at a scalar that came from `${VAR}`, the message is
/// rewritten so that it cannot echo the (possibly secret) value.
pub(crate) fn deserialize(
    value: serde_norway::Value,
    substituted: &PathSet,
) -> Result<RawConfig, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = match e.path().to_string() {
            root if root == "." => String::new(),
            path => path,
        };
        let message = e.inner().to_string();
        // An unknown key is reported at the key's own path; its message names
        // the key, never the value.
        let message = if substituted.contains(&path) && !is_unknown_field(&message) {
            redact(&message)
        } else {
            message
        };
        ConfigError::new(path, message)
    })
}

/// Whether a serde message reports an unknown key rather than a bad value.
pub(crate) fn is_unknown_field(message: &str) -> bool {
    message.starts_with("unknown field")
}

/// Keeps only the "expected …" part of a serde message.
fn redact(message: &str) -> String {
    match message.rsplit_once(", expected ") {
        Some((_, expected)) => format!(
            "the value substituted from the environment (not shown) is invalid: expected {expected}"
        ),
        None => "the value substituted from the environment (not shown) is invalid".to_owned(),
    }
}

/// The whole document.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the configuration (a mapping)"
)]
pub(crate) struct RawConfig {
    pub(crate) server: RawServer,
    pub(crate) admin: RawAdmin,
    pub(crate) upstream: RawUpstream,
    pub(crate) buckets: Option<Vec<RawBucket>>,
    pub(crate) logging: RawLogging,
    pub(crate) metrics: RawMetrics,
    pub(crate) jwt: Option<RawJwt>,
    pub(crate) cache: Option<RawCache>,
    pub(crate) cors: Option<RawCors>,
    pub(crate) audit_log: Option<RawAuditLog>,
    pub(crate) observability: Option<RawObservability>,
}

/// One entry of `buckets:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a bucket (a mapping)")]
pub(crate) struct RawBucket {
    pub(crate) name: Option<Str>,
    pub(crate) path_prefix: Option<Str>,
    pub(crate) s3: Option<RawS3>,
    pub(crate) auth: Option<RawBucketAuth>,
    pub(crate) cache: Option<RawBucketCache>,
    pub(crate) ip_filter: Option<RawIpFilter>,
    pub(crate) rate_limit_per_user: Option<RawUserRate>,
    pub(crate) cors: Option<RawCors>,
    /// `auto`, `json` or `s3_xml` (validated by `crate::error_format::config`).
    pub(crate) errors: Option<Str>,
    pub(crate) website: Option<RawWebsite>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Bool, U64};

    fn raw(text: &str) -> Result<RawConfig, ConfigError> {
        deserialize(serde_norway::from_str(text).unwrap(), &PathSet::new())
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        let e = raw("buckets:\n  - s3:\n      regoin: x\n").unwrap_err();
        assert_eq!(e.path, "buckets[0].s3.regoin");
        assert!(e.message.starts_with("unknown field `regoin`"), "{e}");

        let e = raw("serverr: {}\n").unwrap_err();
        assert_eq!(e.path, "serverr");

        let e = raw("buckets:\n  - auth:\n      jwt:\n        algoritm: HS256\n").unwrap_err();
        assert_eq!(e.path, "buckets[0].auth.jwt.algoritm");

        let e = raw("metrics:\n  enabled: true\n  path: /m\n").unwrap_err();
        assert_eq!(e.path, "metrics.path");
    }

    #[test]
    fn type_errors_have_paths() {
        let e = raw("server:\n  max_connections: -1\n").unwrap_err();
        assert_eq!(e.path, "server.max_connections");
        let e = raw("server:\n  max_connections: lots\n").unwrap_err();
        assert_eq!(e.path, "server.max_connections");
        assert!(e.message.contains("non-negative integer"), "{e}");
        let e = raw("buckets:\n  - s3: [1]\n").unwrap_err();
        assert_eq!(e.path, "buckets[0].s3");
        assert!(e.message.contains("expected an s3 block"), "{e}");
        let e = raw("buckets: {}\n").unwrap_err();
        assert_eq!(e.path, "buckets");
        let e = raw("buckets:\n  - s3:\n      region: 1.5\n").unwrap_err();
        assert_eq!(e.path, "buckets[0].s3.region");
        let e = raw("metrics:\n  enabled: maybe\n").unwrap_err();
        assert_eq!(e.path, "metrics.enabled");
    }

    #[test]
    fn lenient_scalars() {
        let c = raw("
server:
  port: '8080'
  max_connections: 12
metrics:
  enabled: 'FALSE'
buckets:
  - name: 2024
    s3:
      bucket: 123456
      force_path_style: 'true'
")
        .unwrap();
        assert_eq!(c.server.port, Some(U64(8080)));
        assert_eq!(c.server.max_connections, Some(U64(12)));
        assert_eq!(c.metrics.enabled, Some(Bool(false)));
        let b = &c.buckets.as_ref().unwrap()[0];
        assert_eq!(b.name, Some(Str("2024".into())));
        let s3 = b.s3.as_ref().unwrap();
        assert_eq!(s3.bucket, Some(Str("123456".into())));
        assert_eq!(s3.force_path_style, Some(Bool(true)));
    }

    #[test]
    fn nulls_are_absent() {
        let c = raw("server:\nadmin: ~\nbuckets:\n  - name:\n").unwrap();
        assert!(c.server.address.is_none());
        assert!(c.buckets.unwrap()[0].name.is_none());
    }

    #[test]
    fn substituted_values_are_not_echoed() {
        let mut set = PathSet::new();
        set.insert("buckets[0].s3".to_owned());
        let value = serde_norway::from_str("buckets:\n  - s3: 'hunter2'\n").unwrap();
        let e = deserialize(value, &set).unwrap_err();
        assert_eq!(e.path, "buckets[0].s3");
        assert!(!e.message.contains("hunter2"), "{e}");
        assert!(e.message.contains("expected an s3 block"), "{e}");
    }
}
