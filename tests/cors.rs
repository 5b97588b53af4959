//! CORS (`cors:` and `buckets[i].cors`) against the real binary and a real
//! SigV4-verifying S3 (s3s-fs, whose recorded requests show what reached
//! it): preflights answered by the proxy (allowed, or refused for the
//! origin, the method or a header) without a token and without S3, wildcard
//! subdomains, `*` against credentials, CORS fields on error answers, the
//! per-bucket override and off switch, a configuration without CORS
//! unchanged, and cached answers carrying each origin's own fields.

mod common;

use common::*;

const BKT: &str = "cors-bkt";
const APP: &str = "https://app.example.com";
const SECRET: &str = "cors-test-jwt-secret-0123456789abcdef";

/// The top-level default of most tests.
const DEFAULT_CORS: &str = "cors:\n  allowed_origins: [\"https://app.example.com\", \
    \"https://*.example.org\"]\n  allowed_headers: [range, authorization]\n  \
    expose_headers: [etag, content-range, x-request-id]\n  max_age_seconds: 600\n";

async fn s3(keys: &[&str]) -> S3Server {
    let s3 = S3Server::start(&[BKT]).await;
    for key in keys {
        s3.write_object(BKT, key, b"cross-origin bytes");
    }
    s3
}

fn bucket(s3: &S3Server, name: &str, extra: &str) -> BucketCfg {
    let mut b = BucketCfg::new(name, s3, BKT);
    b.extra_yaml = extra.to_owned();
    b
}

/// Buckets plus top-level sections `extra`; readiness probed at start only.
async fn start(buckets: Vec<BucketCfg>, extra: &str) -> Proxy {
    let mut cfg = Config::new(buckets);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = extra.to_owned();
    Proxy::start(&cfg).await
}

/// `OPTIONS target` as a browser sends a preflight.
async fn preflight(proxy: &Proxy, target: &str, origin: &str, method: &str, headers: &str) -> Resp {
    let mut fields = vec![
        ("origin", origin),
        ("access-control-request-method", method),
    ];
    if !headers.is_empty() {
        fields.push(("access-control-request-headers", headers));
    }
    send(proxy.main, "OPTIONS", target, &fields).await
}

async fn get_from(proxy: &Proxy, target: &str, origin: &str) -> Resp {
    send(proxy.main, "GET", target, &[("origin", origin)]).await
}

/// Names of the response's `access-control-*` fields.
fn cors_fields(r: &Resp) -> Vec<String> {
    let mut names: Vec<String> = (r.headers.keys())
        .map(|n| n.as_str().to_owned())
        .filter(|n| n.starts_with("access-control-"))
        .collect();
    names.dedup();
    names
}

/// The 403 of a refused preflight: JSON, and no `Access-Control-Allow-*`.
fn assert_refused(r: &Resp, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.describe());
    assert_eq!(r.json()["error"]["code"], "CorsRejected", "{what}");
    assert!(cors_fields(r).is_empty(), "{what}: {}", r.describe());
}

/// A non-preflight answer that `origin` may read.
fn assert_readable(r: &Resp, origin: &str, what: &str) {
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(origin),
        "{what}: {}",
        r.describe()
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("etag, content-range, x-request-id"),
        "{what}"
    );
    assert_eq!(r.header("vary"), Some("Origin"), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_are_answered_without_a_token_and_never_reach_s3() {
    let s3 = s3(&["pre.txt"]).await;
    let private = "    auth:\n      enabled: true\n";
    let jwt = format!("jwt:\n  algorithm: HS256\n  secret: {}\n", q(SECRET));
    let proxy = start(
        vec![bucket(&s3, "p", private)],
        &format!("{DEFAULT_CORS}{jwt}"),
    )
    .await;

    let ok = preflight(&proxy, "/p/pre.txt", APP, "GET", "range, Authorization").await;
    assert_eq!(ok.status, 204, "{}", ok.describe());
    assert_eq!(ok.header("access-control-allow-origin"), Some(APP));
    assert_eq!(ok.header("access-control-allow-methods"), Some("GET, HEAD"));
    assert_eq!(
        ok.header("access-control-allow-headers"),
        Some("range, authorization")
    );
    assert_eq!(ok.header("access-control-max-age"), Some("600"));
    assert_eq!(ok.header("access-control-allow-credentials"), None);
    assert_eq!(
        ok.header("vary"),
        Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
    );
    assert!(ok.body.is_empty());

    // A subdomain at any depth of a wildcard entry; its origin is echoed.
    let deep = "https://cdn.eu.example.org";
    let sub = preflight(&proxy, "/p/pre.txt", deep, "HEAD", "").await;
    assert_eq!(sub.status, 204, "{}", sub.describe());
    assert_eq!(sub.header("access-control-allow-origin"), Some(deep));

    let refusals = [
        (
            "https://example.org",
            "GET",
            "",
            "the wildcard's own domain",
        ),
        ("https://evil.example", "GET", "", "an unlisted origin"),
        ("http://app.example.com", "GET", "", "another scheme"),
        (APP, "PUT", "", "a method not allowed"),
        (APP, "GET", "range, x-custom", "a header not allowed"),
    ];
    for (origin, method, headers, what) in refusals {
        assert_refused(
            &preflight(&proxy, "/p/pre.txt", origin, method, headers).await,
            what,
        );
    }
    assert!(
        s3.requests_for("pre.txt").is_empty(),
        "a preflight reached S3"
    );

    // The GET itself still needs its token; its 401 is readable by the page.
    let unauthorized = get_from(&proxy, "/p/pre.txt", APP).await;
    assert_eq!(unauthorized.status, 401, "{}", unauthorized.describe());
    assert_readable(&unauthorized, APP, "401");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_and_error_answers_carry_the_fields_for_an_allowed_origin() {
    let s3 = s3(&["k.txt"]).await;
    let blocked = "    ip_filter: {blocklist: [\"127.0.0.0/8\", \"::1\"]}\n";
    let limited = "      rate_limit: {requests_per_second: 1, burst: 1}\n";
    let proxy = start(
        vec![
            bucket(&s3, "open", ""),
            bucket(&s3, "blocked", blocked),
            bucket(&s3, "limited", limited),
        ],
        DEFAULT_CORS,
    )
    .await;

    let ok = get_from(&proxy, "/open/k.txt", APP).await;
    assert_eq!(ok.status, 200, "{}", ok.describe());
    assert_eq!(ok.body.as_ref(), b"cross-origin bytes");
    assert_readable(&ok, APP, "200");
    assert_eq!(ok.header("access-control-allow-credentials"), None);

    let missing = get_from(&proxy, "/open/missing.txt", APP).await;
    assert_eq!(missing.status, 404, "{}", missing.describe());
    assert_readable(&missing, APP, "404 from S3");

    let refused = get_from(&proxy, "/blocked/k.txt", "https://x.example.org").await;
    assert_eq!(refused.status, 403, "{}", refused.describe());
    assert_readable(&refused, "https://x.example.org", "403 from the IP filter");

    let mut throttled = None;
    for _ in 0..5 {
        let r = get_from(&proxy, "/limited/k.txt", APP).await;
        if r.status == 429 {
            throttled = Some(r);
            break;
        }
    }
    let throttled = throttled.expect("the bucket limit never refused");
    assert_readable(&throttled, APP, "429 from the rate limit");
    assert!(throttled.header("retry-after").is_some());

    // A HEAD too.
    let head = send(proxy.main, "HEAD", "/open/k.txt", &[("origin", APP)]).await;
    assert_eq!(head.status, 200);
    assert_readable(&head, APP, "HEAD");
}

/// Refusals before a bucket is chosen (security limits, a path naming no
/// bucket) carry the top-level fields; a bucket with CORS off keeps its
/// own answers bare.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_routing_carry_the_default_fields() {
    let s3 = s3(&["k.txt"]).await;
    let off = "    cors: {allowed_origins: []}\n";
    let mut cfg = Config::new(vec![bucket(&s3, "open", ""), bucket(&s3, "off", off)]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = DEFAULT_CORS.to_owned();
    cfg.server_extra_yaml = "  security_limits: {max_uri_length: 64}\n".to_owned();
    let proxy = Proxy::start(&cfg).await;

    let nowhere = get_from(&proxy, "/nowhere/k.txt", APP).await;
    assert_eq!(nowhere.status, 404, "{}", nowhere.describe());
    assert_eq!(nowhere.json()["error"]["code"], "NoSuchRoute");
    assert_readable(&nowhere, APP, "404 for an unknown prefix");

    let long = format!("/open/{}", "a".repeat(80));
    let too_long = get_from(&proxy, &long, APP).await;
    assert_eq!(too_long.status, 414, "{}", too_long.describe());
    assert_readable(&too_long, APP, "414 from the security limits");

    let post = send(proxy.main, "POST", "/open/k.txt", &[("origin", APP)]).await;
    assert_eq!(post.status, 405, "{}", post.describe());
    assert_readable(&post, APP, "405 from the security limits");

    let other = get_from(&proxy, "/nowhere/k.txt", "https://evil.example").await;
    assert_eq!(other.status, 404);
    assert!(cors_fields(&other).is_empty(), "{}", other.describe());
    assert_eq!(other.header("vary"), Some("Origin"));

    let bare = get_from(&proxy, "/off/missing.txt", APP).await;
    assert_eq!(bare.status, 404, "{}", bare.describe());
    assert!(
        cors_fields(&bare).is_empty(),
        "CORS off: {}",
        bare.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_origins_and_requests_without_origin_get_only_vary() {
    let s3 = s3(&["k.txt"]).await;
    let proxy = start(
        vec![
            bucket(&s3, "with", ""),
            bucket(&s3, "without", "    cors: {allowed_origins: []}\n"),
        ],
        DEFAULT_CORS,
    )
    .await;
    let names = |r: &Resp| {
        let mut names: Vec<String> = r.headers.keys().map(|n| n.as_str().to_owned()).collect();
        names.sort();
        names
    };
    let plain = get(proxy.main, "/without/k.txt").await;
    assert_eq!(plain.status, 200);
    for (origin, what) in [
        (None, "no Origin"),
        (Some("https://evil.example"), "another origin"),
    ] {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        let r = send(proxy.main, "GET", "/with/k.txt", &headers).await;
        assert_eq!(r.status, 200, "{what}");
        assert!(cors_fields(&r).is_empty(), "{what}: {}", r.describe());
        assert_eq!(r.header("vary"), Some("Origin"), "{what}");
        let mut expected = names(&plain);
        expected.push("vary".into());
        expected.sort();
        assert_eq!(names(&r), expected, "{what}: only Vary is new");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_star_answers_star_and_credentials_echo_the_origin() {
    let s3 = s3(&["k.txt"]).await;
    let any = "    cors: {allowed_origins: [\"*\"], expose_headers: [etag]}\n";
    let creds =
        "    cors: {allowed_origins: [\"https://app.example.com\"], allow_credentials: true}\n";
    let proxy = start(
        vec![bucket(&s3, "any", any), bucket(&s3, "creds", creds)],
        "",
    )
    .await;

    let r = get_from(&proxy, "/any/k.txt", "https://whoever.example").await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("*"),
        "{}",
        r.describe()
    );
    assert_eq!(r.header("access-control-allow-credentials"), None);
    let p = preflight(&proxy, "/any/k.txt", "https://whoever.example", "GET", "").await;
    assert_eq!(p.status, 204);
    assert_eq!(p.header("access-control-allow-origin"), Some("*"));

    let r = get_from(&proxy, "/creds/k.txt", APP).await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(APP),
        "{}",
        r.describe()
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let p = preflight(&proxy, "/creds/k.txt", APP, "GET", "").await;
    assert_eq!(p.status, 204);
    assert_eq!(p.header("access-control-allow-origin"), Some(APP));
    assert_eq!(p.header("access-control-allow-credentials"), Some("true"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_block_replaces_the_default_and_an_empty_list_turns_cors_off() {
    let s3 = s3(&["k.txt"]).await;
    let own = "    cors: {allowed_origins: [\"https://own.example\"]}\n";
    let off = "    cors: {allowed_origins: []}\n";
    let proxy = start(
        vec![
            bucket(&s3, "default", ""),
            bucket(&s3, "own", own),
            bucket(&s3, "off", off),
        ],
        DEFAULT_CORS,
    )
    .await;

    assert_eq!(
        preflight(&proxy, "/default/k.txt", APP, "GET", "")
            .await
            .status,
        204
    );
    let own_ok = preflight(&proxy, "/own/k.txt", "https://own.example", "GET", "").await;
    assert_eq!(own_ok.status, 204, "{}", own_ok.describe());
    assert_eq!(
        own_ok.header("access-control-max-age"),
        None,
        "nothing inherited"
    );
    assert_refused(
        &preflight(&proxy, "/own/k.txt", APP, "GET", "").await,
        "the default's origin",
    );

    // Off: OPTIONS is refused as before, and answers carry nothing.
    let refused = preflight(&proxy, "/off/k.txt", APP, "GET", "").await;
    assert_method_not_allowed(&refused);
    let r = get_from(&proxy, "/off/k.txt", APP).await;
    assert_eq!(r.status, 200);
    assert!(
        cors_fields(&r).is_empty() && r.header("vary").is_none(),
        "{}",
        r.describe()
    );
    assert!(s3.requests().iter().all(|r| r.method != "OPTIONS"));
}

/// The 405 every OPTIONS got before CORS existed.
fn assert_method_not_allowed(r: &Resp) {
    assert_eq!(r.status, 405, "{}", r.describe());
    assert_eq!(r.json()["error"]["code"], "MethodNotAllowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert!(cors_fields(r).is_empty(), "{}", r.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cors_nothing_changes() {
    let s3 = s3(&["k.txt"]).await;
    let proxy = start(vec![bucket(&s3, "plain", "")], "").await;
    assert_method_not_allowed(&preflight(&proxy, "/plain/k.txt", APP, "GET", "").await);
    assert_method_not_allowed(&preflight(&proxy, "/nowhere/k.txt", APP, "GET", "").await);
    let r = get_from(&proxy, "/plain/k.txt", APP).await;
    assert_eq!(r.status, 200);
    assert!(
        cors_fields(&r).is_empty() && r.header("vary").is_none(),
        "{}",
        r.describe()
    );
    assert!(s3.requests().iter().all(|r| r.method != "OPTIONS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_answer_carries_each_origins_own_fields() {
    let s3 = s3(&["cached.txt"]).await;
    let cache = "cache:\n  enabled: true\n  memory:\n    max_item_size_mb: 1\n    \
                 max_cache_size_mb: 16\n    default_ttl_seconds: 3600\n";
    let proxy = start(
        vec![bucket(&s3, "c", "")],
        &format!("{DEFAULT_CORS}{cache}"),
    )
    .await;

    let first = get_from(&proxy, "/c/cached.txt", APP).await;
    assert_eq!(
        first.header("x-cache"),
        Some("MISS"),
        "{}",
        first.describe()
    );
    assert_readable(&first, APP, "the miss");
    let other = "https://media.example.org";
    let second = get_from(&proxy, "/c/cached.txt", other).await;
    assert_eq!(
        second.header("x-cache"),
        Some("HIT memory"),
        "{}",
        second.describe()
    );
    assert_readable(&second, other, "the hit for another origin");
    let bare = get(proxy.main, "/c/cached.txt").await;
    assert_eq!(bare.header("x-cache"), Some("HIT memory"));
    assert!(cors_fields(&bare).is_empty(), "{}", bare.describe());
    assert_eq!(bare.header("vary"), Some("Origin"));
    assert_eq!(
        s3.requests_for("cached.txt").len(),
        1,
        "one fill, then hits"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_turns_cors_on_and_a_wrong_block_changes_nothing() {
    let s3 = s3(&["k.txt"]).await;
    let yaml = |extra: &str| {
        let mut cfg = Config::new(vec![bucket(&s3, "r", "")]);
        cfg.readiness_probe_interval_seconds = 3600;
        cfg.extra_yaml = extra.to_owned();
        cfg.yaml()
    };
    let proxy = Proxy::start_yaml(&yaml(""), &[]).await;
    assert_method_not_allowed(&preflight(&proxy, "/r/k.txt", APP, "GET", "").await);

    let from = proxy.log_len();
    proxy.write_config(&yaml(DEFAULT_CORS));
    proxy.signal("HUP");
    let (at, _) = proxy.wait_for_message(from, "configuration reloaded").await;
    assert_eq!(
        preflight(&proxy, "/r/k.txt", APP, "GET", "").await.status,
        204
    );

    let wrong = "cors:\n  allowed_origins: [\"*\"]\n  allow_credentials: true\n";
    proxy.write_config(&yaml(wrong));
    proxy.signal("HUP");
    let (_, failed) = proxy
        .wait_for_message(at + 1, "configuration reload failed")
        .await;
    assert!(
        failed.to_string().contains("cors.allow_credentials"),
        "{failed}"
    );
    let still = get_from(&proxy, "/r/k.txt", APP).await;
    assert_readable(&still, APP, "after a refused reload");
}
