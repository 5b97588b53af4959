use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response, StatusCode, header, request::Parts};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

use super::WebsiteConfig;
use crate::body::{ProxyBody, empty};
use crate::error::ProxyError;
use crate::query::ForwardedQuery;
use crate::route::{BucketService, ObjectKey};

/// The service made by [`super::WebsiteLayer`].
#[derive(Debug, Clone)]
pub struct Website<S> {
    pub(super) inner: S,
    pub(super) config: Arc<WebsiteConfig>,
}

/// The rest of the bucket's stack, boxed for the fallback's async block.
type Inner = BoxCloneSyncService<Request<ProxyBody>, Response<ProxyBody>, ProxyError>;

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, ProxyError>> + Send>>;

/// What a 404 of the requested key is answered with instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fallback {
    /// The error document, with status 404.
    ErrorDocument,
    /// The root index document, with its own status (`spa_fallback`).
    Index,
}

impl<S: BucketService> Service<Request<ProxyBody>> for Website<S> {
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ProxyBody>) -> Self::Future {
        // The service that was polled ready serves this request; its clone
        // stays for the next one (and serves the fallback lookup).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let fallback = request
            .extensions_mut()
            .get_mut::<ObjectKey>()
            .and_then(|key| rewrite(&self.config, key));
        let Some(fallback) = fallback else {
            return Box::pin(inner.call(request));
        };
        // The fallback is a second request with the same head: kept only
        // when there is a fallback to serve.
        let (parts, body) = request.into_parts();
        let kept = parts.clone();
        // Boxed, as the cache does: the futures below are then one concrete
        // `Send` type (a generic `S::Future` cannot be proven `Send` for
        // every lifetime inside an async block).
        let mut inner = Inner::new(inner);
        let first = inner.call(Request::from_parts(parts, body));
        let config = Arc::clone(&self.config);
        Box::pin(with_fallback(first, inner, config, fallback, kept))
    }
}

/// Awaits the answer for the requested key; a 404 is answered with the
/// fallback document when there is one (else the 404 stands).
async fn with_fallback(
    first: BoxFuture,
    inner: Inner,
    config: Arc<WebsiteConfig>,
    fallback: Fallback,
    kept: Parts,
) -> Result<Response<ProxyBody>, ProxyError> {
    match first.await {
        Err(error) if error.status() == StatusCode::NOT_FOUND => {
            let Some(lookup) = fallback_lookup(inner, &config, fallback, kept) else {
                return Err(error);
            };
            match lookup.await {
                Ok(response) if fallback == Fallback::Index => Ok(response),
                Ok(mut response) if response.status().is_success() => {
                    *response.status_mut() = StatusCode::NOT_FOUND;
                    // A 404 offers no ranges (whatever the document's lookup said).
                    response.headers_mut().remove(header::ACCEPT_RANGES);
                    Ok(response)
                }
                // A missing error document leaves the plain 404.
                _ => Err(error),
            }
        }
        answer => answer,
    }
}

/// Points `key` at the index document when it names a folder (or the
/// bucket root), and says which fallback a 404 of it gets, if any.
fn rewrite(config: &WebsiteConfig, key: &mut ObjectKey) -> Option<Fallback> {
    let last = key.0.rsplit('/').next().unwrap_or_default();
    let spa = config.spa_fallback && !last.contains('.');
    if key.0.is_empty() || key.0.ends_with('/') {
        key.0.push_str(&config.index_document);
    }
    if spa {
        Some(Fallback::Index)
    } else {
        config
            .error_document
            .as_ref()
            .map(|_| Fallback::ErrorDocument)
    }
}

/// The lookup of the fallback document through the rest of the stack
/// (the cache included, under the document's own key); `None` without one.
fn fallback_lookup(
    inner: Inner,
    config: &WebsiteConfig,
    fallback: Fallback,
    mut parts: Parts,
) -> Option<BoxFuture> {
    let key = match fallback {
        Fallback::Index => config.index_document.clone(),
        Fallback::ErrorDocument => config.error_document.clone()?,
    };
    parts.extensions.insert(ObjectKey(key));
    // The query (version ids, response overrides) was about the missing key.
    parts.extensions.remove::<ForwardedQuery>();
    if let Some(path) = parts.uri.path_and_query().map(|p| p.path().to_owned()) {
        parts.uri = path.parse().unwrap_or_default();
    }
    if fallback == Fallback::ErrorDocument {
        // The error document is sent whole and as a 404: a range or a
        // condition of the client's request was about the missing key.
        strip_ranges_and_conditions(&mut parts.headers);
    }
    Some(Box::pin(inner.oneshot(Request::from_parts(parts, empty()))))
}

/// Removes `Range` and every conditional request field.
fn strip_ranges_and_conditions(headers: &mut HeaderMap) {
    for name in [
        header::RANGE,
        header::IF_RANGE,
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
    ] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(error: Option<&str>, spa: bool) -> WebsiteConfig {
        WebsiteConfig {
            index_document: "index.html".into(),
            error_document: error.map(str::to_owned),
            spa_fallback: spa,
        }
    }

    fn rewritten(config: &WebsiteConfig, key: &str) -> (String, Option<Fallback>) {
        let mut key = ObjectKey(key.to_owned());
        let fallback = rewrite(config, &mut key);
        (key.0, fallback)
    }

    #[test]
    fn folders_and_the_root_name_the_index_document() {
        let c = config(None, false);
        assert_eq!(rewritten(&c, ""), ("index.html".into(), None));
        assert_eq!(rewritten(&c, "docs/"), ("docs/index.html".into(), None));
        assert_eq!(rewritten(&c, "docs"), ("docs".into(), None));
        assert_eq!(rewritten(&c, "a/b.css"), ("a/b.css".into(), None));
    }

    #[test]
    fn fallbacks_follow_the_settings() {
        let c = config(Some("404.html"), false);
        assert_eq!(rewritten(&c, "x.png").1, Some(Fallback::ErrorDocument));
        assert_eq!(rewritten(&c, "route").1, Some(Fallback::ErrorDocument));
        let spa = config(Some("404.html"), true);
        assert_eq!(rewritten(&spa, "app/route").1, Some(Fallback::Index));
        assert_eq!(rewritten(&spa, "app/").1, Some(Fallback::Index));
        assert_eq!(
            rewritten(&spa, "app/x.png").1,
            Some(Fallback::ErrorDocument)
        );
        assert_eq!(rewritten(&config(None, true), "x.png").1, None);
    }
}
