//! Run-time credentials (`s3.credentials`) from the AWS SDK's providers,
//! against fakes of the AWS services in this process speaking their
//! documented protocols: IMDSv2, the ECS container credentials endpoint, and
//! STS `AssumeRoleWithWebIdentity` / `AssumeRole`. The proxy process finds
//! them through the SDK's documented variables (`AWS_EC2_METADATA_SERVICE_ENDPOINT`,
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI`, `AWS_ENDPOINT_URL_STS`).
//!
//! s3s-fs verifies each signature against a keyring the test changes, so an
//! answer 200 proves which key signed; s3s does not check session tokens, so
//! the token is read from the requests s3s recorded.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use common::{DEADLINE, Proxy, Resp, S3Server, get};
use http_body_util::BodyExt;

/// One request a fake received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: http::HeaderMap,
    body: String,
}

/// What a fake answers: status, headers, body.
type Answer = (u16, Vec<(&'static str, String)>, String);
type Script = Arc<dyn Fn(&Seen) -> Answer + Send + Sync>;

/// An HTTP server on 127.0.0.1:0 answering by a script the test can swap.
#[derive(Clone)]
struct Fake {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<Script>>,
}

impl Fake {
    async fn start(script: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Fake {
            addr: listener.local_addr().unwrap(),
            seen: Arc::default(),
            script: Arc::new(Mutex::new(Arc::new(script))),
        };
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    fn set(&self, script: impl Fn(&Seen) -> Answer + Send + Sync + 'static) {
        *self.script.lock().unwrap() = Arc::new(script);
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(State(fake): State<Fake>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    fake.seen.lock().unwrap().push(seen.clone());
    let script = fake.script.lock().unwrap().clone();
    let (status, headers, body) = script(&seen);
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(name, value);
    }
    response.body(Body::from(body)).unwrap()
}

/// A key pair with a session token, named after `tag`.
#[derive(Clone)]
struct Key {
    access: String,
    secret: String,
    token: String,
}

fn key(tag: &str) -> Key {
    Key {
        access: format!("ASIA{tag}TESTKEY000"),
        secret: format!("secret/{tag}/0123456789abcdefghij"),
        token: format!("session-token-{tag}"),
    }
}

/// `time` as ISO 8601 / RFC 3339 in UTC, whole seconds.
fn iso8601(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The container/instance credentials JSON (ECS and IMDS share it), valid for `life`.
fn credentials_json(key: &Key, life: Duration) -> Answer {
    let body = serde_json::json!({
        "Code": "Success",
        "Type": "AWS-HMAC",
        "LastUpdated": iso8601(SystemTime::now()),
        "AccessKeyId": key.access,
        "SecretAccessKey": key.secret,
        "Token": key.token,
        "Expiration": iso8601(SystemTime::now() + life),
    });
    (
        200,
        vec![("content-type", "application/json".into())],
        body.to_string(),
    )
}

fn failure() -> Answer {
    (500, vec![], "unavailable".into())
}

/// A bucket `data` at `/d` signed with `credentials` (a flow mapping).
fn yaml(s3: &S3Server, credentials: &str) -> String {
    format!(
        "server:\n  address: \"127.0.0.1:0\"\n  readiness_probe_interval_seconds: 1\n\
         admin:\n  address: \"127.0.0.1:0\"\nmetrics:\n  enabled: true\n  address: \"127.0.0.1:0\"\n\
         logging:\n  level: info\n  format: json\n\
         buckets:\n  - name: data\n    path_prefix: /d\n    s3:\n      bucket: data\n      \
         region: us-east-1\n      endpoint: \"{}\"\n      credentials: {credentials}\n",
        s3.endpoint()
    )
}

/// The environment every proxy of these tests runs with: no shared config
/// files and no instance metadata unless a test points at its fake.
fn base_env(dir: &std::path::Path) -> Vec<(String, String)> {
    let missing = dir.join("missing").to_string_lossy().into_owned();
    vec![
        ("AWS_CONFIG_FILE".into(), missing.clone()),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), missing),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
    ]
}

async fn start_proxy(yaml: &str, env: Vec<(String, String)>) -> Proxy {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Proxy::start_yaml_env(yaml, &[], &env).await
}

/// s3s-fs knowing only `key`, with `name` holding `body` in bucket `data`.
async fn s3_knowing(key: &Key, name: &str, body: &[u8]) -> S3Server {
    let s3 = S3Server::start_with_keyring(&key.access, &key.secret, &["data"]).await;
    s3.write_object("data", name, body);
    s3
}

/// A ready proxy whose bucket takes its credentials from the ECS endpoint
/// `path` of `ecs`; keep the directory (of the missing config files) alive.
async fn ecs_proxy(s3: &S3Server, ecs: &Fake, path: &str) -> (Proxy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = base_env(dir.path());
    env.push((
        "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
        format!("{}{path}", ecs.url()),
    ));
    let proxy = start_proxy(&yaml(s3, "{ source: ecs }"), env).await;
    proxy.wait_ready().await;
    (proxy, dir)
}

/// Reloads the configuration file through the admin API; it must succeed.
async fn reload(proxy: &Proxy) {
    let admin = [("x-yatagarasu-admin", "1")];
    let r = common::send(proxy.admin, "POST", "/admin/reload", &admin).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Polls `GET path` until `done` holds for the answer (the condition is the signal).
async fn get_until(proxy: &Proxy, path: &str, done: impl Fn(&Resp) -> bool) -> Resp {
    let start = Instant::now();
    loop {
        let response = get(proxy.main, path).await;
        if done(&response) {
            return response;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "GET {path}: last {} {}\n{}",
            response.status,
            response.text(),
            proxy.log_dump()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The session token on the last object request s3s received.
fn last_token(s3: &S3Server) -> Option<String> {
    s3.requests()
        .into_iter()
        .rev()
        .find(|r| r.uri.starts_with("/data/"))
        .and_then(|r| r.header("x-amz-security-token").map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_credentials_rotate_and_the_new_key_signs() {
    let (a, b) = (key("AAAA"), key("BBBB"));
    let s3 = s3_knowing(&a, "hello.txt", b"hello").await;
    // Key A lives 4 s, so the proxy refreshes it about every 2 s.
    let served = a.clone();
    let ecs = Fake::start(move |_| credentials_json(&served, Duration::from_secs(4))).await;
    let (proxy, _dir) = ecs_proxy(&s3, &ecs, "/v2/credentials/abc").await;
    let r = get(proxy.main, "/d/hello.txt").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(&r.body[..], b"hello");
    assert_eq!(last_token(&s3).as_deref(), Some(a.token.as_str()));
    assert!(
        ecs.seen()
            .iter()
            .all(|s| s.method == "GET" && s.path == "/v2/credentials/abc")
    );

    // Rotation: the endpoint hands out B; s3s accepts only B from now on.
    let served = b.clone();
    ecs.set(move |_| credentials_json(&served, Duration::from_secs(3600)));
    s3.keyring().revoke(&a.access);
    s3.keyring().grant(&b.access, &b.secret);
    let r = get_until(&proxy, "/d/hello.txt", |r| r.status == 200).await;
    assert_eq!(&r.body[..], b"hello");
    assert_eq!(last_token(&s3).as_deref(), Some(b.token.as_str()));
    // Nothing of either secret reached the logs.
    let logs = proxy.log_dump();
    assert!(!logs.contains(&a.secret) && !logs.contains(&b.secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_serves_until_expiry_then_503_and_not_ready() {
    let a = key("CCCC");
    let s3 = s3_knowing(&a, "k.txt", b"kept").await;
    // Valid answers (for 10 s) until the switch flips, then only failures:
    // whether the first fetch took one attempt or several under load.
    let served = a.clone();
    let failing = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU32::new(0));
    let (fail, count) = (failing.clone(), failures.clone());
    let ecs = Fake::start(move |_| {
        if fail.load(Ordering::SeqCst) {
            count.fetch_add(1, Ordering::SeqCst);
            failure()
        } else {
            credentials_json(&served, Duration::from_secs(10))
        }
    })
    .await;
    let (proxy, _dir) = ecs_proxy(&s3, &ecs, "/creds").await;
    assert_eq!(get(proxy.main, "/d/k.txt").await.status, 200);
    failing.store(true, Ordering::SeqCst);

    // The refresh has failed (the fake answered 500): A still signs.
    let start = Instant::now();
    while failures.load(Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < DEADLINE, "no refresh was attempted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = get(proxy.main, "/d/k.txt").await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Past A's expiry: 503 with the typed error, and /ready reports the bucket down.
    let r = get_until(&proxy, "/d/k.txt", |r| r.status == 503).await;
    let body = r.json();
    assert_eq!(body["error"]["code"], "CredentialsUnavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(!r.text().contains(&a.secret) && !r.text().contains(&a.access));
    let start = Instant::now();
    let ready = loop {
        let ready = proxy.try_ready().await.unwrap();
        if ready.status == 503 {
            break ready.json();
        }
        assert!(start.elapsed() < DEADLINE, "/ready stayed {}", ready.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let bucket = &ready["buckets"]["data"];
    assert_eq!(bucket["up"], false, "{ready}");
    assert!(
        bucket["error"].as_str().unwrap().contains("credentials"),
        "{ready}"
    );

    // The endpoint recovers: the bucket serves and is ready again.
    let served = a.clone();
    ecs.set(move |_| credentials_json(&served, Duration::from_secs(3600)));
    get_until(&proxy, "/d/k.txt", |r| r.status == 200).await;
    proxy.wait_ready().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_v2_token_then_role_credentials() {
    let k = key("DDDD");
    let s3 = s3_knowing(&k, "i.txt", b"from imds").await;
    let served = k.clone();
    let imds = Fake::start(move |seen| {
        let token = seen.headers.get("x-aws-ec2-metadata-token");
        match (seen.method.as_str(), seen.path.as_str()) {
            ("PUT", "/latest/api/token") => {
                match seen.headers.get("x-aws-ec2-metadata-token-ttl-seconds") {
                    Some(ttl) => (
                        200,
                        vec![(
                            "x-aws-ec2-metadata-token-ttl-seconds",
                            ttl.to_str().unwrap().to_owned(),
                        )],
                        "imds-session-token".into(),
                    ),
                    None => (400, vec![], String::new()),
                }
            }
            _ if token.is_none_or(|t| t != "imds-session-token") => (401, vec![], String::new()),
            ("GET", "/latest/meta-data/iam/security-credentials/") => {
                (200, vec![], "proxy-role".into())
            }
            ("GET", "/latest/meta-data/iam/security-credentials/proxy-role") => {
                credentials_json(&served, Duration::from_secs(3600))
            }
            _ => (404, vec![], String::new()),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = base_env(dir.path());
    env.retain(|(k, _)| k != "AWS_EC2_METADATA_DISABLED");
    env.push(("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), imds.url()));
    let proxy = start_proxy(&yaml(&s3, "{ source: imds }"), env).await;
    proxy.wait_ready().await;
    let r = get(proxy.main, "/d/i.txt").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(&r.body[..], b"from imds");
    assert_eq!(last_token(&s3).as_deref(), Some(k.token.as_str()));
    let seen = imds.seen();
    assert_eq!(
        seen[0].method, "PUT",
        "IMDSv2 starts with a session token: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.path == "/latest/meta-data/iam/security-credentials/proxy-role")
    );
}

/// The STS query-protocol answer of `action` with `key`.
fn sts_answer(action: &str, key: &Key) -> Answer {
    let body = format!(
        "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <{action}Result><Credentials><AccessKeyId>{}</AccessKeyId>\
         <SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken>\
         <Expiration>{}</Expiration></Credentials>\
         <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/yatagarasu</Arn>\
         <AssumedRoleId>AROATEST:yatagarasu</AssumedRoleId></AssumedRoleUser>\
         </{action}Result><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>\
         </{action}Response>",
        key.access,
        key.secret,
        key.token,
        iso8601(SystemTime::now() + Duration::from_secs(3600))
    );
    (200, vec![("content-type", "text/xml".into())], body)
}

/// The parameters of an STS (query protocol) request body.
fn form(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_and_assume_role_through_sts() {
    let (web, role) = (key("EEEE"), key("FFFF"));
    let s3 = S3Server::start_with_keyring(&web.access, &web.secret, &["data"]).await;
    s3.keyring().grant(&role.access, &role.secret);
    s3.write_object("data", "s.txt", b"via sts");
    let (w, r) = (web.clone(), role.clone());
    let sts = Fake::start(move |seen| {
        let form = form(&seen.body);
        let param = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        match param("Action") {
            Some("AssumeRoleWithWebIdentity")
                if param("WebIdentityToken") == Some("oidc-token-from-file")
                    && param("RoleArn") == Some("arn:aws:iam::123456789012:role/web") =>
            {
                sts_answer("AssumeRoleWithWebIdentity", &w)
            }
            // Signed with the web identity credentials (the base).
            Some("AssumeRole")
                if seen.headers.get("authorization").is_some_and(|a| {
                    a.to_str()
                        .unwrap()
                        .contains(&format!("Credential={}/", w.access))
                }) && seen
                    .headers
                    .get("x-amz-security-token")
                    .is_some_and(|t| *t == w.token.as_str())
                    && param("ExternalId") == Some("ext-42")
                    && param("RoleArn") == Some("arn:aws:iam::123456789012:role/reader") =>
            {
                sts_answer("AssumeRole", &r)
            }
            _ => (403, vec![], "<ErrorResponse/>".into()),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "oidc-token-from-file").unwrap();
    let web_source = format!(
        "{{ source: web_identity, role_arn: \"arn:aws:iam::123456789012:role/web\", token_file: \"{}\" }}",
        token_file.display()
    );
    let mut config = yaml(&s3, &web_source);
    config.push_str(&format!(
        "  - name: role\n    path_prefix: /r\n    s3:\n      bucket: data\n      region: us-east-1\n      \
         endpoint: \"{}\"\n      credentials: {{ source: assume_role, role_arn: \
         \"arn:aws:iam::123456789012:role/reader\", external_id: ext-42, base: {web_source} }}\n",
        s3.endpoint()
    ));
    let mut env = base_env(dir.path());
    env.push(("AWS_ENDPOINT_URL_STS".into(), sts.url()));
    let proxy = start_proxy(&config, env).await;
    proxy.wait_ready().await;

    let r1 = get(proxy.main, "/d/s.txt").await;
    assert_eq!(r1.status, 200, "{}", r1.text());
    assert_eq!(last_token(&s3).as_deref(), Some(web.token.as_str()));
    let r2 = get(proxy.main, "/r/s.txt").await;
    assert_eq!(r2.status, 200, "{}", r2.text());
    assert_eq!(&r2.body[..], b"via sts");
    assert_eq!(last_token(&s3).as_deref(), Some(role.token.as_str()));
    let seen = sts.seen();
    let actions: Vec<_> = seen
        .iter()
        .filter_map(|s| form(&s.body).into_iter().find(|(k, _)| k == "Action"))
        .map(|(_, v)| v)
        .collect();
    assert!(
        actions.iter().any(|a| a == "AssumeRoleWithWebIdentity"),
        "{seen:?}"
    );
    assert!(actions.iter().any(|a| a == "AssumeRole"), "{seen:?}");
    assert!(seen.iter().all(|s| s.method == "POST"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_credentials_of_an_unchanged_source() {
    let k = key("GGGG");
    let s3 = s3_knowing(&k, "r.txt", b"reloaded").await;
    let served = k.clone();
    let ecs = Fake::start(move |_| credentials_json(&served, Duration::from_secs(3600))).await;
    let (proxy, _dir) = ecs_proxy(&s3, &ecs, "/creds").await;
    let config = yaml(&s3, "{ source: ecs }");
    assert_eq!(ecs.seen().len(), 1);

    // Same source: the reloaded stack signs at once with the fetched credentials.
    proxy.write_config(&config.replace(
        "readiness_probe_interval_seconds: 1",
        "readiness_probe_interval_seconds: 2",
    ));
    reload(&proxy).await;
    let r = get(proxy.main, "/d/r.txt").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        ecs.seen().len(),
        1,
        "the unchanged source was fetched again"
    );

    // A changed source (another region) is a new fetch.
    proxy.write_config(&yaml(&s3, "{ source: ecs, region: eu-west-1 }"));
    reload(&proxy).await;
    get_until(&proxy, "/d/r.txt", |r| r.status == 200).await;
    assert_eq!(ecs.seen().len(), 2);
}
