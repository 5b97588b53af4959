//! Purge broadcast: every proxy instance sharing a Redis drops purged
//! entries from its own memory tier.
//!
//! A purge is published on `<key_prefix>purge` as a small JSON message
//! `{"origin":"<instance id>","bucket":"b","key":"k"}` (no `bucket` = all,
//! no `key` = whole bucket); one entry (a forgotten object) adds
//! `"backend":"<fingerprint hex>"` and, for a version, `"version_id"`. An
//! instance that does not know these fields purges the whole object, which
//! is safe. A subscriber task per instance forwards other
//! instances' purges to the caller's channel, ignoring its own, and
//! reconnects with backoff when Redis goes away. Purges are idempotent, so a
//! duplicate delivery is harmless; a purge published while this instance's
//! subscriber was disconnected is missed (its memory entries then live until
//! their TTL).
//!
//! On a Redis Cluster, `PUBLISH` on any node reaches the subscribers of
//! every node (the cluster bus carries it), so the subscriber listens on
//! one node and moves to the next configured node when that one fails.

use std::time::Duration;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::cache::key::BackendId;
use crate::cache::{CacheKey, PurgeScope};

/// The wire form of one purge.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct PurgeMessage {
    /// The publishing instance, so it can ignore its own messages.
    pub(crate) origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    /// With `key`: only the entry of this backend fingerprint (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backend: Option<String>,
    /// With `backend`: only this version's entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version_id: Option<String>,
}

impl PurgeMessage {
    /// The message announcing `scope` from `origin`.
    pub(crate) fn new(origin: &str, scope: &PurgeScope) -> Self {
        let mut message = Self {
            origin: origin.to_owned(),
            bucket: None,
            key: None,
            backend: None,
            version_id: None,
        };
        match scope {
            PurgeScope::All => {}
            PurgeScope::Bucket(b) => message.bucket = Some(b.clone()),
            PurgeScope::Object { bucket, key } => {
                message.bucket = Some(bucket.clone());
                message.key = Some(key.clone());
            }
            PurgeScope::Entry(entry) => {
                message.bucket = Some(entry.bucket.to_string());
                message.key = Some(entry.object.clone());
                message.backend = Some(entry.backend.hex());
                message.version_id = entry.version_id.clone();
            }
        }
        message
    }

    /// The purge it announces; `None` for a key without a bucket. A
    /// malformed backend fingerprint widens the purge to the whole object.
    pub(crate) fn scope(self) -> Option<PurgeScope> {
        match (self.bucket, self.key) {
            (None, None) => Some(PurgeScope::All),
            (Some(b), None) => Some(PurgeScope::Bucket(b)),
            (Some(bucket), Some(key)) => {
                match self.backend.as_deref().and_then(BackendId::from_hex) {
                    Some(backend) => Some(PurgeScope::Entry(CacheKey {
                        bucket: bucket.into(),
                        backend,
                        object: key,
                        version_id: self.version_id,
                    })),
                    None => Some(PurgeScope::Object { bucket, key }),
                }
            }
            (None, Some(_)) => None,
        }
    }
}

/// A running purge subscriber; dropping it stops the task.
#[derive(Debug)]
pub struct PurgeSubscription {
    task: JoinHandle<()>,
    subscribed: watch::Receiver<bool>,
}

impl PurgeSubscription {
    /// Waits until the subscriber is (re)subscribed to the channel, up to
    /// `timeout`; `true` when it is. Lets callers and tests know when a
    /// purge published from elsewhere will be seen.
    pub async fn wait_subscribed(&self, timeout: Duration) -> bool {
        let mut rx = self.subscribed.clone();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Whether the subscriber is currently subscribed.
    pub fn is_subscribed(&self) -> bool {
        *self.subscribed.borrow()
    }
}

impl Drop for PurgeSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the subscriber task; it listens on one of `clients` (the next
/// one after each failure).
pub(crate) fn spawn_subscriber(
    clients: Vec<redis::Client>,
    channel: String,
    origin: String,
    timeout: Duration,
    tx: mpsc::Sender<PurgeScope>,
) -> PurgeSubscription {
    let (state_tx, subscribed) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut backoff = Backoff::new();
        let mut next_node = 0;
        loop {
            let Some(client) = clients.get(next_node % clients.len().max(1)) else {
                return; // No node to listen on.
            };
            next_node = next_node.wrapping_add(1);
            let connected = tokio::time::timeout(timeout.max(Duration::from_secs(1)), async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            })
            .await;
            let pubsub = match connected {
                Ok(Ok(pubsub)) => pubsub,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "redis cache: purge subscriber cannot connect");
                    tokio::time::sleep(backoff.next()).await;
                    continue;
                }
                Err(_) => {
                    tracing::debug!("redis cache: purge subscriber connect timed out");
                    tokio::time::sleep(backoff.next()).await;
                    continue;
                }
            };
            backoff.reset();
            state_tx.send_replace(true);
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                let Ok(message) = serde_json::from_slice::<PurgeMessage>(msg.get_payload_bytes())
                else {
                    tracing::warn!("redis cache: ignored an unreadable purge message");
                    continue;
                };
                if message.origin == origin {
                    continue;
                }
                if let Some(scope) = message.scope()
                    && tx.send(scope).await.is_err()
                {
                    return; // The receiver is gone: nobody to tell.
                }
            }
            state_tx.send_replace(false);
            tracing::warn!("redis cache: purge subscription lost; reconnecting");
            tokio::time::sleep(backoff.next()).await;
        }
    });
    PurgeSubscription { task, subscribed }
}

/// Exponential reconnect delay: 100 ms doubling up to 5 s.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Self {
        Self { next: Self::FIRST }
    }

    fn next(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_every_scope() {
        for scope in [
            PurgeScope::All,
            PurgeScope::Bucket("b".into()),
            PurgeScope::Object {
                bucket: "b".into(),
                key: "k/é".into(),
            },
            PurgeScope::Entry(CacheKey {
                bucket: "b".into(),
                backend: BackendId([9; 16]),
                object: "k".into(),
                version_id: Some("v".into()),
            }),
        ] {
            let json = serde_json::to_vec(&PurgeMessage::new("me", &scope)).unwrap();
            let back: PurgeMessage = serde_json::from_slice(&json).unwrap();
            assert_eq!(back.origin, "me");
            assert_eq!(back.scope(), Some(scope));
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Backoff::new();
        let delays: Vec<_> = (0..8).map(|_| b.next().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }
}
