//! `buckets[i].s3.replicas` (the original Yatagarasu's keys): the S3 targets
//! of a bucket in priority order, each an s3 block of its own with a name,
//! a priority and a request timeout.
//!
//! Each replica's s3 keys go through the bucket s3 validation
//! (`upstream::config::s3_config`): bucket naming, region,
//! endpoint, credentials (with the `AWS_*` fallback) and CA bundle.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::{Errors, S3Config, Str, count, seconds};
use crate::upstream::config::{RawS3, s3_config};

/// Largest `priority` (the original stored it in a byte).
pub const MAX_PRIORITY: usize = 255;

/// One validated replica: an S3 target tried in priority order.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// Unique within the bucket; the `from`/`to` metric label and the key in `/ready`.
    pub name: String,
    /// Lower is tried first; unique within the bucket, 1 to [`MAX_PRIORITY`].
    pub priority: u8,
    /// Its request timeout; `None` uses `server.request_timeout_seconds`.
    pub timeout: Option<Duration>,
    /// Where it lives and how requests to it are signed.
    pub s3: S3Config,
}

/// Validates `replicas` at `at` (`buckets[i].s3`); the result is sorted by
/// priority. `None` after recording an error.
pub(crate) fn replicas(
    raw: Vec<RawS3>,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<Vec<ReplicaConfig>> {
    let before = errs.count();
    if raw.is_empty() {
        errs.push(
            format!("{at}.replicas"),
            "must list at least one replica (omit replicas to use the bucket's own s3 settings)",
        );
        return None;
    }
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut priorities: HashMap<u8, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, replica) in raw.into_iter().enumerate() {
        let at = format!("{at}.replicas[{i}]");
        if let Some(r) = replica_config(replica, &at, env, errs) {
            if let Some(first) = names.insert(r.name.clone(), i) {
                let message = format!("duplicate replica name (also used by replicas[{first}])");
                errs.push(format!("{at}.name"), message);
            }
            if let Some(first) = priorities.insert(r.priority, i) {
                let message = format!("duplicate priority (also used by replicas[{first}])");
                errs.push(format!("{at}.priority"), message);
            }
            out.push(r);
        }
    }
    out.sort_by_key(|r| r.priority);
    (errs.count() == before).then_some(out)
}

/// One replica at `at`, every problem recorded.
fn replica_config(
    mut raw: RawS3,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<ReplicaConfig> {
    let before = errs.count();
    let name = replica_name(raw.name.take(), at, errs);
    let priority = match raw.priority.take() {
        None => {
            errs.push(format!("{at}.priority"), "missing");
            None
        }
        Some(p) => {
            let path = format!("{at}.priority");
            u8::try_from(count(Some(p), 1, 1, MAX_PRIORITY, &path, errs)).ok()
        }
    };
    let timeout = raw
        .timeout
        .take()
        .map(|t| seconds(Some(t), 1, true, &format!("{at}.timeout"), errs));
    let s3 = s3_config(raw, at, env, errs);
    if errs.count() != before {
        return None;
    }
    Some(ReplicaConfig {
        name: name?,
        priority: priority?,
        timeout,
        s3: s3?,
    })
}

/// `name:`: required, and usable as a metric label.
fn replica_name(raw: Option<Str>, at: &str, errs: &mut Errors) -> Option<String> {
    let path = format!("{at}.name");
    let Some(Str(name)) = raw else {
        errs.push(path, "missing");
        return None;
    };
    let label = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() || name.len() > 64 || !name.chars().all(label) {
        errs.push(
            path,
            "must be 1 to 64 ASCII letters, digits, '_', '.' or '-' (it is a metrics label)",
        );
        return None;
    }
    Some(name)
}

#[cfg(test)]
mod tests;
