use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::{CredentialSource, UpstreamConfig};
use crate::credentials::{CredentialRegistry, LiveCredentials};
use crate::shared::Shared;
use crate::upstream::{ClientError, UpstreamClient, build_client};

/// What makes two pooled clients interchangeable: the pool settings and the
/// extra CA certificates (their bytes, so an edited file gets a new pool).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    upstream: UpstreamConfig,
    extra_ca: Option<Vec<u8>>,
}

/// The pooled clients alive across reloads, one per [`ClientKey`].
///
/// Pools are expensive to rebuild and hold warm TLS sessions, so a reload
/// reuses them; pools the generation in force does not use are dropped at
/// commit, closing their idle connections.
#[derive(Debug, Default)]
pub(crate) struct Pools {
    clients: Mutex<HashMap<ClientKey, UpstreamClient>>,
    /// Run-time credentials by source: like the pools, kept by a reload
    /// that keeps using them.
    credentials: CredentialRegistry,
}

impl Pools {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, UpstreamClient>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many distinct pools exist.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A commit step: what a build wants done once its generation is live.
type Action = Box<dyn FnOnce(&Shared) + Send>;

/// The changes one build makes to the state that outlives reloads, held
/// back until [`Staged::commit`].
///
/// Public so embedders and benchmarks can build single layers (e.g.
/// [`crate::cache::CacheGeneration::stage`]) the way the stack does.
#[derive(Debug)]
pub struct Staging<'a> {
    pools: &'a Pools,
    staged: Staged,
}

impl<'a> Staging<'a> {
    /// Starts a build that reuses what `shared` holds.
    pub fn new(shared: &'a Shared) -> Self {
        Self {
            pools: &shared.pools,
            staged: Staged {
                used: Vec::new(),
                created: HashMap::new(),
                actions: Vec::new(),
            },
        }
    }

    /// The pooled client for these settings: the live one when it exists,
    /// otherwise a new one that joins the pools at commit. Either way the
    /// pool is recorded as used by this generation.
    pub(crate) fn client(
        &mut self,
        upstream: &UpstreamConfig,
        extra_ca: Option<&[u8]>,
    ) -> Result<UpstreamClient, ClientError> {
        let key = ClientKey {
            upstream: upstream.clone(),
            extra_ca: extra_ca.map(<[u8]>::to_vec),
        };
        let staged = &mut self.staged;
        let existing = self.pools.lock().get(&key).cloned();
        let client = match existing.or_else(|| staged.created.get(&key).cloned()) {
            Some(client) => client,
            None => {
                let client = build_client(upstream, extra_ca)?;
                staged.created.insert(key.clone(), client.clone());
                client
            }
        };
        if !staged.used.contains(&key) {
            staged.used.push(key);
        }
        Ok(client)
    }

    /// The live credentials of `source`: those in use when a live
    /// generation has the same source, else new ones refreshed from commit on.
    pub(crate) fn live_credentials(&mut self, source: &CredentialSource) -> Arc<LiveCredentials> {
        let pools = self.pools;
        pools.credentials.stage(self, source)
    }

    /// Runs `action` when the generation goes live (never, if the build fails).
    pub(crate) fn on_commit(&mut self, action: impl FnOnce(&Shared) + Send + 'static) {
        self.staged.actions.push(Box::new(action));
    }

    /// Ends the build: what is left to do is applied by [`Staged::commit`].
    pub fn finish(self) -> Staged {
        self.staged
    }
}

/// A finished build's pending changes to the state that outlives reloads.
pub struct Staged {
    used: Vec<ClientKey>,
    created: HashMap<ClientKey, UpstreamClient>,
    actions: Vec<Action>,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("pools_used", &self.used.len())
            .field("pools_created", &self.created.len())
            .field("actions", &self.actions.len())
            .finish()
    }
}

impl Staged {
    /// Applies the build's changes, in order: new pools join, pools no
    /// longer used are dropped, then the commit actions run.
    pub fn commit(self, shared: &Shared) {
        {
            let mut clients = shared.pools.lock();
            for (key, client) in self.created {
                clients.entry(key).or_insert(client);
            }
            clients.retain(|key, _| self.used.contains(key));
        }
        for action in self.actions {
            action(shared);
        }
    }
}
