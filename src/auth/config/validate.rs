//! Validation of `jwt:`, `buckets[i].auth:` and `admin.jwt:`.

use std::sync::Arc;

use super::claims::claim_rule;
use super::key_source::key_source;
use super::keys::parse_algorithm;
use super::model::{AdminJwtConfig, AuthConfig, ClaimRule, JwtConfig};
use super::raw::{RawAudience, RawBucketAuth, RawClaimRule, RawJwt};
use super::token_sources::token_sources;
use crate::authz::config::authorization;
use crate::config::ranges::{MAX_CACHE_ENTRIES, MAX_LEEWAY_SECONDS};
use crate::config::{Bool, Errors, Str, count, seconds_within};

/// Default `token_cache_size`: tokens remembered per verifier.
pub(super) const DEFAULT_TOKEN_CACHE_SIZE: usize = 1000;

/// Largest `token_cache_size` accepted (each entry holds a token and its claims).
const MAX_TOKEN_CACHE_SIZE: usize = MAX_CACHE_ENTRIES as usize;

/// Validates the top-level `jwt:` section (inherited by buckets).
pub(crate) fn global_jwt(raw: Option<RawJwt>, errs: &mut Errors) -> Option<Option<JwtConfig>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    if raw.require_claim.is_some() {
        errs.push("jwt.require_claim", "only allowed under admin.jwt");
    }
    jwt(raw, "jwt", errs).map(Some)
}

/// Validates `buckets[i].auth`, with the inherited global JWT settings.
pub(crate) fn bucket_auth(
    raw: Option<RawBucketAuth>,
    global: Option<&JwtConfig>,
    at: &str,
    errs: &mut Errors,
) -> Option<AuthConfig> {
    let Some(raw) = raw else {
        return Some(AuthConfig::default());
    };
    let before = errs.count();
    let enabled = raw.enabled.is_some_and(|Bool(e)| e);
    let own = match raw.jwt {
        Some(raw_jwt) => {
            let path = format!("{at}.auth.jwt");
            if raw_jwt.require_claim.is_some() {
                errs.push(
                    format!("{path}.require_claim"),
                    "only allowed under admin.jwt",
                );
            }
            jwt(raw_jwt, &path, errs).map(Arc::new)
        }
        None => None,
    };
    let jwt = own.or_else(|| global.map(|g| Arc::new(g.clone())));
    if enabled && jwt.is_none() && errs.count() == before {
        errs.push(
            format!("{at}.auth.enabled"),
            "requires a jwt section here or at the top level",
        );
    }
    let authorization = match raw.authorization {
        Some(raw) => Some(authorization(
            raw,
            &format!("{at}.auth.authorization"),
            errs,
        )?),
        None => None,
    };
    (errs.count() == before).then_some(AuthConfig {
        enabled,
        jwt: if enabled { jwt } else { None },
        authorization,
    })
}

/// Validates `admin.jwt`.
pub(crate) fn admin_jwt(
    raw: Option<RawJwt>,
    at: &str,
    errs: &mut Errors,
) -> Option<Option<AdminJwtConfig>> {
    let Some(mut raw) = raw else {
        return Some(None);
    };
    let before = errs.count();
    let require_claim = raw
        .require_claim
        .take()
        .and_then(|rule| claim_rule(rule, &format!("{at}.require_claim"), errs));
    let mut jwt = jwt(raw, at, errs)?;
    // The admin API builds a verifier per request, so a token cache would
    // never be hit: none is built (documented as not used under admin.jwt).
    jwt.token_cache_size = 0;
    (errs.count() == before).then(|| {
        Some(AdminJwtConfig {
            jwt: Arc::new(jwt),
            require_claim,
        })
    })
}

/// Validates one `jwt:` section found at `at` (its `require_claim` is the
/// caller's business).
fn jwt(mut raw: RawJwt, at: &str, errs: &mut Errors) -> Option<JwtConfig> {
    let before = errs.count();
    let algorithm = raw
        .algorithm
        .take()
        .and_then(|Str(a)| parse_algorithm(&a, &format!("{at}.algorithm"), errs));
    let keys = key_source(&mut raw, algorithm, at, errs);
    let issuer = match raw.issuer {
        Some(Str(i)) if i.is_empty() => {
            errs.push(format!("{at}.issuer"), "is empty: set it or remove the key");
            None
        }
        other => other.map(|Str(i)| i),
    };
    let audience = audience(raw.audience, at, errs);
    let leeway = seconds_within(
        raw.leeway_seconds,
        0,
        0,
        MAX_LEEWAY_SECONDS,
        &format!("{at}.leeway_seconds"),
        errs,
    );
    let token_sources = token_sources(raw.token_sources, &format!("{at}.token_sources"), errs);
    let claim_rules = claim_rules(raw.claims_verification, at, errs);
    let token_cache_size = count(
        raw.token_cache_size,
        DEFAULT_TOKEN_CACHE_SIZE,
        0,
        MAX_TOKEN_CACHE_SIZE,
        &format!("{at}.token_cache_size"),
        errs,
    );
    let keys = keys?;
    (errs.count() == before).then_some(JwtConfig {
        keys,
        issuer,
        audience,
        leeway,
        token_sources,
        claim_rules,
        token_cache_size,
    })
}

/// `audience:`: one value or a list, none of them empty.
fn audience(raw: Option<RawAudience>, at: &str, errs: &mut Errors) -> Vec<String> {
    let audience = match raw {
        None => Vec::new(),
        Some(RawAudience::One(Str(a))) => vec![a],
        Some(RawAudience::Many(list)) => list.into_iter().map(|Str(a)| a).collect(),
    };
    if audience.iter().any(String::is_empty) {
        errs.push(format!("{at}.audience"), "contains an empty value");
    }
    audience
}

/// `claims_verification:` (alias `claims:`): every rule, each at its index.
fn claim_rules(raw: Option<Vec<RawClaimRule>>, at: &str, errs: &mut Errors) -> Vec<ClaimRule> {
    raw.unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, rule)| claim_rule(rule, &format!("{at}.claims_verification[{i}]"), errs))
        .collect()
}
