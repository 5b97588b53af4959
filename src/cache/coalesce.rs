//! Request coalescing: concurrent misses for one key make one upstream request.
//!
//! The first miss becomes the *leader* and fetches; later ones *wait* on a
//! watch channel for the leader's outcome: the stored object; "not stored"
//! when the response was not cacheable (too large, not 200), in which case
//! each waiter makes its own request; or "aborted" when the leader's transfer
//! failed or its client went away, in which case a waiter may join again (one
//! of them becomes the next leader). The leader's guard publishes "aborted"
//! if it is dropped without an outcome, so a waiter never waits on a leader
//! that is gone.
//!
//! A range miss's leader also publishes the object *while it arrives*
//! ([`Shared::Filling`]): waiters then stream from it instead of waiting
//! for the end of the transfer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::growing::Growing;
use super::{CacheKey, CachedObject};

/// What waiters learn: nothing yet, or the leader's outcome.
type Outcome = Option<Shared>;

/// How the leader's fetch ended.
#[derive(Debug, Clone)]
pub(crate) enum Shared {
    /// Stored: waiters answer from it.
    Stored(CachedObject),
    /// Complete but not cacheable: waiters fetch alone.
    NotStored,
    /// The transfer failed or was abandoned: waiters may try again.
    Aborted,
    /// The object is arriving: waiters read it as it comes (an error ends
    /// their body if the transfer breaks off).
    Filling(Arc<Growing>),
}

/// The misses in flight, by key.
#[derive(Debug, Default)]
pub(crate) struct Coalescer {
    inflight: Mutex<HashMap<CacheKey, watch::Receiver<Outcome>>>,
}

/// Whether this request fetches or waits.
#[derive(Debug)]
pub(crate) enum Role {
    /// Fetch from S3 and report through the guard.
    Leader(Leader),
    /// Wait for the leader's outcome.
    Waiter(Waiter),
}

impl Coalescer {
    /// Joins the fetch of `key`, as its leader when none is in flight.
    pub(crate) fn join(self: &Arc<Self>, key: &CacheKey) -> Role {
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(receiver) = inflight.get(key) {
            return Role::Waiter(Waiter(receiver.clone()));
        }
        let (sender, receiver) = watch::channel(None);
        inflight.insert(key.clone(), receiver.clone());
        Role::Leader(Leader {
            coalescer: self.clone(),
            key: key.clone(),
            sender,
            receiver,
        })
    }

    /// Fetches in flight (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.inflight.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// The leader's guard: reports the outcome (or `None` when dropped without one).
#[derive(Debug)]
pub(crate) struct Leader {
    coalescer: Arc<Coalescer>,
    key: CacheKey,
    sender: watch::Sender<Outcome>,
    receiver: watch::Receiver<Outcome>,
}

impl Leader {
    /// Publishes the outcome: the stored object, or `None` (not cacheable:
    /// waiters fetch themselves).
    pub(crate) fn finish(self, object: Option<CachedObject>) {
        self.sender
            .send_replace(Some(object.map_or(Shared::NotStored, Shared::Stored)));
        // Drop removes the entry.
    }

    /// Lets waiters read the object while it arrives; the outcome
    /// ([`Leader::finish`], or "aborted" on drop) still follows.
    pub(crate) fn filling(&self, growing: Arc<Growing>) {
        self.sender.send_replace(Some(Shared::Filling(growing)));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        {
            let mut inflight = self
                .coalescer
                .inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            // Remove only our own entry (never a later leader's).
            if inflight
                .get(&self.key)
                .is_some_and(|r| r.same_channel(&self.receiver))
            {
                inflight.remove(&self.key);
            }
        }
        self.sender.send_if_modified(|outcome| {
            if matches!(outcome, None | Some(Shared::Filling(_))) {
                *outcome = Some(Shared::Aborted);
                true
            } else {
                false
            }
        });
    }
}

/// A waiter's handle on the leader's outcome.
#[derive(Debug)]
pub(crate) struct Waiter(watch::Receiver<Outcome>);

impl Waiter {
    /// How the leader's fetch ended.
    pub(crate) async fn outcome(mut self) -> Shared {
        match self.0.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or(Shared::Aborted),
            Err(_) => Shared::Aborted,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use bytes::Bytes;

    use super::*;
    use crate::cache::ObjectMeta;

    fn key() -> CacheKey {
        CacheKey {
            bucket: Arc::from("b"),
            backend: Default::default(),
            object: "k".into(),
            version_id: None,
        }
    }

    fn object() -> CachedObject {
        CachedObject {
            meta: Arc::new(ObjectMeta {
                headers: http::HeaderMap::new(),
                content_length: 3,
                etag: None,
                last_modified: None,
                stored_at: SystemTime::now(),
                fresh_until: SystemTime::now(),
            }),
            body: Bytes::from_static(b"abc"),
        }
    }

    #[tokio::test]
    async fn waiters_get_the_leaders_object() {
        let coalescer = Arc::new(Coalescer::default());
        let Role::Leader(leader) = coalescer.join(&key()) else {
            panic!("first is the leader")
        };
        let Role::Waiter(waiter) = coalescer.join(&key()) else {
            panic!("second waits")
        };
        let waiting = tokio::spawn(waiter.outcome());
        leader.finish(Some(object()));
        let Shared::Stored(got) = waiting.await.unwrap() else {
            panic!("object")
        };
        assert_eq!(got.body, "abc");
        assert_eq!(coalescer.in_flight(), 0);
        assert!(matches!(coalescer.join(&key()), Role::Leader(_)));
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_waiters_with_nothing() {
        let coalescer = Arc::new(Coalescer::default());
        let Role::Leader(leader) = coalescer.join(&key()) else {
            panic!("leader")
        };
        let Role::Waiter(waiter) = coalescer.join(&key()) else {
            panic!("waiter")
        };
        drop(leader);
        assert!(matches!(waiter.outcome().await, Shared::Aborted));
        assert_eq!(coalescer.in_flight(), 0);
    }
}

#[cfg(test)]
mod not_stored_tests {
    use super::*;

    #[tokio::test]
    async fn an_uncacheable_answer_is_not_an_abort() {
        let coalescer = Arc::new(Coalescer::default());
        let key = CacheKey {
            bucket: Arc::from("b"),
            backend: Default::default(),
            object: "k".into(),
            version_id: None,
        };
        let Role::Leader(leader) = coalescer.join(&key) else {
            panic!("leader")
        };
        let Role::Waiter(waiter) = coalescer.join(&key) else {
            panic!("waiter")
        };
        leader.finish(None);
        assert!(matches!(waiter.outcome().await, Shared::NotStored));
    }
}
