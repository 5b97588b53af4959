use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::LiveCredentials;
use super::refresh;
use crate::build::Staging;
use crate::config::CredentialSource;

/// The live credentials of every source in use, shared across reloads.
///
/// A reload that keeps a source keeps its credentials and refresh task, so
/// requests never wait for a fetch; a source no generation uses any more is
/// dropped with the last generation that held it, and its task ends.
#[derive(Debug, Default)]
pub struct CredentialRegistry {
    live: Mutex<HashMap<CredentialSource, Weak<LiveCredentials>>>,
}

impl CredentialRegistry {
    /// The live credentials of `source`: the ones in use when there are,
    /// else new ones (shared by every target of this build with the same
    /// source) whose refresh task starts when the build commits. A build
    /// that fails drops them: only a dead weak entry remains.
    pub(crate) fn stage(
        &self,
        staging: &mut Staging<'_>,
        source: &CredentialSource,
    ) -> Arc<LiveCredentials> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, weak| weak.strong_count() > 0);
        if let Some(existing) = live.get(source).and_then(Weak::upgrade) {
            return existing;
        }
        let created = Arc::new(LiveCredentials::new(source.clone()));
        live.insert(source.clone(), Arc::downgrade(&created));
        let started = created.clone();
        staging.on_commit(move |shared| {
            // `check` builds without a runtime and never serves: no task.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let readiness = shared.readiness.clone();
                runtime.spawn(refresh::run(Arc::downgrade(&started), readiness));
            }
        });
        created
    }
}
