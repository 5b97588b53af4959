//! GET/HEAD through the real binary against a real SigV4-verifying S3 server.

mod common;

use bytes::Bytes;
use common::*;

const BKT: &str = "products-bkt";

/// One S3 server with bucket `products-bkt`, and a proxy mapping `/products` to it.
async fn setup() -> (S3Server, Proxy) {
    let s3 = S3Server::start(&[BKT]).await;
    let proxy = Proxy::start(&Config::new(vec![BucketCfg::new("products", &s3, BKT)])).await;
    (s3, proxy)
}

/// Like [`setup`] but with a single readiness probe (at start), waited for, so
/// that every later request the S3 server sees comes from a client request.
async fn setup_quiet() -> (S3Server, Proxy) {
    let s3 = S3Server::start(&[BKT]).await;
    let mut cfg = Config::new(vec![BucketCfg::new("products", &s3, BKT)]);
    cfg.readiness_probe_interval_seconds = 3600;
    let proxy = Proxy::start(&cfg).await;
    proxy.wait_ready().await;
    (s3, proxy)
}

#[track_caller]
fn assert_body(resp: &Resp, expected: &[u8], what: &str) {
    assert!(
        resp.body.as_ref() == expected,
        "{what}: body differs (got {} bytes, expected {}): {}",
        resp.body.len(),
        expected.len(),
        resp.describe()
    );
}

/// Self-test of the harness: the S3 server really rejects bad signatures, so
/// a 200 through the proxy proves the proxy signed correctly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_s3_server_verifies_signatures() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "hello.txt", b"hello");
    let path = "/products-bkt/hello.txt";

    let ok = s3
        .signed_request("GET", path, &[], Bytes::new(), ACCESS_KEY, SECRET_KEY)
        .await;
    assert_eq!(ok.status, 200, "correctly signed GET: {}", ok.describe());
    assert_eq!(ok.body.as_ref(), b"hello");

    let wrong_secret = s3
        .signed_request("GET", path, &[], Bytes::new(), ACCESS_KEY, "not-the-secret")
        .await;
    assert_eq!(
        wrong_secret.status,
        403,
        "wrong secret: {}",
        wrong_secret.describe()
    );

    let wrong_key = s3
        .signed_request(
            "GET",
            path,
            &[],
            Bytes::new(),
            "AKIAUNKNOWNKEY000000",
            SECRET_KEY,
        )
        .await;
    assert_eq!(
        wrong_key.status,
        403,
        "unknown access key: {}",
        wrong_key.describe()
    );

    let unsigned = send(s3.addr(), "GET", path, &[]).await;
    assert_eq!(unsigned.status, 403, "unsigned: {}", unsigned.describe());

    // The key encoding of the harness's signer is right for awkward keys too.
    s3.put_object(BKT, "a b+c%d#e?f&g=h~i!j'k(l)m*n", b"awkward", None, &[])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_returns_exact_bytes() {
    let (s3, proxy) = setup().await;
    let data = pattern_bytes(300_001);
    s3.put_object(
        BKT,
        "dir/data.bin",
        &data,
        Some("application/octet-stream"),
        &[],
    )
    .await;

    let r = get(proxy.main, "/products/dir/data.bin").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_body(&r, &data, "GET /products/dir/data.bin");
    assert_eq!(
        r.header("content-length"),
        Some("300001"),
        "{}",
        r.describe()
    );
    assert!(
        r.header("etag").is_some(),
        "ETag must pass through: {}",
        r.describe()
    );
    assert!(
        r.header("last-modified").is_some(),
        "Last-Modified must pass through: {}",
        r.describe()
    );
    assert!(
        r.header("x-request-id").is_some(),
        "x-request-id on every response"
    );

    // The S3 server saw a SigV4-signed, path-style GET for the object.
    let seen = s3.requests_for("/products-bkt/dir/data.bin");
    let get = seen
        .iter()
        .find(|r| r.method == "GET")
        .unwrap_or_else(|| panic!("S3 never saw the GET; it saw {:?}", s3.requests()));
    assert_eq!(get.path(), "/products-bkt/dir/data.bin");
    let auth = get.header("authorization").unwrap_or_default();
    assert!(
        auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/"))
            && auth.contains("/us-east-1/s3/aws4_request"),
        "upstream Authorization is not SigV4 for the configured key: {auth:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_returns_headers_without_body() {
    let (s3, proxy) = setup().await;
    let data = pattern_bytes(12_345);
    s3.put_object(
        BKT,
        "head.bin",
        &data,
        Some("application/x-test"),
        &[("x-amz-meta-kind", "head")],
    )
    .await;

    let g = get(proxy.main, "/products/head.bin").await;
    let h = send(proxy.main, "HEAD", "/products/head.bin", &[]).await;
    assert_eq!(h.status, 200, "{}", h.describe());
    assert!(
        h.body.is_empty(),
        "HEAD must not have a body: {}",
        h.describe()
    );
    assert_eq!(
        h.header("content-length"),
        Some("12345"),
        "{}",
        h.describe()
    );
    assert_eq!(
        h.header("content-type"),
        Some("application/x-test"),
        "{}",
        h.describe()
    );
    assert_eq!(
        h.header("x-amz-meta-kind"),
        Some("head"),
        "{}",
        h.describe()
    );
    assert!(h.header("etag").is_some(), "{}", h.describe());
    assert_eq!(
        h.header("etag"),
        g.header("etag"),
        "HEAD and GET ETags differ"
    );
    assert!(h.header("x-request-id").is_some(), "{}", h.describe());
    assert!(
        s3.requests_for("/products-bkt/head.bin")
            .iter()
            .any(|r| r.method == "HEAD"),
        "HEAD must be proxied as HEAD; S3 saw {:?}",
        s3.requests_for("head.bin")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_requests() {
    let (s3, proxy) = setup().await;
    let data = pattern_bytes(1000);
    s3.write_object(BKT, "range.bin", &data);

    let cases: [(&str, std::ops::Range<usize>, &str); 4] = [
        ("bytes=0-9", 0..10, "bytes 0-9/1000"),
        ("bytes=-10", 990..1000, "bytes 990-999/1000"),
        ("bytes=5-", 5..1000, "bytes 5-999/1000"),
        ("bytes=100-199", 100..200, "bytes 100-199/1000"),
    ];
    for (range, slice, content_range) in cases {
        let r = send(
            proxy.main,
            "GET",
            "/products/range.bin",
            &[("range", range)],
        )
        .await;
        assert_eq!(r.status, 206, "Range {range}: {}", r.describe());
        assert_body(&r, &data[slice.clone()], range);
        assert_eq!(
            r.header("content-range"),
            Some(content_range),
            "Range {range}: {}",
            r.describe()
        );
        assert_eq!(
            r.header("content-length"),
            Some(slice.len().to_string().as_str()),
            "Range {range}: {}",
            r.describe()
        );
    }

    let r = send(
        proxy.main,
        "GET",
        "/products/range.bin",
        &[("range", "bytes=5000-")],
    )
    .await;
    assert_eq!(r.status, 416, "unsatisfiable range: {}", r.describe());
    assert!(
        r.body.as_ref() != data.as_slice(),
        "416 must not carry the object"
    );
}

/// Without a cache, a multi-range request is not forwarded as one (S3 does
/// not support it, other stores refuse it): the whole object answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_range_without_the_cache_gets_the_whole_object() {
    let (s3, proxy) = setup().await;
    let data = pattern_bytes(1000);
    s3.write_object(BKT, "multi.bin", &data);
    let r = send(
        proxy.main,
        "GET",
        "/products/multi.bin",
        &[("range", "bytes=0-9,100-199")],
    )
    .await;
    assert_eq!(r.status, 200, "multi-range: {}", r.describe());
    assert_body(&r, &data, "multi-range");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_and_metadata_pass_through() {
    let (s3, proxy) = setup().await;
    s3.put_object(
        BKT,
        "img/meta.png",
        b"\x89PNG fake image",
        Some("image/png"),
        &[
            ("x-amz-meta-color", "blue"),
            ("x-amz-meta-owner", "alice"),
            ("cache-control", "max-age=60"),
            ("content-disposition", "attachment; filename=\"m.png\""),
            ("content-language", "en"),
        ],
    )
    .await;

    for method in ["GET", "HEAD"] {
        let r = send(proxy.main, method, "/products/img/meta.png", &[]).await;
        assert_eq!(r.status, 200, "{method}: {}", r.describe());
        let expect = [
            ("content-type", "image/png"),
            ("x-amz-meta-color", "blue"),
            ("x-amz-meta-owner", "alice"),
            ("cache-control", "max-age=60"),
            ("content-disposition", "attachment; filename=\"m.png\""),
            ("content-language", "en"),
        ];
        for (name, value) in expect {
            assert_eq!(
                r.header(name),
                Some(value),
                "{method}: header {name}: {}",
                r.describe()
            );
        }
        if method == "GET" {
            assert_eq!(r.body.as_ref(), b"\x89PNG fake image");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_response_headers_are_filtered_s3s() {
    let (s3, proxy) = setup().await;
    s3.put_object(BKT, "plain.txt", b"plain", Some("text/plain"), &[])
        .await;
    let r = get(proxy.main, "/products/plain.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    for name in r.headers.keys() {
        let n = name.as_str();
        if n.starts_with("x-amz-") {
            assert!(
                n.starts_with("x-amz-meta-") || n == "x-amz-version-id",
                "S3 header {n} must not reach the client: {}",
                r.describe()
            );
        }
    }
}

/// The S3 response header allowlist, checked with an upstream that sends
/// everything (s3s-fs does not send request ids, Server, etc.).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_response_headers_are_filtered_scripted() {
    let allowed: Vec<(&str, &str)> = vec![
        ("content-type", "text/csv"),
        ("etag", "\"abc123\""),
        ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ("cache-control", "max-age=5"),
        ("content-disposition", "inline; filename=\"h.csv\""),
        ("content-encoding", "gzip"),
        ("content-language", "fr"),
        ("expires", "Thu, 01 Dec 2094 16:00:00 GMT"),
        ("accept-ranges", "bytes"),
        ("x-amz-meta-alpha", "one"),
        ("x-amz-version-id", "v-42"),
    ];
    let denied: Vec<(&str, &str)> = vec![
        ("x-amz-request-id", SCRIPTED_REQUEST_ID),
        ("x-amz-id-2", SCRIPTED_HOST_ID),
        ("server", "AmazonS3"),
        ("x-amz-server-side-encryption", "AES256"),
        ("x-amz-storage-class", "STANDARD_IA"),
        ("x-amz-checksum-crc32", "AAAAAA=="),
        ("set-cookie", "upstream=leak"),
        ("x-upstream-secret", "zzz-secret"),
        ("access-control-allow-origin", "*"),
        ("x-amz-bucket-region", "us-east-1"),
    ];
    let (a2, d2) = (allowed.clone(), denied.clone());
    let up = ScriptedUpstream::start(move |req| {
        if req.path() == "/scripted-bkt/h.csv" {
            let mut reply = Reply::ok("a,b\n1,2\n");
            for (k, v) in a2.iter().chain(d2.iter()) {
                reply = reply.header(k, v);
            }
            reply
        } else {
            Reply::new(200)
        }
    })
    .await;
    let proxy = proxy_in_front_of(&up).await;

    let r = get(proxy.main, "/scripted/h.csv").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"a,b\n1,2\n");
    for (k, v) in &allowed {
        assert_eq!(
            r.header(k),
            Some(*v),
            "allowed header {k} must pass through: {}",
            r.describe()
        );
    }
    for (k, v) in &denied {
        let got = r.header(k);
        if *k == "server" {
            assert_ne!(
                got,
                Some(*v),
                "S3's Server header must not pass through: {}",
                r.describe()
            );
        } else {
            assert_eq!(
                got,
                None,
                "header {k} must not pass through: {}",
                r.describe()
            );
        }
    }
    let text = format!("{:?}", r.headers);
    for (_, v) in &denied {
        if *v != "*" && *v != "us-east-1" && *v != "STANDARD_IA" && *v != "AES256" {
            assert!(!text.contains(v), "value {v:?} leaked in headers {text}");
        }
    }
}

/// Keys that need care when encoding the upstream URL and the canonical
/// request: a wrong encoding is a 403 (SignatureDoesNotMatch) or a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_keys_return_exact_bytes() {
    let (s3, proxy) = setup().await;
    let keys: &[&str] = &[
        "with space.txt",
        "two  spaces and trailing space ",
        "unicode-日本語-ファイル.txt",
        "emoji-😀-é.bin",
        "plus+sign.txt",
        "eq=and&amp.txt",
        "tilde~bang!.txt",
        "quote'paren(star)*.txt",
        "percent%41literal.txt",
        "100%.txt",
        "hash#frag.txt",
        "question?mark.txt",
        "reserved:;,@$.txt",
        "brackets[1]{2}.txt",
        "caret^pipe|back`tick.txt",
        "double\"quote<lt>gt.txt",
        "nested/dir/with space/file.txt",
        "-leading-dash_under.score",
    ];
    let mut failures = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let body = format!("object #{i} for key {key:?}").into_bytes();
        s3.put_object(BKT, key, &body, Some("text/plain"), &[])
            .await;
        let target = format!("/products/{}", encode_key(key));
        let r = get(proxy.main, &target).await;
        if r.status != 200 || r.body.as_ref() != body.as_slice() {
            failures.push(format!("key {key:?} via {target}: {}", r.describe()));
        }
    }

    // Characters that are legal unencoded in a path, sent raw by the client.
    let raw: &[(&str, &str)] = &[
        ("/products/plus+sign.txt", "plus+sign.txt"),
        ("/products/eq=and&amp.txt", "eq=and&amp.txt"),
        ("/products/tilde~bang!.txt", "tilde~bang!.txt"),
        ("/products/quote'paren(star)*.txt", "quote'paren(star)*.txt"),
        ("/products/reserved:;,@$.txt", "reserved:;,@$.txt"),
    ];
    for (target, key) in raw {
        let i = keys.iter().position(|k| k == key).unwrap();
        let body = format!("object #{i} for key {key:?}").into_bytes();
        let r = get(proxy.main, target).await;
        if r.status != 200 || r.body.as_ref() != body.as_slice() {
            failures.push(format!("raw target {target}: {}", r.describe()));
        }
    }

    // ~200 characters (written as a file: s3s-fs cannot PUT keys this long
    // because it derives a longer metadata file name from the key).
    let long_key = format!(
        "long/{}",
        "abcdefghijklmnopqrstuvwxyz0123456789-_.~".repeat(5)
    );
    assert!(long_key.len() >= 200, "{}", long_key.len());
    s3.write_object(BKT, &long_key, b"long key body");
    let r = get(proxy.main, &format!("/products/{}", encode_key(&long_key))).await;
    if r.status != 200 || r.body.as_ref() != b"long key body" {
        failures.push(format!(
            "long key ({} chars): {}",
            long_key.len(),
            r.describe()
        ));
    }

    assert!(
        failures.is_empty(),
        "{} key(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_slashes_collapse() {
    let (s3, proxy) = setup().await;
    s3.write_object(BKT, "top.txt", b"top");
    s3.write_object(BKT, "dir/nested.txt", b"nested");
    for (target, body) in [
        ("/products//top.txt", &b"top"[..]),
        ("/products///top.txt", b"top"),
        ("/products/dir//nested.txt", b"nested"),
        ("/products//dir///nested.txt", b"nested"),
    ] {
        let r = get(proxy.main, target).await;
        assert_eq!(r.status, 200, "{target}: {}", r.describe());
        assert_eq!(r.body.as_ref(), body, "{target}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmapped_paths_are_404_no_such_route() {
    let (s3, proxy) = setup().await;
    s3.write_object(BKT, "a.txt", b"a");
    for target in [
        "/nope/a.txt",
        "/",
        "/productsX/a.txt",
        "/product/a.txt",
        "/PRODUCTS/a.txt",
    ] {
        let r = get(proxy.main, target).await;
        let err = assert_error(&r, 404, Some("NoSuchRoute"));
        let id = err["request_id"].as_str().unwrap();
        assert!(!id.is_empty(), "{target}: empty request_id");
    }
    assert!(
        s3.requests_for("a.txt").is_empty(),
        "unmapped paths must not reach S3: {:?}",
        s3.requests_for("a.txt")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_key_is_404() {
    let (s3, proxy) = setup().await;
    s3.write_object(BKT, "a.txt", b"a");
    for target in ["/products/", "/products"] {
        let r = get(proxy.main, target).await;
        assert_error(&r, 404, None);
        assert!(
            !r.text().contains("a.txt"),
            "{target} must not list: {}",
            r.describe()
        );
        assert!(
            !r.text().contains("ListBucketResult"),
            "{target} must not list: {}",
            r.describe()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_object_is_404_no_such_key() {
    let (s3, proxy) = setup().await;
    let r = get(proxy.main, "/products/does/not/exist.txt").await;
    assert_error(&r, 404, Some("NoSuchKey"));
    let text = r.text();
    assert!(
        !text.contains(BKT),
        "error body leaks the S3 bucket: {text}"
    );
    assert!(
        !text.contains(&s3.addr().to_string()),
        "error body leaks the endpoint: {text}"
    );
    assert!(
        !text.contains('<'),
        "error body must be JSON, not S3 XML: {text}"
    );

    let h = send(proxy.main, "HEAD", "/products/does/not/exist.txt", &[]).await;
    assert_eq!(h.status, 404, "HEAD of a missing object: {}", h.describe());
    assert!(h.body.is_empty(), "HEAD has no body: {}", h.describe());
    assert!(h.header("x-request-id").is_some(), "{}", h.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_are_405_with_allow() {
    let (s3, proxy) = setup().await;
    s3.write_object(BKT, "file.txt", b"original");
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let r = send_with_body(
            proxy.main,
            method,
            "/products/file.txt",
            &[("content-type", "text/plain")],
            Bytes::from_static(b"overwritten"),
        )
        .await;
        assert_error(&r, 405, None);
        assert_eq!(
            r.header("allow"),
            Some("GET, HEAD"),
            "{method}: {}",
            r.describe()
        );
    }
    let seen = s3.requests_for("file.txt");
    assert!(
        seen.iter().all(|r| r.method == "GET" || r.method == "HEAD"),
        "only GET/HEAD may reach S3: {seen:?}"
    );
    assert_eq!(
        std::fs::read(s3.object_path(BKT, "file.txt")).unwrap(),
        b"original"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_is_400_invalid_path() {
    let (s3, proxy) = setup().await;
    s3.write_object(BKT, "file.txt", b"file");
    s3.create_bucket("other-bkt");
    s3.write_object("other-bkt", "secret.txt", b"SECRET");

    let targets: &[&str] = &[
        "/products/../other-bkt/secret.txt",
        "/products/a/../../other-bkt/secret.txt",
        "/products/..",
        "/products/../",
        "/products/./file.txt",
        "/products/a/./file.txt",
        "/products/.",
        "/products/%2e%2e/other-bkt/secret.txt",
        "/products/%2E%2E/other-bkt/secret.txt",
        "/products/.%2e/other-bkt/secret.txt",
        "/products/%2e./other-bkt/secret.txt",
        "/products/%2e/file.txt",
        "/products/%252e%252e/other-bkt/secret.txt",
        "/products/%252E%252E/other-bkt/secret.txt",
        "/products/a%2f..%2f..%2fother-bkt%2fsecret.txt",
        "/products/a%5c..%5csecret.txt",
        "/products/a%5C..%5Csecret.txt",
        "/products/file.txt%00",
        "/products/file%00.txt",
        "/products/%FF.txt",
        "/products/%C0%AE%C0%AE/secret.txt",
    ];
    let mut failures = Vec::new();
    for target in targets {
        let r = raw_get(proxy.main, target.as_bytes()).await;
        let code = r
            .json()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
        if r.status != 400 || code.as_deref() != Some("InvalidPath") {
            failures.push(format!("{target}: status {} body {:?}", r.status, r.text()));
        }
        if code.is_some() && r.header("x-request-id").is_none() {
            failures.push(format!("{target}: no x-request-id header"));
        }
        if r.text().contains("SECRET") {
            failures.push(format!("{target}: LEAKED the other bucket's object"));
        }
    }
    // A raw backslash is not a valid request-target character: the HTTP layer
    // may reject it before the router, so only the status is required.
    let r = raw_get(proxy.main, b"/products/a\\..\\secret.txt").await;
    if r.status != 400 {
        failures.push(format!(
            "raw backslash: status {} body {:?}",
            r.status,
            r.text()
        ));
    }
    assert!(
        failures.is_empty(),
        "{} traversal target(s) not rejected:\n{}",
        failures.len(),
        failures.join("\n")
    );

    let leaked: Vec<_> = s3
        .requests()
        .into_iter()
        .filter(|r| r.uri.contains("secret") || r.uri.contains("..") || r.uri.contains("other-bkt"))
        .collect();
    assert!(
        leaked.is_empty(),
        "traversal requests reached S3: {leaked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disallowed_query_params_never_reach_s3() {
    let (s3, proxy) = setup().await;
    let data = pattern_bytes(5000);
    s3.write_object(BKT, "file.txt", &data);
    let queries = [
        "acl",
        "tagging",
        "list-type=2",
        "uploads",
        "torrent",
        "delete",
        "versions",
        "retention",
        "legal-hold",
        "attributes",
        "uploadId=abc",
        "x-id=PutObject",
        "foo=bar",
        "acl&tagging&foo=bar",
    ];
    for q in queries {
        let target = format!("/products/file.txt?{q}");
        let r = get(proxy.main, &target).await;
        assert_eq!(r.status, 200, "{target}: {}", r.describe());
        assert_body(&r, &data, &target);
    }
    let seen = s3.requests_for("/products-bkt/file.txt");
    assert!(!seen.is_empty(), "S3 saw nothing");
    for r in &seen {
        for name in r.query_names() {
            assert!(
                name == "versionId" || name == "partNumber" || name.starts_with("response-"),
                "query parameter {name:?} reached S3: {}",
                r.uri
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_queries_on_bucket_root_never_list() {
    let (s3, proxy) = setup_quiet().await;
    s3.write_object(BKT, "listed-secret.txt", b"x");
    let before = s3.request_count();
    for target in [
        "/products/?list-type=2",
        "/products?list-type=2",
        "/products/?list-type=2&prefix=",
        "/products/?versions",
        "/products/?uploads",
    ] {
        let r = get(proxy.main, target).await;
        assert_eq!(r.status, 404, "{target}: {}", r.describe());
        assert!(
            !r.text().contains("listed-secret"),
            "{target} listed the bucket: {}",
            r.describe()
        );
        assert!(
            !r.text().contains("ListBucketResult"),
            "{target} listed the bucket: {}",
            r.describe()
        );
    }
    let after: Vec<_> = s3.requests().into_iter().skip(before).collect();
    let listing: Vec<_> = after
        .iter()
        .filter(|r| {
            r.method == "GET" && (r.path() == "/products-bkt" || r.path() == "/products-bkt/")
        })
        .collect();
    assert!(
        listing.is_empty(),
        "bucket-level GETs reached S3: {listing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_headers_never_reach_s3() {
    let (s3, proxy) = setup().await;
    let data = pattern_bytes(100);
    s3.write_object(BKT, "file.txt", &data);
    let r = send(
        proxy.main,
        "GET",
        "/products/file.txt",
        &[
            ("authorization", "Bearer sometoken123"),
            ("cookie", "session=cookievalue987"),
            ("x-custom", "custom-value-555"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-amz-meta-injected", "injected-meta"),
            ("x-amz-security-token", "injected-token"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD-INJECTED"),
            ("user-agent", "evil-agent/1.0"),
            ("range", "bytes=0-3"),
        ],
    )
    .await;
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.body.as_ref(), &data[..4]);

    let seen = s3.requests_for("/products-bkt/file.txt");
    assert_eq!(
        seen.len(),
        1,
        "exactly one upstream request expected: {seen:?}"
    );
    let up = &seen[0];
    let auth = up.header("authorization").unwrap_or_default();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 "),
        "Authorization upstream must be the proxy's SigV4: {auth:?}"
    );
    assert_eq!(
        up.header("range"),
        Some("bytes=0-3"),
        "Range must be forwarded"
    );
    assert_eq!(
        up.header("host"),
        Some(s3.addr().to_string().as_str()),
        "Host must be the endpoint's"
    );
    for name in [
        "cookie",
        "x-custom",
        "x-forwarded-for",
        "x-amz-meta-injected",
        "x-amz-security-token",
    ] {
        assert!(
            up.header(name).is_none(),
            "client header {name} reached S3: {:?}",
            up.headers
        );
    }
    let all = format!("{:?}", up.headers);
    for needle in [
        "sometoken123",
        "cookievalue987",
        "custom-value-555",
        "203.0.113.9",
        "injected",
        "INJECTED",
        "evil-agent",
    ] {
        assert!(
            !all.contains(needle),
            "client value {needle:?} reached S3: {all}"
        );
    }
}

/// Header and query allowlists, observed on an upstream that accepts anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlisted_headers_and_query_params_are_forwarded() {
    let up = ScriptedUpstream::start(|req| {
        if req.path() == "/scripted-bkt/obj.txt" {
            Reply::ok("scripted body").header("content-type", "text/plain")
        } else {
            Reply::new(200)
        }
    })
    .await;
    let proxy = proxy_in_front_of(&up).await;

    let forwarded = [
        ("range", "bytes=0-4"),
        ("if-match", "\"etag-m\""),
        ("if-none-match", "\"etag-n\""),
        ("if-modified-since", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ("if-unmodified-since", "Thu, 22 Oct 2015 07:28:00 GMT"),
        ("if-range", "\"etag-r\""),
    ];
    let mut headers = forwarded.to_vec();
    headers.extend([
        ("cookie", "c=1"),
        ("authorization", "Basic dXNlcjpwYXNz"),
        ("x-custom", "custom"),
        ("accept-encoding", "gzip"),
        ("x-amz-meta-foo", "bar"),
    ]);
    let target = "/scripted/obj.txt?versionId=v123&partNumber=2&response-content-type=text%2Fcsv\
                  &response-cache-control=no-cache&acl&tagging&list-type=2&foo=bar&X-Amz-Credential=abc";
    let r = send(proxy.main, "GET", target, &headers).await;
    assert_eq!(r.status, 200, "{}", r.describe());

    let seen = up.requests_for("/scripted-bkt/obj.txt");
    assert_eq!(seen.len(), 1, "one upstream request expected: {seen:?}");
    let s = &seen[0];
    for (k, v) in forwarded {
        assert_eq!(
            s.header(k),
            Some(v),
            "header {k} must be forwarded unchanged: {:?}",
            s.headers
        );
    }
    for k in ["cookie", "x-custom", "accept-encoding", "x-amz-meta-foo"] {
        assert!(
            s.header(k).is_none(),
            "header {k} must not be forwarded: {:?}",
            s.headers
        );
    }
    assert!(
        s.header("authorization")
            .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 ")),
        "upstream Authorization must be SigV4: {:?}",
        s.headers
    );
    let mut names = s.query_names();
    names.sort();
    assert_eq!(
        names,
        vec![
            "partNumber",
            "response-cache-control",
            "response-content-type",
            "versionId"
        ],
        "forwarded query: {}",
        s.target
    );
    assert!(s.target.contains("versionId=v123"), "{}", s.target);
    assert!(s.target.contains("partNumber=2"), "{}", s.target);
    assert!(
        s.target.contains("response-content-type=text%2Fcsv")
            || s.target.contains("response-content-type=text/csv"),
        "{}",
        s.target
    );
}

/// `response-content-type` reaches the real S3 server and is covered by the
/// signature (a 403 otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_content_type_override_is_forwarded() {
    let (s3, proxy) = setup().await;
    let data = pattern_bytes(777);
    s3.put_object(BKT, "doc.bin", &data, Some("application/octet-stream"), &[])
        .await;
    let r = get(
        proxy.main,
        "/products/doc.bin?response-content-type=text/plain&acl",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_body(&r, &data, "response-content-type");
    let seen = s3.requests_for("/products-bkt/doc.bin");
    assert!(
        seen.iter().any(|r| r
            .query()
            .is_some_and(|q| q.contains("response-content-type=text"))),
        "S3 never saw response-content-type: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|r| !r.query_names().iter().any(|n| n == "acl")),
        "acl reached S3: {seen:?}"
    );

    // Values that need encoding in the canonical query string (a wrong
    // encoding is a 403 from the S3 server).
    for target in [
        "/products/doc.bin?response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22",
        "/products/doc.bin?response-content-type=text/plain;charset=utf-8&response-cache-control=no-cache",
        "/products/doc.bin?response-content-language=fr-CA&response-expires=Thu,%2001%20Dec%202094%2016:00:00%20GMT",
        "/products/doc.bin?response-content-type=a%2Bb%20c~d*e",
    ] {
        let r = get(proxy.main, target).await;
        assert_eq!(r.status, 200, "{target}: {}", r.describe());
        assert_body(&r, &data, target);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_is_kept_or_replaced() {
    let (s3, proxy) = setup().await;
    s3.write_object(BKT, "file.txt", b"x");

    let r = send(
        proxy.main,
        "GET",
        "/products/file.txt",
        &[("x-request-id", "client-id-123")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("x-request-id"), Some("client-id-123"));

    let max = "a".repeat(128);
    let r = send(
        proxy.main,
        "GET",
        "/products/file.txt",
        &[("x-request-id", &max)],
    )
    .await;
    assert_eq!(
        r.header("x-request-id"),
        Some(max.as_str()),
        "128 visible ASCII chars are kept"
    );

    let visible = "!#$%&'*+-.^_`|~:/=?@[]{}()<>,;\"\\0Az";
    let r = send(
        proxy.main,
        "GET",
        "/products/file.txt",
        &[("x-request-id", visible)],
    )
    .await;
    assert_eq!(
        r.header("x-request-id"),
        Some(visible),
        "visible ASCII punctuation is kept"
    );

    let too_long = "b".repeat(129);
    let with_space = "has space";
    let with_tab = "has\ttab";
    for bad in [too_long.as_str(), with_space, with_tab] {
        let r = send(
            proxy.main,
            "GET",
            "/products/file.txt",
            &[("x-request-id", bad)],
        )
        .await;
        let id = r.header("x-request-id").unwrap_or_default();
        assert!(
            is_uuid_v4(id),
            "x-request-id {bad:?} must be replaced by a UUID v4, got {id:?}"
        );
    }

    let r = get(proxy.main, "/products/file.txt").await;
    let id = r.header("x-request-id").unwrap_or_default().to_owned();
    assert!(
        is_uuid_v4(&id),
        "generated x-request-id must be a UUID v4, got {id:?}"
    );
    let r2 = get(proxy.main, "/products/file.txt").await;
    assert_ne!(
        r2.header("x-request-id"),
        Some(id.as_str()),
        "generated ids must differ"
    );

    // Errors carry the client's id in the header and the body.
    let r = send(
        proxy.main,
        "GET",
        "/nowhere",
        &[("x-request-id", "err-id-7")],
    )
    .await;
    let err = assert_error(&r, 404, Some("NoSuchRoute"));
    assert_eq!(err["request_id"], "err-id-7");
}

/// The proxy with one bucket, `/scripted` → `scripted-bkt` on the scripted upstream.
async fn proxy_in_front_of(up: &ScriptedUpstream) -> Proxy {
    Proxy::start(&Config::new(vec![BucketCfg::at(
        "scripted",
        &up.endpoint(),
        "scripted-bkt",
        ACCESS_KEY,
        SECRET_KEY,
    )]))
    .await
}
