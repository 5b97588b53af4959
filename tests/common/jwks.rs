//! JWT helpers for the auth tests: fixture keys, token signing, and a real
//! HTTP server publishing a JWKS document that tests can change at run time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A 32-byte HMAC secret for the tests.
pub(crate) const SECRET: &str = "test-secret-0123456789-abcdefghij";

/// Path of a key under `tests/fixtures/jwt/`.
pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

/// Path of a fixture as YAML text.
pub(crate) fn fixture_yaml(name: &str) -> String {
    crate::common::q(fixture(name).to_str().unwrap())
}

/// The signing key for `alg` from a private-key fixture (or [`SECRET`] for HS*).
pub(crate) fn signing_key(alg: Algorithm, private_pem: &str) -> EncodingKey {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            EncodingKey::from_secret(SECRET.as_bytes())
        }
        _ => {
            let pem = std::fs::read(fixture(private_pem)).unwrap();
            match alg {
                Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem).unwrap(),
                Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem).unwrap(),
                _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
            }
        }
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims valid for an hour, with `sub`, plus `extra` merged in.
pub(crate) fn claims(extra: Value) -> Value {
    let mut c = json!({"sub": "user-42", "iat": now(), "exp": now() + 3600});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

/// A token signed with `key` under `alg`, with an optional `kid`.
pub(crate) fn sign_with(
    alg: Algorithm,
    key: &EncodingKey,
    kid: Option<&str>,
    claims: &Value,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A token for `alg` signed with the private-key fixture (ignored for HS*).
pub(crate) fn sign(alg: Algorithm, private_pem: &str, kid: Option<&str>, claims: &Value) -> String {
    sign_with(alg, &signing_key(alg, private_pem), kid, claims)
}

/// The public JWK (with `kid` and `alg`) of a private-key fixture.
pub(crate) fn public_jwk(alg: Algorithm, private_pem: &str, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(&signing_key(alg, private_pem), alg).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).unwrap()
}

#[derive(Clone)]
struct JwksState {
    document: Arc<Mutex<Value>>,
    up: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
}

/// An HTTP server publishing a JWKS document at `/jwks.json`; the document
/// can be replaced and the server switched to answering 503.
pub(crate) struct JwksServer {
    addr: SocketAddr,
    state: JwksState,
    task: JoinHandle<()>,
}

async fn serve_jwks(State(state): State<JwksState>) -> impl IntoResponse {
    state.hits.fetch_add(1, Ordering::SeqCst);
    if !state.up.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, String::from("down")).into_response();
    }
    let body = state.document.lock().unwrap().to_string();
    ([("content-type", "application/json")], body).into_response()
}

impl JwksServer {
    /// Starts serving `{"keys": keys}`.
    pub(crate) async fn start(keys: Vec<Value>) -> JwksServer {
        let state = JwksState {
            document: Arc::new(Mutex::new(json!({ "keys": keys }))),
            up: Arc::new(AtomicBool::new(true)),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .route("/jwks.json", get(serve_jwks))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        JwksServer { addr, state, task }
    }

    /// The document's URL.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    /// Publishes `{"keys": keys}` from now on.
    pub(crate) fn publish(&self, keys: Vec<Value>) {
        *self.state.document.lock().unwrap() = json!({ "keys": keys });
    }

    /// Answers 503 (`false`) or the document (`true`).
    pub(crate) fn set_up(&self, up: bool) {
        self.state.up.store(up, Ordering::SeqCst);
    }

    /// How many times the document was requested.
    pub(crate) fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
