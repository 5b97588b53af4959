//! The queues between requests and the writers: one bounded queue per
//! output, so a slow or failed output never slows a request or another output.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use metrics::Counter;
use tokio::sync::{mpsc, oneshot};

use super::record::Record;
use super::{file, syslog};
use crate::build::BuildError;
use crate::config::{AuditLevel, AuditLogConfig, UpstreamConfig};
use crate::telemetry::metrics::AUDIT_DROPPED_TOTAL;

/// What a writer receives.
#[derive(Debug)]
pub(crate) enum Message {
    /// One record to write.
    Record(Arc<Record>),
    /// Write everything queued before this, flush, and stop.
    Stop,
}

/// One output's queue.
#[derive(Debug)]
struct Output {
    tx: mpsc::Sender<Message>,
    /// `yatagarasu_audit_dropped_total{output}`, resolved once.
    dropped: Counter,
}

/// Where requests hand their records: filters by level and queues each
/// record to every output without waiting.
#[derive(Debug)]
pub(crate) struct AuditSink {
    level: AuditLevel,
    pub(crate) include_claims: Box<[String]>,
    outputs: Box<[Output]>,
}

impl AuditSink {
    /// Whether records of `level` are written.
    pub(crate) fn wants(&self, level: AuditLevel) -> bool {
        level >= self.level
    }

    /// Queues `record` to every output; a full queue drops it for that
    /// output and counts the drop.
    pub(crate) fn send(&self, record: Record) {
        let record = Arc::new(record);
        for output in &*self.outputs {
            if output.tx.try_send(Message::Record(record.clone())).is_err() {
                output.dropped.increment(1);
            }
        }
    }
}

/// A writer's side of its queue, and how it reports that it has stopped.
pub(crate) struct Writer {
    pub(crate) rx: mpsc::Receiver<Message>,
    pub(crate) done: oneshot::Sender<()>,
}

/// The running audit log: its sink and its writers (one per output).
///
/// Built with the proxy ([`crate::Proxy::builder`]); lives as long as the
/// process, across reloads (`audit_log` changes take effect at restart).
#[derive(Debug)]
pub struct AuditLog {
    pub(crate) sink: Arc<AuditSink>,
    /// Set by [`AuditLog::reopen`]; the file writer reopens before its next record.
    reopen: Arc<AtomicBool>,
    stopping: Mutex<Vec<(mpsc::Sender<Message>, oneshot::Receiver<()>)>>,
}

impl AuditLog {
    /// Opens the outputs and starts their writers. The file is opened here,
    /// so a path that cannot be written fails the start.
    pub(crate) fn start(
        config: &AuditLogConfig,
        upstream: &UpstreamConfig,
    ) -> Result<Self, BuildError> {
        let reopen = Arc::new(AtomicBool::new(false));
        let mut outputs = Vec::new();
        let mut stopping = Vec::new();
        let mut queue = |name: &'static str, bound: usize| {
            let (tx, rx) = mpsc::channel(bound);
            let (done_tx, done_rx) = oneshot::channel();
            outputs.push(Output {
                tx: tx.clone(),
                dropped: metrics::counter!(AUDIT_DROPPED_TOTAL, "output" => name),
            });
            stopping.push((tx, done_rx));
            Writer { rx, done: done_tx }
        };
        if let Some(file) = &config.file {
            let writer = queue("file", file.buffer_size);
            file::start(file, writer, reopen.clone())
                .map_err(|e| BuildError::new("audit_log.file.path", e))?;
        }
        if let Some(syslog) = &config.syslog {
            let writer = queue("syslog", syslog.buffer_size);
            syslog::start(syslog, writer).map_err(|e| BuildError::new("audit_log.syslog", e))?;
        }
        if let Some(s3) = &config.s3_export {
            let writer = queue("s3", s3.buffer_size);
            super::s3::start(s3, upstream, writer)
                .map_err(|e| BuildError::new("audit_log.s3_export", e))?;
        }
        Ok(Self {
            sink: Arc::new(AuditSink {
                level: config.log_level,
                include_claims: config.include_claims.clone().into(),
                outputs: outputs.into(),
            }),
            reopen,
            stopping: Mutex::new(stopping),
        })
    }

    /// Reopens the audit file at its path (after an external logrotate
    /// moved it); the binary calls this on SIGHUP.
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }

    /// Writes out everything queued so far, then stops the writers (graceful
    /// shutdown: records of requests already answered are not lost).
    /// Records sent afterwards are dropped and counted.
    pub async fn shutdown(&self) {
        let stopping =
            std::mem::take(&mut *self.stopping.lock().unwrap_or_else(|p| p.into_inner()));
        for (tx, _) in &stopping {
            // Waits for room: the stop goes after every queued record.
            let _ = tx.send(Message::Stop).await;
        }
        for (_, done) in stopping {
            let _ = done.await;
        }
    }
}
