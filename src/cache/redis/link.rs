//! Where the tier's commands go: one server through the `bb8` pool, or a
//! Redis Cluster through one shared cluster connection; either way within
//! the tier's timeout, and any failure a [`TierError`].

use std::sync::Arc;
use std::time::Duration;

use bb8_redis::bb8::{self, Pool};

use super::cluster::ClusterLink;
use super::connection::{Health, Manager};
use crate::cache::TierError;

/// A command or a pipeline (the cluster sends a pipeline whose keys share
/// one hash slot to that slot's node).
#[derive(Clone, Copy)]
pub(crate) enum Request<'a> {
    /// One command.
    Cmd(&'a redis::Cmd),
    /// Several commands in one round trip.
    Pipe(&'a redis::Pipeline),
}

/// The connection(s) to Redis.
#[derive(Debug)]
pub(crate) enum Link {
    /// One server, pooled connections.
    Single {
        /// The pool (built without connecting).
        pool: Pool<Manager>,
        /// Fails operations fast while connects fail.
        health: Arc<Health>,
    },
    /// A Redis Cluster (boxed: far larger than the pool handle).
    Cluster(Box<ClusterLink>),
}

impl Link {
    /// Whether this is a cluster (its keys carry hash tags and generations).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Runs `request` within `timeout`.
    pub(crate) async fn run<T: redis::FromRedisValue>(
        &self,
        request: Request<'_>,
        timeout: Duration,
    ) -> Result<T, TierError> {
        let attempt = async {
            match self {
                Self::Single { pool, health } => single(pool, health, request).await,
                Self::Cluster(link) => {
                    let mut conn = link.connection().await?;
                    match request {
                        Request::Cmd(cmd) => cmd.query_async(&mut conn).await,
                        Request::Pipe(pipe) => pipe.query_async(&mut conn).await,
                    }
                    .map_err(|e| TierError::Redis(e.to_string()))
                }
            }
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| TierError::Timeout)?
    }
}

/// Runs `request` on a pooled connection, failing fast while connects fail.
async fn single<T: redis::FromRedisValue>(
    pool: &Pool<Manager>,
    health: &Health,
    request: Request<'_>,
) -> Result<T, TierError> {
    if health.is_down() {
        return Err(TierError::Redis(
            "unavailable (a connect failed moments ago)".into(),
        ));
    }
    let connect_failure = health.connect_failure();
    let mut conn = tokio::select! {
        biased;
        got = pool.get() => got.map_err(|e| match e {
            bb8::RunError::User(e) => TierError::Redis(e.to_string()),
            bb8::RunError::TimedOut => TierError::Timeout,
        })?,
        () = connect_failure => {
            return Err(TierError::Redis("cannot connect".into()));
        }
    };
    match request {
        Request::Cmd(cmd) => conn.query::<T>(cmd).await,
        Request::Pipe(pipe) => conn.pipeline::<T>(pipe).await,
    }
    .map_err(|e| TierError::Redis(e.to_string()))
}
