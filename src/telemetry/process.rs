//! Process and runtime gauges, sampled when `/metrics` is scraped.
//!
//! Sampling at scrape time, not on a timer, means the values are as fresh as
//! the scrape and nothing runs between scrapes. The process metrics are the
//! standard `process_*` ones (resident and virtual memory, CPU seconds, open
//! and maximum descriptors, threads, start time), read from `/proc` by the
//! `metrics-process` crate; the runtime ones are tokio's stable counters.

use metrics_process::Collector;

use super::metrics::{RUNTIME_ALIVE_TASKS, RUNTIME_GLOBAL_QUEUE_DEPTH, RUNTIME_WORKERS};

/// Samples the process and the tokio runtime into the installed recorder.
///
/// Kept by the metrics listener and run before each render.
#[derive(Debug, Clone, Default)]
pub struct ProcessSampler {
    process: Collector,
}

impl ProcessSampler {
    /// Records the current values; a reading the platform does not offer is
    /// left out. Outside a tokio runtime only the process is sampled.
    pub fn sample(&self) {
        self.process.collect();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let m = runtime.metrics();
            metrics::gauge!(RUNTIME_WORKERS).set(m.num_workers() as f64);
            metrics::gauge!(RUNTIME_ALIVE_TASKS).set(m.num_alive_tasks() as f64);
            metrics::gauge!(RUNTIME_GLOBAL_QUEUE_DEPTH).set(m.global_queue_depth() as f64);
        }
    }
}

/// Describes the `process_*` metrics (their help text comes with the crate).
pub(super) fn describe() {
    Collector::default().describe();
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;
    use crate::telemetry::metrics::PROCESS_METRICS;

    #[tokio::test]
    async fn a_sample_records_the_process_and_the_runtime() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || ProcessSampler::default().sample());
        let text = handle.render();
        for name in PROCESS_METRICS
            .iter()
            .chain(&[RUNTIME_WORKERS, RUNTIME_ALIVE_TASKS])
        {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{name} "))),
                "{name} missing from:\n{text}"
            );
        }
    }
}
