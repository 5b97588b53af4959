//! `buckets[i].auth.authorization:`: the policy engine consulted after JWT
//! verification (embedded Rego, OPA over HTTP, OpenFGA), as written and
//! validated.
//!
//! One flat mapping whose `type` selects the engine; options of another engine
//! are refused rather than ignored, so a typo cannot silently change what
//! decides. A Rego policy is compiled here, so `yatagarasu check` and reloads
//! reject a policy that does not parse.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::model::Secret;
use super::ranges::MAX_CACHE_ENTRIES;
use super::{Errors, Str, U64, count, millis, seconds};

/// Default rule evaluated by the embedded Rego engine.
const DEFAULT_QUERY: &str = "data.yatagarasu.allow";
/// Default wait for an OPA or OpenFGA answer.
const DEFAULT_TIMEOUT_MS: u64 = 200;
/// Default lifetime of a cached "allow".
const DEFAULT_POSITIVE_TTL_SECONDS: u64 = 60;
/// Default lifetime of a cached "deny" (shorter: a newly granted access shows up sooner).
const DEFAULT_NEGATIVE_TTL_SECONDS: u64 = 10;
/// Default bound on cached decisions per engine.
const DEFAULT_CACHE_ENTRIES: usize = 10_000;
/// Default OpenFGA object template.
const DEFAULT_OBJECT: &str = "file:{bucket}/{key}";

/// `authorization:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the authorization section (a mapping)"
)]
pub(crate) struct RawAuthorization {
    #[serde(rename = "type")]
    kind: Option<Str>,
    // rego
    policy_path: Option<Str>,
    query: Option<Str>,
    // opa
    url: Option<Str>,
    // opa and openfga
    timeout_ms: Option<U64>,
    // openfga
    endpoint: Option<Str>,
    store_id: Option<Str>,
    authorization_model_id: Option<Str>,
    api_token: Option<Str>,
    user_claim: Option<Str>,
    object: Option<Str>,
    relation: Option<Str>,
    // every engine
    decision_cache_ttl_seconds: Option<U64>,
    negative_decision_cache_ttl_seconds: Option<U64>,
    decision_cache_max_entries: Option<U64>,
    fail: Option<Str>,
}

/// Which policy engine decides, and how its decisions are cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationConfig {
    /// The engine and its connection settings.
    pub engine: PolicyEngineConfig,
    /// How long an "allow" is reused for an identical input.
    pub positive_ttl: Duration,
    /// How long a "deny" is reused for an identical input; zero caches no denials.
    pub negative_ttl: Duration,
    /// Most decisions kept per engine; the least useful are evicted beyond it.
    pub cache_max_entries: usize,
    /// What happens when the engine cannot decide (unreachable, timeout, bad answer).
    pub fail: FailMode,
}

/// One of the supported policy engines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyEngineConfig {
    /// A Rego policy evaluated in-process (`type: rego`).
    Rego(RegoConfig),
    /// An OPA server's Data API (`type: opa`).
    Opa(OpaConfig),
    /// An OpenFGA store's Check API (`type: openfga`).
    OpenFga(OpenFgaConfig),
}

impl PolicyEngineConfig {
    /// The engine's name in configuration, metrics labels and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Rego(_) => "rego",
            Self::Opa(_) => "opa",
            Self::OpenFga(_) => "openfga",
        }
    }
}

/// The embedded Rego engine's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegoConfig {
    /// The `.rego` file, read and compiled at startup and at every reload.
    pub policy_path: PathBuf,
    /// The rule whose value decides (`data.<package>.<rule>`); only `true` allows.
    pub query: String,
}

/// The OPA Data API settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaConfig {
    /// The full Data API URL of the deciding rule, such as `http://opa:8181/v1/data/yatagarasu/allow`.
    pub url: http::Uri,
    /// Longest wait for OPA's complete answer.
    pub timeout: Duration,
}

/// The OpenFGA Check API settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFgaConfig {
    /// The OpenFGA HTTP API base URL, such as `http://openfga:8080`.
    pub endpoint: http::Uri,
    /// The store asked.
    pub store_id: String,
    /// Pins the authorization model; the store's latest when `None`.
    pub authorization_model_id: Option<String>,
    /// Sent as `Authorization: Bearer` when set.
    pub api_token: Option<Secret>,
    /// Dot path of the claim naming the user (`sub`, `org.user_id`); sent as `user:<value>`.
    pub user_claim: String,
    /// The object template; `{bucket}` and `{key}` are replaced per request.
    pub object: String,
    /// The relation checked, such as `viewer`.
    pub relation: String,
    /// Longest wait for OpenFGA's complete answer.
    pub timeout: Duration,
}

/// Whether an engine failure refuses or allows the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Refuse with 503 (the default): an outage never opens private data.
    Closed,
    /// Allow, with a warning and a metric: availability over strictness.
    Open,
}

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
    let kind = match raw.kind.as_ref().map(|Str(s)| s.trim()) {
        None => {
            errs.push(format!("{at}.type"), "missing (rego, opa or openfga)");
            None
        }
        Some(k @ ("rego" | "opa" | "openfga")) => Some(k.to_owned()),
        Some(_) => {
            errs.push(format!("{at}.type"), "must be rego, opa or openfga");
            None
        }
    };
    if let Some(kind) = &kind {
        refuse_foreign_options(&raw, kind, at, errs);
    }
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
    let cache_max_entries = count(
        raw.decision_cache_max_entries,
        DEFAULT_CACHE_ENTRIES,
        1,
        MAX_CACHE_ENTRIES as usize,
        &format!("{at}.decision_cache_max_entries"),
        errs,
    );
    let fail = match raw.fail.as_ref().map(|Str(s)| s.trim()) {
        None | Some("closed") => Some(FailMode::Closed),
        Some("open") => Some(FailMode::Open),
        Some(_) => {
            errs.push(format!("{at}.fail"), "must be closed or open");
            None
        }
    };
    let engine = match kind.as_deref() {
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
        positive_ttl,
        negative_ttl,
        cache_max_entries,
        fail: fail?,
    })
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

fn rego(raw: &RawAuthorization, at: &str, errs: &mut Errors) -> Option<RegoConfig> {
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
    if query_ok {
        // Compiling here makes a broken policy a configuration error, reported
        // by `check` and refused by reloads, instead of a 503 at request time.
        if let Err(e) = crate::authz::RegoPolicy::load(&policy_path, &query) {
            errs.push(format!("{at}.policy_path"), e.to_string());
        }
    }
    Some(RegoConfig { policy_path, query })
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

fn opa(raw: &RawAuthorization, at: &str, errs: &mut Errors) -> Option<OpaConfig> {
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

fn openfga(raw: RawAuthorization, at: &str, errs: &mut Errors) -> Option<OpenFgaConfig> {
    let before = errs.count();
    let timeout = timeout(raw.timeout_ms, at, errs);
    let endpoint = match &raw.endpoint {
        None => {
            errs.push(format!("{at}.endpoint"), "missing (type: openfga)");
            None
        }
        Some(Str(e)) => match http_url(e) {
            Ok(uri) if uri.query().is_some() => {
                errs.push(format!("{at}.endpoint"), "must not have a query string");
                None
            }
            Ok(uri) => Some(uri),
            Err(message) => {
                errs.push(format!("{at}.endpoint"), message);
                None
            }
        },
    };
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
    let user_claim = non_empty(raw.user_claim, "sub", "user_claim", at, errs);
    if user_claim.split('.').any(str::is_empty) {
        errs.push(
            format!("{at}.user_claim"),
            "must be a claim name or a dot path such as org.user_id",
        );
    }
    let object = non_empty(raw.object, DEFAULT_OBJECT, "object", at, errs);
    if let Err(message) = check_object_template(&object) {
        errs.push(format!("{at}.object"), message);
    }
    let relation = non_empty(raw.relation, "viewer", "relation", at, errs);
    if !relation
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        errs.push(
            format!("{at}.relation"),
            "may contain only ASCII letters, digits, '_' and '-'",
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};

    fn load(authorization: &str) -> Result<AuthorizationConfig, Vec<ConfigError>> {
        let text = format!(
            "buckets:\n  - name: b\n    path_prefix: /b\n    s3:\n      bucket: my-bucket\n      \
             region: us-east-1\n      anonymous: true\n    auth:\n      authorization:\n{}",
            indent(authorization)
        );
        Config::from_yaml_str_with_env(&text, &|_| None)
            .map(|c| c.buckets[0].auth.authorization.clone().unwrap())
            .map_err(|e| e.0)
    }

    fn indent(lines: &str) -> String {
        lines.lines().map(|l| format!("        {l}\n")).collect()
    }

    fn errors(authorization: &str) -> Vec<String> {
        load(authorization)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn policy_file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::Builder::new().suffix(".rego").tempfile().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    const AT: &str = "buckets[0].auth.authorization";
    const POLICY: &str = "package yatagarasu\nimport rego.v1\ndefault allow := false\n\
                          allow if input.method == \"GET\"\n";

    #[test]
    fn rego_with_defaults() {
        let file = policy_file(POLICY);
        let c = load(&format!("type: rego\npolicy_path: {:?}", file.path())).unwrap();
        assert_eq!(
            c.engine,
            PolicyEngineConfig::Rego(RegoConfig {
                policy_path: file.path().to_owned(),
                query: "data.yatagarasu.allow".into(),
            })
        );
        assert_eq!(c.positive_ttl, Duration::from_secs(60));
        assert_eq!(c.negative_ttl, Duration::from_secs(10));
        assert_eq!(c.cache_max_entries, 10_000);
        assert_eq!(c.fail, FailMode::Closed);
    }

    #[test]
    fn cache_and_fail_options() {
        let file = policy_file(POLICY);
        let c = load(&format!(
            "type: rego\npolicy_path: {:?}\ndecision_cache_ttl_seconds: 5\n\
             decision_cache_max_entries: 7\nfail: open",
            file.path()
        ))
        .unwrap();
        assert_eq!(c.positive_ttl, Duration::from_secs(5));
        // The negative default never exceeds the positive TTL.
        assert_eq!(c.negative_ttl, Duration::from_secs(5));
        assert_eq!(c.cache_max_entries, 7);
        assert_eq!(c.fail, FailMode::Open);
        let c = load(&format!(
            "type: rego\npolicy_path: {:?}\nnegative_decision_cache_ttl_seconds: 0",
            file.path()
        ))
        .unwrap();
        assert_eq!(c.negative_ttl, Duration::ZERO);

        let e = errors(&format!(
            "type: rego\npolicy_path: {:?}\ndecision_cache_ttl_seconds: 0\n\
             decision_cache_max_entries: 0\nfail: maybe",
            file.path()
        ));
        assert_eq!(
            e,
            [
                format!("{AT}.decision_cache_ttl_seconds: must be greater than 0"),
                format!("{AT}.decision_cache_max_entries: must be between 1 and 1000000"),
                format!("{AT}.fail: must be closed or open"),
            ]
        );
    }

    #[test]
    fn type_is_required_and_known() {
        assert_eq!(
            errors("fail: open"),
            [format!("{AT}.type: missing (rego, opa or openfga)")]
        );
        assert_eq!(
            errors("type: cedar"),
            [format!("{AT}.type: must be rego, opa or openfga")]
        );
        let e = load("type: rego\npolicy: x").unwrap_err();
        assert_eq!(e[0].path, format!("{AT}.policy"));
        assert!(e[0].message.contains("unknown field"), "{e:?}");
    }

    #[test]
    fn options_of_another_engine_are_refused() {
        let e = errors(
            "type: opa\nurl: http://opa:8181/v1/data/x/allow\npolicy_path: p.rego\nstore_id: X",
        );
        assert_eq!(
            e,
            [
                format!("{AT}.policy_path: is an option of type: rego, not of type: opa"),
                format!("{AT}.store_id: is an option of type: openfga, not of type: opa"),
            ]
        );
        let file = policy_file(POLICY);
        let e = errors(&format!(
            "type: rego\npolicy_path: {:?}\ntimeout_ms: 5",
            file.path()
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with(&format!("{AT}.timeout_ms: ")), "{e:?}");
    }

    #[test]
    fn rego_policy_problems_name_the_file() {
        assert_eq!(
            errors("type: rego"),
            [format!("{AT}.policy_path: missing (type: rego)")]
        );
        let e = errors("type: rego\npolicy_path: /nonexistent/dir/p.rego");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(&format!(
                "{AT}.policy_path: cannot read /nonexistent/dir/p.rego"
            )),
            "{e:?}"
        );

        let broken = policy_file("package yatagarasu\nallow if {{ input.method ==\n");
        let e = errors(&format!("type: rego\npolicy_path: {:?}", broken.path()));
        assert_eq!(e.len(), 1, "{e:?}");
        let name = broken.path().display().to_string();
        assert!(
            e[0].starts_with(&format!("{AT}.policy_path: {name} does not compile: ")),
            "{e:?}"
        );
        assert!(
            e[0].contains(&name),
            "the parser message names the file: {e:?}"
        );

        let file = policy_file(POLICY);
        let e = errors(&format!(
            "type: rego\npolicy_path: {:?}\nquery: allow",
            file.path()
        ));
        assert_eq!(
            e,
            [format!(
                "{AT}.query: must be a rule path such as data.yatagarasu.allow"
            )]
        );
        let e = errors(&format!(
            "type: rego\npolicy_path: {:?}\nquery: data.other.allow",
            file.path()
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(&format!("{AT}.policy_path: {}", file.path().display())),
            "{e:?}"
        );
        assert!(e[0].contains("data.other.allow"), "{e:?}");
    }

    #[test]
    fn opa() {
        let c = load("type: opa\nurl: http://opa:8181/v1/data/yatagarasu/allow\ntimeout_ms: 50")
            .unwrap();
        let PolicyEngineConfig::Opa(opa) = c.engine else {
            panic!("{c:?}")
        };
        assert_eq!(opa.url, "http://opa:8181/v1/data/yatagarasu/allow");
        assert_eq!(opa.timeout, Duration::from_millis(50));
        assert_eq!(
            errors("type: opa"),
            [format!("{AT}.url: missing (type: opa)")]
        );
        for (url, needle) in [
            ("/v1/data/x", "absolute http"),
            ("ftp://opa/v1/data/x", "http or https"),
            ("http://opa:8181/", "Data API URL"),
            ("http://u:p@opa/v1/data/x", "user information"),
            ("http://opa/v1/data/x#y", "fragment"),
            ("not a url", "not a valid URL"),
        ] {
            let e = errors(&format!("type: opa\nurl: {url:?}"));
            assert_eq!(e.len(), 1, "{url}: {e:?}");
            assert!(e[0].starts_with(&format!("{AT}.url: ")), "{e:?}");
            assert!(e[0].contains(needle), "{url}: {e:?}");
            assert!(!e[0].contains(":p@"), "{e:?}");
        }
        assert_eq!(
            errors("type: opa\nurl: http://opa/v1/data/x\ntimeout_ms: 0"),
            [format!("{AT}.timeout_ms: must be greater than 0")]
        );
    }

    #[test]
    fn openfga_with_defaults() {
        let c = load("type: openfga\nendpoint: http://fga:8080\nstore_id: 01HSTORE").unwrap();
        let PolicyEngineConfig::OpenFga(fga) = c.engine else {
            panic!("{c:?}")
        };
        assert_eq!(fga.endpoint, "http://fga:8080/");
        assert_eq!(fga.store_id, "01HSTORE");
        assert_eq!(fga.authorization_model_id, None);
        assert_eq!(fga.api_token, None);
        assert_eq!(fga.user_claim, "sub");
        assert_eq!(fga.object, "file:{bucket}/{key}");
        assert_eq!(fga.relation, "viewer");
        assert_eq!(fga.timeout, Duration::from_millis(200));
    }

    #[test]
    fn openfga_options_and_errors() {
        let c = load(
            "type: openfga\nendpoint: https://fga.example.com/api\nstore_id: S1\n\
             authorization_model_id: M1\napi_token: tok-SECRET\nuser_claim: org.user\n\
             object: \"doc:{key}\"\nrelation: reader",
        )
        .unwrap();
        let PolicyEngineConfig::OpenFga(fga) = &c.engine else {
            panic!("{c:?}")
        };
        assert_eq!(fga.authorization_model_id.as_deref(), Some("M1"));
        assert_eq!(
            fga.api_token.as_ref().map(Secret::expose),
            Some("tok-SECRET")
        );
        assert_eq!(fga.user_claim, "org.user");
        assert_eq!(fga.object, "doc:{key}");
        assert_eq!(fga.relation, "reader");
        assert!(!format!("{c:?}").contains("tok-SECRET"));

        let e = errors("type: openfga");
        assert_eq!(
            e,
            [
                format!("{AT}.endpoint: missing (type: openfga)"),
                format!("{AT}.store_id: missing (type: openfga)"),
            ]
        );
        let e = errors(
            "type: openfga\nendpoint: http://fga?x=1\nstore_id: \"a/b\"\n\
             authorization_model_id: \"m 1\"\napi_token: \"\"\nuser_claim: \"a..b\"\n\
             object: \"{bucket}/{key}\"\nrelation: \"view er\"",
        );
        let paths: Vec<&str> = e.iter().map(|l| l.split(": ").next().unwrap()).collect();
        let expected: Vec<String> = [
            "endpoint",
            "store_id",
            "authorization_model_id",
            "api_token",
            "user_claim",
            "object",
            "relation",
        ]
        .iter()
        .map(|n| format!("{AT}.{n}"))
        .collect();
        assert_eq!(paths, expected, "{e:?}");
        for (object, needle) in [
            ("file", "type:id"),
            ("{bucket}:x", "fixed type name"),
            ("file:{bucket}/{path}", "only placeholders"),
        ] {
            let e = errors(&format!(
                "type: openfga\nendpoint: http://fga\nstore_id: S\nobject: {object:?}"
            ));
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(e[0].contains(needle), "{object}: {e:?}");
        }
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let text = "buckets:\n  - name: b\n    path_prefix: /b\n    s3: {bucket: my-bucket, \
                    region: us-east-1, anonymous: true}\n    auth:\n      authorization:\n        \
                    type: openfga\n        endpoint: \"${TOKEN}\"\n        store_id: \"${TOKEN}\"\n        \
                    api_token: \"${TOKEN}\"\n";
        let errors = Config::from_yaml_str_with_env(text, &|_| Some("se/cr et".into()))
            .unwrap_err()
            .0;
        assert!(!errors.is_empty());
        for e in errors {
            assert!(!e.to_string().contains("se/cr et"), "{e}");
        }
    }
}
