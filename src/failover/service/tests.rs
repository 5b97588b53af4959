use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use tower::service_fn;
use tower::util::BoxCloneSyncService;

use super::*;
use crate::body::{empty, full};
use crate::route::ObjectKey;

type Boxed = BoxCloneSyncService<Request<ProxyBody>, Response<ProxyBody>, ProxyError>;

type Outcome = Result<Response<ProxyBody>, ProxyError>;

/// A replica that answers with `outcome` and counts its calls.
fn replica(name: &str, calls: &Arc<AtomicUsize>, outcome: fn() -> Outcome) -> Target<Boxed> {
    let calls = calls.clone();
    let service = service_fn(move |request: Request<ProxyBody>| {
        calls.fetch_add(1, Ordering::SeqCst);
        // The copy keeps the extensions the inner layers need.
        assert!(request.extensions().get::<ObjectKey>().is_some());
        std::future::ready(outcome())
    });
    Target {
        name: Arc::from(name),
        service: BoxCloneSyncService::new(service),
    }
}

fn ok() -> Outcome {
    Ok(Response::new(full("served")))
}

fn s3(status: u16, code: &str) -> ProxyError {
    ProxyError::S3 {
        status: StatusCode::from_u16(status).unwrap(),
        code: code.into(),
        message: String::new(),
    }
}

fn request(method: Method) -> Request<ProxyBody> {
    let mut request = Request::builder()
        .method(method)
        .uri("/b/k")
        .body(empty())
        .unwrap();
    request.extensions_mut().insert(ObjectKey("k".into()));
    request
}

async fn run(outcomes: [fn() -> Outcome; 3], method: Method) -> (Outcome, [usize; 3]) {
    let counts: [Arc<AtomicUsize>; 3] = Default::default();
    let targets = ["one", "two", "three"]
        .iter()
        .zip(&counts)
        .zip(outcomes)
        .map(|((name, calls), outcome)| replica(name, calls, outcome))
        .collect();
    let failover = Failover::new(Arc::from("b"), targets).unwrap();
    let outcome = failover.oneshot(request(method)).await;
    (outcome, counts.map(|c| c.load(Ordering::SeqCst)))
}

#[tokio::test]
async fn the_first_healthy_replica_answers() {
    let (outcome, calls) = run([ok, ok, ok], Method::GET).await;
    assert!(outcome.is_ok());
    assert_eq!(calls, [1, 0, 0]);
    let (outcome, calls) = run(
        [
            || Err(ProxyError::Connect("refused".into())),
            || Err(s3(503, "SlowDown")),
            ok,
        ],
        Method::HEAD,
    )
    .await;
    assert!(outcome.is_ok());
    assert_eq!(calls, [1, 1, 1]);
}

#[tokio::test]
async fn a_final_answer_is_not_failed_over() {
    for final_answer in [
        (|| Err(s3(404, "NoSuchKey"))) as fn() -> _,
        || Err(s3(403, "AccessDenied")),
        || Err(s3(412, "PreconditionFailed")),
        || Err(s3(416, "InvalidRange")),
    ] {
        let (outcome, calls) = run([final_answer, ok, ok], Method::GET).await;
        assert!(outcome.is_err());
        assert_eq!(calls, [1, 0, 0]);
    }
}

#[tokio::test]
async fn at_most_replicas_minus_one_failovers() {
    let (outcome, calls) = run(
        [
            || Err(ProxyError::Timeout(Duration::from_secs(1))),
            || {
                Err(ProxyError::CircuitOpen {
                    retry_after: Duration::from_secs(1),
                })
            },
            || Err(s3(500, "InternalError")),
        ],
        Method::GET,
    )
    .await;
    // The last replica's answer is the answer.
    assert!(matches!(outcome, Err(ProxyError::S3 { status, .. }) if status == 500));
    assert_eq!(calls, [1, 1, 1]);
}

#[tokio::test]
async fn other_methods_go_to_the_first_replica_only() {
    let (outcome, calls) = run(
        [|| Err(ProxyError::Connect("refused".into())), ok, ok],
        Method::PUT,
    )
    .await;
    assert!(outcome.is_err());
    assert_eq!(calls, [1, 0, 0]);
}
