//! The cache reads a query exactly as S3 will: the real binary with the
//! memory cache on, a real SigV4-verifying S3 (s3s-fs) whose recorded
//! requests show what was forwarded. A request whose key or bypass decision
//! comes from another reading of the query than the forwarded one stores an
//! answer where a different request finds it (cache poisoning).

mod common;

use common::*;

const BKT: &str = "query-bkt";

/// A proxy caching bucket `pub` (memory tier) of a real S3 server.
async fn setup() -> (S3Server, Proxy) {
    let s3 = S3Server::start(&[BKT]).await;
    let mut cfg = Config::new(vec![BucketCfg::new("pub", &s3, BKT)]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = "cache:\n  enabled: true\n  memory:\n    max_item_size_mb: 1\n    \
                      max_cache_size_mb: 16\n    default_ttl_seconds: 3600\n"
        .to_owned();
    let proxy = Proxy::start(&cfg).await;
    proxy.wait_ready().await;
    (s3, proxy)
}

/// The query of each GET S3 received for `key`, in order (`""` for none).
fn forwarded_queries(s3: &S3Server, key: &str) -> Vec<String> {
    s3.requests_for(key)
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.query().unwrap_or_default().to_owned())
        .collect()
}

/// GETs `target` and returns the response after checking it is a 200.
async fn get_ok(proxy: &Proxy, target: &str) -> Resp {
    let r = get(proxy.main, target).await;
    assert_eq!(r.status, 200, "{target}: {}", r.describe());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_encoded_override_names_bypass_and_never_poison_the_plain_object() {
    let (s3, proxy) = setup().await;
    s3.write_object(BKT, "page.txt", b"plain text");

    let attack = "/pub/page.txt?response%2Dcontent-type=text/html\
                  &respons%65-content-disposition=inline%3Bfilename%3Dx.html";
    let overridden = get_ok(&proxy, attack).await;
    assert_eq!(
        forwarded_queries(&s3, "page.txt"),
        ["response-content-type=text%2Fhtml\
          &response-content-disposition=inline%3Bfilename%3Dx.html"]
    );

    // The plain object is not the overridden answer.
    let plain = get_ok(&proxy, "/pub/page.txt").await;
    assert_eq!(
        plain.header("x-cache"),
        Some("MISS"),
        "{}",
        plain.describe()
    );
    assert_ne!(plain.header("content-type"), Some("text/html"));
    assert!(plain.header("content-disposition").is_none());
    assert_eq!(
        overridden.header("x-cache"),
        Some("BYPASS"),
        "S3 was asked for overridden headers, so the answer is not the plain object's"
    );
    let again = get_ok(&proxy, "/pub/page.txt").await;
    assert_eq!(again.header("x-cache"), Some("HIT memory"));
    assert_eq!(&again.body[..], b"plain text");
    assert_eq!(forwarded_queries(&s3, "page.txt").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_version_forwarded_is_the_version_cached() {
    let (s3, proxy) = setup().await;
    s3.write_object(BKT, "v.txt", b"versioned");

    let r = get_ok(&proxy, "/pub/v.txt?version%49d=OLD&versionId=NEW").await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    assert_eq!(forwarded_queries(&s3, "v.txt"), ["versionId=OLD"]);

    // Stored under the version S3 was asked for, not under NEW.
    let r = get_ok(&proxy, "/pub/v.txt?versionId=NEW").await;
    assert_eq!(r.header("x-cache"), Some("MISS"), "{}", r.describe());
    assert_eq!(
        forwarded_queries(&s3, "v.txt"),
        ["versionId=OLD", "versionId=NEW"]
    );
    let r = get_ok(&proxy, "/pub/v.txt?versionId=OLD").await;
    assert_eq!(r.header("x-cache"), Some("HIT memory"));
    assert_eq!(forwarded_queries(&s3, "v.txt").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plus_in_a_version_id_is_a_space_and_an_escaped_plus_another_version() {
    let (s3, proxy) = setup().await;
    s3.write_object(BKT, "plus.txt", b"plus");

    let r = get_ok(&proxy, "/pub/plus.txt?versionId=Ab+Cd").await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    assert_eq!(forwarded_queries(&s3, "plus.txt"), ["versionId=Ab%20Cd"]);

    // `Ab+Cd` is another S3 version than `Ab Cd`: not a hit of the first.
    let r = get_ok(&proxy, "/pub/plus.txt?versionId=Ab%2BCd").await;
    assert_eq!(r.header("x-cache"), Some("MISS"), "{}", r.describe());
    assert_eq!(
        forwarded_queries(&s3, "plus.txt"),
        ["versionId=Ab%20Cd", "versionId=Ab%2BCd"]
    );

    // The same version however the client spells it.
    for spelling in ["Ab%20Cd", "Ab+Cd"] {
        let r = get_ok(&proxy, &format!("/pub/plus.txt?versionId={spelling}")).await;
        assert_eq!(r.header("x-cache"), Some("HIT memory"), "{spelling}");
    }
    let r = get_ok(&proxy, "/pub/plus.txt?versionId=Ab%2bCd").await;
    assert_eq!(r.header("x-cache"), Some("HIT memory"));
    assert_eq!(forwarded_queries(&s3, "plus.txt").len(), 2);
}
