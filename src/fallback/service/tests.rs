use std::sync::atomic::{AtomicUsize, Ordering};

use tower::service_fn;
use tower::util::BoxCloneSyncService;

use super::*;
use crate::body::{empty, full};

type Boxed = BoxCloneSyncService<Request<ProxyBody>, Response<ProxyBody>, ProxyError>;

fn s3(status: u16, code: &str) -> ProxyError {
    ProxyError::S3 {
        status: StatusCode::from_u16(status).unwrap(),
        code: code.into(),
        message: String::new(),
    }
}

/// A service answering with `outcome`, counting its calls.
fn answering(calls: &Arc<AtomicUsize>, outcome: fn() -> Outcome) -> Boxed {
    let calls = calls.clone();
    BoxCloneSyncService::new(service_fn(move |request: Request<ProxyBody>| {
        calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(request.headers()["range"], "bytes=0-1");
        std::future::ready(outcome())
    }))
}

async fn run(primary: fn() -> Outcome, fallback: fn() -> Outcome) -> (Outcome, usize) {
    let calls = Arc::new(AtomicUsize::new(0));
    let fallback_calls = Arc::new(AtomicUsize::new(0));
    let service = tower::Layer::layer(
        &super::super::FallbackLayer::new(Arc::from("b"), answering(&fallback_calls, fallback)),
        answering(&calls, primary),
    );
    let request = Request::builder()
        .uri("/b/k")
        .header("range", "bytes=0-1")
        .body(empty())
        .unwrap();
    let outcome = service.oneshot(request).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    (outcome, fallback_calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn no_such_key_asks_the_fallback_whose_answer_is_final() {
    let (outcome, asked) = run(
        || Err(s3(404, "NoSuchKey")),
        || Ok(Response::new(full("old"))),
    )
    .await;
    assert!(outcome.is_ok());
    assert_eq!(asked, 1);
    let (outcome, asked) = run(|| Err(s3(404, "")), || Err(s3(404, "NoSuchKey"))).await;
    assert!(matches!(outcome, Err(e) if is_no_such_key(&e)));
    assert_eq!(asked, 1);
}

#[tokio::test]
async fn other_answers_do_not_ask_the_fallback() {
    for primary in [
        (|| Ok(Response::new(full("new")))) as fn() -> Outcome,
        || Err(s3(403, "AccessDenied")),
        || Err(s3(416, "InvalidRange")),
        || Err(s3(404, "NoSuchBucket")),
        || Err(s3(503, "SlowDown")),
    ] {
        let (_, asked) = run(primary, || Ok(Response::new(full("old")))).await;
        assert_eq!(asked, 0);
    }
}
