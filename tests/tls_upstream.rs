//! HTTPS endpoints signed by a private CA (`ca_cert_path`).

mod common;

use common::*;

const BKT: &str = "tls-bkt";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_endpoint_with_private_ca() {
    let s3 = S3Server::start(&[BKT]).await;
    let tls = TlsFront::start(&s3).await;
    let data = pattern_bytes(200_000);
    s3.put_object(
        BKT,
        "secure/data.bin",
        &data,
        Some("application/octet-stream"),
        &[],
    )
    .await;

    let mut by_ip = BucketCfg::at("byip", &tls.endpoint(), BKT, &s3.access_key, &s3.secret_key);
    by_ip.ca_cert_path = Some(tls.ca_cert_path().to_owned());
    let mut by_name = BucketCfg::at(
        "byname",
        &tls.endpoint_localhost(),
        BKT,
        &s3.access_key,
        &s3.secret_key,
    );
    by_name.ca_cert_path = Some(tls.ca_cert_path().to_owned());
    // The same endpoint without the CA: the public roots do not trust it.
    let untrusted = BucketCfg::at(
        "untrusted",
        &tls.endpoint(),
        BKT,
        &s3.access_key,
        &s3.secret_key,
    );
    // Trusting a different CA is not enough either.
    let other_pki = generate_pki();
    let other_dir = tempfile::tempdir().unwrap();
    let other_ca = other_dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, other_pki.ca_pem).unwrap();
    let mut wrong_ca = BucketCfg::at(
        "wrongca",
        &tls.endpoint(),
        BKT,
        &s3.access_key,
        &s3.secret_key,
    );
    wrong_ca.ca_cert_path = Some(other_ca);

    let proxy = Proxy::start(&Config::new(vec![by_ip, by_name, untrusted, wrong_ca])).await;

    for prefix in ["byip", "byname"] {
        let r = get(proxy.main, &format!("/{prefix}/secure/data.bin")).await;
        assert_eq!(r.status, 200, "{prefix}: {}", r.describe());
        assert!(
            r.body.as_ref() == data.as_slice(),
            "{prefix}: body differs ({} bytes)",
            r.body.len()
        );
    }
    let before = s3.requests_for("data.bin").len();
    assert!(before >= 2, "the GETs must have reached S3 over TLS");

    for prefix in ["untrusted", "wrongca"] {
        let r = get(proxy.main, &format!("/{prefix}/secure/data.bin")).await;
        let err = assert_error(&r, 502, None);
        let text = err.to_string();
        assert!(
            !text.contains(&tls.addr().port().to_string()),
            "{prefix}: error leaks the endpoint: {text}"
        );
        assert!(
            !text.contains(BKT),
            "{prefix}: error leaks the bucket: {text}"
        );
    }
    assert_eq!(
        s3.requests_for("data.bin").len(),
        before,
        "an untrusted TLS endpoint must not receive the request"
    );
}
