//! One shared connection to a Redis Cluster, opened on first use.
//!
//! `redis`'s cluster connection is multiplexed (one connection per node,
//! shared by every caller), follows `MOVED`/`ASK` redirects, refreshes the
//! slot map and reconnects to nodes by itself, so it is not pooled: one
//! clone per operation is all a caller needs (a cheap handle to its task).
//! It is opened lazily (the cluster may be down when the proxy starts); a
//! failed open makes operations fail fast for [`Health::RETRY_AFTER`],
//! like the single-server pool does.

use std::sync::Mutex;
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};

use redis::cluster_async::ClusterConnection;

use super::connection::Health;
use crate::cache::TierError;

/// Retries of a command inside the cluster client (redirects, a node that
/// just went away); the tier's own timeout bounds the whole operation.
const CLUSTER_RETRIES: u32 = 2;

/// The lazily opened cluster connection.
pub(crate) struct ClusterLink {
    client: ClusterClient,
    current: Mutex<Option<ClusterConnection>>,
    connecting: tokio::sync::Mutex<()>,
    health: Health,
}

impl std::fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the node URLs (they may hold a password).
        f.debug_struct("ClusterLink").finish_non_exhaustive()
    }
}

impl ClusterLink {
    /// A link to the cluster seeded by `nodes` (their password and TLS
    /// mode apply to every node found), without connecting. `timeout`
    /// bounds each connect and each node's answer.
    pub(crate) fn new(
        nodes: Vec<redis::ConnectionInfo>,
        timeout: Duration,
    ) -> Result<Self, TierError> {
        let retry_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let client = ClusterClientBuilder::new(nodes)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(retry_ms.min(10))
            .max_retry_wait(retry_ms)
            .build()
            .map_err(|_| TierError::Redis("invalid Redis Cluster settings".into()))?;
        Ok(Self {
            client,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            health: Health::default(),
        })
    }

    /// The shared connection, opening it when there is none yet.
    pub(crate) async fn connection(&self) -> Result<ClusterConnection, TierError> {
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        if self.health.is_down() {
            return Err(TierError::Redis(
                "cluster unavailable (a connect failed moments ago)".into(),
            ));
        }
        // One caller opens; the others wait for it rather than each opening.
        let _opening = self.connecting.lock().await;
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        match self.client.get_async_connection().await {
            Ok(conn) => {
                self.health.connected();
                *self.lock() = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                self.health.failed();
                Err(TierError::Redis(format!(
                    "cannot connect to the cluster: {e}"
                )))
            }
        }
    }

    fn current(&self) -> Option<ClusterConnection> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ClusterConnection>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use redis::IntoConnectionInfo as _;

    use super::*;

    #[tokio::test]
    async fn an_unreachable_tls_cluster_is_an_error_then_fails_fast() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        // rediss:// parses only with the TLS features compiled in.
        let node = format!("rediss://:pw@127.0.0.1:{port}")
            .into_connection_info()
            .unwrap();
        let link = ClusterLink::new(vec![node], Duration::from_secs(5)).unwrap();
        assert!(link.connection().await.is_err(), "nothing listens there");
        assert!(link.health.is_down());
        let Err(TierError::Redis(message)) = link.connection().await else {
            panic!("fails fast");
        };
        assert!(message.contains("moments ago"), "{message}");
    }
}
