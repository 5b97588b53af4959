//! The authorization layer as a library: `AuthzLayer` built from a real
//! configuration over a stub inner service, with the extensions earlier
//! layers insert (route, key, verified claims, client address) set by hand.
//!
//! Rego policies are evaluated for real; OPA and OpenFGA are in-test HTTP
//! servers implementing the documented request and response bodies (the OPA
//! one evaluates Rego with regorus).

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use common::policy_peers::{PeerAnswer, PolicyPeer, policy_path};
use http::{Request, Response, StatusCode};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};
use tower::{Layer, Service, ServiceExt};
use yatagarasu::access_log::ClientAddr;
use yatagarasu::auth::VerifiedClaims;
use yatagarasu::authz::AuthzLayer;
use yatagarasu::body::{ProxyBody, empty, full};
use yatagarasu::config::{Config, UpstreamConfig};
use yatagarasu::limits::SafePath;
use yatagarasu::route::ObjectKey;
use yatagarasu::shared::Shared;
use yatagarasu::upstream::build_client;
use yatagarasu::{ProxyError, error::ErrorSource};

/// The process-wide Prometheus recorder (installed once, before any layer
/// registers its counters).
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| yatagarasu::telemetry::metrics::install_prometheus().unwrap())
}

/// The value of the counter line with exactly these labels (0 when absent).
fn counter(name: &str, labels: &[(&str, &str)]) -> u64 {
    let text = recorder().render();
    for line in text.lines().filter(|l| l.starts_with(name)) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Some(rest) = series.strip_prefix(name) else {
            continue;
        };
        let inner = rest.trim_start_matches('{').trim_end_matches('}');
        let found: HashMap<&str, &str> = inner
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        if found.len() == labels.len() && labels.iter().all(|(k, v)| found.get(k) == Some(v)) {
            return value.parse().unwrap();
        }
    }
    0
}

fn decisions(bucket: &str, engine: &str, result: &str) -> u64 {
    counter(
        "yatagarasu_authz_decisions_total",
        &[("bucket", bucket), ("engine", engine), ("result", result)],
    )
}

/// A one-bucket configuration named `bucket` at `/private`, with this
/// `authorization:` body (indented by the caller's lines).
fn config(bucket: &str, authorization: &str) -> Config {
    let text = config_text(bucket, authorization);
    Config::from_yaml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The YAML text of [`config`].
fn config_text(bucket: &str, authorization: &str) -> String {
    let body: String = authorization
        .lines()
        .map(|l| format!("        {l}\n"))
        .collect();
    format!(
        "buckets:\n  - name: {bucket}\n    path_prefix: /private\n    s3:\n      bucket: my-bucket\n      \
         region: us-east-1\n      endpoint: http://127.0.0.1:1\n      anonymous: true\n    auth:\n      \
         authorization:\n{body}"
    )
}

fn rego(policy: &str) -> String {
    format!("type: rego\npolicy_path: {:?}", policy_path(policy))
}

/// The layer over a stub that answers 200 "from S3" and counts its calls.
struct Harness {
    service: tower::util::BoxCloneSyncService<Request<ProxyBody>, Response<ProxyBody>, ProxyError>,
    forwarded: Arc<AtomicUsize>,
}

impl Harness {
    fn new(config: &Config, shared: &Shared) -> Harness {
        recorder();
        let client = build_client(&UpstreamConfig::clone(&config.upstream), None).unwrap();
        let layer = AuthzLayer::for_bucket(
            &config.buckets[0],
            &shared.authz,
            &mut || Ok(client.clone()),
            "buckets[0]",
        )
        .unwrap();
        let forwarded = Arc::new(AtomicUsize::new(0));
        let counter = forwarded.clone();
        let stub = tower::service_fn(move |_request: Request<ProxyBody>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, ProxyError>(Response::new(full("object bytes"))) }
        });
        let service = match layer {
            Some(layer) => tower::util::BoxCloneSyncService::new(layer.layer(stub)),
            None => tower::util::BoxCloneSyncService::new(stub),
        };
        Harness { service, forwarded }
    }

    /// Sends `method key` with optional claims and extra headers; returns the
    /// status the client would get.
    async fn send(
        &self,
        method: &str,
        key: &str,
        claims: Option<Value>,
        headers: &[(&str, &str)],
    ) -> StatusCode {
        let path = format!("/private/{key}");
        let mut request = Request::builder().method(method).uri(&path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(empty()).unwrap();
        let ext = request.extensions_mut();
        ext.insert(ObjectKey(key.to_owned()));
        ext.insert(SafePath(path));
        ext.insert(ClientAddr(SocketAddr::from(([10, 0, 0, 7], 40000))));
        if let Some(Value::Object(map)) = claims {
            ext.insert(VerifiedClaims {
                subject: map.get("sub").and_then(Value::as_str).map(str::to_owned),
                key_id: None,
                claims: Arc::new(map),
                payload: None,
            });
        }
        match self.service.clone().oneshot(request).await {
            Ok(response) => response.status(),
            Err(e) => {
                if e.status() == StatusCode::SERVICE_UNAVAILABLE {
                    assert_eq!(e.source_kind(), ErrorSource::Upstream);
                }
                e.status()
            }
        }
    }

    fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }
}

/// The layer of the configuration's only bucket, for engines that need no
/// connection pool.
fn layer_without_client(config: &Config) -> Result<Option<AuthzLayer>, yatagarasu::BuildError> {
    let shared = Shared::default();
    let mut no_client = || Err("this engine needs no connection pool".to_owned());
    AuthzLayer::for_bucket(
        &config.buckets[0],
        &shared.authz,
        &mut no_client,
        "buckets[0]",
    )
}

fn reader() -> Option<Value> {
    Some(json!({"sub": "alice", "role": "reader"}))
}

// ---------------------------------------------------------------- embedded Rego

#[tokio::test]
async fn rego_allows_by_claim_and_denies_by_claim_path_and_method() {
    let h = Harness::new(&config("rego-basic", &rego("s3.rego")), &Shared::default());
    assert_eq!(h.send("GET", "docs/a.txt", reader(), &[]).await, 200);
    assert_eq!(h.forwarded(), 1);
    // Denied by claim.
    let guest = Some(json!({"sub": "bob", "role": "guest"}));
    assert_eq!(h.send("GET", "docs/a.txt", guest, &[]).await, 403);
    // Denied by path.
    assert_eq!(h.send("GET", "secret/plans.txt", reader(), &[]).await, 403);
    // Denied by method.
    assert_eq!(h.send("HEAD", "docs/a.txt", reader(), &[]).await, 403);
    assert_eq!(h.forwarded(), 1, "nothing denied reached the inner service");
    assert_eq!(decisions("rego-basic", "rego", "allow"), 1);
    assert_eq!(decisions("rego-basic", "rego", "deny"), 3);
}

#[tokio::test]
async fn rego_sees_the_documented_input_document() {
    let h = Harness::new(
        &config("private", &rego("input_fields.rego")),
        &Shared::default(),
    );
    let claims = Some(json!({"sub": "alice", "org": {"id": "acme"}}));
    let headers = [
        ("X-Tenant", "acme"),
        ("Accept", "text/plain"),
        ("Accept", "*/*"),
        ("Authorization", "Bearer not-for-policies"),
        ("Cookie", "session=not-for-policies"),
    ];
    assert_eq!(
        h.send("GET", "docs/a.txt", claims.clone(), &headers).await,
        200
    );
    // Any field off by one value and the same policy denies.
    let other_org = Some(json!({"sub": "alice", "org": {"id": "initech"}}));
    assert_eq!(h.send("GET", "docs/a.txt", other_org, &headers).await, 403);
    assert_eq!(
        h.send("GET", "docs/a.txt", claims, &headers[..1]).await,
        403
    );
}

#[tokio::test]
async fn without_verified_claims_the_input_has_null_claims() {
    let h = Harness::new(&config("rego-anon", &rego("s3.rego")), &Shared::default());
    assert_eq!(h.send("GET", "public/logo.png", None, &[]).await, 200);
    assert_eq!(h.send("HEAD", "public/logo.png", None, &[]).await, 200);
    assert_eq!(h.send("GET", "docs/a.txt", None, &[]).await, 403);
    assert_eq!(h.forwarded(), 2);
}

#[tokio::test]
async fn an_edited_policy_is_a_new_generation_with_its_own_cache() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.rego");
    let write = |allow: bool| {
        std::fs::write(
            &file,
            format!("package yatagarasu\nimport rego.v1\ndefault allow := {allow}\n"),
        )
        .unwrap();
    };
    write(true);
    let authorization = format!("type: rego\npolicy_path: {:?}", file.display().to_string());
    let shared = Shared::default();
    let first = Harness::new(&config("rego-edit", &authorization), &shared);
    assert_eq!(first.send("GET", "a", None, &[]).await, 200);
    write(false);
    // A reload loads the configuration again, which compiles the edited policy.
    let second = Harness::new(&config("rego-edit", &authorization), &shared);
    // The cached "allow" of the first policy does not answer for the second.
    assert_eq!(second.send("GET", "a", None, &[]).await, 403);
    assert_eq!(shared.authz.decision_caches(), 2);
    drop(first);
    assert_eq!(shared.authz.decision_caches(), 1);
}

#[test]
fn a_policy_that_no_longer_parses_fails_the_reload() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.rego");
    std::fs::write(&file, "package yatagarasu\nimport rego.v1\nallow := true\n").unwrap();
    let authorization = format!("type: rego\npolicy_path: {:?}", file.display().to_string());
    let cfg = config("rego-broken", &authorization);
    std::fs::copy(policy_path("broken.rego"), &file).unwrap();
    // The configuration in force carries the policy compiled when it was loaded.
    assert!(layer_without_client(&cfg).unwrap().is_some());
    // Loading it again (a reload, `check`) refuses the broken file.
    let e = Config::from_yaml_str(&config_text("rego-broken", &authorization)).unwrap_err();
    assert_eq!(e.0[0].path, "buckets[0].auth.authorization.policy_path");
    assert!(e.0[0].message.contains("p.rego does not compile"), "{e}");
}

// ---------------------------------------------------------------- OPA

fn opa(peer: &PolicyPeer, extra: &str) -> String {
    format!(
        "type: opa\nurl: {}/v1/data/yatagarasu/allow\ntimeout_ms: 2000\n{extra}",
        peer.base_url()
    )
}

#[tokio::test]
async fn opa_data_api_contract() {
    let peer = PolicyPeer::opa_rego("s3.rego", "data.yatagarasu.allow").await;
    let h = Harness::new(&config("opa-contract", &opa(&peer, "")), &Shared::default());
    let headers = [("authorization", "Bearer t0ken"), ("x-tenant", "acme")];
    assert_eq!(h.send("GET", "docs/a.txt", reader(), &headers).await, 200);
    assert_eq!(h.send("GET", "secret/x", reader(), &headers).await, 403);
    assert_eq!(h.forwarded(), 1);

    let requests = peer.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/v1/data/yatagarasu/allow");
    assert_eq!(first.headers["content-type"], "application/json");
    assert!(first.headers.get("authorization").is_none());
    assert_eq!(
        first.body,
        json!({"input": {
            "method": "GET",
            "path": "/private/docs/a.txt",
            "bucket": "opa-contract",
            "key": "docs/a.txt",
            "claims": {"sub": "alice", "role": "reader"},
            "client_ip": "10.0.0.7",
            "headers": {"x-tenant": "acme"},
        }})
    );
    assert_eq!(decisions("opa-contract", "opa", "allow"), 1);
    assert_eq!(decisions("opa-contract", "opa", "deny"), 1);
}

#[tokio::test]
async fn opa_result_shapes() {
    let peer = PolicyPeer::start(PeerAnswer::Json(json!({"result": {"allow": true}}))).await;
    let h = Harness::new(
        &config(
            "opa-shapes",
            &opa(
                &peer,
                "decision_cache_ttl_seconds: 1\nnegative_decision_cache_ttl_seconds: 0",
            ),
        ),
        &Shared::default(),
    );
    assert_eq!(h.send("GET", "a", None, &[]).await, 200);
    peer.set_answer(PeerAnswer::Json(json!({"result": {"allow": false}})));
    assert_eq!(h.send("GET", "b", None, &[]).await, 403);
    // Undefined (no rule matched): deny.
    peer.set_answer(PeerAnswer::Json(json!({})));
    assert_eq!(h.send("GET", "c", None, &[]).await, 403);
    peer.set_answer(PeerAnswer::Json(json!({"result": false})));
    assert_eq!(h.send("GET", "d", None, &[]).await, 403);
    // Not a documented shape: the engine failed, and the bucket fails closed.
    peer.set_answer(PeerAnswer::Json(json!({"result": "yes"})));
    assert_eq!(h.send("GET", "e", None, &[]).await, 503);
    assert_eq!(h.forwarded(), 1);
}

#[tokio::test]
async fn opa_unreachable_fails_closed_by_default() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let cfg = config(
        "opa-down",
        &format!("type: opa\nurl: {url}/v1/data/yatagarasu/allow"),
    );
    let h = Harness::new(&cfg, &Shared::default());
    assert_eq!(h.send("GET", "docs/a.txt", reader(), &[]).await, 503);
    assert_eq!(h.forwarded(), 0);
    assert_eq!(decisions("opa-down", "opa", "error"), 1);
}

#[tokio::test]
async fn opa_error_status_fails_closed_and_open() {
    let peer = PolicyPeer::start(PeerAnswer::Status(500)).await;
    let closed = Harness::new(
        &config("opa-500-closed", &opa(&peer, "")),
        &Shared::default(),
    );
    assert_eq!(closed.send("GET", "a", None, &[]).await, 503);
    assert_eq!(closed.forwarded(), 0);
    assert_eq!(decisions("opa-500-closed", "opa", "error"), 1);

    let open = Harness::new(
        &config("opa-500-open", &opa(&peer, "fail: open")),
        &Shared::default(),
    );
    assert_eq!(open.send("GET", "a", None, &[]).await, 200);
    assert_eq!(open.forwarded(), 1);
    assert_eq!(decisions("opa-500-open", "opa", "error"), 1);
    // Errors are not cached: the next request asks again.
    assert_eq!(open.send("GET", "a", None, &[]).await, 200);
    assert_eq!(peer.request_count(), 3);
}

#[tokio::test]
async fn opa_timeout_fails_closed_and_open() {
    let peer = PolicyPeer::start(PeerAnswer::Hang).await;
    let cfg = |name: &str, fail: &str| {
        config(
            name,
            &format!(
                "type: opa\nurl: {}/v1/data/yatagarasu/allow\ntimeout_ms: 100\nfail: {fail}",
                peer.base_url()
            ),
        )
    };
    let closed = Harness::new(&cfg("opa-slow-closed", "closed"), &Shared::default());
    assert_eq!(closed.send("GET", "a", None, &[]).await, 503);
    let open = Harness::new(&cfg("opa-slow-open", "open"), &Shared::default());
    assert_eq!(open.send("GET", "a", None, &[]).await, 200);
    assert_eq!(open.forwarded(), 1);
    assert_eq!(decisions("opa-slow-closed", "opa", "error"), 1);
    assert_eq!(decisions("opa-slow-open", "opa", "error"), 1);
}

#[tokio::test]
async fn opa_decisions_are_cached_per_input() {
    let peer = PolicyPeer::opa_rego("s3.rego", "data.yatagarasu.allow").await;
    let h = Harness::new(&config("opa-cache", &opa(&peer, "")), &Shared::default());
    let hits_before = counter(
        "yatagarasu_authz_decision_cache_total",
        &[("engine", "opa"), ("result", "hit")],
    );
    for _ in 0..3 {
        assert_eq!(h.send("GET", "docs/a.txt", reader(), &[]).await, 200);
        assert_eq!(h.send("GET", "secret/x", reader(), &[]).await, 403);
    }
    assert_eq!(peer.request_count(), 2, "one question per distinct input");
    assert_eq!(h.forwarded(), 3);
    // A different input is a different question.
    assert_eq!(h.send("GET", "docs/b.txt", reader(), &[]).await, 200);
    assert_eq!(peer.request_count(), 3);
    assert_eq!(decisions("opa-cache", "opa", "allow"), 4);
    assert_eq!(decisions("opa-cache", "opa", "deny"), 3);
    let hits = counter(
        "yatagarasu_authz_decision_cache_total",
        &[("engine", "opa"), ("result", "hit")],
    );
    assert!(hits >= hits_before + 4, "{hits_before} -> {hits}");
}

#[tokio::test]
async fn decision_caches_survive_a_rebuild_with_the_same_configuration() {
    let peer = PolicyPeer::opa_rego("s3.rego", "data.yatagarasu.allow").await;
    let shared = Shared::default();
    let cfg = config("opa-reload", &opa(&peer, ""));
    let first = Harness::new(&cfg, &shared);
    assert_eq!(first.send("GET", "docs/a.txt", reader(), &[]).await, 200);
    // The next generation, same configuration: answered from the kept cache.
    let second = Harness::new(&cfg, &shared);
    drop(first);
    assert_eq!(second.send("GET", "docs/a.txt", reader(), &[]).await, 200);
    assert_eq!(peer.request_count(), 1);
    // A changed configuration starts a new cache.
    let third = Harness::new(
        &config("opa-reload", &opa(&peer, "decision_cache_ttl_seconds: 30")),
        &shared,
    );
    drop(second);
    assert_eq!(third.send("GET", "docs/a.txt", reader(), &[]).await, 200);
    assert_eq!(peer.request_count(), 2);
    assert_eq!(shared.authz.decision_caches(), 1);
}

// ---------------------------------------------------------------- OpenFGA

fn openfga(peer: &PolicyPeer, extra: &str) -> String {
    let timeout = if extra.contains("timeout_ms") {
        ""
    } else {
        "timeout_ms: 2000\n"
    };
    format!(
        "type: openfga\nendpoint: {}\nstore_id: 01STORE\n{timeout}{extra}",
        peer.base_url()
    )
}

#[tokio::test]
async fn openfga_check_api_contract() {
    let peer = PolicyPeer::openfga(&[("user:alice", "viewer", "file:fga/docs/a.txt")]).await;
    let h = Harness::new(
        &config(
            "fga",
            &openfga(
                &peer,
                "authorization_model_id: 01MODEL\napi_token: fga-t0ken",
            ),
        ),
        &Shared::default(),
    );
    assert_eq!(h.send("GET", "docs/a.txt", reader(), &[]).await, 200);
    assert_eq!(h.send("GET", "docs/b.txt", reader(), &[]).await, 403);
    let bob = Some(json!({"sub": "bob"}));
    assert_eq!(h.send("GET", "docs/a.txt", bob, &[]).await, 403);
    assert_eq!(h.forwarded(), 1);

    let requests = peer.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/stores/01STORE/check");
    assert_eq!(requests[0].headers["authorization"], "Bearer fga-t0ken");
    assert_eq!(
        requests[0].body,
        json!({
            "tuple_key": {"user": "user:alice", "relation": "viewer", "object": "file:fga/docs/a.txt"},
            "authorization_model_id": "01MODEL",
        })
    );
    assert_eq!(decisions("fga", "openfga", "allow"), 1);
    assert_eq!(decisions("fga", "openfga", "deny"), 2);
}

#[tokio::test]
async fn openfga_options_shape_the_check() {
    let peer = PolicyPeer::openfga(&[("user:42", "reader", "doc:a.txt")]).await;
    let h = Harness::new(
        &config(
            "fga-options",
            &openfga(
                &peer,
                "user_claim: org.user_id\nobject: \"doc:{key}\"\nrelation: reader",
            ),
        ),
        &Shared::default(),
    );
    let claims = Some(json!({"sub": "alice", "org": {"user_id": 42}}));
    assert_eq!(h.send("GET", "a.txt", claims.clone(), &[]).await, 200);
    let requests = peer.requests();
    assert_eq!(
        requests[0].body,
        json!({"tuple_key": {"user": "user:42", "relation": "reader", "object": "doc:a.txt"}})
    );
    assert!(requests[0].headers.get("authorization").is_none());
    // The check tuple is the cache key: other headers do not matter.
    assert_eq!(
        h.send("GET", "a.txt", claims, &[("x-other", "1")]).await,
        200
    );
    assert_eq!(peer.request_count(), 1);
}

#[tokio::test]
async fn openfga_without_a_user_is_denied_without_asking() {
    let peer = PolicyPeer::openfga(&[]).await;
    let h = Harness::new(
        &config("fga-nouser", &openfga(&peer, "")),
        &Shared::default(),
    );
    assert_eq!(h.send("GET", "a.txt", None, &[]).await, 403);
    assert_eq!(
        h.send("GET", "a.txt", Some(json!({"role": "x"})), &[])
            .await,
        403
    );
    assert_eq!(peer.request_count(), 0);
    assert_eq!(decisions("fga-nouser", "openfga", "deny"), 2);
}

#[tokio::test]
async fn openfga_failures_follow_the_fail_mode() {
    let peer = PolicyPeer::start(PeerAnswer::Json(json!({"code": "validation_error"}))).await;
    let closed = Harness::new(&config("fga-bad", &openfga(&peer, "")), &Shared::default());
    assert_eq!(closed.send("GET", "a", reader(), &[]).await, 503);
    peer.set_answer(PeerAnswer::Hang);
    let open = Harness::new(
        &config("fga-open", &openfga(&peer, "timeout_ms: 100\nfail: open")),
        &Shared::default(),
    );
    assert_eq!(open.send("GET", "a", reader(), &[]).await, 200);
    assert_eq!(decisions("fga-bad", "openfga", "error"), 1);
    assert_eq!(decisions("fga-open", "openfga", "error"), 1);
}

// ---------------------------------------------------------------- pass-through

#[tokio::test]
async fn buckets_without_a_policy_pass_through() {
    let text = "buckets:\n  - name: open\n    path_prefix: /private\n    s3: {bucket: my-bucket, \
                region: us-east-1, endpoint: 'http://127.0.0.1:1', anonymous: true}\n";
    let cfg = Config::from_yaml_str(text).unwrap();
    assert!(
        layer_without_client(&cfg).unwrap().is_none(),
        "no policy, no layer"
    );
    let h = Harness::new(&cfg, &Shared::default());
    assert_eq!(h.send("GET", "anything", None, &[]).await, 200);
    assert_eq!(h.forwarded(), 1);
}

/// The layer keeps the `Service` contract: poll_ready before each call.
#[tokio::test]
async fn ready_then_call() {
    let h = Harness::new(&config("rego-ready", &rego("s3.rego")), &Shared::default());
    let mut service = h.service.clone();
    let request = || {
        let mut r = Request::get("/private/public/x").body(empty()).unwrap();
        r.extensions_mut().insert(ObjectKey("public/x".into()));
        r
    };
    let first = service
        .ready()
        .await
        .unwrap()
        .call(request())
        .await
        .unwrap();
    let second = service
        .ready()
        .await
        .unwrap()
        .call(request())
        .await
        .unwrap();
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
}

// ---------------------------------------------------------------- connection pools

/// The policy engine's connection pool is one the generation uses, like each
/// bucket's own: kept while its generation is live and reused by the next,
/// not dropped at the swap.
#[tokio::test]
async fn the_policy_engine_pool_belongs_to_its_generation() {
    let peer = PolicyPeer::opa_rego("s3.rego", "data.yatagarasu.allow").await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, common::generate_pki().ca_pem).unwrap();
    // The bucket trusts an extra CA, so its pool differs from the engine's.
    let text = format!(
        "buckets:\n  - name: pools\n    path_prefix: /private\n    s3:\n      bucket: my-bucket\n      \
         region: us-east-1\n      endpoint: https://127.0.0.1:1\n      anonymous: true\n      \
         ca_cert_path: {:?}\n    auth:\n      authorization:\n        type: opa\n        \
         url: {}/v1/data/yatagarasu/allow\n",
        ca.to_str().unwrap(),
        peer.base_url()
    );
    let config = Config::from_yaml_str(&text).unwrap();
    let proxy = yatagarasu::Proxy::builder(config.clone()).build().unwrap();
    assert_eq!(
        proxy.client_pools(),
        2,
        "the bucket's pool and the engine's"
    );
    proxy.reload(config).unwrap();
    assert_eq!(
        proxy.client_pools(),
        2,
        "both reused by the next generation"
    );
}
