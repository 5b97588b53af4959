//! Validation of an `authorization:` section: the engine type, the options
//! every engine shares (decision cache, fail mode), then the engine's own.

use std::time::Duration;

use super::model::{AuthorizationConfig, FailMode, PolicyEngineConfig};
use super::raw::RawAuthorization;
use super::rego::rego;
use super::remote::{opa, openfga};
use crate::config::ranges::MAX_CACHE_ENTRIES;
use crate::config::{Errors, Str, count, seconds};

/// Default lifetime of a cached "allow".
const DEFAULT_POSITIVE_TTL_SECONDS: u64 = 60;
/// Default lifetime of a cached "deny" (shorter: a newly granted access shows up sooner).
const DEFAULT_NEGATIVE_TTL_SECONDS: u64 = 10;
/// Default bound on cached decisions per engine.
const DEFAULT_CACHE_ENTRIES: usize = 10_000;

/// The options that belong to only one engine, and which one.
const ENGINE_OPTIONS: [(&str, &str); 10] = [
    ("policy_path", "rego"),
    ("query", "rego"),
    ("url", "opa"),
    ("endpoint", "openfga"),
    ("store_id", "openfga"),
    ("authorization_model_id", "openfga"),
    ("api_token", "openfga"),
    ("user_claim", "openfga"),
    ("object", "openfga"),
    ("relation", "openfga"),
];

/// Validates an `authorization:` section found at `at`.
pub(crate) fn authorization(
    raw: RawAuthorization,
    at: &str,
    errs: &mut Errors,
) -> Option<AuthorizationConfig> {
    let before = errs.count();
    let kind = engine_kind(&raw, at, errs);
    if let Some(kind) = kind {
        refuse_foreign_options(&raw, kind, at, errs);
    }
    let cache = decision_cache(&raw, at, errs);
    let fail = fail_mode(&raw, at, errs);
    let engine = match kind {
        Some("rego") => rego(&raw, at, errs).map(PolicyEngineConfig::Rego),
        Some("opa") => opa(&raw, at, errs).map(PolicyEngineConfig::Opa),
        Some("openfga") => openfga(raw, at, errs).map(PolicyEngineConfig::OpenFga),
        _ => None,
    };
    if errs.count() != before {
        return None;
    }
    Some(AuthorizationConfig {
        engine: engine?,
        positive_ttl: cache.positive_ttl,
        negative_ttl: cache.negative_ttl,
        cache_max_entries: cache.max_entries,
        fail: fail?,
    })
}

/// `type:`: `rego`, `opa` or `openfga`.
fn engine_kind(raw: &RawAuthorization, at: &str, errs: &mut Errors) -> Option<&'static str> {
    match raw.kind.as_ref().map(|Str(s)| s.trim()) {
        None => {
            errs.push(format!("{at}.type"), "missing (rego, opa or openfga)");
            None
        }
        Some("rego") => Some("rego"),
        Some("opa") => Some("opa"),
        Some("openfga") => Some("openfga"),
        Some(_) => {
            errs.push(format!("{at}.type"), "must be rego, opa or openfga");
            None
        }
    }
}

/// Reports every option set that belongs to another engine than `kind`.
fn refuse_foreign_options(raw: &RawAuthorization, kind: &str, at: &str, errs: &mut Errors) {
    let set = |name: &str| match name {
        "policy_path" => raw.policy_path.is_some(),
        "query" => raw.query.is_some(),
        "url" => raw.url.is_some(),
        "endpoint" => raw.endpoint.is_some(),
        "store_id" => raw.store_id.is_some(),
        "authorization_model_id" => raw.authorization_model_id.is_some(),
        "api_token" => raw.api_token.is_some(),
        "user_claim" => raw.user_claim.is_some(),
        "object" => raw.object.is_some(),
        "relation" => raw.relation.is_some(),
        _ => false,
    };
    for (name, owner) in ENGINE_OPTIONS {
        if owner != kind && set(name) {
            errs.push(
                format!("{at}.{name}"),
                format!("is an option of type: {owner}, not of type: {kind}"),
            );
        }
    }
    if kind == "rego" && raw.timeout_ms.is_some() {
        errs.push(
            format!("{at}.timeout_ms"),
            "is an option of type: opa and type: openfga, not of type: rego",
        );
    }
}

/// The decision cache options, shared by every engine.
struct DecisionCache {
    positive_ttl: Duration,
    negative_ttl: Duration,
    max_entries: usize,
}

fn decision_cache(raw: &RawAuthorization, at: &str, errs: &mut Errors) -> DecisionCache {
    let positive_ttl = seconds(
        raw.decision_cache_ttl_seconds,
        DEFAULT_POSITIVE_TTL_SECONDS,
        true,
        &format!("{at}.decision_cache_ttl_seconds"),
        errs,
    );
    let negative_ttl = seconds(
        raw.negative_decision_cache_ttl_seconds,
        DEFAULT_NEGATIVE_TTL_SECONDS.min(positive_ttl.as_secs()),
        false,
        &format!("{at}.negative_decision_cache_ttl_seconds"),
        errs,
    );
    let max_entries = count(
        raw.decision_cache_max_entries,
        DEFAULT_CACHE_ENTRIES,
        1,
        MAX_CACHE_ENTRIES as usize,
        &format!("{at}.decision_cache_max_entries"),
        errs,
    );
    DecisionCache {
        positive_ttl,
        negative_ttl,
        max_entries,
    }
}

/// `fail:`: `closed` (the default) or `open`.
fn fail_mode(raw: &RawAuthorization, at: &str, errs: &mut Errors) -> Option<FailMode> {
    match raw.fail.as_ref().map(|Str(s)| s.trim()) {
        None | Some("closed") => Some(FailMode::Closed),
        Some("open") => Some(FailMode::Open),
        Some(_) => {
            errs.push(format!("{at}.fail"), "must be closed or open");
            None
        }
    }
}
