//! Tests of `authorization:` validation, through the whole loader.

use std::sync::Arc;
use std::time::Duration;

use super::{AuthorizationConfig, FailMode, PolicyEngineConfig, RegoConfig};
use crate::authz::RegoPolicy;
use crate::config::{Config, ConfigError, Secret};

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
    let policy = RegoPolicy::load(file.path(), "data.yatagarasu.allow").unwrap();
    assert_eq!(
        c.engine,
        PolicyEngineConfig::Rego(RegoConfig {
            policy_path: file.path().to_owned(),
            query: "data.yatagarasu.allow".into(),
            policy: Arc::new(policy),
        })
    );
    assert_eq!(c.positive_ttl, Duration::from_secs(60));
    assert_eq!(c.negative_ttl, Duration::from_secs(10));
    assert_eq!(c.cache_max_entries, 10_000);
    assert_eq!(c.fail, FailMode::Closed);
}

#[test]
fn rego_settings_differ_when_the_policy_text_does() {
    use std::hash::{BuildHasher, RandomState};
    let file = policy_file(POLICY);
    let text = format!("type: rego\npolicy_path: {:?}", file.path());
    let first = load(&text).unwrap().engine;
    let again = load(&text).unwrap().engine;
    let hasher = RandomState::new();
    let hash = |engine: &PolicyEngineConfig| match engine {
        PolicyEngineConfig::Rego(rego) => hasher.hash_one(rego),
        other => panic!("{other:?}"),
    };
    assert_eq!(first, again);
    assert_eq!(hash(&first), hash(&again));
    std::fs::write(file.path(), POLICY.replace("\"GET\"", "\"HEAD\"")).unwrap();
    let edited = load(&text).unwrap().engine;
    assert_ne!(first, edited, "same path and query, another policy");
    assert_ne!(hash(&first), hash(&edited));
    assert!(
        !format!("{edited:?}").contains("HEAD"),
        "Debug shows path and query only"
    );
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
    let e =
        errors("type: opa\nurl: http://opa:8181/v1/data/x/allow\npolicy_path: p.rego\nstore_id: X");
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
    let c =
        load("type: opa\nurl: http://opa:8181/v1/data/yatagarasu/allow\ntimeout_ms: 50").unwrap();
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
