//! A stale entry: one conditional request to S3 (concurrent plain GETs wait
//! for it). A `304` refreshes the entry, a changed object replaces it, and a
//! failing S3 lets the entry answer within the stale-if-error window.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};

use super::coalesce::{Leader, Role, Shared};
use super::miss::{FillTarget, start_fill, wait};
use super::policy as storage;
use super::range_miss::single_range_only;
use super::service::{
    BucketPolicy, CacheContext, Inner, Marker, Target, forward, is_plain, mark, serve,
};
use super::stats::Outcome;
use super::{CacheKey, CachedObject};
use crate::body::{ProxyBody, empty};
use crate::config::CacheTierKind;
use crate::error::ProxyError;
use crate::headers::CONDITIONAL;

type Answer = Result<Response<ProxyBody>, ProxyError>;

/// Answers a request whose entry is past its TTL.
pub(super) async fn revalidate(
    context: &CacheContext,
    target: Target<'_>,
    inner: Inner,
    request: Request<ProxyBody>,
    stale: CachedObject,
    tier: CacheTierKind,
) -> Answer {
    let Target { policy, key } = target;
    let (parts, _) = request.into_parts();
    let plain_get = is_plain(&parts.headers) && parts.method == Method::GET;
    // Concurrent requests for a stale entry share one revalidation.
    let leader = if plain_get {
        match join(context, policy, &key).await {
            Joined::Leader(leader) => Some(leader),
            Joined::Answered(object) => {
                policy.counters.record(Outcome::Hit);
                return serve(&parts, &object, Marker::Hit(tier));
            }
            Joined::Alone => None,
        }
    } else {
        None
    };
    let check = conditional_check(&parts, &stale);
    let step = Revalidation {
        context,
        policy,
        epoch: context.store.epoch_for(&key),
        key,
        parts,
        leader,
        tier,
    };
    match forward(inner.clone(), check).await {
        Ok(response) if response.status() == StatusCode::NOT_MODIFIED => {
            step.not_modified(stale, &response, inner).await
        }
        Ok(response) => step.changed(response, inner).await,
        Err(error) => step.failed(stale, error).await,
    }
}

/// How a plain GET joined the revalidation of its key.
enum Joined {
    /// This request revalidates; the others wait for it.
    Leader(Leader),
    /// Another request revalidated and shared the refreshed entry.
    Answered(CachedObject),
    /// The leader got nothing usable: revalidate alone.
    Alone,
}

async fn join(context: &CacheContext, policy: &BucketPolicy, key: &CacheKey) -> Joined {
    match context.store.coalescer.join(key) {
        Role::Leader(leader) => Joined::Leader(leader),
        Role::Waiter(waiter) => {
            policy.counters.record_coalesced();
            match wait(context, waiter).await {
                Shared::Stored(object) => Joined::Answered(object),
                Shared::Aborted | Shared::NotStored | Shared::Filling(_) => Joined::Alone,
            }
        }
    }
}

/// The request S3 is asked: the client's request without its own
/// conditions or range, validated by the entry's ETag.
fn conditional_check(parts: &Parts, stale: &CachedObject) -> Request<ProxyBody> {
    let mut check = Request::from_parts(parts.clone(), empty());
    for name in &CONDITIONAL {
        check.headers_mut().remove(name);
    }
    if let Some(etag) = stale
        .meta
        .etag
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        check.headers_mut().insert(header::IF_NONE_MATCH, etag);
    }
    check
}

/// One revalidation under way, after S3 answered the check.
struct Revalidation<'a> {
    context: &'a CacheContext,
    policy: &'a BucketPolicy,
    key: CacheKey,
    /// The key's purge epoch before the check: a purge since wins.
    epoch: u64,
    parts: Parts,
    leader: Option<Leader>,
    tier: CacheTierKind,
}

impl Revalidation<'_> {
    /// `304`: the entry is still the object; it is stored with new freshness.
    async fn not_modified(
        self,
        stale: CachedObject,
        response: &Response<ProxyBody>,
        inner: Inner,
    ) -> Answer {
        let store = &self.context.store;
        let now = SystemTime::now();
        match storage::refresh(&stale.meta, response.headers(), now, &self.policy.storage) {
            Ok(meta) => {
                let fresh = CachedObject {
                    meta: Arc::new(meta),
                    body: stale.body,
                };
                let stored = store.insert(&self.key, &fresh, self.epoch);
                if let Some(leader) = self.leader {
                    leader.finish(stored.then(|| fresh.clone()));
                }
                self.policy.counters.record(Outcome::Hit);
                serve(&self.parts, &fresh, Marker::Hit(self.tier))
            }
            Err(reason) => {
                // A 304 for another representation, or now uncacheable:
                // drop the entry and ask S3 what the client asked.
                tracing::debug!(%reason, "revalidation refused; entry dropped");
                store.forget(&self.key, self.epoch).await;
                drop(self.leader);
                self.policy.counters.record(Outcome::Miss);
                let request = single_range_only(Request::from_parts(self.parts, empty()));
                Ok(mark(forward(inner, request).await?, Marker::Miss))
            }
        }
    }

    /// The object changed (or S3 ignored the validator): the old entry goes
    /// from every tier; the new answer may replace it.
    async fn changed(self, response: Response<ProxyBody>, inner: Inner) -> Answer {
        let store = &self.context.store;
        let epoch = store.forget(&self.key, self.epoch).await;
        self.policy.counters.record(Outcome::Miss);
        let plain = is_plain(&self.parts.headers);
        if plain && self.parts.method == Method::GET {
            let target = FillTarget {
                store,
                key: self.key,
                epoch,
                leader: self.leader,
            };
            Ok(mark(
                start_fill(self.policy, response, target),
                Marker::Miss,
            ))
        } else if plain {
            Ok(mark(response, Marker::Miss))
        } else {
            // The client asked for a range or a condition: ask S3 exactly that.
            drop(response);
            let request = single_range_only(Request::from_parts(self.parts, empty()));
            Ok(mark(forward(inner, request).await?, Marker::Miss))
        }
    }

    /// S3 failed: the stale entry answers within its window; an S3 client
    /// error (the object is gone or forbidden now) drops it.
    async fn failed(self, stale: CachedObject, error: ProxyError) -> Answer {
        if is_upstream_failure(&error) && within_stale_window(&stale, self.context.stale_if_error) {
            tracing::warn!(%error, "S3 failed; serving a stale cached object");
            self.policy.counters.record(Outcome::Stale);
            return serve(&self.parts, &stale, Marker::Stale);
        }
        if matches!(&error, ProxyError::S3 { status, .. } if status.is_client_error()) {
            self.context.store.forget(&self.key, self.epoch).await;
        }
        self.policy.counters.record(Outcome::Miss);
        Err(error)
    }
}

/// S3 could not answer (5xx, timeout, connection): the cases stale-if-error covers.
fn is_upstream_failure(error: &ProxyError) -> bool {
    match error {
        ProxyError::S3 { status, .. } => status.is_server_error(),
        ProxyError::Connect(_) | ProxyError::Timeout(_) | ProxyError::UpstreamProtocol(_) => true,
        _ => false,
    }
}

/// Whether `object` may still be served because S3 failed: within the
/// configured window past its TTL, as its own `Cache-Control` allows.
fn within_stale_window(object: &CachedObject, configured: Duration) -> bool {
    let window = storage::stale_window(&object.meta, configured);
    // An entry read from a shared tier may carry any `fresh_until`: past the
    // end of the clock, the window never closes.
    !window.is_zero()
        && object
            .meta
            .fresh_until
            .checked_add(window)
            .is_none_or(|until| SystemTime::now() <= until)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn a_stale_window_past_the_end_of_the_clock_stays_open() {
        // As a shared tier may hand back: fresh until the last representable second.
        let end = SystemTime::UNIX_EPOCH + Duration::from_secs(i64::MAX as u64);
        let object = CachedObject {
            meta: Arc::new(crate::cache::ObjectMeta {
                headers: http::HeaderMap::new(),
                content_length: 0,
                etag: None,
                last_modified: None,
                stored_at: end,
                fresh_until: end,
            }),
            body: Bytes::new(),
        };
        assert!(within_stale_window(&object, Duration::from_secs(300)));
        assert!(!within_stale_window(&object, Duration::ZERO));
    }
}
