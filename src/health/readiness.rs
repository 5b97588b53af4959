use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Process-wide readiness state; outlives configuration reloads.
#[derive(Debug, Default)]
pub struct Readiness {
    shutting_down: AtomicBool,
    probes: Mutex<BTreeMap<String, ProbeResult>>,
    probe_now: Notify,
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

    /// Asks the probe loop to run now (after a reload).
    pub fn request_probe(&self) {
        self.probe_now.notify_one();
    }

    pub(super) async fn probe_requested(&self) {
        self.probe_now.notified().await;
    }
}
