//! JWT authentication through the real binary and a real S3 server: every
//! algorithm family, every refusal reason, claim rules, token sources,
//! public buckets, secret rotation by reload, and the admin API.

mod common;

use bytes::Bytes;
use common::jwks::*;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

const BKT: &str = "auth-bkt";
const KEY: &str = "docs/report.txt";
const BODY: &[u8] = b"private bytes\n";
const ADMIN_TOKEN: &str = "static-admin-token-0123456789";

async fn s3_with_object() -> S3Server {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, KEY, BODY);
    s3
}

/// A bucket `name` requiring a token verified with this `jwt:` body (8-space indented keys).
fn private(name: &str, s3: &S3Server, jwt: &str) -> BucketCfg {
    let mut b = BucketCfg::new(name, s3, BKT);
    b.extra_yaml = format!("    auth:\n      enabled: true\n      jwt:\n{jwt}");
    b
}

fn hs256_jwt() -> String {
    format!("        algorithm: HS256\n        secret: {}\n", q(SECRET))
}

async fn get_with(proxy: &Proxy, target: &str, headers: &[(&str, &str)]) -> Resp {
    send(proxy.main, "GET", target, headers).await
}

async fn get_bearer(proxy: &Proxy, target: &str, token: &str) -> Resp {
    let auth = format!("Bearer {token}");
    get_with(proxy, target, &[("authorization", &auth)]).await
}

/// Asserts a 401 `invalid_token` answer whose message is `message` and that
/// does not echo `token`.
#[track_caller]
fn assert_invalid_token(r: &Resp, message: &str, token: &str) {
    let err = assert_error(r, 401, Some("InvalidToken"));
    assert_eq!(err["message"], message, "{}", r.describe());
    let www = r.header("www-authenticate").unwrap_or_default();
    assert!(
        www.starts_with("Bearer realm=\"yatagarasu\"") && www.contains("error=\"invalid_token\""),
        "{}",
        r.describe()
    );
    assert!(
        !r.text().contains(token),
        "the token is echoed: {}",
        r.describe()
    );
}

#[track_caller]
fn assert_no_token_in_output(proxy: &Proxy, tokens: &[&str]) {
    let output = proxy.all_output();
    for token in tokens {
        // The signature part alone is already secret enough to look for.
        let signature = token.rsplit('.').next().unwrap();
        assert!(!output.contains(token), "a token appears in the logs");
        assert!(
            signature.len() < 16 || !output.contains(signature),
            "a token signature appears in the logs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_family_verifies() {
    let s3 = s3_with_object().await;
    let families: [(&str, Algorithm, &str, &str, &str); 9] = [
        ("hs256", Algorithm::HS256, "secret", "", ""),
        ("hs512", Algorithm::HS512, "secret", "", ""),
        (
            "rs256",
            Algorithm::RS256,
            "rsa_public_key_path",
            "rsa_public.pem",
            "rsa_private.pem",
        ),
        (
            "rs512",
            Algorithm::RS512,
            "rsa_public_key_path",
            "rsa_public.pem",
            "rsa_private.pem",
        ),
        (
            "ps256",
            Algorithm::PS256,
            "public_key_path",
            "rsa_public.pem",
            "rsa_private.pem",
        ),
        (
            "ps384",
            Algorithm::PS384,
            "public_key_path",
            "rsa_public.pem",
            "rsa_private.pem",
        ),
        (
            "es256",
            Algorithm::ES256,
            "ecdsa_public_key_path",
            "ec256_public.pem",
            "ec256_private.pem",
        ),
        (
            "es384",
            Algorithm::ES384,
            "ecdsa_public_key_path",
            "ec384_public.pem",
            "ec384_private.pem",
        ),
        (
            "eddsa",
            Algorithm::EdDSA,
            "public_key_path",
            "ed25519_public.pem",
            "ed25519_private.pem",
        ),
    ];
    let buckets = families
        .iter()
        .map(|(name, alg, option, public, _)| {
            let key = if *option == "secret" {
                format!("        secret: {}\n", q(SECRET))
            } else {
                format!("        {option}: {}\n", fixture_yaml(public))
            };
            private(name, &s3, &format!("        algorithm: {alg:?}\n{key}"))
        })
        .collect();
    let proxy = Proxy::start(&Config::new(buckets)).await;
    let mut tokens = Vec::new();
    for (name, alg, _, _, private_pem) in families {
        let target = format!("/{name}/{KEY}");
        let token = sign(alg, private_pem, None, &claims(json!({})));
        let r = get_bearer(&proxy, &target, &token).await;
        assert_eq!(r.status, 200, "{name}: {}", r.describe());
        assert_eq!(&r.body[..], BODY, "{name}");

        let r = get_with(&proxy, &target, &[]).await;
        assert_error(&r, 401, Some("Unauthorized"));
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"yatagarasu\""),
            "{name}: {}",
            r.describe()
        );
        tokens.push(token);
    }
    // An EdDSA token on the RS256 bucket: the bucket's algorithm decides.
    let r = get_bearer(&proxy, &format!("/rs256/{KEY}"), &tokens[8]).await;
    assert_invalid_token(&r, "the token algorithm is not accepted", &tokens[8]);

    let (_, samples) = scrape(&proxy).await;
    assert_eq!(
        sample_value(
            &samples,
            "yatagarasu_auth_requests_total",
            &[("bucket", "es384"), ("result", "success")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample_value(
            &samples,
            "yatagarasu_auth_requests_total",
            &[("bucket", "eddsa"), ("result", "missing")]
        ),
        Some(1.0)
    );
    // The access log carries the subject, never the token.
    let access = proxy.access_logs();
    assert!(
        access
            .iter()
            .any(|ev| log_field(ev, "sub").and_then(Value::as_str) == Some("user-42")),
        "no access log with sub"
    );
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    assert_no_token_in_output(&proxy, &refs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_say_why() {
    let s3 = s3_with_object().await;
    let rsa = format!(
        "        algorithm: RS256\n        rsa_public_key_path: {}\n        issuer: https://issuer.test/\n        \
         audience: [yatagarasu, other]\n        leeway_seconds: 5\n",
        fixture_yaml("rsa_public.pem")
    );
    let keyed = format!(
        "        keys:\n          - id: k1\n            algorithm: RS256\n            rsa_public_key_path: {}\n          \
         - id: k2\n            algorithm: ES256\n            ecdsa_public_key_path: {}\n",
        fixture_yaml("rsa_public.pem"),
        fixture_yaml("ec256_public.pem")
    );
    let proxy = Proxy::start(&Config::new(vec![
        private("rsa", &s3, &rsa),
        private("keyed", &s3, &keyed),
    ]))
    .await;
    let target = format!("/rsa/{KEY}");
    let good = |extra: Value| {
        let mut c = claims(json!({"iss": "https://issuer.test/", "aud": "yatagarasu"}));
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let rs = |c: &Value| sign(Algorithm::RS256, "rsa_private.pem", None, c);

    let ok = rs(&good(json!({})));
    assert_eq!(get_bearer(&proxy, &target, &ok).await.status, 200);

    let mut refused: Vec<(String, &str)> = vec![
        (
            rs(&good(json!({"exp": now() - 60}))),
            "the token has expired",
        ),
        (
            rs(&good(json!({"nbf": now() + 600}))),
            "the token is not valid yet",
        ),
        (
            rs(&good(json!({"iss": "https://evil.test/"}))),
            "the token issuer is not accepted",
        ),
        (
            rs(&good(json!({"aud": "someone-else"}))),
            "the token audience is not accepted",
        ),
        (
            sign(Algorithm::RS256, "rsa2_private.pem", None, &good(json!({}))),
            "the token signature is invalid",
        ),
        ("not-a-jwt".to_owned(), "the token is malformed"),
    ];
    // alg: none, with and without a signature.
    let header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
    let payload = ok.split('.').nth(1).unwrap();
    refused.push((
        format!("{header}.{payload}."),
        "the token algorithm is not accepted",
    ));
    // HS256 signed with the RSA public key's PEM bytes (key confusion).
    let public_pem = std::fs::read(fixture("rsa_public.pem")).unwrap();
    let confused = sign_with(
        Algorithm::HS256,
        &EncodingKey::from_secret(&public_pem),
        None,
        &good(json!({})),
    );
    refused.push((confused, "the token algorithm is not accepted"));
    // Tampered payload (claims changed, signature kept) and tampered signature.
    let parts: Vec<&str> = ok.split('.').collect();
    let other_payload = rs(&good(json!({"sub": "admin"})));
    let tampered_payload = format!(
        "{}.{}.{}",
        parts[0],
        other_payload.split('.').nth(1).unwrap(),
        parts[2]
    );
    refused.push((tampered_payload, "the token signature is invalid"));
    // (The first characters: the last one of a base64url signature carries
    // padding bits, and changing those makes the token malformed, not forged.)
    let mut sig = parts[2].to_owned();
    let first = if sig.starts_with("AAAA") {
        "BBBB"
    } else {
        "AAAA"
    };
    sig.replace_range(..4, first);
    refused.push((
        format!("{}.{}.{sig}", parts[0], parts[1]),
        "the token signature is invalid",
    ));

    for (token, message) in &refused {
        let r = get_bearer(&proxy, &target, token).await;
        assert_invalid_token(&r, message, token);
    }

    // Keys selected by kid: unknown kid, and a kid whose key has another algorithm.
    let keyed_target = format!("/keyed/{KEY}");
    let k1 = sign(
        Algorithm::RS256,
        "rsa_private.pem",
        Some("k1"),
        &claims(json!({})),
    );
    assert_eq!(get_bearer(&proxy, &keyed_target, &k1).await.status, 200);
    let k2 = sign(
        Algorithm::ES256,
        "ec256_private.pem",
        Some("k2"),
        &claims(json!({})),
    );
    assert_eq!(get_bearer(&proxy, &keyed_target, &k2).await.status, 200);
    let unknown = sign(
        Algorithm::RS256,
        "rsa_private.pem",
        Some("k9"),
        &claims(json!({})),
    );
    assert_invalid_token(
        &get_bearer(&proxy, &keyed_target, &unknown).await,
        "the token key id is unknown",
        &unknown,
    );
    let crossed = sign(
        Algorithm::RS256,
        "rsa_private.pem",
        Some("k2"),
        &claims(json!({})),
    );
    assert_invalid_token(
        &get_bearer(&proxy, &keyed_target, &crossed).await,
        "the token algorithm is not accepted",
        &crossed,
    );

    let (_, samples) = scrape(&proxy).await;
    let count = |result: &str| {
        sample_value(
            &samples,
            "yatagarasu_auth_requests_total",
            &[("bucket", "rsa"), ("result", result)],
        )
    };
    assert_eq!(count("expired"), Some(1.0));
    assert_eq!(count("invalid"), Some((refused.len() - 1) as f64));
    assert_eq!(count("success"), Some(1.0));
    // Nothing reached S3 for the refused requests.
    assert_eq!(s3.requests_for(KEY).len(), 3);
    let mut all: Vec<&str> = refused
        .iter()
        .map(|(t, _)| t.as_str())
        .filter(|t| t.contains('.'))
        .collect();
    all.extend([ok.as_str(), k1.as_str(), k2.as_str(), unknown.as_str()]);
    assert_no_token_in_output(&proxy, &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_rules_deny_with_403() {
    let s3 = s3_with_object().await;
    let jwt = format!(
        "{}        claims_verification:\n          - {{claim: role, operator: equals, value: admin}}\n          \
         - {{claim: org.id, operator: in, value: [acme, initech]}}\n          \
         - {{claim: groups, operator: contains, value: ops}}\n          \
         - {{claim: level, operator: gte, value: 3}}\n",
        hs256_jwt()
    );
    let proxy = Proxy::start(&Config::new(vec![private("rules", &s3, &jwt)])).await;
    let target = format!("/rules/{KEY}");
    let allowed =
        json!({"role": "admin", "org": {"id": "acme"}, "groups": ["dev", "ops"], "level": 3});
    let token = sign(Algorithm::HS256, "", None, &claims(allowed.clone()));
    let r = get_bearer(&proxy, &target, &token).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(&r.body[..], BODY);
    for (claim, value) in [
        ("role", json!("user")),
        ("org", json!({"id": "umbrella"})),
        ("groups", json!(["dev"])),
        ("level", json!(2)),
    ] {
        let mut c = allowed.clone();
        c[claim] = value;
        let token = sign(Algorithm::HS256, "", None, &claims(c));
        let r = get_bearer(&proxy, &target, &token).await;
        let err = assert_error(&r, 403, Some("AccessDenied"));
        assert_eq!(
            err["message"],
            "the token's claims do not allow this request"
        );
        assert!(r.header("www-authenticate").is_none(), "{}", r.describe());
    }
    let (_, samples) = scrape(&proxy).await;
    assert_eq!(
        sample_value(
            &samples,
            "yatagarasu_auth_requests_total",
            &[("bucket", "rules"), ("result", "denied")]
        ),
        Some(4.0)
    );
}

/// A token sent again is answered by the verified-token cache, denials
/// included; one byte of another signature on the same payload is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_tokens_are_cached_byte_for_byte() {
    let s3 = s3_with_object().await;
    let jwt = format!(
        "{}        claims_verification:\n          - {{claim: role, operator: equals, value: admin}}\n",
        hs256_jwt()
    );
    let proxy = Proxy::start(&Config::new(vec![private("repeat", &s3, &jwt)])).await;
    let target = format!("/repeat/{KEY}");
    let admin = sign(
        Algorithm::HS256,
        "",
        None,
        &claims(json!({"role": "admin"})),
    );
    let user = sign(Algorithm::HS256, "", None, &claims(json!({"role": "user"})));
    for _ in 0..3 {
        let r = get_bearer(&proxy, &target, &admin).await;
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(&r.body[..], BODY);
        assert_error(
            &get_bearer(&proxy, &target, &user).await,
            403,
            Some("AccessDenied"),
        );
    }
    // The same header and payload with the last signature byte changed
    // (to another valid base64url character).
    let (signed, signature) = admin.rsplit_once('.').expect("three segments");
    let mut forged_signature = signature.to_owned();
    let last = forged_signature.pop().expect("a signature");
    forged_signature.push(if last == 'A' { 'E' } else { 'A' });
    let forged = format!("{signed}.{forged_signature}");
    assert_invalid_token(
        &get_bearer(&proxy, &target, &forged).await,
        "the token signature is invalid",
        &forged,
    );

    let (_, samples) = scrape(&proxy).await;
    let count = |metric, result| {
        sample_value(
            &samples,
            metric,
            &[("bucket", "repeat"), ("result", result)],
        )
    };
    // Each of the two good tokens verified once, then hit twice; the forged one verified.
    assert_eq!(count("yatagarasu_auth_token_cache_total", "hit"), Some(4.0));
    assert_eq!(
        count("yatagarasu_auth_token_cache_total", "miss"),
        Some(3.0)
    );
    assert_eq!(
        count("yatagarasu_auth_requests_total", "success"),
        Some(3.0)
    );
    assert_eq!(count("yatagarasu_auth_requests_total", "denied"), Some(3.0));
    assert_eq!(
        count("yatagarasu_auth_requests_total", "invalid"),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_token_source_in_order_and_query_tokens_never_reach_s3() {
    let s3 = s3_with_object().await;
    let jwt = format!(
        "{}        token_sources:\n          - type: header\n            name: X-Auth-Token\n            \
         prefix: 'Token '\n          - type: query\n            name: access_token\n          \
         - type: cookie\n            name: session\n          - type: bearer\n",
        hs256_jwt()
    );
    let proxy = Proxy::start(&Config::new(vec![private("src", &s3, &jwt)])).await;
    let target = format!("/src/{KEY}");
    let good = sign(Algorithm::HS256, "", None, &claims(json!({})));
    let bad = sign(
        Algorithm::HS256,
        "",
        None,
        &claims(json!({"exp": now() - 600})),
    );

    let header = format!("Token {good}");
    let cookie = format!("theme=dark; session={good}");
    let bearer = format!("Bearer {good}");
    for (what, headers) in [
        ("header", vec![("x-auth-token", header.as_str())]),
        ("cookie", vec![("cookie", cookie.as_str())]),
        ("bearer", vec![("authorization", bearer.as_str())]),
    ] {
        let r = get_with(&proxy, &target, &headers).await;
        assert_eq!(r.status, 200, "{what}: {}", r.describe());
    }
    // Query: the token parameter is removed, other parameters still work.
    let r = get_with(
        &proxy,
        &format!("{target}?access_token={good}&response-content-type=text%2Fplain"),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(
        r.header("content-type"),
        Some("text/plain"),
        "{}",
        r.describe()
    );

    // Order: the first source that has a token decides, even when a later one is valid.
    let bad_header = format!("Token {bad}");
    let r = get_with(
        &proxy,
        &format!("{target}?access_token={good}"),
        &[("x-auth-token", &bad_header)],
    )
    .await;
    assert_invalid_token(&r, "the token has expired", &bad);
    let bad_bearer = format!("Bearer {bad}");
    let r = get_with(
        &proxy,
        &target,
        &[("x-auth-token", &header), ("authorization", &bad_bearer)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = get_with(
        &proxy,
        &format!("{target}?access_token={bad}"),
        &[("cookie", &cookie)],
    )
    .await;
    assert_invalid_token(&r, "the token has expired", &bad);

    // S3 never saw a token: not in the query, not in any header.
    let seen = s3.requests_for(KEY);
    assert_eq!(seen.len(), 5, "{seen:?}");
    for request in &seen {
        assert!(
            !request.query_names().contains(&"access_token".to_owned()),
            "{request:?}"
        );
        assert!(!request.uri.contains(&good), "{request:?}");
        for value in request.headers.values() {
            let value = value.to_str().unwrap_or_default();
            assert!(!value.contains(&good), "a token reached S3 in {request:?}");
        }
    }
    assert_no_token_in_output(&proxy, &[&good, &bad]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_buckets_ignore_tokens() {
    let s3 = s3_with_object().await;
    let mut public = BucketCfg::new("public", &s3, BKT);
    public.extra_yaml = "    auth:\n      enabled: false\n".to_owned();
    let mut cfg = Config::new(vec![public, BucketCfg::new("plain", &s3, BKT)]);
    cfg.extra_yaml = format!("jwt:\n  algorithm: HS256\n  secret: {}\n", q(SECRET));
    let proxy = Proxy::start(&cfg).await;
    for bucket in ["public", "plain"] {
        let r = get_bearer(&proxy, &format!("/{bucket}/{KEY}"), "garbage.not.valid").await;
        assert_eq!(r.status, 200, "{bucket}: {}", r.describe());
        assert_eq!(&r.body[..], BODY);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_jwt_is_inherited_and_a_reload_rotates_the_secret() {
    let s3 = s3_with_object().await;
    let mut bucket = BucketCfg::new("inherit", &s3, BKT);
    bucket.extra_yaml = "    auth:\n      enabled: true\n".to_owned();
    let mut cfg = Config::new(vec![bucket]);
    cfg.admin_token = Some(ADMIN_TOKEN.to_owned());
    cfg.extra_yaml = format!("jwt:\n  algorithm: HS256\n  secret: {}\n", q(SECRET));
    let proxy = Proxy::start(&cfg).await;
    let target = format!("/inherit/{KEY}");
    let old = sign(Algorithm::HS256, "", None, &claims(json!({})));
    assert_eq!(get_bearer(&proxy, &target, &old).await.status, 200);

    let new_secret = "rotated-secret-abcdefghijklmnopqrstuvwxyz";
    cfg.extra_yaml = format!("jwt:\n  algorithm: HS256\n  secret: {}\n", q(new_secret));
    proxy.write_config(&cfg.yaml());
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let r = send_with_body(
        proxy.admin,
        "POST",
        "/admin/reload",
        &[("authorization", &auth), ("x-yatagarasu-admin", "1")],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());

    let new = sign_with(
        Algorithm::HS256,
        &EncodingKey::from_secret(new_secret.as_bytes()),
        None,
        &claims(json!({})),
    );
    let r = get_bearer(&proxy, &target, &new).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_invalid_token(
        &get_bearer(&proxy, &target, &old).await,
        "the token signature is invalid",
        &old,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_accepts_an_admin_jwt() {
    let s3 = s3_with_object().await;
    let mut cfg = Config::new(vec![BucketCfg::new("b", &s3, BKT)]);
    cfg.admin_token = Some(ADMIN_TOKEN.to_owned());
    cfg.admin_extra_yaml = format!(
        "  jwt:\n    algorithm: ES256\n    ecdsa_public_key_path: {}\n    require_claim:\n      \
         claim: role\n      operator: equals\n      value: admin\n",
        fixture_yaml("ec256_public.pem")
    );
    let proxy = Proxy::start(&cfg).await;
    let status = |token: Option<String>| {
        let admin = proxy.admin;
        async move {
            let auth = token.map(|t| format!("Bearer {t}"));
            let headers: Vec<(&str, &str)> =
                auth.iter().map(|a| ("authorization", a.as_str())).collect();
            send(admin, "GET", "/admin/status", &headers).await
        }
    };
    let r = status(None).await;
    assert_eq!(r.status, 401, "{}", r.describe());
    let user = sign(
        Algorithm::ES256,
        "ec256_private.pem",
        None,
        &claims(json!({"role": "user"})),
    );
    let r = status(Some(user.clone())).await;
    assert_eq!(r.status, 403, "{}", r.describe());
    let expired = sign(
        Algorithm::ES256,
        "ec256_private.pem",
        None,
        &claims(json!({"role": "admin", "exp": now() - 600})),
    );
    assert_eq!(status(Some(expired)).await.status, 401);
    let admin = sign(
        Algorithm::ES256,
        "ec256_private.pem",
        None,
        &claims(json!({"role": "admin"})),
    );
    let r = status(Some(admin.clone())).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    // The static token keeps working beside the JWT.
    assert_eq!(status(Some(ADMIN_TOKEN.to_owned())).await.status, 200);
    assert_no_token_in_output(&proxy, &[&user, &admin]);
}

/// The `cache:` section with a memory tier.
const MEMORY_CACHE: &str = "cache:\n  enabled: true\n  memory:\n    max_item_size_mb: 1\n    \
                            max_cache_size_mb: 16\n    default_ttl_seconds: 3600\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_answers_are_private_to_shared_caches_hit_or_miss() {
    let s3 = s3_with_object().await;
    s3.put_object(
        BKT,
        "docs/shared.txt",
        b"shared",
        Some("text/plain"),
        &[("cache-control", "public, max-age=600, s-maxage=900")],
    )
    .await;
    s3.put_object(
        BKT,
        "docs/never.txt",
        b"never",
        Some("text/plain"),
        &[("cache-control", "no-store")],
    )
    .await;
    let jwt = format!(
        "{}        token_sources:\n          - type: bearer\n          - type: query\n            \
         name: token\n",
        hs256_jwt()
    );
    let mut cfg = Config::new(vec![
        private("priv", &s3, &jwt),
        BucketCfg::new("open", &s3, BKT),
    ]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = MEMORY_CACHE.to_owned();
    let proxy = Proxy::start(&cfg).await;
    proxy.wait_ready().await;
    let token = sign(Algorithm::HS256, "", None, &claims(json!({})));

    // S3's lifetime is kept; what lets a shared cache store it is not.
    for marker in ["MISS", "HIT memory"] {
        let r = get_bearer(&proxy, "/priv/docs/shared.txt", &token).await;
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.header("x-cache"), Some(marker));
        assert_eq!(r.header("cache-control"), Some("private, max-age=600"));
    }
    // No Cache-Control from S3, and a token in the query: private too.
    for marker in ["MISS", "HIT memory"] {
        let r = get(proxy.main, &format!("/priv/{KEY}?token={token}")).await;
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.header("x-cache"), Some(marker));
        assert_eq!(r.header("cache-control"), Some("private"));
    }
    // A stricter no-store stays as S3 sent it.
    let r = get_bearer(&proxy, "/priv/docs/never.txt", &token).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Refusals are not storable either.
    for r in [
        get(proxy.main, "/priv/docs/shared.txt").await,
        get_bearer(&proxy, "/priv/docs/shared.txt", "not.a.token").await,
    ] {
        assert_eq!(r.status, 401, "{}", r.describe());
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    // A public bucket's answers are S3's, unchanged.
    for marker in ["MISS", "HIT memory"] {
        let r = get(proxy.main, "/open/docs/shared.txt").await;
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.header("x-cache"), Some(marker));
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=600, s-maxage=900")
        );
    }
    let r = get(proxy.main, &format!("/open/{KEY}")).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.header("cache-control").is_none(), "{}", r.describe());
}

/// An HS256 token (signed with [`SECRET`]) whose header is exactly `header`.
fn hs256_with_header(header: &Value, claims: &Value) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{message}.{signature}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_with_critical_header_extensions_are_refused() {
    let s3 = s3_with_object().await;
    let cached = format!("{}        token_cache_size: 100\n", hs256_jwt());
    let proxy = Proxy::start(&Config::new(vec![
        private("hs", &s3, &hs256_jwt()),
        private("cached", &s3, &cached),
    ]))
    .await;
    let body = claims(json!({}));
    let plain = hs256_with_header(&json!({"alg": "HS256", "typ": "JWT"}), &body);
    let with_crit = [
        json!({"alg": "HS256", "crit": ["exp2"], "exp2": 1}),
        json!({"alg": "HS256", "b64": false, "crit": ["b64"]}),
        json!({"alg": "HS256", "crit": []}),
        json!({"alg": "HS256", "crit": "b64"}),
        json!({"alg": "HS256", "crit": null}),
    ]
    .map(|header| hs256_with_header(&header, &body));

    for bucket in ["hs", "cached"] {
        let target = format!("/{bucket}/{KEY}");
        let r = get_bearer(&proxy, &target, &plain).await;
        assert_eq!(r.status, 200, "{bucket}: {}", r.describe());
        // Twice each: a refused token is never answered from the token cache.
        for token in with_crit.iter().chain(with_crit.iter()) {
            let r = get_bearer(&proxy, &target, token).await;
            assert_invalid_token(
                &r,
                "the token requires header extensions (crit) that are not supported",
                token,
            );
        }
    }
    proxy
        .wait_for_log(0, "a crit refusal", DEADLINE, |event| {
            log_field(event, "error")
                .and_then(Value::as_str)
                .is_some_and(|e| e.contains("(crit)"))
        })
        .await;
    assert_eq!(
        s3.requests_for(KEY).len(),
        2,
        "only the plain tokens reached S3"
    );
    let mut all: Vec<&str> = with_crit.iter().map(String::as_str).collect();
    all.push(&plain);
    assert_no_token_in_output(&proxy, &all);
}
