//! `server.https`: TLS on the main listener (ALPN h2 and http/1.1), the plain
//! listener beside it, certificate rotation by reload, client certificates,
//! and `check` refusing unusable certificate files. Certificates come from
//! rcgen: one CA, leaves signed by it, written into a temporary directory.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

const BKT: &str = "tls-bkt";
const EXPIRY_METRIC: &str = "yatagarasu_tls_certificate_expiry_timestamp_seconds";

/// A CA and what it signed.
struct Pki {
    ca_key: KeyPair,
    ca: rcgen::Certificate,
    dir: tempfile::TempDir,
}

/// A leaf certificate: its PEM files' contents and DER.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "yatagarasu test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        let pki = Pki {
            ca_key,
            ca,
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(pki.path("ca.pem"), pki.ca.pem()).unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A leaf for `localhost`/127.0.0.1 named `cn`, valid until `until`'s year.
    fn leaf(&self, cn: &str, until: i32, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(until, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    fn server_leaf(&self, cn: &str, until: i32) -> Leaf {
        self.leaf(cn, until, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// Writes `leaf` as the server's cert.pem and key.pem.
    fn install(&self, leaf: &Leaf) {
        write_atomically(&self.path("cert.pem"), &leaf.cert_pem);
        write_atomically(&self.path("key.pem"), &leaf.key_pem);
    }

    /// `server.https` (inside `server:`) with these files, and `extra` keys.
    fn https_yaml(&self, extra: &str) -> String {
        format!(
            "  https:\n    enabled: true\n    cert_path: {:?}\n    key_path: {:?}\n{extra}",
            self.path("cert.pem"),
            self.path("key.pem"),
        )
    }

    /// A client trusting this CA, offering `alpn`, with `identity` if any.
    fn client(&self, alpn: &[&[u8]], identity: Option<&Leaf>) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca.der().to_vec()))
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some(leaf) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(leaf.der.clone())],
                    PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
                )
                .unwrap(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

use rustls::pki_types::pem::PemObject;

fn write_atomically(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(addr: SocketAddr, connector: &tokio_rustls::TlsConnector) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await
}

/// The negotiated ALPN protocol and the server's leaf certificate.
fn session(tls: &Tls) -> (Option<Vec<u8>>, Vec<u8>) {
    let connection = tls.get_ref().1;
    let leaf = connection.peer_certificates().unwrap()[0].to_vec();
    (connection.alpn_protocol().map(<[u8]>::to_vec), leaf)
}

/// A request sender over `tls`, HTTP/2 or HTTP/1.1 as ALPN chose.
enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    async fn over(tls: Tls) -> Sender {
        Self::try_over(tls).await.unwrap()
    }

    async fn try_over(tls: Tls) -> Result<Sender, String> {
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        let fail = |e: hyper::Error| e.to_string();
        Ok(if h2 {
            let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(fail)?;
            tokio::spawn(conn);
            Sender::H2(sender)
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(fail)?;
            tokio::spawn(conn);
            Sender::H1(sender)
        })
    }

    async fn get(&mut self, path: &str) -> Result<http::Response<hyper::body::Incoming>, String> {
        let request = http::Request::get(format!("https://localhost{path}"))
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = match self {
            Sender::H1(s) => {
                let (mut parts, body) = request.into_parts();
                parts.uri = path.parse().unwrap();
                s.send_request(http::Request::from_parts(parts, body)).await
            }
            Sender::H2(s) => s.send_request(request).await,
        };
        response.map_err(|e| e.to_string())
    }
}

/// Status and whole body of `GET path` over a new TLS connection.
async fn tls_get(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
    path: &str,
) -> Result<(u16, Bytes), String> {
    let tls = connect(addr, connector).await.map_err(|e| e.to_string())?;
    let response = Sender::try_over(tls).await?.get(path).await?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, body.to_bytes()))
}

fn object(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

async fn start(pki: &Pki, https_extra: &str) -> (S3Server, Proxy) {
    let s3 = S3Server::start(&[BKT]).await;
    let mut config = Config::new(vec![BucketCfg::new("files", &s3, BKT)]);
    config.server_extra_yaml = pki.https_yaml(https_extra);
    let proxy = Proxy::start(&config).await;
    (s3, proxy)
}

/// The gauge's value in a scrape of `/metrics`.
async fn expiry_gauge(proxy: &Proxy) -> Option<f64> {
    let text = get(proxy.metrics, "/metrics").await.body;
    let text = String::from_utf8_lossy(&text).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{EXPIRY_METRIC} ")))
        .map(|v| v.trim().parse().unwrap())
}

/// 2035-01-01T00:00:00Z and 2036-01-01T00:00:00Z.
const END_2035: f64 = 2_051_222_400.0;
const END_2036: f64 = 2_082_758_400.0;

#[tokio::test]
async fn h2_and_http11_by_alpn_serve_exact_bytes() {
    let pki = Pki::new();
    let leaf = pki.server_leaf("proxy A", 2035);
    pki.install(&leaf);
    let (s3, proxy) = start(&pki, "").await;
    let data = object(300_000);
    s3.write_object(BKT, "obj.bin", &data);

    let h2 = pki.client(&[b"h2", b"http/1.1"], None);
    let tls = connect(proxy.main, &h2).await.unwrap();
    let (alpn, served) = session(&tls);
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "h2 negotiated by ALPN");
    assert_eq!(served, leaf.der, "the configured certificate is served");
    let response = Sender::over(tls).await.get("/files/obj.bin").await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, data, "exact bytes over h2");

    let h1 = pki.client(&[b"http/1.1"], None);
    let tls = connect(proxy.main, &h1).await.unwrap();
    assert_eq!(session(&tls).0.as_deref(), Some(&b"http/1.1"[..]));
    let response = Sender::over(tls).await.get("/files/obj.bin").await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_11);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, data, "exact bytes over HTTP/1.1");

    // Plain HTTP on the TLS port is not served.
    assert!(
        try_send(proxy.main, "GET", "/health", &[], Bytes::new(), DEADLINE)
            .await
            .is_err()
    );
    assert_eq!(expiry_gauge(&proxy).await, Some(END_2035));
}

/// The `plain` listener's address from the `listening` log.
fn plain_address(proxy: &Proxy) -> SocketAddr {
    proxy
        .json_logs()
        .iter()
        .filter(|e| log_message(e) == Some("listening"))
        .find(|e| log_field(e, "listener").and_then(Value::as_str) == Some("plain"))
        .and_then(|e| log_field(e, "address")?.as_str()?.parse().ok())
        .expect("a `listening` event for the plain listener")
}

#[tokio::test]
async fn plain_address_serves_the_same_stack_in_plain_http() {
    let pki = Pki::new();
    pki.install(&pki.server_leaf("proxy A", 2035));
    let (s3, proxy) = start(&pki, "    plain_address: \"127.0.0.1:0\"\n").await;
    s3.write_object(BKT, "p.txt", b"plain bytes");
    let plain = plain_address(&proxy);
    assert_ne!(plain, proxy.main);
    let r = get(plain, "/files/p.txt").await;
    assert_eq!((r.status, &r.body[..]), (200, &b"plain bytes"[..]));
    assert_eq!(get(plain, "/health").await.status, 200);
    let client = pki.client(&[b"http/1.1"], None);
    let (status, body) = tls_get(proxy.main, &client, "/files/p.txt").await.unwrap();
    assert_eq!((status, &body[..]), (200, &b"plain bytes"[..]));
}

async fn reload(proxy: &Proxy) -> Resp {
    let headers = [("x-yatagarasu-admin", "1")];
    send_with_body(proxy.admin, "POST", "/admin/reload", &headers, Bytes::new()).await
}

#[tokio::test]
async fn reload_rotates_the_certificate_without_cutting_a_download() {
    let pki = Pki::new();
    let old = pki.server_leaf("proxy A", 2035);
    pki.install(&old);
    let (s3, proxy) = start(&pki, "").await;
    let data = object(48 << 20);
    s3.write_object(BKT, "big.bin", &data);
    let client = pki.client(&[b"http/1.1"], None);

    let tls = connect(proxy.main, &client).await.unwrap();
    assert_eq!(session(&tls).1, old.der);
    let response = Sender::over(tls).await.get("/files/big.bin").await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = Vec::with_capacity(data.len());
    while received.len() < 1 << 20 {
        let frame = body.frame().await.unwrap().unwrap();
        received.extend_from_slice(&frame.into_data().unwrap());
    }

    let new = pki.server_leaf("proxy B", 2036);
    pki.install(&new);
    let r = reload(&proxy).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let tls = connect(proxy.main, &client).await.unwrap();
    assert_eq!(
        session(&tls).1,
        new.der,
        "a new connection gets the new certificate"
    );
    let r = Sender::over(tls).await.get("/health").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(expiry_gauge(&proxy).await, Some(END_2036));

    while let Some(frame) = body.frame().await {
        received.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    assert!(
        received == data,
        "the download begun before the rotation is byte-exact"
    );

    // A broken certificate: the reload fails, naming the setting; the
    // certificate in force stays.
    write_atomically(&pki.path("cert.pem"), "not a certificate\n");
    let r = reload(&proxy).await;
    let text = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, 400, "{text}");
    assert!(text.contains("server.https.cert_path"), "{text}");
    let tls = connect(proxy.main, &client).await.unwrap();
    assert_eq!(session(&tls).1, new.der, "the last good certificate stays");
    // A key that is not the certificate's: refused as well.
    write_atomically(&pki.path("cert.pem"), &old.cert_pem);
    let r = reload(&proxy).await;
    let text = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, 400, "{text}");
    assert!(text.contains("server.https.key_path"), "{text}");
    let tls = connect(proxy.main, &client).await.unwrap();
    assert_eq!(session(&tls).1, new.der);
    assert_eq!(expiry_gauge(&proxy).await, Some(END_2036));
}

#[tokio::test]
async fn client_ca_requires_a_client_certificate() {
    let pki = Pki::new();
    pki.install(&pki.server_leaf("proxy A", 2035));
    let extra = format!("    client_ca_path: {:?}\n", pki.path("ca.pem"));
    let (s3, proxy) = start(&pki, &extra).await;
    s3.write_object(BKT, "m.txt", b"mutual");

    let anonymous = pki.client(&[b"http/1.1"], None);
    let refused = tls_get(proxy.main, &anonymous, "/files/m.txt").await;
    assert!(refused.is_err(), "no client certificate: {refused:?}");

    let other_ca = Pki::new();
    let stranger = other_ca.leaf("stranger", 2035, ExtendedKeyUsagePurpose::ClientAuth);
    let refused = tls_get(
        proxy.main,
        &pki.client(&[b"h2"], Some(&stranger)),
        "/files/m.txt",
    )
    .await;
    assert!(
        refused.is_err(),
        "a certificate from another CA: {refused:?}"
    );

    let identity = pki.leaf("client", 2035, ExtendedKeyUsagePurpose::ClientAuth);
    let client = pki.client(&[b"h2"], Some(&identity));
    let (status, body) = tls_get(proxy.main, &client, "/files/m.txt").await.unwrap();
    assert_eq!((status, &body[..]), (200, &b"mutual"[..]));
}

/// `yatagarasu check` on a configuration with `https` as the server's keys.
fn check(pki: &Pki, https: &str) -> (Option<i32>, String) {
    let bucket = BucketCfg::at("files", "http://127.0.0.1:9", BKT, "AKID", "secret");
    let mut config = Config::new(vec![bucket]);
    config.server_extra_yaml = https.to_owned();
    let path = pki.path("config.yaml");
    std::fs::write(&path, config.yaml()).unwrap();
    let out = Command::new(binary())
        .args(["check", "--config"])
        .arg(&path)
        .env_remove("YATAGARASU_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Damages the installed files.
type Spoil<'a> = Box<dyn Fn() + 'a>;

#[test]
fn check_rejects_unusable_certificate_files() {
    let pki = Pki::new();
    let good = pki.server_leaf("proxy A", 2035);
    pki.install(&good);
    let https = pki.https_yaml("");
    let (code, stderr) = check(&pki, &https);
    assert_eq!(code, Some(0), "{stderr}");

    let cases: Vec<(&str, Spoil<'_>, &str)> = vec![
        (
            "server.https.cert_path: cannot read",
            Box::new(|| std::fs::remove_file(pki.path("cert.pem")).unwrap()),
            "missing",
        ),
        (
            "server.https.cert_path:",
            Box::new(|| write_atomically(&pki.path("cert.pem"), "garbage\n")),
            "not PEM",
        ),
        (
            "expired on",
            Box::new(|| {
                write_atomically(
                    &pki.path("cert.pem"),
                    &pki.server_leaf("old", 2021).cert_pem,
                )
            }),
            "expired",
        ),
        (
            "server.https.key_path: the key in",
            Box::new(|| {
                write_atomically(&pki.path("key.pem"), &pki.server_leaf("x", 2035).key_pem)
            }),
            "another key",
        ),
        (
            "server.https.key_path:",
            Box::new(|| write_atomically(&pki.path("key.pem"), &good.cert_pem)),
            "no key",
        ),
    ];
    for (expected, spoil, what) in cases {
        pki.install(&good);
        spoil();
        let (code, stderr) = check(&pki, &https);
        assert_eq!(code, Some(1), "{what}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{what}: expected {expected:?} in {stderr}"
        );
        if expected == "expired on" {
            assert!(stderr.starts_with("server.https.cert_path: "), "{stderr}");
        }
    }
    pki.install(&good);
    let (code, stderr) = check(&pki, "  https:\n    enabled: true\n");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("server.https.cert_path: is required"),
        "{stderr}"
    );
    let (code, stderr) = check(&pki, &pki.https_yaml("    min_tls_version: \"1.1\"\n"));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("server.https.min_tls_version: must be"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_silent_client_neither_blocks_the_accept_loop_nor_keeps_its_connection() {
    use tokio::io::AsyncReadExt;

    let pki = Pki::new();
    pki.install(&pki.server_leaf("proxy A", 2035));
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "s.txt", b"served");
    let mut config = Config::new(vec![BucketCfg::new("files", &s3, BKT)]);
    // The default 10 s: far longer than serving the other client takes.
    config.server_extra_yaml = pki.https_yaml("");
    let proxy = Proxy::start(&config).await;

    // Connected, never sends a ClientHello.
    let mut silent = TcpStream::connect(proxy.main).await.unwrap();
    let client = pki.client(&[b"h2"], None);
    let (status, body) = tls_get(proxy.main, &client, "/files/s.txt").await.unwrap();
    assert_eq!(
        (status, &body[..]),
        (200, &b"served"[..]),
        "served while another handshake is pending"
    );
    // Still open: had the accept loop waited for its handshake, it would
    // have been closed (timed out) before the other client was served.
    assert_eq!(
        silent.try_read(&mut [0u8; 1]).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "the silent connection is still pending"
    );
    // The pending handshake times out (header_read_timeout_seconds): the
    // server closes the connection.
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(DEADLINE, silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "closed by the server: {read:?}"
    );
}

/// A kept-alive TLS connection to `addr`, served once (so it holds a slot).
async fn served_connection(addr: SocketAddr, client: &tokio_rustls::TlsConnector) -> Sender {
    let served = async {
        let mut sender = Sender::over(connect(addr, client).await.unwrap()).await;
        let response = sender.get("/files/p.txt").await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
        sender
    };
    tokio::time::timeout(DEADLINE, served)
        .await
        .expect("a connection within the cap is served")
}

#[tokio::test]
async fn the_tls_and_plain_listeners_share_max_connections() {
    let pki = Pki::new();
    pki.install(&pki.server_leaf("proxy A", 2035));
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "p.txt", b"plain bytes");
    let mut config = Config::new(vec![BucketCfg::new("files", &s3, BKT)]);
    config.server_extra_yaml = format!(
        "  max_connections: 2\n{}",
        pki.https_yaml("    plain_address: \"127.0.0.1:0\"\n")
    );
    let proxy = Proxy::start(&config).await;
    let plain = plain_address(&proxy);

    // Both slots serve the TLS listener while the plain one is idle (an
    // idle listener holds no slot).
    let client = pki.client(&[b"http/1.1"], None);
    let first = served_connection(proxy.main, &client).await;
    let _second = served_connection(proxy.main, &client).await;

    // The cap is shared: a plain connection now waits for a slot.
    let from = proxy.log_len();
    let waiting = tokio::spawn(async move { get(plain, "/files/p.txt").await });
    proxy
        .wait_for_log(from, "the plain listener at the cap", DEADLINE, |event| {
            log_message(event)
                == Some("connection limit reached; new connections wait in the accept queue")
                && log_field(event, "listener").and_then(Value::as_str) == Some("plain")
                && log_field(event, "limit").and_then(Value::as_u64) == Some(2)
        })
        .await;
    assert!(!waiting.is_finished(), "served past the shared cap");
    // Closing a TLS connection frees a slot for it.
    drop(first);
    let r = waiting.await.unwrap();
    assert_eq!((r.status, &r.body[..]), (200, &b"plain bytes"[..]));
}
