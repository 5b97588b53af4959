//! Tests of `jwt:`, `auth:` and `admin.jwt:` validation, through the whole loader.

use crate::config::{ClaimOperator, Config, ConfigError, KeySource, TokenSource, test_support};

const SECRET32: &str = "0123456789abcdef0123456789abcdef";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn bucket(auth: &str) -> String {
    format!(
        "buckets:\n  - name: b\n    path_prefix: /b\n    s3:\n      bucket: my-bucket\n      \
         region: us-east-1\n      anonymous: true\n    auth:\n{auth}"
    )
}

fn load(text: &str) -> Result<Config, Vec<ConfigError>> {
    Config::from_yaml_str_with_env(text, &|_| None).map_err(|e| e.0)
}

/// A bucket with `auth.enabled` and this `jwt:` body (indented by 8).
fn with_jwt(jwt: &str) -> String {
    bucket(&format!("      enabled: true\n      jwt:\n{jwt}"))
}

fn errors(text: &str) -> Vec<ConfigError> {
    load(text).expect_err("the configuration should be refused")
}

#[track_caller]
fn assert_refused(text: &str, path: &str, needle: &str) {
    let errs = errors(text);
    assert!(
        errs.iter()
            .any(|e| e.path == path && e.message.contains(needle)),
        "no error at {path} containing {needle:?}: {errs:?}"
    );
}

#[test]
fn global_jwt_is_inherited() {
    let text = format!(
        "jwt:\n  algorithm: HS256\n  secret: {SECRET32}\n  leeway_seconds: 30\n{}",
        bucket("      enabled: true\n")
    );
    let c = load(&text).unwrap();
    let auth = &c.buckets[0].auth;
    assert!(auth.enabled);
    let jwt = auth.jwt.as_ref().unwrap();
    assert_eq!(jwt.leeway.as_secs(), 30);
    assert_eq!(jwt.token_sources, vec![TokenSource::Bearer]);
    assert!(matches!(&jwt.keys, KeySource::Static(k) if k.len() == 1));
    assert_eq!(
        jwt.token_cache_size,
        super::validate::DEFAULT_TOKEN_CACHE_SIZE
    );
}

#[test]
fn token_cache_size_is_set_disabled_or_refused_when_huge() {
    let jwt = |size: &str| {
        with_jwt(&format!(
            "        algorithm: HS256\n        secret: {SECRET32}\n        token_cache_size: {size}\n"
        ))
    };
    let size_of = |text: &str| {
        let c = load(text).unwrap();
        c.buckets[0].auth.jwt.as_ref().unwrap().token_cache_size
    };
    assert_eq!(size_of(&jwt("50")), 50);
    assert_eq!(size_of(&jwt("0")), 0);
    assert_refused(
        &jwt("1000001"),
        "buckets[0].auth.jwt.token_cache_size",
        "must be at most 1000000",
    );
}

#[test]
fn every_key_source_loads() {
    for (alg, option, file) in [
        ("RS256", "rsa_public_key_path", "rsa_public.pem"),
        ("PS512", "rsa_public_key_path", "rsa_public.pem"),
        ("ES256", "ecdsa_public_key_path", "ec256_public.pem"),
        ("ES384", "public_key_path", "ec384_public.pem"),
        ("EdDSA", "public_key_path", "ed25519_public.pem"),
    ] {
        let text = with_jwt(&format!(
            "        algorithm: {alg}\n        {option}: {}\n",
            fixture(file)
        ));
        load(&text).unwrap_or_else(|e| panic!("{alg}: {e:?}"));
    }
    let pem = std::fs::read_to_string(fixture("rsa_public.pem")).unwrap();
    let inline = pem
        .lines()
        .map(|l| format!("          {l}\n"))
        .collect::<String>();
    load(&with_jwt(&format!(
        "        algorithm: RS256\n        public_key: |\n{inline}"
    )))
    .unwrap();
    let c = load(&with_jwt(
        "        jwks_url: https://issuer.example/.well-known/jwks.json\n        \
         audience: api\n        issuer: https://issuer.example/\n",
    ))
    .unwrap();
    let jwt = c.buckets[0].auth.jwt.clone().unwrap();
    assert_eq!(jwt.audience, vec!["api".to_owned()]);
    match &jwt.keys {
        KeySource::Jwks { source, algorithm } => {
            assert_eq!(source.min_refresh_interval.as_secs(), 60);
            assert_eq!(source.refresh_interval.as_secs(), 3600);
            assert!(algorithm.is_none());
        }
        other => panic!("{other:?}"),
    }
    let c = load(&with_jwt(&format!(
        "        keys:\n          - {{id: k1, algorithm: HS256, secret: {SECRET32}}}\n          \
         - {{id: k2, algorithm: RS256, rsa_public_key_path: {}}}\n",
        fixture("rsa_public.pem")
    )))
    .unwrap();
    assert!(
        matches!(&c.buckets[0].auth.jwt.as_ref().unwrap().keys, KeySource::Static(k) if k.len() == 2)
    );
}

#[test]
fn hmac_secret_rules() {
    assert_refused(
        &with_jwt("        algorithm: HS256\n"),
        "buckets[0].auth.jwt.secret",
        "HS256 requires a secret",
    );
    let errs = errors(&with_jwt(
        "        algorithm: HS384\n        secret: short-secret\n",
    ));
    let e = errs
        .iter()
        .find(|e| e.path == "buckets[0].auth.jwt.secret")
        .unwrap();
    assert!(e.message.contains("at least 16 bytes"), "{e}");
    assert!(!e.message.contains("short-secret"), "{e}");
    // 16..32 bytes: accepted (a warning is logged).
    load(&with_jwt(
        "        algorithm: HS256\n        secret: 0123456789abcdef\n",
    ))
    .unwrap();
}

#[test]
fn key_source_errors() {
    assert_refused(
        &with_jwt("        algorithm: RS256\n"),
        "buckets[0].auth.jwt",
        "RS256 requires a key source",
    );
    assert_refused(
        &with_jwt(&format!(
            "        algorithm: RS256\n        secret: {SECRET32}\n        \
             rsa_public_key_path: {}\n",
            fixture("rsa_public.pem")
        )),
        "buckets[0].auth.jwt",
        "two key sources at once (secret, rsa_public_key_path)",
    );
    assert_refused(
        &with_jwt(&format!(
            "        algorithm: RS256\n        jwks_url: https://x/jwks\n        \
             public_key_path: {}\n",
            fixture("rsa_public.pem")
        )),
        "buckets[0].auth.jwt",
        "two key sources at once",
    );
    assert_refused(
        &with_jwt("        algorithm: RS256\n        rsa_public_key_path: /nonexistent/key.pem\n"),
        "buckets[0].auth.jwt.rsa_public_key_path",
        "cannot read /nonexistent/key.pem",
    );
    // A private key where a public one is expected, or the wrong family.
    let private = fixture("ec256_private.pem");
    let errs = errors(&with_jwt(&format!(
        "        algorithm: RS256\n        public_key_path: {private}\n"
    )));
    let e = &errs[0];
    assert_eq!(e.path, "buckets[0].auth.jwt.public_key_path");
    assert!(
        e.message.contains(&private) && e.message.contains("not a valid PEM"),
        "{e}"
    );
    let content = std::fs::read_to_string(&private).unwrap();
    let line = content.lines().nth(1).unwrap();
    assert!(!e.message.contains(line), "{e}");
    assert_refused(
        &with_jwt(&format!(
            "        algorithm: ES256\n        rsa_public_key_path: {}\n",
            fixture("rsa_public.pem")
        )),
        "buckets[0].auth.jwt.rsa_public_key_path",
        "does not use an RSA key",
    );
    assert_refused(
        &with_jwt("        algorithm: none\n        secret: x\n"),
        "buckets[0].auth.jwt.algorithm",
        "unknown algorithm",
    );
    assert_refused(
        &with_jwt("        algorithm: HS256\n        jwks_url: https://x/jwks\n"),
        "buckets[0].auth.jwt.algorithm",
        "HS algorithms cannot be used with jwks_url",
    );
    assert_refused(
        &with_jwt("        jwks_url: ftp://x/jwks\n"),
        "buckets[0].auth.jwt.jwks_url",
        "absolute http",
    );
}

#[test]
fn token_sources_and_rules() {
    let c = load(&with_jwt(&format!(
        "        algorithm: HS256\n        secret: {SECRET32}\n        token_sources:\n          \
         - type: header\n            name: X-Auth-Token\n            prefix: 'Token '\n          \
         - type: query\n            name: token\n          - type: cookie\n            name: s\n        \
         claims:\n          - {{claim: org.id, operator: in, value: [acme, initech]}}\n          \
         - {{claim: level, operator: gte, value: '3'}}\n          \
         - {{claim: email, operator: regex, value: '@x\\.com$'}}\n"
    )))
    .unwrap();
    let jwt = c.buckets[0].auth.jwt.clone().unwrap();
    assert_eq!(jwt.token_sources.len(), 3);
    assert!(matches!(&jwt.claim_rules[0].operator, ClaimOperator::In(v) if v.len() == 2));
    assert_eq!(jwt.claim_rules[0].path, vec!["org", "id"]);
    assert!(matches!(jwt.claim_rules[1].operator, ClaimOperator::Gte(n) if n == 3.0));

    let base = format!("        algorithm: HS256\n        secret: {SECRET32}\n");
    let rule = |r: &str| {
        with_jwt(&format!(
            "{base}        claims_verification:\n          - {r}\n"
        ))
    };
    assert_refused(
        &rule("{claim: role, operator: like, value: x}"),
        "buckets[0].auth.jwt.claims_verification[0].operator",
        "unknown operator",
    );
    assert_refused(
        &rule("{claim: role, operator: in, value: admin}"),
        "buckets[0].auth.jwt.claims_verification[0].value",
        "must be a list",
    );
    assert_refused(
        &rule("{claim: role, operator: regex, value: '(unclosed'}"),
        "buckets[0].auth.jwt.claims_verification[0].value",
        "not a valid regular expression",
    );
    assert_refused(
        &rule("{claim: level, operator: gt, value: high}"),
        "buckets[0].auth.jwt.claims_verification[0].value",
        "must be a number",
    );
    assert_refused(
        &with_jwt(&format!(
            "{base}        token_sources:\n          - type: smoke\n"
        )),
        "buckets[0].auth.jwt.token_sources[0].type",
        "unknown token source",
    );
    assert_refused(
        &with_jwt(&format!(
            "{base}        token_sources:\n          - type: query\n"
        )),
        "buckets[0].auth.jwt.token_sources[0].name",
        "missing",
    );
}

#[test]
fn admin_jwt_with_require_claim() {
    let text = format!(
        "admin:\n  jwt:\n    algorithm: HS256\n    secret: {SECRET32}\n    require_claim:\n      \
         claim: role\n      operator: equals\n      value: admin\n{}",
        bucket("      enabled: false\n")
    );
    let c = load(&text).unwrap();
    let admin = c.admin.jwt.unwrap();
    assert_eq!(admin.jwt.token_cache_size, 0, "verified per request");
    assert!(matches!(
        admin.require_claim.unwrap().operator,
        ClaimOperator::Equals(_)
    ));
    let text = format!(
        "jwt:\n  algorithm: HS256\n  secret: {SECRET32}\n  require_claim: {{claim: r, operator: exists}}\n{}",
        bucket("      enabled: true\n")
    );
    assert_refused(&text, "jwt.require_claim", "only allowed under admin.jwt");
}

#[test]
fn auth_enabled_needs_jwt_settings() {
    let text = format!(
        "{}    auth:\n      enabled: true\n",
        test_support::anonymous_bucket("/b")
    );
    let e = test_support::one_error(&text, &[]);
    assert_eq!(e.path, "buckets[0].auth.enabled");
    assert_eq!(e.message, "requires a jwt section here or at the top level");
    let text = format!(
        "{}    auth:\n      enabled: false\n",
        test_support::anonymous_bucket("/b")
    );
    assert!(
        !test_support::load(&text, &[]).unwrap().buckets[0]
            .auth
            .enabled
    );
    let text = format!("{}    auth: {{}}\n", test_support::anonymous_bucket("/b"));
    test_support::load(&text, &[]).unwrap();
    let text = format!(
        "{}    auth:\n      jwt: {{}}\n",
        test_support::anonymous_bucket("/b")
    );
    test_support::assert_error(&text, "buckets[0].auth.jwt.algorithm", "missing");
}
