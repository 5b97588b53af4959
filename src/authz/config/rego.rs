//! `type: rego`: the policy file is read and compiled here, once per load, so
//! `yatagarasu check` and reloads refuse a policy that does not compile and
//! the stack uses the compiled policy as is.

use std::path::PathBuf;
use std::sync::Arc;

use super::model::RegoConfig;
use super::raw::RawAuthorization;
use crate::authz::RegoPolicy;
use crate::config::{Errors, Str};

/// Default rule evaluated by the embedded Rego engine.
const DEFAULT_QUERY: &str = "data.yatagarasu.allow";

/// Validates the Rego options and compiles the policy.
pub(super) fn rego(raw: &RawAuthorization, at: &str, errs: &mut Errors) -> Option<RegoConfig> {
    let query = match &raw.query {
        None => DEFAULT_QUERY.to_owned(),
        Some(Str(q)) => q.trim().to_owned(),
    };
    let query_ok = is_rule_path(&query);
    if !query_ok {
        errs.push(
            format!("{at}.query"),
            "must be a rule path such as data.yatagarasu.allow",
        );
    }
    let policy_path = match &raw.policy_path {
        None => {
            errs.push(format!("{at}.policy_path"), "missing (type: rego)");
            return None;
        }
        Some(Str(p)) if p.is_empty() => {
            errs.push(format!("{at}.policy_path"), "must not be empty");
            return None;
        }
        Some(Str(p)) => PathBuf::from(p),
    };
    if !query_ok {
        return None;
    }
    // Compiling here makes a broken policy a configuration error, reported
    // by `check` and refused by reloads, instead of a 503 at request time.
    match RegoPolicy::load(&policy_path, &query) {
        Ok(policy) => Some(RegoConfig {
            policy_path,
            query,
            policy: Arc::new(policy),
        }),
        Err(e) => {
            errs.push(format!("{at}.policy_path"), e.to_string());
            None
        }
    }
}

/// `data.a.b_c` style: `data` then dot-separated identifiers.
fn is_rule_path(query: &str) -> bool {
    let mut parts = query.split('.');
    parts.next() == Some("data")
        && query.split('.').count() >= 2
        && parts.all(|p| {
            !p.is_empty()
                && !p.starts_with(|c: char| c.is_ascii_digit())
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}
