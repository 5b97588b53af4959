//! Website hosting (`buckets[i].website`) against the real binary and
//! s3s-fs over TCP: folders and the bare prefix serve the index document,
//! a missing key the error document with status 404 (or the plain 404 when
//! the error document is missing too), `spa_fallback` the root index for
//! extensionless paths; documents are cached under their real keys, ranges
//! and authentication work as for any object, and a bucket without a
//! website is unchanged.

mod common;

use common::jwks::{claims, sign_with};
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey};

const BKT: &str = "web-bucket";
const INDEX: &[u8] = b"<html>the home page</html>\n";
const DOCS_INDEX: &[u8] = b"<html>the docs</html>\n";
const NOT_FOUND: &[u8] = b"<html>nothing here</html>\n";
const APP_JS: &[u8] = b"console.log('app');\n";
const JWT_SECRET: &str = "a-secret-of-at-least-thirty-two-bytes!!";

fn cache_yaml() -> &'static str {
    "cache:\n  enabled: true\n  memory:\n    max_item_size_mb: 1\n    max_cache_size_mb: 16\n    \
     default_ttl_seconds: 3600\n"
}

fn bucket(name: &str, s3: &S3Server, extra: &str) -> BucketCfg {
    let mut b = BucketCfg::new(name, s3, BKT);
    b.extra_yaml = extra.to_owned();
    b
}

async fn setup() -> (S3Server, Proxy) {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "index.html", INDEX);
    s3.write_object(BKT, "docs/index.html", DOCS_INDEX);
    s3.write_object(BKT, "404.html", NOT_FOUND);
    s3.write_object(BKT, "app.js", APP_JS);
    let jwt = format!(
        "    auth:\n      enabled: true\n      jwt:\n        algorithm: HS256\n        secret: {}\n",
        q(JWT_SECRET)
    );
    let mut cfg = Config::new(vec![
        bucket(
            "site",
            &s3,
            "    website:\n      index_document: index.html\n      error_document: 404.html\n",
        ),
        bucket(
            "spa",
            &s3,
            "    website: {error_document: 404.html, spa_fallback: true}\n",
        ),
        bucket(
            "noerr",
            &s3,
            "    website: {index_document: none.html, error_document: gone.html}\n",
        ),
        bucket("private", &s3, &format!("    website: {{}}\n{jwt}")),
        bucket("plain", &s3, ""),
    ]);
    cfg.extra_yaml = cache_yaml().to_owned();
    (s3, Proxy::start(&cfg).await)
}

/// GETs of `key` that reached S3.
fn s3_gets(s3: &S3Server, key: &str) -> usize {
    let path = format!("/{BKT}/{key}");
    s3.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path() == path)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_serve_the_index_document_from_the_cache() {
    let (s3, proxy) = setup().await;
    for target in ["/site", "/site/"] {
        let r = get(proxy.main, target).await;
        assert_eq!(r.status, 200, "{target}: {}", r.describe());
        assert_eq!(r.body.as_ref(), INDEX, "{target}");
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
    }
    let r = get(proxy.main, "/site/docs/").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), DOCS_INDEX);
    // Cached under the document's real key: S3 was asked once.
    assert_eq!(s3_gets(&s3, "index.html"), 1);
    let r = get(proxy.main, "/site/index.html").await;
    assert_eq!(r.body.as_ref(), INDEX);
    assert!(
        r.header("x-cache").is_some_and(|c| c.starts_with("HIT")),
        "{}",
        r.describe()
    );
    assert_eq!(s3_gets(&s3, "index.html"), 1);

    // Ranges and HEAD work as for any object.
    let r = send(proxy.main, "GET", "/site/", &[("range", "bytes=6-13")]).await;
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.body.as_ref(), &INDEX[6..14]);
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let r = send(proxy.main, "HEAD", "/site/docs/", &[]).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let length = DOCS_INDEX.len().to_string();
    assert_eq!(r.header("content-length"), Some(length.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_gets_the_error_document_with_404() {
    let (s3, proxy) = setup().await;
    for _ in 0..2 {
        let r = get(proxy.main, "/site/no/such/page.html").await;
        assert_eq!(r.status, 404, "{}", r.describe());
        assert_eq!(r.body.as_ref(), NOT_FOUND);
        assert_eq!(r.header("accept-ranges"), None);
    }
    // Fetched once, then from the cache under its own key.
    assert_eq!(s3_gets(&s3, "404.html"), 1);
    // A range or a condition was about the missing key: the document is whole.
    let r = send(
        proxy.main,
        "GET",
        "/site/missing.txt",
        &[("range", "bytes=0-3"), ("if-none-match", "\"x\"")],
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.describe());
    assert_eq!(r.body.as_ref(), NOT_FOUND);
    assert_eq!(r.header("content-range"), None);

    // The error document missing too: the plain 404, S3 XML or JSON as usual.
    let r = get(proxy.main, "/noerr/missing.txt").await;
    assert_eq!(r.status, 404, "{}", r.describe());
    assert_eq!(r.json()["error"]["code"], "NoSuchKey");
    // A bare prefix with no index document ends the same way.
    let r = get(proxy.main, "/noerr/").await;
    assert_eq!(r.status, 404, "{}", r.describe());
    assert_eq!(r.json()["error"]["code"], "NoSuchKey");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spa_fallback_serves_the_index_for_client_routes() {
    let (_s3, proxy) = setup().await;
    for route in ["/spa/users/42", "/spa/settings/", "/spa/deep/link/x"] {
        let r = get(proxy.main, route).await;
        assert_eq!(r.status, 200, "{route}: {}", r.describe());
        assert_eq!(r.body.as_ref(), INDEX, "{route}");
    }
    // Files keep their own answers; a missing file is a 404.
    let r = get(proxy.main, "/spa/app.js").await;
    assert_eq!(r.body.as_ref(), APP_JS);
    let r = get(proxy.main, "/spa/missing.png").await;
    assert_eq!(r.status, 404, "{}", r.describe());
    assert_eq!(r.body.as_ref(), NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_applies_and_buckets_without_a_website_are_unchanged() {
    let (s3, proxy) = setup().await;
    let before = s3_gets(&s3, "index.html");
    for target in ["/private", "/private/"] {
        let r = get(proxy.main, target).await;
        assert_eq!(r.status, 401, "{target}: {}", r.describe());
    }
    assert_eq!(
        s3_gets(&s3, "index.html"),
        before,
        "no token, no S3 request"
    );
    let key = EncodingKey::from_secret(JWT_SECRET.as_bytes());
    let token = sign_with(Algorithm::HS256, &key, None, &claims(serde_json::json!({})));
    let bearer = format!("Bearer {token}");
    let r = send(
        proxy.main,
        "GET",
        "/private/",
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), INDEX);
    for target in ["/plain", "/plain/"] {
        let r = get(proxy.main, target).await;
        assert_eq!(r.status, 404, "{target}: {}", r.describe());
        assert_eq!(r.json()["error"]["code"], "NoSuchKey");
    }
    let r = get(proxy.main, "/plain/no/such.html").await;
    assert_eq!(r.status, 404, "{}", r.describe());
    assert_eq!(r.json()["error"]["code"], "NoSuchKey");
}
