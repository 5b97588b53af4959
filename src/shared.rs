//! State that outlives configuration reloads.
//!
//! Connection pools are expensive to rebuild and hold warm TLS sessions, so
//! reloads reuse them: one pooled client per distinct trust configuration
//! (pool settings plus the bytes of a private CA file). Clients no longer used
//! by the configuration in force are dropped at the next reload, closing
//! their idle connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::auth::AuthShared;
use crate::authz::AuthzShared;
use crate::cache::CacheShared;
use crate::config::UpstreamConfig;
use crate::health::Readiness;
use crate::stack::LeafService;
use crate::upstream::{ClientError, UpstreamClient, build_client};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    upstream: UpstreamConfig,
    /// Contents of the extra CA file, so an edited file gets a new client.
    extra_ca: Option<Vec<u8>>,
}

/// Everything the proxy keeps across reloads.
pub struct Shared {
    clients: Mutex<HashMap<ClientKey, UpstreamClient>>,
    /// Backend probe results and the shutdown flag.
    pub readiness: Arc<Readiness>,
    /// When the process (or embedding) started, for `/health` uptime.
    pub started: Instant,
    /// Replaces the pooled client at the bottom of every stack, when set.
    pub(crate) leaf: Option<LeafService>,
    /// JWKS key sets, kept while their configuration is unchanged.
    pub auth: AuthShared,
    /// Policy decision caches, kept while their configuration is unchanged.
    pub authz: AuthzShared,
    /// The response cache and its tiers.
    pub cache: CacheShared,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
            readiness: Arc::new(Readiness::default()),
            started: Instant::now(),
            leaf: None,
            auth: AuthShared::default(),
            authz: AuthzShared::default(),
            cache: CacheShared::default(),
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("client_pools", &self.client_pools())
            .field("custom_leaf", &self.leaf.is_some())
            .finish_non_exhaustive()
    }
}

/// Collects the clients one configuration build uses, to prune the rest afterwards.
#[derive(Debug, Default)]
pub(crate) struct ClientUse(Vec<ClientKey>);

impl Shared {
    /// The pooled client for these settings, reused when it already exists.
    pub(crate) fn client(
        &self,
        upstream: &UpstreamConfig,
        extra_ca: Option<&std::path::Path>,
        used: &mut ClientUse,
    ) -> Result<UpstreamClient, ClientError> {
        let ca_bytes = match extra_ca {
            Some(path) => Some(std::fs::read(path).map_err(|e| ClientError::CaFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let key = ClientKey {
            upstream: upstream.clone(),
            extra_ca: ca_bytes,
        };
        used.0.push(key.clone());
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = build_client(upstream, extra_ca)?;
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// Drops the clients the configuration now in force does not use.
    pub(crate) fn retain_clients(&self, used: &ClientUse) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.retain(|key, _| used.0.contains(key));
    }

    /// How many distinct connection pools exist (for tests and diagnostics).
    pub fn client_pools(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or(0)
    }
}
