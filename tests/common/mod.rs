//! Shared harness for the integration tests.
//!
//! * [`S3Server`]: a real S3 server (s3s-fs) that verifies SigV4, in process,
//!   recording every request it receives.
//! * [`TlsFront`]: a TLS terminator with a private CA in front of an [`S3Server`].
//! * [`ScriptedUpstream`]: a raw-TCP HTTP/1.1 server with programmable replies.
//! * [`Proxy`]: the real `yatagarasu` binary as a child process, with its
//!   stdout (JSON logs) collected.
//! * HTTP client helpers ([`send`], [`get`], [`raw_request`], [`Download`]).
#![allow(dead_code)]

pub(crate) mod faulty;
pub(crate) mod policy_peers;
pub(crate) mod redis;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ServerBuilder;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// Default bound for anything a test waits for.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// Default credentials of an [`S3Server`] (distinctive, so leaks are easy to grep).
pub(crate) const ACCESS_KEY: &str = "AKIAYATAGARASUTEST01";
pub(crate) const SECRET_KEY: &str = "yAtA/gArAsu+SeCrEt0123456789abcdefXYZ42";
pub(crate) const REGION: &str = "us-east-1";

// ---------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------

/// Every byte except `A-Za-z0-9-_.~` and `/`.
const KEY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Percent-encodes an object key for a URL path (S3 style: `/` kept,
/// unreserved kept, everything else `%XX` with uppercase hex).
pub(crate) fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_SET).to_string()
}

/// Quotes a string for YAML (a JSON string is a valid YAML double-quoted scalar).
pub(crate) fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

// ---------------------------------------------------------------------------
// Deterministic data pattern
// ---------------------------------------------------------------------------

/// Period of the data pattern: a prime, so that a dropped, duplicated or
/// reordered chunk of any power-of-two size shows up as a mismatch.
pub(crate) const PATTERN_PERIOD: usize = 1_048_573;

/// One period of pseudo-random bytes.
pub(crate) fn pattern_block() -> &'static [u8] {
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    BLOCK.get_or_init(|| {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut v = Vec::with_capacity(PATTERN_PERIOD + 8);
        while v.len() < PATTERN_PERIOD {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.truncate(PATTERN_PERIOD);
        v
    })
}

/// The first `len` bytes of the pattern.
pub(crate) fn pattern_bytes(len: usize) -> Vec<u8> {
    let block = pattern_block();
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        let n = (len - v.len()).min(PATTERN_PERIOD);
        v.extend_from_slice(&block[..n]);
    }
    v
}

/// Writes the first `len` bytes of the pattern to `path`.
pub(crate) fn write_pattern_file(path: &Path, len: u64) {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let mut f = std::io::BufWriter::with_capacity(4 << 20, std::fs::File::create(path).unwrap());
    let block = pattern_block();
    let mut left = len;
    while left > 0 {
        let n = left.min(PATTERN_PERIOD as u64) as usize;
        f.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

/// Checks a stream of bytes against the pattern without buffering it.
#[derive(Debug, Default)]
pub(crate) struct PatternChecker {
    /// Bytes seen so far.
    pub(crate) pos: u64,
    /// Offset of the first byte that differs from the pattern.
    pub(crate) first_mismatch: Option<u64>,
}

impl PatternChecker {
    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        let block = pattern_block();
        while !data.is_empty() {
            let off = (self.pos % PATTERN_PERIOD as u64) as usize;
            let n = data.len().min(PATTERN_PERIOD - off);
            if self.first_mismatch.is_none() && data[..n] != block[off..off + n] {
                let i = data[..n]
                    .iter()
                    .zip(&block[off..off + n])
                    .position(|(a, b)| a != b)
                    .unwrap();
                self.first_mismatch = Some(self.pos + i as u64);
            }
            self.pos += n as u64;
            data = &data[n..];
        }
    }
}

// ---------------------------------------------------------------------------
// S3 server (s3s-fs, verifies SigV4)
// ---------------------------------------------------------------------------

/// One request as the S3 server (or the scripted upstream) received it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    /// The request target exactly as received (path and query).
    pub(crate) uri: String,
    pub(crate) headers: HeaderMap,
}

/// The path of a request target (`/p?q` → `/p`).
fn target_path(target: &str) -> &str {
    target.split_once('?').map_or(target, |(p, _)| p)
}

/// The query of a request target, if any.
fn target_query(target: &str) -> Option<&str> {
    target.split_once('?').map(|(_, q)| q)
}

/// Names of the parameters of a query (without values).
fn query_names(query: Option<&str>) -> Vec<String> {
    query
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').map_or(p, |(n, _)| n).to_owned())
                .collect()
        })
        .unwrap_or_default()
}

impl Recorded {
    pub(crate) fn path(&self) -> &str {
        target_path(&self.uri)
    }

    pub(crate) fn query(&self) -> Option<&str> {
        target_query(&self.uri)
    }

    /// Names of the query parameters (without values).
    pub(crate) fn query_names(&self) -> Vec<String> {
        query_names(self.query())
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type RequestLog = Arc<Mutex<Vec<Recorded>>>;

/// The s3s service wrapped so that every request is recorded before it is
/// handled.
#[derive(Clone)]
pub(crate) struct RecordingService {
    s3: s3s::service::S3Service,
    log: RequestLog,
}

impl hyper::service::Service<Request<Incoming>> for RecordingService {
    type Response = Response<s3s::Body>;
    type Error = s3s::HttpError;
    type Future = <s3s::service::S3Service as hyper::service::Service<Request<Incoming>>>::Future;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.log.lock().unwrap().push(Recorded {
            method: req.method().to_string(),
            uri: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().to_string(), |pq| pq.as_str().to_owned()),
            headers: req.headers().clone(),
        });
        hyper::service::Service::call(&self.s3, req)
    }
}

/// Credentials that can be granted and revoked while the server runs.
#[derive(Clone, Default)]
pub(crate) struct Keyring(Arc<Mutex<HashMap<String, String>>>);

impl Keyring {
    pub(crate) fn grant(&self, access_key: &str, secret_key: &str) {
        self.0
            .lock()
            .unwrap()
            .insert(access_key.to_owned(), secret_key.to_owned());
    }

    pub(crate) fn revoke(&self, access_key: &str) {
        self.0.lock().unwrap().remove(access_key);
    }
}

impl s3s::auth::S3Auth for Keyring {
    // The desugared form of `async fn get_secret_key(&self, &str)` under
    // `#[async_trait]`.
    fn get_secret_key<'life0, 'life1, 'async_trait>(
        &'life0 self,
        access_key: &'life1 str,
    ) -> Pin<Box<dyn Future<Output = s3s::S3Result<s3s::auth::SecretKey>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let found = self.0.lock().unwrap().get(access_key).cloned();
        Box::pin(async move {
            match found {
                Some(secret) => Ok(s3s::auth::SecretKey::from(secret)),
                None => Err(s3s::s3_error!(InvalidAccessKeyId)),
            }
        })
    }
}

/// Accepts connections until the returned task is aborted; aborting it drops
/// the listener (connects are then refused) and every connection task.
fn spawn_accept_loop<F, Fut>(listener: TcpListener, on_conn: F) -> JoinHandle<()>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let _ = stream.set_nodelay(true);
                        conns.spawn(on_conn(stream));
                    }
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    })
}

/// An s3s-fs server on 127.0.0.1:0 in a temporary directory.
pub(crate) struct S3Server {
    addr: SocketAddr,
    root: tempfile::TempDir,
    log: RequestLog,
    svc: RecordingService,
    task: Option<JoinHandle<()>>,
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
    keyring: Option<Keyring>,
}

impl S3Server {
    /// A server accepting [`ACCESS_KEY`]/[`SECRET_KEY`], with the given buckets.
    pub(crate) async fn start(buckets: &[&str]) -> S3Server {
        Self::start_with(ACCESS_KEY, SECRET_KEY, buckets).await
    }

    /// A server accepting only `access_key`/`secret_key` (`SimpleAuth::from_single`).
    pub(crate) async fn start_with(
        access_key: &str,
        secret_key: &str,
        buckets: &[&str],
    ) -> S3Server {
        let auth = s3s::auth::SimpleAuth::from_single(access_key, secret_key);
        Self::start_inner(auth, access_key, secret_key, buckets, None).await
    }

    /// A server whose credentials can be changed at run time ([`S3Server::keyring`]).
    pub(crate) async fn start_with_keyring(
        access_key: &str,
        secret_key: &str,
        buckets: &[&str],
    ) -> S3Server {
        let keyring = Keyring::default();
        keyring.grant(access_key, secret_key);
        Self::start_inner(
            keyring.clone(),
            access_key,
            secret_key,
            buckets,
            Some(keyring),
        )
        .await
    }

    async fn start_inner(
        auth: impl s3s::auth::S3Auth,
        access_key: &str,
        secret_key: &str,
        buckets: &[&str],
        keyring: Option<Keyring>,
    ) -> S3Server {
        let root = tempfile::tempdir().unwrap();
        for b in buckets {
            std::fs::create_dir_all(root.path().join(b)).unwrap();
        }
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(auth);
        let log: RequestLog = Arc::default();
        let svc = RecordingService {
            s3: builder.build(),
            log: log.clone(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = svc.clone();
        let task = spawn_accept_loop(listener, move |stream| {
            let svc = served.clone();
            async move {
                let _ = ServerBuilder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            }
        });
        S3Server {
            addr,
            root,
            log,
            svc,
            task: Some(task),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            keyring,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    pub(crate) fn keyring(&self) -> &Keyring {
        self.keyring
            .as_ref()
            .expect("server started without a keyring")
    }

    /// The recording s3 service, to serve it behind something else (TLS).
    pub(crate) fn service(&self) -> RecordingService {
        self.svc.clone()
    }

    pub(crate) fn create_bucket(&self, bucket: &str) {
        std::fs::create_dir_all(self.root().join(bucket)).unwrap();
    }

    /// Path of the file that holds `key`.
    pub(crate) fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root().join(bucket).join(key)
    }

    /// Creates a large object holding the test pattern (see [`PatternChecker`]),
    /// written off the async runtime.
    pub(crate) async fn write_pattern_object(&self, bucket: &str, key: &str, len: u64) {
        let path = self.object_path(bucket, key);
        tokio::task::spawn_blocking(move || write_pattern_file(&path, len))
            .await
            .unwrap();
    }

    /// Creates an object by writing its file (no Content-Type, no metadata).
    pub(crate) fn write_object(&self, bucket: &str, key: &str, data: &[u8]) {
        let path = self.object_path(bucket, key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }

    /// Creates an object with a real SigV4-signed PUT. `headers` may carry
    /// `x-amz-meta-*`, `cache-control`, `content-disposition`, ...
    pub(crate) async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        data: &[u8],
        content_type: Option<&str>,
        headers: &[(&str, &str)],
    ) {
        let mut all: Vec<(&str, &str)> = Vec::new();
        if let Some(ct) = content_type {
            all.push(("content-type", ct));
        }
        all.extend_from_slice(headers);
        let path = format!("/{bucket}/{}", encode_key(key));
        let resp = self
            .signed_request(
                "PUT",
                &path,
                &all,
                Bytes::copy_from_slice(data),
                &self.access_key,
                &self.secret_key,
            )
            .await;
        assert_eq!(
            resp.status,
            200,
            "signed PUT {path} to s3s failed: {} {}",
            resp.status,
            resp.text()
        );
        let file = self.object_path(bucket, key);
        assert!(
            file.is_file(),
            "signed PUT of key {key:?} did not create {file:?}: the harness's key encoding is wrong"
        );
    }

    /// Sends a SigV4-signed request straight to this server.
    /// `path_and_query` must already be percent-encoded.
    pub(crate) async fn signed_request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        access_key: &str,
        secret_key: &str,
    ) -> Resp {
        use aws_sigv4::http_request::{
            PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
            SigningSettings, UriPathNormalizationMode, sign,
        };
        let host = self.addr.to_string();
        let full_uri = format!("http://{host}{path_and_query}");
        let mut all: Vec<(String, String)> = vec![("host".to_owned(), host.clone())];
        all.extend(
            headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned())),
        );

        let identity =
            aws_credential_types::Credentials::new(access_key, secret_key, None, None, "tests")
                .into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            method,
            full_uri,
            all.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&body),
        )
        .unwrap();
        let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();

        let mut req = Request::builder().method(method).uri(path_and_query);
        for (k, v) in &all {
            req = req.header(k.as_str(), v.as_str());
        }
        let mut req = req.body(Full::new(body.clone())).unwrap();
        instructions.apply_to_request_http1x(&mut req);
        let pairs: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        send_with_body(self.addr, method, path_and_query, &refs, body).await
    }

    /// Every request received so far (including the proxy's readiness probes).
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    /// Requests whose path contains `needle`.
    pub(crate) fn requests_for(&self, needle: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path().contains(needle))
            .collect()
    }

    pub(crate) fn request_count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Stops accepting and closes every connection: connects are refused afterwards.
    pub(crate) async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

// ---------------------------------------------------------------------------
// TLS front
// ---------------------------------------------------------------------------

/// A private CA and a server certificate for `127.0.0.1` and `localhost`.
pub(crate) struct TestPki {
    pub(crate) ca_pem: String,
    pub(crate) cert_der: Vec<u8>,
    pub(crate) key_der: Vec<u8>,
}

pub(crate) fn generate_pki() -> TestPki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Yatagarasu Test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();

    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "yatagarasu test s3");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

/// TLS terminator (private CA) serving the same s3 service as an [`S3Server`].
pub(crate) struct TlsFront {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    ca_path: PathBuf,
    task: JoinHandle<()>,
}

impl TlsFront {
    pub(crate) async fn start(s3: &S3Server) -> TlsFront {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

        let pki = generate_pki();
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, &pki.ca_pem).unwrap();

        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(pki.cert_der)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der)),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let svc = s3.service();
        let task = spawn_accept_loop(listener, move |stream| {
            let acceptor = acceptor.clone();
            let svc = svc.clone();
            async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = ServerBuilder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            }
        });
        TlsFront {
            addr,
            dir,
            ca_path,
            task,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT`
    pub(crate) fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// `https://localhost:PORT`
    pub(crate) fn endpoint_localhost(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// The CA certificate (PEM) that signed the server certificate.
    pub(crate) fn ca_cert_path(&self) -> &Path {
        &self.ca_path
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------
// Scripted upstream
// ---------------------------------------------------------------------------

/// A request as the scripted upstream parsed it. Header names are lowercase.
#[derive(Debug, Clone)]
pub(crate) struct RawRequest {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl RawRequest {
    pub(crate) fn path(&self) -> &str {
        target_path(&self.target)
    }

    pub(crate) fn query(&self) -> Option<&str> {
        target_query(&self.target)
    }

    pub(crate) fn query_names(&self) -> Vec<String> {
        query_names(self.query())
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the scripted upstream sends back.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: ReplyBody,
    /// Never send anything (wait until the peer closes the connection).
    pub(crate) hang: bool,
    /// Wait this long before sending the response head.
    pub(crate) delay: Option<Duration>,
}

#[derive(Debug, Clone)]
pub(crate) enum ReplyBody {
    Bytes(Vec<u8>),
    /// Announce a huge Content-Length and keep writing until the peer goes away.
    Endless,
    /// Send these chunks with a pause before each (a slow upstream).
    Paced {
        chunks: Vec<Vec<u8>>,
        interval: Duration,
    },
}

/// RequestId/HostId the scripted upstream puts in its errors (must never reach clients).
pub(crate) const SCRIPTED_REQUEST_ID: &str = "SCRIPTEDREQID4242";
pub(crate) const SCRIPTED_HOST_ID: &str = "SCRIPTEDHOSTIDxyz0123==";

impl Reply {
    pub(crate) fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Bytes(Vec::new()),
            hang: false,
            delay: None,
        }
    }

    pub(crate) fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::new(200).body(body)
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = ReplyBody::Bytes(body.into());
        self
    }

    /// A body sent as `chunks`, each after `interval`.
    pub(crate) fn paced(mut self, chunks: Vec<Vec<u8>>, interval: Duration) -> Reply {
        self.body = ReplyBody::Paced { chunks, interval };
        self
    }

    /// Waits `delay` before sending the response head.
    pub(crate) fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }

    pub(crate) fn endless(mut self) -> Reply {
        self.body = ReplyBody::Endless;
        self
    }

    pub(crate) fn hang() -> Reply {
        Reply {
            hang: true,
            ..Reply::new(200)
        }
    }

    /// An S3-style XML error, with request ids in the body and headers.
    pub(crate) fn s3_error(status: u16, code: &str, bucket: &str) -> Reply {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>scripted {code} message</Message><BucketName>{bucket}</BucketName>\
             <RequestId>{SCRIPTED_REQUEST_ID}</RequestId><HostId>{SCRIPTED_HOST_ID}</HostId></Error>"
        );
        Reply::new(status)
            .header("Content-Type", "application/xml")
            .header("x-amz-request-id", SCRIPTED_REQUEST_ID)
            .header("x-amz-id-2", SCRIPTED_HOST_ID)
            .header("Server", "AmazonS3")
            .body(body)
    }
}

type Handler = Arc<dyn Fn(&RawRequest) -> Reply + Send + Sync>;

/// A raw-TCP HTTP/1.1 server answering with [`Reply`]s chosen by a handler.
pub(crate) struct ScriptedUpstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<RawRequest>>>,
    aborted: Arc<Notify>,
    aborted_count: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl ScriptedUpstream {
    pub(crate) async fn start(
        handler: impl Fn(&RawRequest) -> Reply + Send + Sync + 'static,
    ) -> ScriptedUpstream {
        let handler: Handler = Arc::new(handler);
        let requests: Arc<Mutex<Vec<RawRequest>>> = Arc::default();
        let aborted = Arc::new(Notify::new());
        let aborted_count = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (h, r, a, c) = (
            handler,
            requests.clone(),
            aborted.clone(),
            aborted_count.clone(),
        );
        let task = spawn_accept_loop(listener, move |stream| {
            scripted_conn(stream, h.clone(), r.clone(), a.clone(), c.clone())
        });
        ScriptedUpstream {
            addr,
            requests,
            aborted,
            aborted_count,
            task,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn requests(&self) -> Vec<RawRequest> {
        self.requests.lock().unwrap().clone()
    }

    pub(crate) fn requests_for(&self, needle: &str) -> Vec<RawRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path().contains(needle))
            .collect()
    }

    /// How many endless bodies were cut off by the peer closing the connection.
    pub(crate) fn aborted_bodies(&self) -> usize {
        self.aborted_count.load(Ordering::SeqCst)
    }

    /// Waits until the peer closed a connection while an endless body was
    /// being sent. Returns false on timeout.
    pub(crate) async fn wait_body_aborted(&self, timeout: Duration) -> bool {
        if self.aborted_bodies() > 0 {
            return true;
        }
        tokio::time::timeout(timeout, self.aborted.notified())
            .await
            .is_ok()
            || self.aborted_bodies() > 0
    }
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn find_subslice(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        403 => "Forbidden",
        404 => "Not Found",
        412 => "Precondition Failed",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Scripted",
    }
}

async fn scripted_conn(
    mut stream: TcpStream,
    handler: Handler,
    requests: Arc<Mutex<Vec<RawRequest>>>,
    aborted: Arc<Notify>,
    aborted_count: Arc<AtomicUsize>,
) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Read one request head.
        let head_end = loop {
            if let Some(i) = find_subslice(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let req = RawRequest {
            method,
            target,
            headers,
        };
        // Discard a request body, if any.
        let body_len: usize = req
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < body_len {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..body_len);
        requests.lock().unwrap().push(req.clone());

        let reply = handler(&req);
        if reply.hang {
            // Say nothing; return when the peer goes away.
            let mut sink = [0u8; 1024];
            loop {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        }
        if let Some(delay) = reply.delay {
            tokio::time::sleep(delay).await;
        }
        let has = |name: &str| {
            reply
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
        };
        let no_body_status =
            reply.status == 304 || reply.status == 204 || (100..200).contains(&reply.status);
        let mut out = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
        for (k, v) in &reply.headers {
            let _ = write!(out, "{k}: {v}\r\n");
        }
        if !no_body_status && !has("content-length") {
            let len = match &reply.body {
                ReplyBody::Bytes(b) => b.len() as u64,
                ReplyBody::Endless => 1 << 40,
                ReplyBody::Paced { chunks, .. } => chunks.iter().map(|c| c.len() as u64).sum(),
            };
            let _ = write!(out, "Content-Length: {len}\r\n");
        }
        out.push_str("\r\n");
        if stream.write_all(out.as_bytes()).await.is_err() {
            return;
        }
        if req.method == "HEAD" || no_body_status {
            continue;
        }
        match &reply.body {
            ReplyBody::Bytes(b) => {
                if stream.write_all(b).await.is_err() {
                    return;
                }
            }
            ReplyBody::Paced { chunks, interval } => {
                for chunk in chunks {
                    tokio::time::sleep(*interval).await;
                    if stream.write_all(chunk).await.is_err() {
                        return;
                    }
                }
            }
            ReplyBody::Endless => {
                let chunk = vec![b'x'; 64 * 1024];
                loop {
                    if stream.write_all(&chunk).await.is_err() {
                        aborted_count.fetch_add(1, Ordering::SeqCst);
                        aborted.notify_one();
                        return;
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Proxy configuration
// ---------------------------------------------------------------------------

/// One `buckets[]` entry.
#[derive(Debug, Clone)]
pub(crate) struct BucketCfg {
    pub(crate) name: String,
    pub(crate) path_prefix: String,
    pub(crate) s3_bucket: String,
    pub(crate) region: String,
    pub(crate) endpoint: String,
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
    pub(crate) ca_cert_path: Option<PathBuf>,
    /// YAML appended inside the bucket entry (4-space indented keys such as
    /// `    auth:` or `    cache:`).
    pub(crate) extra_yaml: String,
}

impl BucketCfg {
    /// Bucket `name` on prefix `/name`, served by `s3`'s bucket `s3_bucket`
    /// with `s3`'s credentials.
    pub(crate) fn new(name: &str, s3: &S3Server, s3_bucket: &str) -> BucketCfg {
        BucketCfg::at(
            name,
            &s3.endpoint(),
            s3_bucket,
            &s3.access_key,
            &s3.secret_key,
        )
    }

    pub(crate) fn at(
        name: &str,
        endpoint: &str,
        s3_bucket: &str,
        access_key: &str,
        secret_key: &str,
    ) -> BucketCfg {
        BucketCfg {
            name: name.to_owned(),
            path_prefix: format!("/{name}"),
            s3_bucket: s3_bucket.to_owned(),
            region: REGION.to_owned(),
            endpoint: endpoint.to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            ca_cert_path: None,
            extra_yaml: String::new(),
        }
    }
}

/// A whole configuration file; every listener on 127.0.0.1:0.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) buckets: Vec<BucketCfg>,
    pub(crate) admin_token: Option<String>,
    pub(crate) request_timeout_seconds: u64,
    pub(crate) graceful_shutdown_timeout_seconds: u64,
    pub(crate) readiness_probe_interval_seconds: u64,
    /// YAML appended at the top level (sections such as `jwt:` or `cache:`).
    pub(crate) extra_yaml: String,
    /// YAML appended inside `admin:` (2-space indented keys such as `  jwt:`).
    pub(crate) admin_extra_yaml: String,
    /// `server.worker_threads`, when set.
    pub(crate) worker_threads: Option<u32>,
    /// YAML appended inside `server:` (2-space indented keys).
    pub(crate) server_extra_yaml: String,
}

impl Config {
    pub(crate) fn new(buckets: Vec<BucketCfg>) -> Config {
        Config {
            buckets,
            admin_token: None,
            request_timeout_seconds: 30,
            graceful_shutdown_timeout_seconds: 30,
            readiness_probe_interval_seconds: 1,
            extra_yaml: String::new(),
            admin_extra_yaml: String::new(),
            worker_threads: None,
            server_extra_yaml: String::new(),
        }
    }

    pub(crate) fn yaml(&self) -> String {
        let mut y = String::new();
        let _ = write!(
            y,
            "server:\n  address: \"127.0.0.1:0\"\n  request_timeout_seconds: {}\n  \
             graceful_shutdown_timeout_seconds: {}\n  readiness_probe_interval_seconds: {}\n",
            self.request_timeout_seconds,
            self.graceful_shutdown_timeout_seconds,
            self.readiness_probe_interval_seconds
        );
        if let Some(threads) = self.worker_threads {
            let _ = writeln!(y, "  worker_threads: {threads}");
        }
        y.push_str(&self.server_extra_yaml);
        y.push_str("admin:\n  address: \"127.0.0.1:0\"\n");
        if let Some(token) = &self.admin_token {
            let _ = writeln!(y, "  token: {}", q(token));
        }
        y.push_str(&self.admin_extra_yaml);
        y.push_str("metrics:\n  enabled: true\n  address: \"127.0.0.1:0\"\n");
        y.push_str("logging:\n  level: info\n  format: json\n");
        if self.buckets.is_empty() {
            y.push_str("buckets: []\n");
        } else {
            y.push_str("buckets:\n");
        }
        for b in &self.buckets {
            let _ = write!(
                y,
                "  - name: {}\n    path_prefix: {}\n    s3:\n      bucket: {}\n      region: {}\n      \
                 endpoint: {}\n      access_key: {}\n      secret_key: {}\n",
                q(&b.name),
                q(&b.path_prefix),
                q(&b.s3_bucket),
                q(&b.region),
                q(&b.endpoint),
                q(&b.access_key),
                q(&b.secret_key)
            );
            if let Some(ca) = &b.ca_cert_path {
                let _ = writeln!(y, "      ca_cert_path: {}", q(ca.to_str().unwrap()));
            }
            y.push_str(&b.extra_yaml);
        }
        y.push_str(&self.extra_yaml);
        y
    }
}

// ---------------------------------------------------------------------------
// The proxy process
// ---------------------------------------------------------------------------

/// Path of the binary under test.
pub(crate) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_yatagarasu")
}

/// A field of a log event: top level (the contract), or under `fields`
/// (tolerated by the harness only; `tests/logs.rs` checks the layout strictly).
pub(crate) fn log_field<'a>(event: &'a Value, name: &str) -> Option<&'a Value> {
    event
        .get(name)
        .or_else(|| event.get("fields").and_then(|f| f.get(name)))
}

pub(crate) fn log_message(event: &Value) -> Option<&str> {
    log_field(event, "message").and_then(Value::as_str)
}

/// The running `yatagarasu` binary.
pub(crate) struct Proxy {
    child: Child,
    pid: u32,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    dir: tempfile::TempDir,
    config_path: PathBuf,
    /// Main (proxy) listener.
    pub(crate) main: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) metrics: SocketAddr,
    exit: Option<ExitStatus>,
}

fn spawn_line_reader(
    src: impl std::io::Read + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(src);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    sink.lock()
                        .unwrap()
                        .push(text.trim_end_matches(['\n', '\r']).to_owned());
                }
            }
        }
    })
}

impl Proxy {
    /// Starts `yatagarasu --config FILE` and waits for its three listeners.
    pub(crate) async fn start(cfg: &Config) -> Proxy {
        Self::start_yaml(&cfg.yaml(), &[]).await
    }

    /// Starts `yatagarasu <args_before> --config FILE` with `yaml` as FILE.
    pub(crate) async fn start_yaml(yaml: &str, args_before: &[&str]) -> Proxy {
        Self::start_yaml_env(yaml, args_before, &[]).await
    }

    /// [`Proxy::start_yaml`] with extra environment variables for the process.
    pub(crate) async fn start_yaml_env(
        yaml: &str,
        args_before: &[&str],
        env: &[(&str, &str)],
    ) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("yatagarasu.yaml");
        std::fs::write(&config_path, yaml).unwrap();
        let mut child = Command::new(binary())
            .args(args_before)
            .arg("--config")
            .arg(&config_path)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", binary()));
        let stdout: Arc<Mutex<Vec<String>>> = Arc::default();
        let stderr: Arc<Mutex<Vec<String>>> = Arc::default();
        let readers = vec![
            spawn_line_reader(child.stdout.take().unwrap(), stdout.clone()),
            spawn_line_reader(child.stderr.take().unwrap(), stderr.clone()),
        ];
        let unset: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let mut proxy = Proxy {
            pid: child.id(),
            child,
            stdout,
            stderr,
            readers,
            dir,
            config_path,
            main: unset,
            admin: unset,
            metrics: unset,
            exit: None,
        };
        proxy.wait_listeners().await;
        proxy
    }

    async fn wait_listeners(&mut self) {
        let start = Instant::now();
        loop {
            let mut found: HashMap<String, SocketAddr> = HashMap::new();
            for ev in self.json_logs() {
                if log_message(&ev) != Some("listening") {
                    continue;
                }
                let listener = log_field(&ev, "listener").and_then(Value::as_str);
                let address = log_field(&ev, "address")
                    .and_then(Value::as_str)
                    .and_then(|a| a.parse::<SocketAddr>().ok());
                if let (Some(l), Some(a)) = (listener, address) {
                    found.insert(l.to_owned(), a);
                }
            }
            // `logging.format: text` writes them as text lines.
            for (listener, address) in text_listening(&self.logs()) {
                found.entry(listener).or_insert(address);
            }
            if let (Some(m), Some(a), Some(x)) =
                (found.get("main"), found.get("admin"), found.get("metrics"))
            {
                self.main = *m;
                self.admin = *a;
                self.metrics = *x;
                return;
            }
            if let Some(status) = self.try_exit() {
                panic!(
                    "yatagarasu exited ({status}) before logging its three `listening` events \
                     (found {found:?})\n{}",
                    self.log_dump()
                );
            }
            if start.elapsed() > DEADLINE {
                panic!(
                    "yatagarasu did not log `listening` for main, admin and metrics within {DEADLINE:?} \
                     (found {found:?})\n{}",
                    self.log_dump()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Replaces the configuration file (for a reload).
    pub(crate) fn write_config(&self, yaml: &str) {
        let tmp = self.dir.path().join("yatagarasu.yaml.tmp");
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(&tmp, &self.config_path).unwrap();
    }

    /// Raw stdout lines so far.
    pub(crate) fn logs(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Every stdout line so far (alias of [`Proxy::logs`]).
    pub(crate) fn all_logs(&self) -> Vec<String> {
        self.logs()
    }

    /// Raw stderr lines so far.
    pub(crate) fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything the process printed (stdout then stderr).
    pub(crate) fn all_output(&self) -> String {
        let mut s = self.logs().join("\n");
        s.push('\n');
        s.push_str(&self.stderr_lines().join("\n"));
        s
    }

    /// stdout lines that parse as JSON objects.
    pub(crate) fn json_logs(&self) -> Vec<Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// Number of stdout lines so far (a position for [`Proxy::wait_for_log`]).
    pub(crate) fn log_len(&self) -> usize {
        self.stdout.lock().unwrap().len()
    }

    /// Waits for a JSON stdout line at index ≥ `from` matching `pred`; returns
    /// its index and value. Panics (with the logs) after `timeout`.
    pub(crate) async fn wait_for_log(
        &self,
        from: usize,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> (usize, Value) {
        match self.try_wait_for_log(from, timeout, pred).await {
            Some(found) => found,
            None => panic!(
                "no log event `{what}` (from line {from}) within {timeout:?}\n{}",
                self.log_dump()
            ),
        }
    }

    pub(crate) async fn try_wait_for_log(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<(usize, Value)> {
        let start = Instant::now();
        loop {
            {
                let lines = self.stdout.lock().unwrap();
                for (i, line) in lines.iter().enumerate().skip(from) {
                    if let Ok(v) = serde_json::from_str::<Value>(line)
                        && pred(&v)
                    {
                        return Some((i, v));
                    }
                }
            }
            if start.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a log event whose `message` is `message`.
    pub(crate) async fn wait_for_message(&self, from: usize, message: &str) -> (usize, Value) {
        self.wait_for_log(from, message, DEADLINE, |v| log_message(v) == Some(message))
            .await
    }

    /// Sends a signal (`"HUP"`, `"TERM"`, `"INT"`, ...) with `kill(1)`.
    pub(crate) fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg("-s")
            .arg(sig)
            .arg(self.pid.to_string())
            .status()
            .expect("cannot run kill(1)");
        assert!(
            status.success(),
            "kill -s {sig} {} failed: {status}",
            self.pid
        );
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Whether the process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        self.try_exit().is_none()
    }

    /// Waits for the process to exit; panics after `timeout`.
    pub(crate) async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_exit() {
                // Let the reader threads drain the pipes.
                for r in self.readers.drain(..) {
                    let _ = tokio::task::spawn_blocking(move || r.join()).await;
                }
                return status;
            }
            if start.elapsed() > timeout {
                panic!(
                    "yatagarasu did not exit within {timeout:?}\n{}",
                    self.log_dump()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// One `GET /ready` on the main listener (an error when it cannot connect).
    pub(crate) async fn try_ready(&self) -> Result<Resp, String> {
        try_send(
            self.main,
            "GET",
            "/ready",
            &[],
            Bytes::new(),
            Duration::from_secs(5),
        )
        .await
    }

    /// Polls `GET /ready` on the main listener until it answers 200.
    pub(crate) async fn wait_ready(&self) -> Value {
        let start = Instant::now();
        loop {
            let last = match self.try_ready().await {
                Ok(r) if r.status == 200 => return r.json(),
                Ok(r) => format!("{} {}", r.status, r.text()),
                Err(e) => e,
            };
            if start.elapsed() > DEADLINE {
                panic!(
                    "GET /ready did not answer 200 within {DEADLINE:?}; last: {last}\n{}",
                    self.log_dump()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `access` events (`message` = "request finished") so far.
    pub(crate) fn access_logs(&self) -> Vec<Value> {
        self.json_logs()
            .into_iter()
            .filter(|v| {
                log_field(v, "target").and_then(Value::as_str) == Some("access")
                    && log_message(v) == Some("request finished")
            })
            .collect()
    }

    /// Waits for the access event of the request with id `request_id`.
    pub(crate) async fn wait_access_log(&self, request_id: &str) -> Value {
        self.wait_for_log(
            0,
            &format!("access log of request {request_id}"),
            DEADLINE,
            |v| {
                log_field(v, "target").and_then(Value::as_str) == Some("access")
                    && v.get("span")
                        .and_then(|s| s.get("request_id"))
                        .and_then(Value::as_str)
                        == Some(request_id)
            },
        )
        .await
        .1
    }

    /// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
    pub(crate) fn proc_status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
            .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid))
    }

    /// Resets VmHWM to the current RSS (`echo 5 > /proc/PID/clear_refs`).
    pub(crate) fn reset_peak_rss(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }

    /// The last lines of stdout and stderr, for failure messages.
    pub(crate) fn log_dump(&self) -> String {
        let tail = |lines: Vec<String>| {
            let skip = lines.len().saturating_sub(300);
            lines[skip..].join("\n")
        };
        format!(
            "----- yatagarasu stdout (last 300 lines) -----\n{}\n----- yatagarasu stderr -----\n{}\n-----",
            tail(self.logs()),
            tail(self.stderr_lines())
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_dump());
        }
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP clients
// ---------------------------------------------------------------------------

/// A buffered response.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): status {} headers {:?} body {:?}",
                self.status,
                self.headers,
                self.text()
            )
        })
    }

    /// A short description for assertion messages.
    pub(crate) fn describe(&self) -> String {
        let text = self.text();
        let body: String = text.chars().take(600).collect();
        format!(
            "status {} headers {:?} body {:?}",
            self.status, self.headers, body
        )
    }
}

async fn open(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<(Response<Incoming>, JoinHandle<()>), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake {addr}: {e}"))?;
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = Request::builder().method(method).uri(target);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header("host", addr.to_string());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(body))
        .map_err(|e| format!("bad request {method} {target}: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("{method} {target} on {addr}: {e}"))?;
    Ok((resp, conn))
}

/// One request on a fresh connection; `Err` on connection errors or timeout.
pub(crate) async fn try_send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    timeout: Duration,
) -> Result<Resp, String> {
    let fut = async {
        let (resp, conn) = open(addr, method, target, headers, body).await?;
        let (parts, incoming) = resp.into_parts();
        let body = incoming
            .collect()
            .await
            .map_err(|e| format!("{method} {target}: body error: {e}"))?
            .to_bytes();
        conn.abort();
        Ok(Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{method} {target} on {addr}: no complete response within {timeout:?}"
        )),
    }
}

/// One request; panics on connection errors or after [`DEADLINE`].
pub(crate) async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Resp {
    send_with_body(addr, method, target, headers, Bytes::new()).await
}

pub(crate) async fn send_with_body(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Resp {
    try_send(addr, method, target, headers, body, DEADLINE)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) async fn get(addr: SocketAddr, target: &str) -> Resp {
    send(addr, "GET", target, &[]).await
}

/// A streamed download, read chunk by chunk (nothing buffered).
pub(crate) struct Download {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    body: Incoming,
    conn: JoinHandle<()>,
    /// Bytes received so far.
    pub(crate) received: u64,
}

impl Download {
    pub(crate) async fn start(
        addr: SocketAddr,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Download {
        let (resp, conn) =
            tokio::time::timeout(DEADLINE, open(addr, "GET", target, headers, Bytes::new()))
                .await
                .unwrap_or_else(|_| panic!("GET {target}: no response head within {DEADLINE:?}"))
                .unwrap_or_else(|e| panic!("{e}"));
        let (parts, body) = resp.into_parts();
        Download {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            conn,
            received: 0,
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The next data chunk; `Ok(None)` at the end of the body.
    pub(crate) async fn chunk(&mut self, timeout: Duration) -> Result<Option<Bytes>, String> {
        loop {
            let frame = tokio::time::timeout(timeout, self.body.frame())
                .await
                .map_err(|_| {
                    format!(
                        "no body data within {timeout:?} after {} bytes",
                        self.received
                    )
                })?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(format!("body error after {} bytes: {e}", self.received));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.received += data.len() as u64;
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// Reads until at least `n` bytes were received in total (or the end).
    pub(crate) async fn read_at_least(
        &mut self,
        n: u64,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<u64, String> {
        while self.received < n {
            match self.chunk(DEADLINE).await? {
                Some(data) => sink(&data),
                None => break,
            }
        }
        Ok(self.received)
    }

    /// Reads to the end of the body; returns the total received.
    pub(crate) async fn read_to_end(&mut self, mut sink: impl FnMut(&[u8])) -> Result<u64, String> {
        while let Some(data) = self.chunk(DEADLINE).await? {
            sink(&data);
        }
        Ok(self.received)
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        // Closes the socket.
        self.conn.abort();
    }
}

/// A response read from a raw socket.
#[derive(Debug)]
pub(crate) struct RawResp {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl RawResp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Sends `GET <target> HTTP/1.1` written by hand (no client normalises the
/// target) with `Connection: close`, and reads the whole response.
pub(crate) async fn raw_get(addr: SocketAddr, target: &[u8]) -> RawResp {
    let mut req = Vec::new();
    req.extend_from_slice(b"GET ");
    req.extend_from_slice(target);
    req.extend_from_slice(
        format!(" HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    raw_request(addr, &req).await
}

/// Writes `request` as is and parses the response (read until EOF).
pub(crate) async fn raw_request(addr: SocketAddr, request: &[u8]) -> RawResp {
    let fut = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut data = Vec::new();
        let _ = stream.read_to_end(&mut data).await;
        data
    };
    let data = tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "raw request {:?}: connection not closed within {DEADLINE:?}",
                String::from_utf8_lossy(request)
            )
        });
    parse_raw_response(&data).unwrap_or_else(|| {
        panic!(
            "raw request {:?}: unparsable response {:?}",
            String::from_utf8_lossy(request),
            String::from_utf8_lossy(&data)
        )
    })
}

fn parse_raw_response(data: &[u8]) -> Option<RawResp> {
    let head_end = find_subslice(data, b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&data[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &data[head_end..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let line_end = pos + find_subslice(&rest[pos..], b"\r\n")?;
            let size_text = std::str::from_utf8(&rest[pos..line_end]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            pos = line_end + 2;
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(pos..pos + size)?);
            pos += size + 2;
        }
        out
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Some(RawResp {
        status,
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------
// Assertions and small utilities
// ---------------------------------------------------------------------------

/// Asserts a JSON error response `{"error":{"code","message","request_id"}}`
/// whose `request_id` equals the `x-request-id` header. Returns the error object.
#[track_caller]
pub(crate) fn assert_error(resp: &Resp, status: u16, code: Option<&str>) -> Value {
    assert_eq!(
        resp.status,
        status,
        "expected status {status}: {}",
        resp.describe()
    );
    let v = resp.json();
    let err = v
        .get("error")
        .unwrap_or_else(|| panic!("no `error` object in {}", resp.describe()))
        .clone();
    if let Some(code) = code {
        assert_eq!(
            err.get("code").and_then(Value::as_str),
            Some(code),
            "error code: {}",
            resp.describe()
        );
    } else {
        assert!(
            err.get("code").and_then(Value::as_str).is_some(),
            "error.code missing: {}",
            resp.describe()
        );
    }
    assert!(
        err.get("message").and_then(Value::as_str).is_some(),
        "error.message missing: {}",
        resp.describe()
    );
    let rid = resp
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id header: {}", resp.describe()));
    assert_eq!(
        err.get("request_id").and_then(Value::as_str),
        Some(rid),
        "error.request_id must equal the x-request-id header: {}",
        resp.describe()
    );
    err
}

/// Whether `s` looks like a UUID v4 (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`).
pub(crate) fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 36 {
        return false;
    }
    for (i, c) in b.iter().enumerate() {
        let ok = match i {
            8 | 13 | 18 | 23 => *c == b'-',
            14 => *c == b'4',
            19 => matches!(c.to_ascii_lowercase(), b'8' | b'9' | b'a' | b'b'),
            _ => c.is_ascii_hexdigit(),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// An address on which nothing listens (connects are refused).
pub(crate) fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

/// One Prometheus sample.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// Parses the Prometheus text exposition format (samples only).
pub(crate) fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let name = &line[..open];
                let mut labels = BTreeMap::new();
                let bytes = line.as_bytes();
                let mut i = open + 1;
                loop {
                    while i < bytes.len() && (bytes[i] == b',' || bytes[i] == b' ') {
                        i += 1;
                    }
                    if i >= bytes.len() || bytes[i] == b'}' {
                        break;
                    }
                    let eq = i + line[i..].find('=').unwrap_or(0);
                    let key = line[i..eq].trim().to_owned();
                    i = eq + 2; // skip `="`
                    let mut val = String::new();
                    while i < bytes.len() && bytes[i] != b'"' {
                        if bytes[i] == b'\\' && i + 1 < bytes.len() {
                            i += 1;
                            val.push(match bytes[i] {
                                b'n' => '\n',
                                other => other as char,
                            });
                        } else {
                            val.push(bytes[i] as char);
                        }
                        i += 1;
                    }
                    i += 1; // closing quote
                    labels.insert(key, val);
                }
                (name.to_owned(), labels, line.get(i + 1..).unwrap_or(""))
            }
            None => {
                let (n, r) = line.split_once(' ').unwrap_or((line, ""));
                (n.to_owned(), BTreeMap::new(), r)
            }
        };
        let value = rest.split_whitespace().next().and_then(|v| match v {
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            "NaN" => Some(f64::NAN),
            v => v.parse().ok(),
        });
        if let Some(value) = value {
            out.push(Sample {
                name,
                labels,
                value,
            });
        }
    }
    out
}

/// The value of the first sample named `name` whose labels include `labels`.
pub(crate) fn sample_value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// Sum of the values of all samples named `name` whose labels include `labels`.
pub(crate) fn sample_sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// Fetches and parses `/metrics` from the metrics listener.
pub(crate) async fn scrape(proxy: &Proxy) -> (String, Vec<Sample>) {
    let r = get(proxy.metrics, "/metrics").await;
    assert_eq!(r.status, 200, "GET /metrics: {}", r.describe());
    let text = r.text();
    let samples = parse_prometheus(&text);
    (text, samples)
}

/// Polls `cond` every 25 ms until it returns `Some`, or panics after `timeout`.
pub(crate) async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match cond().await {
            Ok(v) => return v,
            Err(last) => {
                if start.elapsed() > timeout {
                    panic!("{what}: not reached within {timeout:?}; last: {last}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
pub(crate) mod jwks;

// ---------------------------------------------------------------------------
// Text-format logs (`logging.format: text`)
// ---------------------------------------------------------------------------

impl Config {
    /// [`Config::yaml`] with `logging.format: text` instead of JSON.
    pub(crate) fn yaml_text_logs(&self) -> String {
        self.yaml().replacen(
            "logging:\n  level: info\n  format: json\n",
            "logging:\n  level: info\n  format: text\n",
            1,
        )
    }
}

/// The `listening` events among text-format lines, as `(listener, address)`.
fn text_listening(lines: &[String]) -> Vec<(String, SocketAddr)> {
    lines
        .iter()
        .filter(|line| is_text_log_line(line) && line.contains(" listening "))
        .filter_map(|line| {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|word| word.strip_prefix(name))
                    .map(|value| value.trim_matches('"'))
            };
            Some((
                field("listener=")?.to_owned(),
                field("address=")?.parse().ok()?,
            ))
        })
        .collect()
}

/// Whether `line` starts like a text-format event: an RFC 3339 UTC timestamp
/// (`2026-01-02T03:04:05.123456Z`), spaces, a level, a space.
pub(crate) fn is_text_log_line(line: &str) -> bool {
    let Some((timestamp, rest)) = line.split_once(' ') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let timestamp_ok = timestamp.len() >= 20
        && timestamp.ends_with('Z')
        && timestamp
            .split(['-', 'T', ':', '.', 'Z'])
            .filter(|p| !p.is_empty())
            .all(digits)
        && timestamp.as_bytes()[4] == b'-'
        && timestamp.as_bytes()[10] == b'T';
    let rest = rest.trim_start();
    timestamp_ok
        && ["TRACE ", "DEBUG ", "INFO ", "WARN ", "ERROR "]
            .iter()
            .any(|level| rest.starts_with(level))
}
