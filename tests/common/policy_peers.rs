//! In-test stand-ins for the policy services the proxy talks to.
//!
//! * [`PolicyPeer::opa_rego`]: an OPA Data API that evaluates a real Rego
//!   policy with `regorus` on the posted `{"input": …}`.
//! * [`PolicyPeer::openfga`]: an OpenFGA Check API answering from a tuple list.
//! * [`PeerAnswer`]: fixed answers, error statuses and hangs, switchable at
//!   runtime, for the contract's edges (answer shapes, outages, timeouts).
//!
//! Every request is recorded (method, path, headers, parsed JSON body).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the peer answers.
#[derive(Clone)]
pub(crate) enum PeerAnswer {
    /// OPA: evaluates `rule` of the loaded policy on `body.input`: `{"result": <value>}`.
    OpaRego {
        engine: Box<regorus::Engine>,
        rule: String,
    },
    /// OpenFGA: `{"allowed": true}` when `(user, relation, object)` is listed.
    OpenFga {
        tuples: Vec<(String, String, String)>,
    },
    /// This JSON, status 200.
    Json(Value),
    /// This status with an error body.
    Status(u16),
    /// Never answers.
    Hang,
}

/// One request the peer received.
#[derive(Debug, Clone)]
pub(crate) struct PeerRequest {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Value,
}

/// A policy service on a local port.
pub(crate) struct PolicyPeer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<PeerRequest>>>,
    answer: Arc<Mutex<PeerAnswer>>,
    task: JoinHandle<()>,
}

impl PolicyPeer {
    /// Starts a peer with the given answer.
    pub(crate) async fn start(answer: PeerAnswer) -> PolicyPeer {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new(answer));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (rec, ans) = (requests.clone(), answer.clone());
        let router = axum::Router::new().fallback(move |request: Request| {
            let (rec, ans) = (rec.clone(), ans.clone());
            async move { handle(request, &rec, &ans).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        PolicyPeer {
            addr,
            requests,
            answer,
            task,
        }
    }

    /// An OPA stand-in evaluating `policy` (a file under tests/fixtures/policies) for `rule`.
    pub(crate) async fn opa_rego(policy: &str, rule: &str) -> PolicyPeer {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy_from_file(policy_path(policy))
            .expect("fixture policy compiles");
        PolicyPeer::start(PeerAnswer::OpaRego {
            engine: Box::new(engine),
            rule: rule.to_owned(),
        })
        .await
    }

    /// An OpenFGA stand-in that allows exactly `tuples` (user, relation, object).
    pub(crate) async fn openfga(tuples: &[(&str, &str, &str)]) -> PolicyPeer {
        let tuples = tuples
            .iter()
            .map(|(u, r, o)| (u.to_string(), r.to_string(), o.to_string()))
            .collect();
        PolicyPeer::start(PeerAnswer::OpenFga { tuples }).await
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the answer for the following requests.
    pub(crate) fn set_answer(&self, answer: PeerAnswer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Every request received so far.
    pub(crate) fn requests(&self) -> Vec<PeerRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// How many requests were received so far.
    pub(crate) fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

impl Drop for PolicyPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The path of a policy fixture.
pub(crate) fn policy_path(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/policies")
        .join(name)
        .display()
        .to_string()
}

async fn handle(
    request: Request,
    requests: &Mutex<Vec<PeerRequest>>,
    answer: &Mutex<PeerAnswer>,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    requests.lock().unwrap().push(PeerRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let answer = answer.lock().unwrap().clone();
    match answer {
        PeerAnswer::OpaRego { mut engine, rule } => {
            let input = serde_json::to_string(&body["input"]).unwrap();
            engine.set_input(regorus::Value::from_json_str(&input).unwrap());
            let result = engine.eval_rule(rule).unwrap();
            if result == regorus::Value::Undefined {
                json_response(200, json!({}))
            } else {
                let result: Value = serde_json::from_str(&result.to_json_str().unwrap()).unwrap();
                json_response(200, json!({ "result": result }))
            }
        }
        PeerAnswer::OpenFga { tuples } => {
            let key = &body["tuple_key"];
            let allowed = tuples.iter().any(|(u, r, o)| {
                key["user"] == u.as_str()
                    && key["relation"] == r.as_str()
                    && key["object"] == o.as_str()
            });
            json_response(200, json!({ "allowed": allowed, "resolution": "" }))
        }
        PeerAnswer::Json(value) => json_response(200, value),
        PeerAnswer::Status(status) => json_response(status, json!({"code": "internal_error"})),
        PeerAnswer::Hang => std::future::pending().await,
    }
}

fn json_response(status: u16, value: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(value.to_string()))
        .unwrap()
}
