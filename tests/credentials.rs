//! Per-bucket credentials against S3 servers that each accept only their own keys.

mod common;

use common::*;

const AK_A: &str = "AKIAALPHAKEY00000001";
const SK_A: &str = "alpha/Secret+Key/000000000000000000000A";
const AK_B: &str = "AKIABETAKEY000000002";
const SK_B: &str = "beta/Secret+Key/0000000000000000000000B";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bucket_uses_its_own_credentials() {
    let s3a = S3Server::start_with(AK_A, SK_A, &["alpha-bkt"]).await;
    let s3b = S3Server::start_with(AK_B, SK_B, &["beta-bkt"]).await;
    s3a.put_object("alpha-bkt", "a.txt", b"from alpha", Some("text/plain"), &[])
        .await;
    s3b.put_object("beta-bkt", "b.txt", b"from beta", Some("text/plain"), &[])
        .await;
    // Same key in both, different content: a mix-up cannot go unnoticed.
    s3a.write_object("alpha-bkt", "same.txt", b"alpha's same");
    s3b.write_object("beta-bkt", "same.txt", b"beta's same");

    let mut gamma = BucketCfg::new("gamma", &s3a, "alpha-bkt");
    gamma.secret_key = "wrong/Secret+Key/000000000000000000000X".to_owned();
    let mut delta = BucketCfg::new("delta", &s3a, "alpha-bkt");
    delta.access_key = "AKIAUNKNOWNKEY000009".to_owned();
    let proxy = Proxy::start(&Config::new(vec![
        BucketCfg::new("alpha", &s3a, "alpha-bkt"),
        BucketCfg::new("beta", &s3b, "beta-bkt"),
        gamma,
        delta,
    ]))
    .await;

    for (target, body) in [
        ("/alpha/a.txt", &b"from alpha"[..]),
        ("/beta/b.txt", b"from beta"),
        ("/alpha/same.txt", b"alpha's same"),
        ("/beta/same.txt", b"beta's same"),
    ] {
        let r = get(proxy.main, target).await;
        assert_eq!(r.status, 200, "{target}: {}", r.describe());
        assert_eq!(r.body.as_ref(), body, "{target}");
    }
    // The other bucket's objects are not visible through a prefix.
    let r = get(proxy.main, "/alpha/b.txt").await;
    assert_error(&r, 404, Some("NoSuchKey"));

    // Each server saw only its own access key.
    for (server, key) in [(&s3a, AK_A), (&s3b, AK_B)] {
        for req in server.requests_for(".txt") {
            let auth = req.header("authorization").unwrap_or_default();
            if !auth.contains("AKIAUNKNOWNKEY") {
                assert!(
                    auth.contains(&format!("Credential={key}/")),
                    "unexpected credential {auth:?}"
                );
            }
        }
    }

    // Wrong secret: S3 answers SignatureDoesNotMatch; the client sees AccessDenied.
    let r = get(proxy.main, "/gamma/a.txt").await;
    assert_error(&r, 403, Some("AccessDenied"));
    assert_no_s3_internals(&r, &s3a);

    // Unknown access key: InvalidAccessKeyId upstream, 403 for the client.
    let r = get(proxy.main, "/delta/a.txt").await;
    assert_error(&r, 403, None);
    assert_no_s3_internals(&r, &s3a);
}

#[track_caller]
fn assert_no_s3_internals(r: &Resp, s3: &S3Server) {
    let text = r.text();
    for needle in [
        "alpha-bkt",
        &s3.addr().to_string(),
        &format!(":{}", s3.addr().port()),
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "RequestId",
        "HostId",
        "<Error>",
        "StringToSign",
        "CanonicalRequest",
        AK_A,
        SK_A,
        "wrong/Secret",
    ] {
        assert!(
            !text.contains(needle),
            "error body contains {needle:?}: {text}"
        );
    }
    for h in ["x-amz-request-id", "x-amz-id-2"] {
        assert!(
            r.header(h).is_none(),
            "{h} must not reach the client: {}",
            r.describe()
        );
    }
}
