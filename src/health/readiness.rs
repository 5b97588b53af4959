use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::Notify;

/// The outcome of the last probe of one bucket's backend (or of one of its replicas).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProbeResult {
    /// Whether the bucket can serve: its backend, or at least one of its
    /// replicas, answered (any status below 500).
    pub up: bool,
    /// The HTTP status it answered with, if it answered (for a bucket with
    /// replicas: the status of the replica that serves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it is down (connect error, timeout, 5xx).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `ready`, `degraded` (the first replica is down, another one serves)
    /// or `unhealthy` (nothing reachable).
    pub state: TargetState,
    /// Each replica's own result, for buckets with replicas.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub replicas: BTreeMap<String, ProbeResult>,
}

/// The state `/ready` reports for a bucket or a replica.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    /// Reachable (for a bucket: its first target is).
    Ready,
    /// A bucket whose first replica is down while another one serves.
    Degraded,
    /// Not reachable (for a bucket: none of its targets is).
    Unhealthy,
}

impl ProbeResult {
    /// A target that did not answer, and why.
    pub fn down(error: impl Into<String>) -> Self {
        Self {
            up: false,
            status: None,
            error: Some(error.into()),
            state: TargetState::Unhealthy,
            replicas: BTreeMap::new(),
        }
    }

    /// A target that answered with `status` (up below 500).
    pub fn answered(status: http::StatusCode) -> Self {
        let up = !status.is_server_error();
        Self {
            up,
            status: Some(status.as_u16()),
            error: (!up).then(|| format!("backend answered {status}")),
            state: if up {
                TargetState::Ready
            } else {
                TargetState::Unhealthy
            },
            replicas: BTreeMap::new(),
        }
    }

    /// A bucket's result from its replicas' results, in priority order:
    /// ready when the first is up, degraded when another one is, else unhealthy.
    pub fn of_replicas(results: Vec<(String, ProbeResult)>) -> Self {
        let serving = results.iter().position(|(_, r)| r.up);
        let mut bucket = match serving {
            Some(i) => Self {
                state: if i == 0 {
                    TargetState::Ready
                } else {
                    TargetState::Degraded
                },
                ..results[i].1.clone()
            },
            None => Self::down("no replica is reachable"),
        };
        bucket.replicas = results.into_iter().collect();
        bucket
    }
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
                let result = (probes.get(name).cloned())
                    .unwrap_or_else(|| ProbeResult::down("not probed yet"));
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
