//! S3-style errors for S3 SDK clients, against the real binary and s3s-fs:
//! boto3 (pinned, from PyPI, in the venv `scripts/test` makes) sees `NoSuchKey`, `InvalidRange` and
//! `PreconditionFailed` as it would from S3, while a plain client keeps the
//! JSON body; a bucket's `errors` setting fixes the format either way.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const BKT: &str = "sdk-bucket";
const KEY: &str = "dir/hello.txt";
const BODY: &[u8] = b"hello from s3s-fs through the proxy, byte for byte\n";
/// What a SigV4-signing SDK sends (the proxy does not verify it).
const SIGV4: &str = "AWS4-HMAC-SHA256 Credential=AKIDUMMY/20260101/us-east-1/s3/aws4_request, \
                     SignedHeaders=host;x-amz-date, Signature=00";

fn cache_yaml() -> &'static str {
    "cache:\n  enabled: true\n  memory:\n    max_item_size_mb: 1\n    max_cache_size_mb: 16\n    \
     default_ttl_seconds: 3600\n"
}

/// A proxy with bucket `site` (auto), `xml` (`errors: s3_xml`), `json`
/// (`errors: json`) and `private` (JWT) over one s3s-fs bucket, cached.
async fn setup() -> (S3Server, Proxy) {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, KEY, BODY);
    let site = BucketCfg::new("site", &s3, BKT);
    let mut xml = BucketCfg::new("xml", &s3, BKT);
    xml.extra_yaml = "    errors: s3_xml\n".to_owned();
    let mut json = BucketCfg::new("json", &s3, BKT);
    json.extra_yaml = "    errors: json\n".to_owned();
    let mut private = BucketCfg::new("private", &s3, BKT);
    private.extra_yaml = format!(
        "    auth:\n      enabled: true\n      jwt:\n        algorithm: HS256\n        secret: {}\n",
        q("a-secret-of-at-least-thirty-two-bytes!!")
    );
    let mut cfg = Config::new(vec![site, xml, json, private]);
    cfg.extra_yaml = cache_yaml().to_owned();
    (s3, Proxy::start(&cfg).await)
}

/// The text of element `name` in an XML error document.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

fn assert_xml(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.describe());
    assert_eq!(
        r.header("content-type"),
        Some("application/xml"),
        "{}",
        r.describe()
    );
    let text = r.text();
    assert!(text.starts_with("<?xml"), "{text}");
    assert_eq!(element(&text, "Code"), Some(code), "{text}");
    assert!(
        element(&text, "Message").is_some_and(|m| !m.is_empty()),
        "{text}"
    );
    assert_eq!(
        element(&text, "RequestId"),
        r.header("x-request-id"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_clients_get_s3_xml_and_everyone_else_json() {
    let (_s3, proxy) = setup().await;
    let missing = "/site/no/such.txt";

    let r = get(proxy.main, missing).await;
    assert_eq!(r.status, 404, "{}", r.describe());
    assert_eq!(r.json()["error"]["code"], "NoSuchKey");

    for header in [
        ("authorization", SIGV4),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ("accept", "application/xml"),
    ] {
        let r = send(proxy.main, "GET", missing, &[header]).await;
        assert_xml(&r, 404, "NoSuchKey");
        assert_eq!(element(&r.text(), "Resource"), Some(missing));
    }
    // A browser's Accept mentions XML too, after HTML: it keeps JSON.
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let r = send(proxy.main, "GET", missing, &[("accept", browser)]).await;
    assert_eq!(r.json()["error"]["code"], "NoSuchKey");

    // Before routing (no bucket at the prefix) and outside GET/HEAD too.
    let r = send(proxy.main, "GET", "/nowhere/k", &[("authorization", SIGV4)]).await;
    assert_xml(&r, 404, "NoSuchBucket");
    let r = send(proxy.main, "PUT", "/site/k", &[("authorization", SIGV4)]).await;
    assert_xml(&r, 405, "MethodNotAllowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));

    // The Authorization header is not the proxy's business on a public
    // bucket: the object is served.
    let r = send(
        proxy.main,
        "GET",
        &format!("/site/{KEY}"),
        &[("authorization", SIGV4)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), BODY);
    // On a private one the JWT check refuses it: the SDK reads AccessDenied.
    let target = format!("/private/{KEY}");
    let r = send(proxy.main, "GET", &target, &[("authorization", SIGV4)]).await;
    assert_xml(&r, 401, "AccessDenied");
    let r = get(proxy.main, &target).await;
    assert_eq!(r.json()["error"]["code"], "Unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_can_fix_the_format() {
    let (_s3, proxy) = setup().await;
    let r = get(proxy.main, "/xml/no/such.txt").await;
    assert_xml(&r, 404, "NoSuchKey");
    let r = send(
        proxy.main,
        "GET",
        &format!("/xml/{KEY}"),
        &[("range", "bytes=1000-")],
    )
    .await;
    assert_xml(&r, 416, "InvalidRange");
    let r = send(
        proxy.main,
        "GET",
        "/json/no/such.txt",
        &[("authorization", SIGV4)],
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.describe());
    assert_eq!(r.json()["error"]["code"], "NoSuchKey");
}

/// The Python that runs the boto3 script: `YATAGARASU_BOTO3_PYTHON`, set by
/// `scripts/test` to its venv with a pinned boto3, or `python3`.
fn boto3_python() -> String {
    std::env::var("YATAGARASU_BOTO3_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Whether that Python can import boto3. When it cannot, the test fails in
/// CI or when `scripts/test` named the Python (it installs boto3), and is
/// skipped with a note elsewhere (a plain `cargo test`).
fn boto3_available() -> bool {
    let found = Command::new(boto3_python())
        .args(["-c", "import boto3"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let named = std::env::var_os("YATAGARASU_BOTO3_PYTHON").is_some();
        assert!(
            !ci && !named,
            "{} cannot import boto3: run the tests with scripts/test, which installs it",
            boto3_python()
        );
        eprintln!("skipped: python3 cannot import boto3 (scripts/test installs it)");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_exception_handlers_fire() {
    if !boto3_available() {
        return;
    }
    let (_s3, proxy) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let expected = dir.path().join("expected");
    std::fs::write(&expected, BODY).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/boto3_errors.py");
    let endpoint = format!("http://{}", proxy.main);
    let args = [
        script.to_string_lossy().into_owned(),
        endpoint,
        "site".to_owned(),
        KEY.to_owned(),
        expected.to_string_lossy().into_owned(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new(boto3_python())
            .args(&args)
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            // The proxy under test is on loopback: never through an HTTP proxy.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .output()
    })
    .await
    .unwrap()
    .expect("run the boto3 script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "boto3 script failed ({}):\n{stdout}\n{stderr}\n{}",
        out.status,
        proxy.all_output()
    );
    for check in ["get_object", "missing key", "bad range", "failed If-Match"] {
        assert!(
            stdout.lines().any(|l| l == format!("ok {check}")),
            "{check} not passed:\n{stdout}\n{stderr}"
        );
    }
}
