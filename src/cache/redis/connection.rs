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
//!
//! Connections are not `PING`ed at checkout (that would double every
//! operation's round trips): a [`Conn`] is marked broken while a command is
//! in flight and stays so when the command fails at the transport level or
//! is abandoned (timeout), and the pool discards broken connections.

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

    /// Records a failed connect: operations fail fast for a while.
    pub(crate) fn failed(&self) {
        *self.lock() = Some(Instant::now() + Self::RETRY_AFTER);
        self.connect_failed.notify_waiters();
    }

    /// Records a successful connect.
    pub(crate) fn connected(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.down_until.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A pooled connection and whether it must be discarded.
#[derive(Debug)]
pub(crate) struct Conn {
    /// The multiplexed connection.
    pub(crate) inner: MultiplexedConnection,
    /// Set while a command is in flight and after a transport failure.
    pub(crate) broken: bool,
}

impl Conn {
    /// Runs `cmd`; the connection is left marked broken if the command is
    /// abandoned midway or fails at the transport level.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
    ) -> redis::RedisResult<T> {
        self.broken = true;
        let result = cmd.query_async::<T>(&mut self.inner).await;
        self.broken = result.as_ref().is_err_and(is_transport_error);
        result
    }

    /// Runs `pipe`, marking the connection like [`Self::query`] does.
    pub(crate) async fn pipeline<T: redis::FromRedisValue>(
        &mut self,
        pipe: &redis::Pipeline,
    ) -> redis::RedisResult<T> {
        self.broken = true;
        let result = pipe.query_async::<T>(&mut self.inner).await;
        self.broken = result.as_ref().is_err_and(is_transport_error);
        result
    }
}

/// Whether `e` means the connection itself is unusable.
fn is_transport_error(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
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
    type Connection = Conn;
    type Error = RedisError;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        match self.inner.connect().await {
            Ok(inner) => {
                self.health.connected();
                Ok(Conn {
                    inner,
                    broken: false,
                })
            }
            Err(e) => {
                self.health.failed();
                Err(e)
            }
        }
    }

    async fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        self.inner.is_valid(&mut conn.inner).await
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        conn.broken || self.inner.has_broken(&mut conn.inner)
    }
}
