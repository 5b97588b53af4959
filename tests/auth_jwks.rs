//! JWKS: keys published by a real HTTP server in the test process, fetched by
//! the real binary: every key type, rotation, refresh on an unknown `kid`
//! (rate limited), and an issuer that is down at startup.

mod common;

use common::jwks::*;
use common::*;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

const BKT: &str = "jwks-bkt";
const KEY: &str = "a/b.txt";
const BODY: &[u8] = b"jwks protected\n";

async fn s3_with_object() -> S3Server {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, KEY, BODY);
    s3
}

/// A private bucket verifying with `jwks` (refresh and minimum interval in seconds).
fn jwks_bucket(name: &str, s3: &S3Server, jwks: &JwksServer, refresh: u64, min: u64) -> BucketCfg {
    let mut b = BucketCfg::new(name, s3, BKT);
    b.extra_yaml = format!(
        "    auth:\n      enabled: true\n      jwt:\n        jwks_url: {}\n        \
         jwks_refresh_interval_seconds: {refresh}\n        jwks_min_refresh_interval_seconds: {min}\n        \
         jwks_timeout_seconds: 2\n",
        q(&jwks.url())
    );
    b
}

async fn status_with(proxy: &Proxy, bucket: &str, token: &str) -> Resp {
    let auth = format!("Bearer {token}");
    send(
        proxy.main,
        "GET",
        &format!("/{bucket}/{KEY}"),
        &[("authorization", &auth)],
    )
    .await
}

fn rsa_token(private_pem: &str, kid: &str) -> String {
    sign(Algorithm::RS256, private_pem, Some(kid), &claims(json!({})))
}

/// Polls until `bucket` answers `status` to `token`.
async fn eventually_status(proxy: &Proxy, bucket: &str, token: &str, status: u16, what: &str) {
    eventually(what, DEADLINE, || async {
        let r = status_with(proxy, bucket, token).await;
        if r.status == status {
            Ok(())
        } else {
            Err(r.describe())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_type_verifies_and_rotation_revokes_removed_keys() {
    let s3 = s3_with_object().await;
    let mut encryption_key = public_jwk(Algorithm::RS256, "rsa2_private.pem", "enc-key");
    encryption_key["use"] = json!("enc");
    let jwks = JwksServer::start(vec![
        public_jwk(Algorithm::RS256, "rsa_private.pem", "rsa-old"),
        public_jwk(Algorithm::ES256, "ec256_private.pem", "ec256"),
        public_jwk(Algorithm::ES384, "ec384_private.pem", "ec384"),
        public_jwk(Algorithm::EdDSA, "ed25519_private.pem", "ed"),
        encryption_key,
    ])
    .await;
    let proxy = Proxy::start(&Config::new(vec![jwks_bucket("idp", &s3, &jwks, 1, 1)])).await;
    proxy.wait_ready().await;

    let old = rsa_token("rsa_private.pem", "rsa-old");
    for (alg, pem, kid) in [
        (Algorithm::ES256, "ec256_private.pem", "ec256"),
        (Algorithm::ES384, "ec384_private.pem", "ec384"),
        (Algorithm::EdDSA, "ed25519_private.pem", "ed"),
    ] {
        let token = sign(alg, pem, Some(kid), &claims(json!({})));
        let r = status_with(&proxy, "idp", &token).await;
        assert_eq!(r.status, 200, "{kid}: {}", r.describe());
        assert_eq!(&r.body[..], BODY);
    }
    let r = status_with(&proxy, "idp", &old).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    // A key published for encryption does not verify signatures.
    let enc = rsa_token("rsa2_private.pem", "enc-key");
    let r = status_with(&proxy, "idp", &enc).await;
    assert_eq!(r.status, 401, "{}", r.describe());
    assert_eq!(r.json()["error"]["message"], "the token key id is unknown");

    // Rotation: the new key is published beside the old one; both verify.
    let new = rsa_token("rsa2_private.pem", "rsa-new");
    jwks.publish(vec![
        public_jwk(Algorithm::RS256, "rsa_private.pem", "rsa-old"),
        public_jwk(Algorithm::RS256, "rsa2_private.pem", "rsa-new"),
    ]);
    eventually_status(&proxy, "idp", &new, 200, "the new key verifies").await;
    assert_eq!(status_with(&proxy, "idp", &old).await.status, 200);

    // The old key is withdrawn: its tokens are refused after the next refresh.
    jwks.publish(vec![public_jwk(
        Algorithm::RS256,
        "rsa2_private.pem",
        "rsa-new",
    )]);
    eventually_status(&proxy, "idp", &old, 401, "the withdrawn key is refused").await;
    assert_eq!(status_with(&proxy, "idp", &new).await.status, 200);

    // The access log records the key id that verified.
    let access = proxy.access_logs();
    assert!(
        access
            .iter()
            .any(|ev| log_field(ev, "kid").and_then(Value::as_str) == Some("rsa-new")),
        "no access log with kid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_refreshes_at_most_once_per_minimum_interval() {
    let s3 = s3_with_object().await;
    let jwks = JwksServer::start(vec![public_jwk(Algorithm::RS256, "rsa_private.pem", "k1")]).await;
    // Background refresh hourly, on-demand refresh at most once a minute (the default).
    let mut limited = jwks_bucket("limited", &s3, &jwks, 3600, 60);
    limited.extra_yaml = limited
        .extra_yaml
        .replace("        jwks_min_refresh_interval_seconds: 60\n", "");
    let proxy = Proxy::start(&Config::new(vec![limited])).await;
    proxy.wait_ready().await;
    assert_eq!(jwks.hits(), 1, "one fetch at startup");

    jwks.publish(vec![
        public_jwk(Algorithm::RS256, "rsa_private.pem", "k1"),
        public_jwk(Algorithm::RS256, "rsa2_private.pem", "k2"),
    ]);
    let flood: Vec<String> = (0..20)
        .map(|i| rsa_token("rsa2_private.pem", &format!("random-{i}")))
        .collect();
    for token in &flood {
        let r = status_with(&proxy, "limited", token).await;
        assert_eq!(r.status, 401, "{}", r.describe());
        assert_eq!(r.json()["error"]["message"], "the token key id is unknown");
    }
    // The startup fetch was less than a minute ago: no request reached the issuer.
    assert_eq!(
        jwks.hits(),
        1,
        "unknown kids must not trigger fetches within the minimum interval"
    );
    // k2 is published but not fetched yet either.
    let k2 = rsa_token("rsa2_private.pem", "k2");
    assert_eq!(status_with(&proxy, "limited", &k2).await.status, 401);
    assert_eq!(jwks.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_triggers_a_refresh_when_allowed() {
    let s3 = s3_with_object().await;
    let jwks = JwksServer::start(vec![public_jwk(Algorithm::RS256, "rsa_private.pem", "k1")]).await;
    let proxy = Proxy::start(&Config::new(vec![jwks_bucket(
        "ondemand", &s3, &jwks, 3600, 1,
    )]))
    .await;
    proxy.wait_ready().await;
    jwks.publish(vec![
        public_jwk(Algorithm::RS256, "rsa_private.pem", "k1"),
        public_jwk(Algorithm::RS256, "rsa2_private.pem", "k2"),
    ]);
    // The hourly background refresh cannot be what finds k2.
    let k2 = rsa_token("rsa2_private.pem", "k2");
    eventually_status(
        &proxy,
        "ondemand",
        &k2,
        200,
        "k2 found by an on-demand refresh",
    )
    .await;
    assert!(jwks.hits() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_down_at_startup_then_recovering() {
    let s3 = s3_with_object().await;
    let jwks = JwksServer::start(vec![public_jwk(
        Algorithm::EdDSA,
        "ed25519_private.pem",
        "ed",
    )])
    .await;
    jwks.set_up(false);
    let mut public = BucketCfg::new("open", &s3, BKT);
    public.extra_yaml = String::new();
    let proxy = Proxy::start(&Config::new(vec![
        jwks_bucket("sso", &s3, &jwks, 3600, 1),
        public,
    ]))
    .await;
    let token = sign(
        Algorithm::EdDSA,
        "ed25519_private.pem",
        Some("ed"),
        &claims(json!({})),
    );

    // The server runs; /ready names the bucket whose keys are missing.
    let not_ready = eventually("/ready names the bucket", DEADLINE, || async {
        let r = proxy.try_ready().await?;
        let v = r.json();
        if r.status == 503 && v["keys_not_loaded"]["sso"].is_string() {
            Ok(v)
        } else {
            Err(r.describe())
        }
    })
    .await;
    assert!(
        not_ready["keys_not_loaded"].get("open").is_none(),
        "{not_ready}"
    );
    let r = status_with(&proxy, "sso", &token).await;
    assert_eq!(r.status, 401, "{}", r.describe());
    assert_eq!(
        r.json()["error"]["message"],
        "the signing keys are not available yet"
    );
    let public = send(proxy.main, "GET", &format!("/open/{KEY}"), &[]).await;
    assert_eq!(public.status, 200, "{}", public.describe());

    jwks.set_up(true);
    let v = proxy.wait_ready().await;
    assert!(v.get("keys_not_loaded").is_none(), "{v}");
    let r = status_with(&proxy, "sso", &token).await;
    assert_eq!(r.status, 200, "{}", r.describe());

    // A failing refresh keeps the last good keys.
    jwks.set_up(false);
    let hits = jwks.hits();
    let unknown = sign(
        Algorithm::EdDSA,
        "ed25519_private.pem",
        Some("nope"),
        &claims(json!({})),
    );
    eventually("a failed on-demand refresh", DEADLINE, || async {
        status_with(&proxy, "sso", &unknown).await;
        if jwks.hits() > hits {
            Ok(())
        } else {
            Err(format!("hits {}", jwks.hits()))
        }
    })
    .await;
    assert_eq!(status_with(&proxy, "sso", &token).await.status, 200);

    let (_, samples) = scrape(&proxy).await;
    let refreshes = |result: &str| {
        sample_sum(
            &samples,
            "yatagarasu_jwks_refresh_total",
            &[("result", result)],
        )
    };
    assert!(
        refreshes("failure") >= 2.0,
        "failures {}",
        refreshes("failure")
    );
    assert!(refreshes("success") >= 1.0);
    assert_eq!(
        sample_value(
            &samples,
            "yatagarasu_auth_requests_total",
            &[("bucket", "sso"), ("result", "error")]
        ),
        Some(1.0)
    );
}

/// A reload whose build fails after a JWKS bucket was built must leave no
/// trace: `/ready` keeps describing the key sets of the generation in force
/// (not those of one that never went live), and the failed generation's key
/// set is never fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_fails_to_build_leaves_readiness_and_key_sets_untouched() {
    let s3 = s3_with_object().await;
    let live = JwksServer::start(vec![public_jwk(Algorithm::RS256, "rsa_private.pem", "k1")]).await;
    live.set_up(false);
    let mut cfg = Config::new(vec![jwks_bucket("sso", &s3, &live, 3600, 1)]);
    let proxy = Proxy::start(&cfg).await;
    let not_ready = || async {
        let r = proxy.try_ready().await?;
        if r.status == 503 && r.json()["keys_not_loaded"]["sso"].is_string() {
            Ok(())
        } else {
            Err(r.describe())
        }
    };
    eventually("/ready names the bucket without keys", DEADLINE, not_ready).await;

    // The bucket's new key set is built first; the disk cache below a
    // regular file cannot be created, so the build fails after it.
    let unused =
        JwksServer::start(vec![public_jwk(Algorithm::RS256, "rsa_private.pem", "k1")]).await;
    let blocker = proxy.config_path().with_file_name("not-a-directory");
    std::fs::write(&blocker, b"file").unwrap();
    cfg.buckets = vec![jwks_bucket("sso", &s3, &unused, 3600, 1)];
    cfg.extra_yaml = format!(
        "cache:\n  enabled: true\n  cache_layers: [disk]\n  disk:\n    cache_dir: {}\n",
        q(blocker.join("cache").to_str().unwrap())
    );
    proxy.write_config(&cfg.yaml());
    let r = send_with_body(
        proxy.admin,
        "POST",
        "/admin/reload",
        &[("x-yatagarasu-admin", "1")],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 400, "the reload must fail: {}", r.describe());
    assert!(r.text().contains("cache"), "{}", r.describe());

    // Still the live generation's report: its keys are still missing.
    not_ready().await.unwrap();
    assert_eq!(unused.hits(), 0, "the failed build fetched its JWKS");
    live.set_up(true);
    proxy.wait_ready().await;
}
