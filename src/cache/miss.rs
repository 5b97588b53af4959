//! A cacheable request that found nothing: one upstream fetch per key
//! (concurrent misses wait for it), its storable 200 teed into the cache as
//! it streams to the client.

use std::sync::Arc;
use std::time::SystemTime;

use http::{Method, Request, Response};

use super::CacheKey;
use super::coalesce::{Leader, Role, Shared, Waiter};
use super::fill::{Fill, FillBody};
use super::fill_span::FillSpan;
use super::policy as storage;
use super::range_miss::{range_miss, single_range_only};
use super::serve::streamed;
use super::service::{
    BucketPolicy, CacheContext, Inner, Marker, Target, forward, is_fresh, is_plain, mark, serve,
};
use super::stats::Outcome;
use super::store::Store;
use crate::body::{ProxyBody, boxed};
use crate::config::CacheTierKind;
use crate::error::ProxyError;
use crate::headers::CONDITIONAL;

/// Answers a miss: a range GET fetches the whole object (`range_miss.rs`);
/// HEAD and conditional requests go to S3 unchanged; a plain GET leads the fetch for its key or waits for the
/// leader's answer (and fetches alone when it gets none).
pub(super) async fn miss(
    context: &CacheContext,
    target: Target<'_>,
    inner: Inner,
    request: Request<ProxyBody>,
) -> Result<Response<ProxyBody>, ProxyError> {
    if request.method() == Method::GET && is_range_only(request.headers()) {
        return range_miss(context, target, inner, request).await;
    }
    let Target { policy, key } = target;
    // HEAD has no body to store; a conditional miss goes to S3 unchanged
    // (never with several ranges, which S3 does not answer).
    if request.method() == Method::HEAD || !is_plain(request.headers()) {
        policy.counters.record(Outcome::Miss);
        let response = forward(inner, single_range_only(request)).await?;
        return Ok(mark(response, Marker::Miss));
    }
    let store = &context.store;
    let mut retried = false;
    loop {
        let waiter = match store.coalescer.join(&key) {
            Role::Leader(leader) => return lead(store, policy, key, leader, inner, request).await,
            Role::Waiter(waiter) => waiter,
        };
        if !retried {
            policy.counters.record_coalesced();
        }
        match wait(context, waiter).await {
            Shared::Stored(object) => {
                policy.counters.record(Outcome::Miss);
                let (parts, _) = request.into_parts();
                return serve(&parts, &object, Marker::Miss);
            }
            // A range miss is fetching the object: stream it as it arrives.
            Shared::Filling(growing) => {
                policy.counters.record(Outcome::Miss);
                let answer = streamed::respond(&growing, request.headers(), SystemTime::now());
                return Ok(mark(answer?, Marker::Miss));
            }
            // The leader's transfer broke off: join again, once (one of the
            // waiters becomes the next leader).
            Shared::Aborted if !retried => retried = true,
            // Too large, not cacheable, or failed twice: fetch alone.
            Shared::Aborted | Shared::NotStored => {
                policy.counters.record(Outcome::Miss);
                return Ok(mark(forward(inner, request).await?, Marker::Miss));
            }
        }
    }
}

/// The leader's part: fetch once and fill, unless a fill completed between
/// the lookup and joining.
async fn lead(
    store: &Arc<Store>,
    policy: &BucketPolicy,
    key: CacheKey,
    leader: Leader,
    inner: Inner,
    request: Request<ProxyBody>,
) -> Result<Response<ProxyBody>, ProxyError> {
    if let Some(object) = store.memory_get(&key).filter(is_fresh) {
        leader.finish(Some(object.clone()));
        policy.counters.record(Outcome::Hit);
        let (parts, _) = request.into_parts();
        return serve(&parts, &object, Marker::Hit(CacheTierKind::Memory));
    }
    policy.counters.record(Outcome::Miss);
    let epoch = store.epoch_for(&key);
    let response = forward(inner, request).await?;
    let target = FillTarget {
        store,
        key,
        epoch,
        leader: Some(leader),
    };
    Ok(mark(start_fill(policy, response, target), Marker::Miss))
}

/// A GET whose only conditions are `Range` (present) and `If-Range`.
fn is_range_only(headers: &http::HeaderMap) -> bool {
    use http::header::{IF_RANGE, RANGE};
    headers.contains_key(RANGE)
        && CONDITIONAL
            .iter()
            .all(|name| *name == RANGE || *name == IF_RANGE || !headers.contains_key(name))
}

/// What the leader shared, or `NotStored` once the longest wait is over
/// (then the waiter fetches alone).
pub(super) async fn wait(context: &CacheContext, waiter: Waiter) -> Shared {
    tokio::time::timeout(context.coalesce_wait, waiter.outcome())
        .await
        .unwrap_or(Shared::NotStored)
}

/// Where a fill goes.
pub(super) struct FillTarget<'a> {
    pub(super) store: &'a Arc<Store>,
    pub(super) key: CacheKey,
    /// The key's purge epoch when the fetch started: a purge since wins.
    pub(super) epoch: u64,
    pub(super) leader: Option<Leader>,
}

/// Tees a storable 200 into the cache; anything else passes through
/// untouched (and coalesced waiters are told to fetch for themselves).
pub(super) fn start_fill(
    policy: &BucketPolicy,
    response: Response<ProxyBody>,
    target: FillTarget<'_>,
) -> Response<ProxyBody> {
    let now = SystemTime::now();
    match storage::storable(response.status(), response.headers(), now, &policy.storage) {
        Ok(meta) => {
            let span = FillSpan::start(target.store, &target.key);
            let fill = Fill {
                span,
                store: target.store.clone(),
                key: target.key,
                meta,
                epoch: target.epoch,
                leader: target.leader,
            };
            response.map(|body| boxed(FillBody::new(body, fill)))
        }
        Err(reason) => {
            tracing::debug!(%reason, "answer not cached");
            if let Some(leader) = target.leader {
                leader.finish(None);
            }
            response
        }
    }
}
