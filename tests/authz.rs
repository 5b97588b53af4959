//! Authorization through the real binary, against the real S3 server and
//! in-test policy peers: HS256 tokens whose claims drive Rego, OPA and
//! OpenFGA decisions; OPA outages; metrics; reloads.

mod common;

use common::jwks::{SECRET, claims, sign};
use common::policy_peers::{PolicyPeer, policy_path};
use common::*;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

const BKT: &str = "authz-bkt";

/// A bucket `private` at `/private` whose `auth:` section is `auth_yaml`
/// (lines indented for the `auth:` mapping, 6 spaces).
fn private_bucket(s3: &S3Server, auth_yaml: &str) -> BucketCfg {
    let mut bucket = BucketCfg::new("private", s3, BKT);
    bucket.extra_yaml = format!("    auth:\n{auth_yaml}");
    bucket
}

fn rego_auth(policy_file: &str) -> String {
    format!(
        "      authorization:\n        type: rego\n        policy_path: {}\n",
        q(policy_file)
    )
}

/// An OPA stand-in evaluating `s3.rego`, and the bucket `authorization:` YAML pointing at it.
async fn opa_s3_policy() -> (PolicyPeer, String) {
    let peer = PolicyPeer::opa_rego("s3.rego", "data.yatagarasu.allow").await;
    let yaml = format!(
        "      authorization:\n        type: opa\n        url: {}\n",
        q(&format!("{}/v1/data/yatagarasu/allow", peer.base_url()))
    );
    (peer, yaml)
}

/// `yatagarasu_authz_decisions_total{bucket,engine,result}` from a scrape.
fn decisions(samples: &[Sample], bucket: &str, engine: &str, result: &str) -> Option<f64> {
    sample_value(
        samples,
        "yatagarasu_authz_decisions_total",
        &[("bucket", bucket), ("engine", engine), ("result", result)],
    )
}

fn objects(s3: &S3Server) {
    s3.write_object(BKT, "public/logo.png", b"logo bytes");
    s3.write_object(BKT, "docs/a.txt", b"document a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rego_policy_allows_and_denies_before_s3() {
    let s3 = S3Server::start(&[BKT]).await;
    objects(&s3);
    let cfg = Config::new(vec![private_bucket(
        &s3,
        &rego_auth(&policy_path("s3.rego")),
    )]);
    let proxy = Proxy::start(&cfg).await;

    let r = get(proxy.main, "/private/public/logo.png").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"logo bytes");

    // No token: claims are null, and the policy only opens public/.
    let r = get(proxy.main, "/private/docs/a.txt").await;
    let err = assert_error(&r, 403, Some("AccessDenied"));
    assert_eq!(
        err["message"], "the authorization policy denies this request",
        "{err}"
    );
    assert!(
        s3.requests_for("docs/a.txt").is_empty(),
        "a denied request never reaches S3"
    );

    let (_, samples) = scrape(&proxy).await;
    let decisions = |result| decisions(&samples, "private", "rego", result);
    assert_eq!(decisions("allow"), Some(1.0));
    assert_eq!(decisions("deny"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_opa_is_503_when_closed_and_served_when_open() {
    let s3 = S3Server::start(&[BKT]).await;
    objects(&s3);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!(
        "http://{}/v1/data/yatagarasu/allow",
        listener.local_addr().unwrap()
    );
    drop(listener);
    let opa = |fail: &str| {
        format!(
            "      authorization:\n        type: opa\n        url: {}\n        fail: {fail}\n",
            q(&dead)
        )
    };
    let mut open = private_bucket(&s3, &opa("open"));
    open.name = "open".into();
    open.path_prefix = "/open".into();
    let cfg = Config::new(vec![private_bucket(&s3, &opa("closed")), open]);
    let proxy = Proxy::start(&cfg).await;

    let r = get(proxy.main, "/private/docs/a.txt").await;
    assert_error(&r, 503, Some("AuthorizationUnavailable"));
    assert!(s3.requests_for("docs/a.txt").is_empty());
    let from = proxy.log_len();
    let r = get(proxy.main, "/open/docs/a.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"document a");
    proxy
        .wait_for_message(
            from,
            "authorization engine failed; allowing the request (fail: open)",
        )
        .await;

    let (_, samples) = scrape(&proxy).await;
    for bucket in ["private", "open"] {
        assert_eq!(
            decisions(&samples, bucket, "opa", "error"),
            Some(1.0),
            "{bucket}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opa_decisions_are_cached_through_the_binary() {
    let s3 = S3Server::start(&[BKT]).await;
    objects(&s3);
    let (peer, auth) = opa_s3_policy().await;
    let proxy = Proxy::start(&Config::new(vec![private_bucket(&s3, &auth)])).await;
    for _ in 0..3 {
        let r = get(proxy.main, "/private/public/logo.png").await;
        assert_eq!(r.status, 200, "{}", r.describe());
        let r = get(proxy.main, "/private/docs/a.txt").await;
        assert_eq!(r.status, 403, "{}", r.describe());
    }
    assert_eq!(
        peer.request_count(),
        2,
        "one OPA question per distinct input"
    );
    let input = &peer.requests()[0].body["input"];
    assert_eq!(input["bucket"], "private");
    assert_eq!(input["key"], "public/logo.png");
    assert_eq!(input["claims"], Value::Null);
    assert_eq!(input["client_ip"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_policies_and_keeps_the_old_one_when_the_new_one_is_broken() {
    let s3 = S3Server::start(&[BKT]).await;
    objects(&s3);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.rego");
    let deny_all = "package yatagarasu\nimport rego.v1\ndefault allow := false\n";
    std::fs::write(&file, deny_all).unwrap();
    let cfg = Config::new(vec![private_bucket(
        &s3,
        &rego_auth(file.to_str().unwrap()),
    )]);
    let proxy = Proxy::start(&cfg).await;
    assert_eq!(get(proxy.main, "/private/docs/a.txt").await.status, 403);

    // A policy that does not parse: the reload fails and names the file.
    std::fs::copy(policy_path("broken.rego"), &file).unwrap();
    let from = proxy.log_len();
    proxy.signal("HUP");
    let (_, event) = proxy
        .wait_for_message(from, "configuration reload failed")
        .await;
    assert!(event.to_string().contains("live.rego"), "{event}");
    assert_eq!(get(proxy.main, "/private/docs/a.txt").await.status, 403);

    // A valid new policy takes over at once (a new generation, a new cache).
    std::fs::write(
        &file,
        "package yatagarasu\nimport rego.v1\ndefault allow := true\n",
    )
    .unwrap();
    let from = proxy.log_len();
    proxy.signal("HUP");
    proxy.wait_for_message(from, "configuration reloaded").await;
    let r = get(proxy.main, "/private/docs/a.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"document a");
}

// ---------------------------------------------------------------- with tokens

/// `auth:` lines: HS256 tokens required, then `authorization` (6-space indented).
fn with_jwt(authorization: &str, token_sources: &str) -> String {
    format!(
        "      enabled: true\n      jwt:\n        algorithm: HS256\n        secret: {}\n{token_sources}{authorization}",
        q(SECRET)
    )
}

fn token(extra: Value) -> String {
    sign(Algorithm::HS256, "", None, &claims(extra))
}

async fn get_bearer(proxy: &Proxy, target: &str, token: &str) -> Resp {
    let auth = format!("Bearer {token}");
    send(proxy.main, "GET", target, &[("authorization", &auth)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_claims_drive_the_rego_policy() {
    let s3 = S3Server::start(&[BKT]).await;
    objects(&s3);
    let auth = with_jwt(&rego_auth(&policy_path("s3.rego")), "");
    let proxy = Proxy::start(&Config::new(vec![private_bucket(&s3, &auth)])).await;
    let reader = token(json!({"role": "reader"}));

    // Allowed by claim.
    let r = get_bearer(&proxy, "/private/docs/a.txt", &reader).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"document a");
    // Denied by claim.
    let guest = token(json!({"role": "guest"}));
    let r = get_bearer(&proxy, "/private/docs/a.txt", &guest).await;
    assert_error(&r, 403, Some("AccessDenied"));
    // Denied by path.
    let r = get_bearer(&proxy, "/private/secret/plans.txt", &reader).await;
    assert_error(&r, 403, Some("AccessDenied"));
    // Denied by method.
    let auth_header = format!("Bearer {reader}");
    let r = send(
        proxy.main,
        "HEAD",
        "/private/docs/a.txt",
        &[("authorization", &auth_header)],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.describe());
    // No token: authentication refuses before any policy is asked.
    let r = get(proxy.main, "/private/docs/a.txt").await;
    assert_eq!(r.status, 401, "{}", r.describe());
    assert_eq!(
        s3.requests_for("docs/a.txt").len(),
        1,
        "only the allowed GET reached S3"
    );

    let (_, samples) = scrape(&proxy).await;
    let decisions = |result| decisions(&samples, "private", "rego", result);
    assert_eq!(decisions("allow"), Some(1.0));
    assert_eq!(decisions("deny"), Some(3.0));
    let logs = proxy.all_logs().join("\n");
    assert!(!logs.contains(&reader), "the token is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opa_receives_verified_claims_and_never_the_token() {
    let s3 = S3Server::start(&[BKT]).await;
    objects(&s3);
    let (peer, opa) = opa_s3_policy().await;
    let sources = "        token_sources:\n          - type: bearer\n          - type: header\n            \
                   name: X-Auth-Token\n";
    let proxy = Proxy::start(&Config::new(vec![private_bucket(
        &s3,
        &with_jwt(&opa, sources),
    )]))
    .await;
    let reader = token(json!({"role": "reader", "org": {"id": "acme"}}));
    let r = get_bearer(&proxy, "/private/docs/a.txt", &reader).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = send(
        proxy.main,
        "GET",
        "/private/secret/x",
        &[("x-auth-token", &reader), ("x-tenant", "acme")],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.describe());

    let requests = peer.requests();
    assert_eq!(requests.len(), 2);
    let input = &requests[0].body["input"];
    assert_eq!(input["claims"]["role"], "reader");
    assert_eq!(input["claims"]["org"]["id"], "acme");
    assert_eq!(input["claims"]["sub"], "user-42");
    assert_eq!(input["key"], "docs/a.txt");
    assert_eq!(requests[1].body["input"]["headers"]["x-tenant"], "acme");
    for request in &requests {
        let seen = format!("{:?} {}", request.headers, request.body);
        assert!(!seen.contains(&reader), "the token reached OPA: {seen}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_decisions_are_kept_apart_per_token() {
    let s3 = S3Server::start(&[BKT]).await;
    objects(&s3);
    let (peer, opa) = opa_s3_policy().await;
    let proxy = Proxy::start(&Config::new(vec![private_bucket(&s3, &with_jwt(&opa, ""))])).await;
    let reader = token(json!({"role": "reader"}));
    let guest = token(json!({"role": "guest"}));
    for _ in 0..2 {
        let r = get_bearer(&proxy, "/private/docs/a.txt", &reader).await;
        assert_eq!(r.status, 200, "{}", r.describe());
        // The reader's cached "allow" never answers for another token's claims.
        let r = get_bearer(&proxy, "/private/docs/a.txt", &guest).await;
        assert_eq!(r.status, 403, "{}", r.describe());
    }
    let requests = peer.requests();
    assert_eq!(requests.len(), 2, "one OPA question per token, then cached");
    assert_eq!(requests[0].body["input"]["claims"]["role"], "reader");
    assert_eq!(requests[1].body["input"]["claims"]["role"], "guest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openfga_checks_the_token_subject() {
    let s3 = S3Server::start(&[BKT]).await;
    objects(&s3);
    let peer = PolicyPeer::openfga(&[("user:user-42", "viewer", "file:private/docs/a.txt")]).await;
    let fga = format!(
        "      authorization:\n        type: openfga\n        endpoint: {}\n        \
         store_id: 01STORE\n        api_token: fga-api-t0ken\n",
        q(&peer.base_url())
    );
    let proxy = Proxy::start(&Config::new(vec![private_bucket(&s3, &with_jwt(&fga, ""))])).await;
    let alice = token(json!({}));
    let r = get_bearer(&proxy, "/private/docs/a.txt", &alice).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"document a");
    let r = get_bearer(&proxy, "/private/public/logo.png", &alice).await;
    assert_error(&r, 403, Some("AccessDenied"));
    let other = sign(
        Algorithm::HS256,
        "",
        None,
        &claims(json!({"sub": "user-7"})),
    );
    let r = get_bearer(&proxy, "/private/docs/a.txt", &other).await;
    assert_error(&r, 403, Some("AccessDenied"));

    let requests = peer.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].path, "/stores/01STORE/check");
    assert_eq!(requests[0].headers["authorization"], "Bearer fga-api-t0ken");
    assert_eq!(
        requests[0].body,
        json!({"tuple_key": {"user": "user:user-42", "relation": "viewer", "object": "file:private/docs/a.txt"}})
    );
    let logs = proxy.all_logs().join("\n");
    assert!(!logs.contains("fga-api-t0ken"), "the api_token is logged");
}
