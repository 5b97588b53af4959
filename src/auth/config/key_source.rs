//! Where a `jwt:` section's verification keys come from: exactly one of a
//! secret or a public key (PEM file or inline), `jwks_url`, or `keys:`.

use jsonwebtoken::Algorithm;

use super::keys::{RawMaterial, is_hmac, parse_algorithm};
use super::model::{JwksSource, KeySource, StaticKey};
use super::raw::{RawJwt, RawKey};
use crate::config::{Errors, Str, U64, seconds};

/// Takes the key options out of `raw`, checks that exactly one source is
/// given, and loads it (a PEM file is read and parsed here, once per load).
pub(super) fn key_source(
    raw: &mut RawJwt,
    algorithm: Option<Algorithm>,
    at: &str,
    errs: &mut Errors,
) -> Option<KeySource> {
    let material = RawMaterial {
        secret: raw.secret.take(),
        rsa_public_key_path: raw.rsa_public_key_path.take(),
        ecdsa_public_key_path: raw.ecdsa_public_key_path.take(),
        public_key_path: raw.public_key_path.take(),
        public_key: raw.public_key.take(),
    };
    let mut sources: Vec<&str> = material.present();
    if raw.jwks_url.is_some() {
        sources.push("jwks_url");
    }
    if raw.keys.is_some() {
        sources.push("keys");
    }
    let keys = if sources.len() > 1 {
        errs.push(
            at,
            format!(
                "two key sources at once ({}): keep exactly one",
                sources.join(", ")
            ),
        );
        None
    } else if let Some(Str(url)) = raw.jwks_url.take() {
        jwks(&url, raw, algorithm, at, errs)
    } else if let Some(keys) = raw.keys.take() {
        static_keys(keys, algorithm, at, errs)
    } else {
        single_key(material, algorithm, at, errs)
    };
    if !matches!(keys, Some(KeySource::Jwks { .. })) && sources.len() <= 1 {
        refuse_jwks_options(raw, at, errs);
    }
    keys
}

/// The one key of a section without `jwks_url` or `keys:`.
fn single_key(
    material: RawMaterial,
    algorithm: Option<Algorithm>,
    at: &str,
    errs: &mut Errors,
) -> Option<KeySource> {
    let Some(algorithm) = algorithm else {
        errs.push(format!("{at}.algorithm"), "missing");
        return None;
    };
    let key = material.load(algorithm, at, errs)?;
    Some(KeySource::Static(vec![StaticKey {
        id: None,
        algorithm,
        key,
    }]))
}

/// `keys:`: every entry is checked, so all their problems are reported.
fn static_keys(
    keys: Vec<RawKey>,
    algorithm: Option<Algorithm>,
    at: &str,
    errs: &mut Errors,
) -> Option<KeySource> {
    if keys.is_empty() {
        errs.push(format!("{at}.keys"), "is empty: give at least one key");
    }
    let mut ids: Vec<String> = Vec::new();
    let parsed: Vec<Option<StaticKey>> = keys
        .into_iter()
        .enumerate()
        .map(|(i, k)| static_key(k, algorithm, &format!("{at}.keys[{i}]"), &mut ids, errs))
        .collect();
    parsed
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .map(KeySource::Static)
}

/// One entry of `keys:`; its algorithm defaults to the section's.
fn static_key(
    raw: RawKey,
    default_algorithm: Option<Algorithm>,
    path: &str,
    ids: &mut Vec<String>,
    errs: &mut Errors,
) -> Option<StaticKey> {
    let id = raw.id.map(|Str(id)| id);
    if let Some(id) = &id {
        if ids.contains(id) {
            errs.push(format!("{path}.id"), "duplicate key id");
        }
        ids.push(id.clone());
    }
    let algorithm = match raw.algorithm {
        Some(Str(a)) => parse_algorithm(&a, &format!("{path}.algorithm"), errs),
        None if default_algorithm.is_some() => default_algorithm,
        None => {
            errs.push(format!("{path}.algorithm"), "missing");
            None
        }
    };
    let material = RawMaterial {
        secret: raw.secret,
        rsa_public_key_path: raw.rsa_public_key_path,
        ecdsa_public_key_path: raw.ecdsa_public_key_path,
        public_key_path: raw.public_key_path,
        public_key: raw.public_key,
    };
    let algorithm = algorithm?;
    let key = material.load(algorithm, path, errs)?;
    Some(StaticKey { id, algorithm, key })
}

/// `jwks_url:` and its refresh options.
fn jwks(
    url: &str,
    raw: &RawJwt,
    algorithm: Option<Algorithm>,
    at: &str,
    errs: &mut Errors,
) -> Option<KeySource> {
    let source = jwks_source(
        url,
        raw.jwks_refresh_interval_seconds,
        raw.jwks_min_refresh_interval_seconds,
        raw.jwks_timeout_seconds,
        at,
        errs,
    );
    if algorithm.is_some_and(is_hmac) {
        errs.push(
            format!("{at}.algorithm"),
            "a JWKS publishes public keys: HS algorithms cannot be used with jwks_url",
        );
    }
    source.map(|source| KeySource::Jwks { source, algorithm })
}

fn jwks_source(
    url: &str,
    refresh: Option<U64>,
    min_refresh: Option<U64>,
    timeout: Option<U64>,
    at: &str,
    errs: &mut Errors,
) -> Option<JwksSource> {
    let before = errs.count();
    let uri = match url.parse::<http::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some() =>
        {
            Some(uri)
        }
        _ => {
            errs.push(
                format!("{at}.jwks_url"),
                "must be an absolute http:// or https:// URL",
            );
            None
        }
    };
    let mut secs = |raw: Option<U64>, default: u64, key: &str| {
        seconds(raw, default, true, &format!("{at}.{key}"), errs)
    };
    let refresh_interval = secs(refresh, 3600, "jwks_refresh_interval_seconds");
    let min_refresh_interval = secs(min_refresh, 60, "jwks_min_refresh_interval_seconds");
    let timeout = secs(timeout, 5, "jwks_timeout_seconds");
    let url = uri?;
    (errs.count() == before).then_some(JwksSource {
        url,
        refresh_interval,
        min_refresh_interval,
        timeout,
    })
}

/// The `jwks_*` options are refused without `jwks_url`, rather than ignored.
fn refuse_jwks_options(raw: &RawJwt, at: &str, errs: &mut Errors) {
    for (key, present) in [
        (
            "jwks_refresh_interval_seconds",
            raw.jwks_refresh_interval_seconds.is_some(),
        ),
        (
            "jwks_min_refresh_interval_seconds",
            raw.jwks_min_refresh_interval_seconds.is_some(),
        ),
        ("jwks_timeout_seconds", raw.jwks_timeout_seconds.is_some()),
    ] {
        if present {
            errs.push(format!("{at}.{key}"), "only applies with jwks_url");
        }
    }
}
