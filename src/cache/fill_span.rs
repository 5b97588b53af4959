//! The `cache.fill` span: storing a missed object (or one slice of a large
//! one) into the cache tiers, from the start of the tee to the store (or its
//! abandonment). A child of
//! the request span only when the request is sampled; otherwise nothing is
//! made (see [`crate::telemetry::otel::child`]).

use tracing::Span;
use tracing::field::Empty;

use super::CacheKey;
use super::store::Store;
use crate::telemetry::otel::{self, SPAN_TARGET};

/// A fill's span, or nothing when its request is not traced. Dropped
/// before [`FillSpan::stored`], it ends as `abandoned`.
#[derive(Debug)]
pub(crate) struct FillSpan(Option<Span>);

impl FillSpan {
    /// Starts the fill of `key` into `store`'s tiers, under the current span.
    pub(crate) fn start(store: &Store, key: &CacheKey) -> Self {
        let span = otel::child(|| {
            tracing::info_span!(
                target: SPAN_TARGET,
                "cache.fill",
                bucket = &*key.bucket,
                tier = %store.tier_names(),
                slice = Empty,
                bytes = Empty,
                outcome = Empty,
            )
        });
        Self((!span.is_disabled()).then_some(span))
    }

    /// Starts the fill of slice `index` of a sliced object, stored under
    /// `key`, as a child of `request` (the span of the request reading it:
    /// slices are fetched while the body streams, outside that span).
    pub(crate) fn slice(request: &Span, store: &Store, key: &CacheKey, index: u64) -> Self {
        let span = request.in_scope(|| Self::start(store, key));
        if let Some(span) = &span.0 {
            span.record("slice", index);
        }
        span
    }

    /// A fill that is not traced (tests, and fills outside any request).
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Self(None)
    }

    /// Ends the span: `bytes` reached the tiers (`stored`), or a purge
    /// since the fetch started won (`purged`).
    pub(crate) fn stored(mut self, bytes: usize, stored: bool) {
        if let Some(span) = self.0.take() {
            span.record("bytes", bytes);
            span.record("outcome", if stored { "stored" } else { "purged" });
        }
    }
}

impl Drop for FillSpan {
    fn drop(&mut self) {
        if let Some(span) = self.0.take() {
            span.record("outcome", "abandoned");
        }
    }
}
