//! `type: opa` and `type: openfga`: the engines asked over HTTP.

use std::time::Duration;

use super::model::{OpaConfig, OpenFgaConfig};
use super::raw::RawAuthorization;
use crate::config::{Errors, Secret, Str, U64, millis};

/// Default wait for an OPA or OpenFGA answer.
const DEFAULT_TIMEOUT_MS: u64 = 200;
/// Default OpenFGA object template.
const DEFAULT_OBJECT: &str = "file:{bucket}/{key}";

/// Validates the OPA options.
pub(super) fn opa(raw: &RawAuthorization, at: &str, errs: &mut Errors) -> Option<OpaConfig> {
    let timeout = timeout(raw.timeout_ms, at, errs);
    let path = format!("{at}.url");
    let Some(Str(url)) = &raw.url else {
        errs.push(path, "missing (type: opa)");
        return None;
    };
    let url = match http_url(url) {
        Ok(url) => url,
        Err(message) => {
            errs.push(path, message);
            return None;
        }
    };
    if !url.path().contains("/v1/data/") {
        errs.push(
            path,
            "must be OPA's Data API URL of the deciding rule, such as \
             http://opa:8181/v1/data/yatagarasu/allow",
        );
        return None;
    }
    Some(OpaConfig {
        url,
        timeout: timeout?,
    })
}

/// Validates the OpenFGA options.
pub(super) fn openfga(raw: RawAuthorization, at: &str, errs: &mut Errors) -> Option<OpenFgaConfig> {
    let before = errs.count();
    let timeout = timeout(raw.timeout_ms, at, errs);
    let endpoint = openfga_endpoint(raw.endpoint.as_ref(), at, errs);
    let store_id = required_id(raw.store_id, "store_id", at, errs);
    let authorization_model_id = raw.authorization_model_id.map(|Str(id)| {
        identifier(&id, "authorization_model_id", at, errs);
        id
    });
    let api_token = match raw.api_token {
        Some(Str(t)) if t.is_empty() => {
            errs.push(
                format!("{at}.api_token"),
                "is empty: set a token or remove the key",
            );
            None
        }
        t => t.map(|Str(t)| Secret::new(t)),
    };
    let user_claim = user_claim(raw.user_claim, at, errs);
    let object = object_template(raw.object, at, errs);
    let relation = relation(raw.relation, at, errs);
    if errs.count() != before {
        return None;
    }
    Some(OpenFgaConfig {
        endpoint: endpoint?,
        store_id: store_id?,
        authorization_model_id,
        api_token,
        user_claim,
        object,
        relation,
        timeout: timeout?,
    })
}

/// `endpoint:`: the OpenFGA HTTP API base URL, without a query string.
fn openfga_endpoint(raw: Option<&Str>, at: &str, errs: &mut Errors) -> Option<http::Uri> {
    let path = format!("{at}.endpoint");
    let Some(Str(endpoint)) = raw else {
        errs.push(path, "missing (type: openfga)");
        return None;
    };
    match http_url(endpoint) {
        Ok(uri) if uri.query().is_some() => {
            errs.push(path, "must not have a query string");
            None
        }
        Ok(uri) => Some(uri),
        Err(message) => {
            errs.push(path, message);
            None
        }
    }
}

/// `user_claim:`: a claim name or a dot path; `sub` by default.
fn user_claim(raw: Option<Str>, at: &str, errs: &mut Errors) -> String {
    let user_claim = non_empty(raw, "sub", "user_claim", at, errs);
    if user_claim.split('.').any(str::is_empty) {
        errs.push(
            format!("{at}.user_claim"),
            "must be a claim name or a dot path such as org.user_id",
        );
    }
    user_claim
}

/// `object:`: the object template; [`DEFAULT_OBJECT`] by default.
fn object_template(raw: Option<Str>, at: &str, errs: &mut Errors) -> String {
    let object = non_empty(raw, DEFAULT_OBJECT, "object", at, errs);
    if let Err(message) = check_object_template(&object) {
        errs.push(format!("{at}.object"), message);
    }
    object
}

/// `relation:`: the relation checked; `viewer` by default.
fn relation(raw: Option<Str>, at: &str, errs: &mut Errors) -> String {
    let relation = non_empty(raw, "viewer", "relation", at, errs);
    if !relation
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        errs.push(
            format!("{at}.relation"),
            "may contain only ASCII letters, digits, '_' and '-'",
        );
    }
    relation
}

fn timeout(raw: Option<U64>, at: &str, errs: &mut Errors) -> Option<Duration> {
    let before = errs.count();
    let timeout = millis(raw, DEFAULT_TIMEOUT_MS, &format!("{at}.timeout_ms"), errs);
    (errs.count() == before).then_some(timeout)
}

fn required_id(raw: Option<Str>, name: &str, at: &str, errs: &mut Errors) -> Option<String> {
    let Some(Str(id)) = raw else {
        errs.push(format!("{at}.{name}"), "missing (type: openfga)");
        return None;
    };
    identifier(&id, name, at, errs).then_some(id)
}

/// OpenFGA ids are ULIDs; anything outside letters and digits would break the URL.
fn identifier(id: &str, name: &str, at: &str, errs: &mut Errors) -> bool {
    let ok = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric());
    if !ok {
        errs.push(
            format!("{at}.{name}"),
            "must be an OpenFGA id (ASCII letters and digits, such as 01HVMMBCMGZNT3SED4Z17ECXCA)",
        );
    }
    ok
}

fn non_empty(raw: Option<Str>, default: &str, name: &str, at: &str, errs: &mut Errors) -> String {
    match raw {
        None => default.to_owned(),
        Some(Str(s)) if s.trim().is_empty() => {
            errs.push(format!("{at}.{name}"), "must not be empty");
            String::new()
        }
        Some(Str(s)) => s.trim().to_owned(),
    }
}

/// An OpenFGA object is `type:id`; the only placeholders are `{bucket}` and `{key}`.
fn check_object_template(template: &str) -> Result<(), &'static str> {
    let Some((kind, _)) = template.split_once(':') else {
        return Err("must be type:id, such as file:{bucket}/{key}");
    };
    if kind.is_empty() || kind.contains(['{', '}']) {
        return Err("must start with a fixed type name, such as file:{bucket}/{key}");
    }
    let rest = template.replace("{bucket}", "").replace("{key}", "");
    if rest.contains(['{', '}']) {
        return Err("the only placeholders are {bucket} and {key}");
    }
    Ok(())
}

/// An absolute http(s) URL with a host and no user information or fragment.
fn http_url(s: &str) -> Result<http::Uri, &'static str> {
    if s.contains('#') {
        return Err("must not have a fragment ('#')");
    }
    let uri: http::Uri = s
        .trim()
        .parse()
        .map_err(|_| "not a valid URL (expected http:// or https://)")?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        None => return Err("must be an absolute http:// or https:// URL"),
        Some(_) => return Err("the scheme must be http or https"),
    }
    match uri.authority() {
        Some(a) if a.as_str().contains('@') => {
            Err("must not contain user information (the part before '@')")
        }
        Some(a) if !a.host().is_empty() => Ok(uri),
        _ => Err("has no host"),
    }
}
