//! `fallback_on_404` against the real binary and two s3s-fs servers with
//! different credentials: a key only in the old bucket is served from it
//! (signed with the old bucket's keys) and counted; a key in neither is a
//! 404; a 403 or a 416 from the primary never consults the fallback.

mod common;

use common::*;

const NEW_KEY: &str = "AKIAFALLBACKNEW00001";
const NEW_SECRET: &str = "new/Secret+0123456789abcdefghijklmnopqr";
const OLD_KEY: &str = "AKIAFALLBACKOLD00002";
const OLD_SECRET: &str = "old/Secret+0123456789abcdefghijklmnopqr";
const NEW_BKT: &str = "products-new";
const OLD_BKT: &str = "products-old";

struct World {
    new: S3Server,
    old: S3Server,
}

impl World {
    async fn start() -> World {
        let new = S3Server::start_with(NEW_KEY, NEW_SECRET, &[NEW_BKT]).await;
        let old = S3Server::start_with(OLD_KEY, OLD_SECRET, &[OLD_BKT]).await;
        new.write_object(NEW_BKT, "both.txt", b"from the new bucket");
        old.write_object(OLD_BKT, "both.txt", b"from the old bucket");
        old.write_object(OLD_BKT, "moved.txt", b"not moved yet");
        World { new, old }
    }

    /// Bucket `name` on the new server with `key`/`secret`, falling back to the old one.
    fn bucket(&self, name: &str, key: &str, secret: &str) -> BucketCfg {
        let mut bucket = BucketCfg::at(name, &self.new.endpoint(), NEW_BKT, key, secret);
        bucket.extra_yaml = format!(
            "      fallback_on_404:\n        bucket: {OLD_BKT}\n        region: {REGION}\n        \
             endpoint: {}\n        access_key: {}\n        secret_key: {}\n",
            q(&self.old.endpoint()),
            q(OLD_KEY),
            q(OLD_SECRET),
        );
        bucket
    }
}

async fn lookups(proxy: &Proxy, bucket: &str, result: &str) -> f64 {
    let (_, samples) = scrape(proxy).await;
    sample_sum(
        &samples,
        "yatagarasu_fallback_404_total",
        &[("bucket", bucket), ("result", result)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_only_in_the_old_bucket_is_served_from_it() {
    let world = World::start().await;
    let proxy = Proxy::start(&Config::new(vec![
        world.bucket("products", NEW_KEY, NEW_SECRET),
    ]))
    .await;

    let r = get(proxy.main, "/products/moved.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"not moved yet");
    let asked = world.old.requests_for(&format!("/{OLD_BKT}/moved.txt"));
    assert_eq!(asked.len(), 1, "{asked:?}");
    let authorization = asked[0].header("authorization").unwrap_or_default();
    assert!(
        authorization.contains(&format!("Credential={OLD_KEY}/")),
        "signed with the fallback's own keys: {authorization}"
    );
    assert_eq!(lookups(&proxy, "products", "hit").await, 1.0);

    let r = send(proxy.main, "HEAD", "/products/moved.txt", &[]).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("content-length"), Some("13"));
    assert_eq!(lookups(&proxy, "products", "hit").await, 2.0);

    // A key the new bucket has is served from it; the old one is not asked.
    let r = get(proxy.main, "/products/both.txt").await;
    assert_eq!(r.body.as_ref(), b"from the new bucket", "{}", r.describe());
    assert!(world.old.requests_for("both.txt").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_neither_bucket_is_404() {
    let world = World::start().await;
    let proxy = Proxy::start(&Config::new(vec![
        world.bucket("products", NEW_KEY, NEW_SECRET),
    ]))
    .await;
    let r = get(proxy.main, "/products/nowhere.txt").await;
    assert_error(&r, 404, Some("NoSuchKey"));
    assert_eq!(world.old.requests_for("nowhere.txt").len(), 1);
    assert_eq!(lookups(&proxy, "products", "miss").await, 1.0);
    assert_eq!(lookups(&proxy, "products", "hit").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_or_416_from_the_primary_does_not_consult_the_fallback() {
    let world = World::start().await;
    let proxy = Proxy::start(&Config::new(vec![
        world.bucket("locked", "AKIAWRONGKEY00000009", "wrong"),
        world.bucket("products", NEW_KEY, NEW_SECRET),
    ]))
    .await;
    let r = get(proxy.main, "/locked/moved.txt").await;
    assert_eq!(r.status, 403, "{}", r.describe());
    let r = send(
        proxy.main,
        "GET",
        "/products/both.txt",
        &[("range", "bytes=1000-2000")],
    )
    .await;
    assert_eq!(r.status, 416, "{}", r.describe());
    assert!(
        world.old.requests_for("moved.txt").is_empty()
            && world.old.requests_for("both.txt").is_empty(),
        "the fallback was asked: {:?}",
        world.old.requests()
    );
    assert_eq!(lookups(&proxy, "locked", "miss").await, 0.0);
}
