//! Slices against a stub S3: aligned requests, reuse, and a version change
//! (S3's `412` to the `If-Match`, or another ETag) breaking the answer off.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, Request, Response, StatusCode, header};

use super::*;
use crate::body::{ProxyBody, full};
use crate::cache::service::CacheContext;
use crate::config::CacheConfig;
use crate::error::ProxyError;

const SIZE: u64 = 10;
const OBJECT: &[u8] = b"0123456789abcdefghijKLMNO";

/// What the stub S3 does with a slice request: its Range and If-Match.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A stub answering slice requests from `OBJECT` with ETag `etag`, or
/// 412 when the If-Match differs and `honours_if_match`.
fn stub(etag: &'static str, honours_if_match: bool, seen: Seen) -> Inner {
    Inner::new(tower::service_fn(move |request: Request<ProxyBody>| {
        let seen = seen.clone();
        async move {
            let header = |name| {
                request
                    .headers()
                    .get(name)
                    .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
                    .unwrap_or_default()
            };
            let (range, if_match) = (header(header::RANGE), header(header::IF_MATCH));
            seen.lock().unwrap().push((range.clone(), if_match.clone()));
            if honours_if_match && if_match != etag {
                return Err(ProxyError::S3 {
                    status: StatusCode::PRECONDITION_FAILED,
                    code: "PreconditionFailed".into(),
                    message: String::new(),
                });
            }
            let (first, last) = range.trim_start_matches("bytes=").split_once('-').unwrap();
            let (first, last): (usize, usize) = (first.parse().unwrap(), last.parse().unwrap());
            let last = last.min(OBJECT.len() - 1);
            let mut response = Response::new(full(Bytes::from_static(&OBJECT[first..=last])));
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let headers = response.headers_mut();
            headers.insert(header::ETAG, HeaderValue::from_static(etag));
            let content_range = format!("bytes {first}-{last}/{}", OBJECT.len());
            headers.insert(header::CONTENT_RANGE, content_range.parse().unwrap());
            Ok::<_, ProxyError>(response)
        }
    }))
}

struct Fixture {
    context: CacheContext,
    key: CacheKey,
    counters: Arc<BucketCounters>,
}

fn fixture() -> Fixture {
    let store = Store::new(&CacheConfig::default(), Default::default()).unwrap();
    Fixture {
        context: CacheContext {
            store: Arc::new(store),
            stale_if_error: Duration::ZERO,
            coalesce_wait: Duration::from_secs(5),
        },
        key: CacheKey {
            bucket: Arc::from("b"),
            backend: Default::default(),
            object: "film.mp4".into(),
            version_id: None,
        },
        counters: Arc::new(BucketCounters::new(&Arc::from("b"))),
    }
}

fn slicer(fixture: &Fixture, inner: Inner) -> Arc<Slicer> {
    let meta = ObjectMeta {
        headers: http::HeaderMap::new(),
        content_length: OBJECT.len() as u64,
        etag: Some("\"v1\"".into()),
        last_modified: None,
        stored_at: SystemTime::now(),
        fresh_until: SystemTime::now() + Duration::from_secs(60),
    };
    describe(&fixture.context.store, &fixture.key, &meta, 0);
    let setup = SliceSetup {
        context: &fixture.context,
        key: &fixture.key,
        size: SIZE,
        counters: &fixture.counters,
    };
    let parts = Request::new(()).into_parts().0;
    Slicer::new(setup, meta, inner, parts).unwrap()
}

/// The bytes of `range` read through `slicer`, and whether it broke off.
async fn read(slicer: &Arc<Slicer>, range: Range<u64>) -> (Vec<u8>, bool) {
    let mut stream = slicer.clone().stream(range);
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(_) => return (bytes, true),
        }
    }
    (bytes, false)
}

#[tokio::test]
async fn ranges_are_read_from_aligned_slices_fetched_once() {
    let fixture = fixture();
    let seen = Seen::default();
    let slicer = slicer(&fixture, stub("\"v1\"", true, seen.clone()));
    assert_eq!(read(&slicer, 5..23).await, (OBJECT[5..23].to_vec(), false));
    assert_eq!(read(&slicer, 0..25).await, (OBJECT.to_vec(), false));
    let asked: Vec<String> = seen.lock().unwrap().iter().map(|s| s.0.clone()).collect();
    assert_eq!(asked, ["bytes=0-9", "bytes=10-19", "bytes=20-24"]);
    assert!(seen.lock().unwrap().iter().all(|s| s.1 == "\"v1\""));
    assert!(slicer.cached_in_memory(&http::HeaderMap::new()));
}

#[tokio::test]
async fn an_object_gone_from_s3_drops_its_description() {
    let fixture = fixture();
    let gone = Inner::new(tower::service_fn(|_: Request<ProxyBody>| async {
        Err::<Response<ProxyBody>, _>(ProxyError::S3 {
            status: StatusCode::NOT_FOUND,
            code: "NoSuchKey".into(),
            message: String::new(),
        })
    }));
    let slicer = slicer(&fixture, gone);
    assert_eq!(read(&slicer, 0..5).await, (Vec::new(), true));
    assert!(
        described(&fixture.context.store, &fixture.key)
            .await
            .is_none()
    );
}

#[tokio::test]
async fn another_version_breaks_the_answer_off_and_drops_the_description() {
    for honours_if_match in [true, false] {
        let fixture = fixture();
        let seen = Seen::default();
        // Slice 0 of version 1 is cached; S3 now has version 2.
        let first = slicer(&fixture, stub("\"v1\"", true, seen.clone()));
        assert_eq!(read(&first, 0..5).await.0, &OBJECT[..5]);
        let changed = slicer(&fixture, stub("\"v2\"", honours_if_match, seen));
        let (bytes, broken) = read(&changed, 0..15).await;
        assert!(broken, "{honours_if_match}");
        assert_eq!(bytes, &OBJECT[..10], "only version 1's cached slice");
        let store = &fixture.context.store;
        assert!(described(store, &fixture.key).await.is_none());
        let stale = keys::slice(&fixture.key, SIZE, "\"v1\"", 0);
        assert!(store.memory_get(&stale).is_none(), "stale slices dropped");
    }
}

/// A slice stored after a reader's lookup missed but before it took the
/// lead (its previous leader just finished) is not fetched again.
#[tokio::test]
async fn a_slice_stored_before_the_lead_is_taken_is_not_fetched_again() {
    let fixture = fixture();
    let seen = Seen::default();
    let slicer = slicer(&fixture, stub("\"v1\"", true, seen.clone()));
    assert_eq!(read(&slicer, 0..10).await.0, &OBJECT[..10]);
    assert_eq!(seen.lock().unwrap().len(), 1);
    let key = keys::slice(&fixture.key, SIZE, "\"v1\"", 0);
    let crate::cache::coalesce::Role::Leader(leader) = fixture.context.store.coalescer.join(&key)
    else {
        panic!("nobody else leads slice 0");
    };
    let bytes = fetch::lead(&slicer, 0, key, leader).await.unwrap();
    assert_eq!(&bytes[..], &OBJECT[..10]);
    assert_eq!(seen.lock().unwrap().len(), 1, "fetched again");
}
