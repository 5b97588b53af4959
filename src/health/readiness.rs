use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::Notify;

/// The outcome of the last probe of one bucket's backend.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProbeResult {
    /// Whether the backend answered (any status below 500).
    pub up: bool,
    /// The HTTP status it answered with, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it is down (connect error, timeout, 5xx).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reports the buckets whose token verification keys are not loaded
/// (bucket name → why); installed by the authentication layer.
pub type KeyStatus = Arc<dyn Fn() -> BTreeMap<String, String> + Send + Sync>;

/// Process-wide readiness state; outlives configuration reloads.
#[derive(Default)]
pub struct Readiness {
    shutting_down: AtomicBool,
    probes: Mutex<BTreeMap<String, ProbeResult>>,
    probe_now: Notify,
    key_status: Mutex<Option<KeyStatus>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("shutting_down", &self.is_shutting_down())
            .finish_non_exhaustive()
    }
}

impl Readiness {
    /// Marks the process as draining: `/ready` answers 503 from now on.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Replaces all probe results (buckets that are gone disappear).
    pub fn record(&self, results: BTreeMap<String, ProbeResult>) {
        if let Ok(mut probes) = self.probes.lock() {
            *probes = results;
        }
    }

    /// The last result for each of `buckets`; a bucket not probed yet is down.
    pub fn snapshot<'a>(
        &self,
        buckets: impl IntoIterator<Item = &'a str>,
    ) -> BTreeMap<String, ProbeResult> {
        let probes = match self.probes.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        buckets
            .into_iter()
            .map(|name| {
                let result = probes.get(name).cloned().unwrap_or(ProbeResult {
                    up: false,
                    status: None,
                    error: Some("not probed yet".into()),
                });
                (name.to_owned(), result)
            })
            .collect()
    }

    /// Installs the check of verification keys (replaced at each build).
    pub fn set_key_status(&self, status: KeyStatus) {
        if let Ok(mut slot) = self.key_status.lock() {
            *slot = Some(status);
        }
    }

    /// The buckets whose verification keys are not loaded, with why.
    pub fn keys_not_loaded(&self) -> BTreeMap<String, String> {
        let status = self.key_status.lock().ok().and_then(|s| s.clone());
        status.map(|f| f()).unwrap_or_default()
    }

    /// Asks the probe loop to run now (after a reload).
    pub fn request_probe(&self) {
        self.probe_now.notify_one();
    }

    pub(super) async fn probe_requested(&self) {
        self.probe_now.notified().await;
    }
}
