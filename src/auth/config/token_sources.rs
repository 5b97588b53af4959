//! `token_sources:`: where a token is looked for, in order (bearer by default).

use http::HeaderName;

use super::model::TokenSource;
use super::raw::RawTokenSource;
use crate::config::{Errors, Str};

/// Validates the list found at `at`; `[bearer]` when absent.
pub(super) fn token_sources(
    raw: Option<Vec<RawTokenSource>>,
    at: &str,
    errs: &mut Errors,
) -> Vec<TokenSource> {
    let Some(raw) = raw else {
        return vec![TokenSource::Bearer];
    };
    if raw.is_empty() {
        errs.push(
            at,
            "is empty: remove it (bearer is the default) or list sources",
        );
    }
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, s)| token_source(s, &format!("{at}[{i}]"), errs))
        .collect()
}

/// One entry: its `type`, and the `name` (and for headers the `prefix`) it needs.
fn token_source(raw: RawTokenSource, path: &str, errs: &mut Errors) -> Option<TokenSource> {
    let name = raw.name.map(|Str(n)| n).filter(|n| !n.is_empty());
    let kind = raw.kind.map(|Str(k)| k);
    let needs_name = |errs: &mut Errors| {
        if name.is_none() {
            errs.push(format!("{path}.name"), "missing");
        }
    };
    if raw.prefix.is_some() && kind.as_deref() != Some("header") {
        errs.push(format!("{path}.prefix"), "only applies to type: header");
    }
    match kind.as_deref() {
        Some("bearer") => {
            if name.is_some() {
                errs.push(format!("{path}.name"), "does not apply to type: bearer");
            }
            Some(TokenSource::Bearer)
        }
        Some("header") => {
            needs_name(errs);
            let prefix = raw.prefix.map(|Str(p)| p).filter(|p| !p.is_empty());
            header_source(&name?, prefix, path, errs)
        }
        Some("query") => {
            needs_name(errs);
            Some(TokenSource::Query { name: name? })
        }
        Some("cookie") => {
            needs_name(errs);
            Some(TokenSource::Cookie { name: name? })
        }
        Some(_) => {
            errs.push(
                format!("{path}.type"),
                "unknown token source; expected bearer, header, query or cookie",
            );
            None
        }
        None => {
            errs.push(format!("{path}.type"), "missing");
            None
        }
    }
}

/// `type: header`: the name must be a valid header name.
fn header_source(
    name: &str,
    prefix: Option<String>,
    path: &str,
    errs: &mut Errors,
) -> Option<TokenSource> {
    match HeaderName::from_bytes(name.as_bytes()) {
        Ok(name) => Some(TokenSource::Header { name, prefix }),
        Err(_) => {
            errs.push(format!("{path}.name"), "is not a valid header name");
            None
        }
    }
}
