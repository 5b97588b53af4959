//! A copy of a read that can be sent to S3 again.
//!
//! Retries, replica failover and the 404 fallback each send one read more
//! than once. They share this copy so that all three keep the same parts of
//! the request, and only the parts the layers below them read.

use std::sync::Arc;

use http::{Method, Request};

use super::{ForwardedQuery, copy_forwarded_headers};
use crate::body::{ProxyBody, empty};
use crate::route::{BucketRoute, ObjectKey};

/// A copy of `request` to send again, or `None` when it is not a GET or HEAD.
///
/// GET and HEAD carry no body, so the head is the whole request. Kept are
/// the method, URI and version; the headers the S3 request layer forwards
/// (it drops every other one, so a plain GET copies none); and the
/// extensions the target stack and a custom leaf may read: the route
/// ([`BucketRoute`], [`ObjectKey`]) and the [`ForwardedQuery`]. Request id,
/// claims, log context and client address stay with the original: they
/// were used above and are not read below.
pub fn replayable_copy<B>(request: &Request<B>) -> Option<Request<ProxyBody>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return None;
    }
    let mut copy = Request::new(empty());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    copy_forwarded_headers(request.headers(), copy.headers_mut());
    copy_extension::<ObjectKey, _>(request, &mut copy);
    copy_extension::<Arc<BucketRoute>, _>(request, &mut copy);
    copy_extension::<ForwardedQuery, _>(request, &mut copy);
    Some(copy)
}

/// Copies one extension of type `T`, when the original has it.
fn copy_extension<T, B>(from: &Request<B>, to: &mut Request<ProxyBody>)
where
    T: Clone + Send + Sync + 'static,
{
    if let Some(value) = from.extensions().get::<T>() {
        to.extensions_mut().insert(value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::S3Backend;
    use crate::request_id::RequestId;

    fn request(method: Method) -> Request<ProxyBody> {
        let mut request = Request::new(empty());
        *request.method_mut() = method;
        *request.uri_mut() = "/bucket/some/key.bin?versionId=v1".parse().unwrap();
        let headers = request.headers_mut();
        headers.insert("host", "proxy.example".parse().unwrap());
        headers.insert("user-agent", "bench/1.0".parse().unwrap());
        headers.insert("authorization", "Bearer secret".parse().unwrap());
        headers.insert("range", "bytes=0-9".parse().unwrap());
        headers.insert("if-none-match", "\"a\"".parse().unwrap());
        headers.append("if-none-match", "\"b\"".parse().unwrap());
        let extensions = request.extensions_mut();
        extensions.insert(ObjectKey("some/key.bin".into()));
        extensions.insert(ForwardedQuery::parse("versionId=v1"));
        extensions.insert(RequestId::generate());
        extensions.insert(Arc::new(BucketRoute::new(
            "bucket",
            "/bucket",
            Arc::new(S3Backend::for_tests()),
        )));
        extensions.insert(7_u32);
        request
    }

    #[test]
    fn a_read_keeps_its_head_the_forwarded_headers_and_the_route() {
        for method in [Method::GET, Method::HEAD] {
            let original = request(method.clone());
            let copy = replayable_copy(&original).unwrap();
            assert_eq!(copy.method(), method);
            assert_eq!(copy.uri(), original.uri());
            assert_eq!(copy.version(), original.version());
            // Only what the S3 request layer forwards, every value of it.
            assert_eq!(copy.headers().len(), 3);
            assert_eq!(copy.headers()["range"], "bytes=0-9");
            let tags: Vec<_> = copy.headers().get_all("if-none-match").iter().collect();
            assert_eq!(tags, ["\"a\"", "\"b\""]);
            assert!(copy.headers().get("authorization").is_none());
            let ext = copy.extensions();
            assert_eq!(ext.get::<ObjectKey>(), original.extensions().get());
            assert_eq!(ext.get::<ForwardedQuery>(), original.extensions().get());
            assert!(
                ext.get::<RequestId>().is_none(),
                "read above the targets only"
            );
            assert!(ext.get::<Arc<BucketRoute>>().is_some());
            assert!(ext.get::<u32>().is_none(), "nothing else is copied");
        }
    }

    #[test]
    fn requests_with_a_body_are_never_copied() {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(replayable_copy(&request(method)).is_none());
        }
    }
}
