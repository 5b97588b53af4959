//! Pooled connections, and failing fast while Redis is unreachable.
//!
//! `bb8` never hands a connection error to the caller waiting in
//! `Pool::get`: the caller waits for its whole connection timeout. With
//! Redis down that would add the full timeout to every cache miss. So the
//! pool's manager wraps `bb8-redis`'s and reports failed connects to
//! [`Health`]: a waiting operation gives up as soon as a connect fails, and
//! for [`Health::RETRY_AFTER`] afterwards operations fail immediately
//! without touching the pool; the first one after that window tries again,
//! which is how the tier notices that Redis is back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bb8_redis::RedisConnectionManager;
use bb8_redis::bb8::ManageConnection;
use redis::RedisError;
use redis::aio::MultiplexedConnection;
use tokio::sync::Notify;

/// Whether Redis was reachable lately.
#[derive(Debug, Default)]
pub(crate) struct Health {
    connect_failed: Notify,
    down_until: Mutex<Option<Instant>>,
}

impl Health {
    /// How long operations fail fast after a failed connect.
    pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(1);

    /// Whether a connect failed less than [`Self::RETRY_AFTER`] ago.
    pub(crate) fn is_down(&self) -> bool {
        self.lock().is_some_and(|until| Instant::now() < until)
    }

    /// Resolves when the next connect attempt fails (create it *before*
    /// asking the pool for a connection).
    pub(crate) fn connect_failure(&self) -> tokio::sync::futures::Notified<'_> {
        self.connect_failed.notified()
    }

    fn failed(&self) {
        *self.lock() = Some(Instant::now() + Self::RETRY_AFTER);
        self.connect_failed.notify_waiters();
    }

    fn connected(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.down_until.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `bb8-redis`'s manager, reporting connect outcomes to [`Health`].
#[derive(Debug)]
pub(crate) struct Manager {
    inner: RedisConnectionManager,
    health: Arc<Health>,
}

impl Manager {
    /// Wraps `inner`, reporting to `health`.
    pub(crate) fn new(inner: RedisConnectionManager, health: Arc<Health>) -> Self {
        Self { inner, health }
    }
}

impl ManageConnection for Manager {
    type Connection = MultiplexedConnection;
    type Error = RedisError;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let connected = self.inner.connect().await;
        match &connected {
            Ok(_) => self.health.connected(),
            Err(_) => self.health.failed(),
        }
        connected
    }

    async fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        self.inner.is_valid(conn).await
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        self.inner.has_broken(conn)
    }
}
