//! The S3 export: records batched into JSON-lines objects, one per
//! `export_interval_seconds`, named by time and instance, uploaded with a
//! SigV4-signed `PUT` (the payload hash signed too) and retried with backoff.
//! On shutdown the last batch is uploaded before the writer stops.

use std::io;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, header};
use metrics::Counter;

use super::clock;
use super::sink::{Message, Writer};
use crate::backend::S3Backend;
use crate::config::{AuditS3Config, S3Config, S3Credentials, Secret, UpstreamConfig};
use crate::telemetry::metrics::AUDIT_DROPPED_TOTAL;
use crate::upstream::build_client;

/// A batch is uploaded early once it holds this many bytes.
const MAX_BATCH_BYTES: usize = 16 << 20;
/// Attempts per batch (the first try and its retries).
const ATTEMPTS: u32 = 6;
/// The wait before the first retry; doubled for each one after.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Starts the exporter task on the current runtime.
pub(super) fn start(
    config: &AuditS3Config,
    upstream: &UpstreamConfig,
    writer: Writer,
) -> io::Result<()> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| io::Error::other("the S3 export needs a tokio runtime"))?;
    let endpoint = match &config.endpoint {
        Some(e) => Some(
            e.parse()
                .map_err(|_| io::Error::other("endpoint: not a URL"))?,
        ),
        None => None,
    };
    let credentials = match &config.credentials {
        Some((access_key, secret_key)) => Some((access_key.clone(), secret_key.clone())),
        None => std::env::var("AWS_ACCESS_KEY_ID")
            .ok()
            .zip(std::env::var("AWS_SECRET_ACCESS_KEY").ok())
            .map(|(a, s)| (Secret::new(a), Secret::new(s))),
    };
    let s3 = S3Config {
        bucket: config.bucket.clone(),
        region: config.region.clone(),
        endpoint,
        force_path_style: true,
        credentials: credentials.map(|(access_key, secret_key)| S3Credentials {
            access_key,
            secret_key,
            session_token: std::env::var("AWS_SESSION_TOKEN").ok().map(Secret::new),
        }),
        credential_source: None,
        ca_cert_path: None,
    };
    let client = build_client(upstream, None).map_err(io::Error::other)?;
    let backend = S3Backend::new(&s3, client).map_err(io::Error::other)?;
    let exporter = Exporter {
        backend,
        prefix: config.path_prefix.clone(),
        interval: config.export_interval,
        instance: instance(),
        sequence: 0,
        dropped: metrics::counter!(AUDIT_DROPPED_TOTAL, "output" => "s3"),
    };
    runtime.spawn(exporter.run(writer));
    Ok(())
}

/// The exporter's state between batches.
struct Exporter {
    backend: S3Backend,
    prefix: String,
    interval: Duration,
    /// `hostname-pid`: two proxies writing to one prefix never collide.
    instance: String,
    /// Distinguishes batches of the same millisecond.
    sequence: u64,
    dropped: Counter,
}

impl Exporter {
    async fn run(mut self, mut writer: Writer) {
        let mut batch = Vec::new();
        let mut records = 0u64;
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                message = writer.rx.recv() => match message {
                    Some(Message::Record(record)) => {
                        batch.extend_from_slice(&record.line());
                        records += 1;
                        if batch.len() >= MAX_BATCH_BYTES {
                            self.upload(std::mem::take(&mut batch), std::mem::take(&mut records)).await;
                        }
                    }
                    Some(Message::Stop) | None => break,
                },
                _ = tick.tick() => {
                    if records > 0 {
                        self.upload(std::mem::take(&mut batch), std::mem::take(&mut records)).await;
                    }
                }
            }
        }
        if records > 0 {
            self.upload(batch, records).await;
        }
        let _ = writer.done.send(());
    }

    /// Uploads one batch, retrying with backoff; a batch that cannot be
    /// uploaded is counted as dropped.
    async fn upload(&mut self, batch: Vec<u8>, records: u64) {
        let key = self.next_key(SystemTime::now());
        let body = Bytes::from(batch);
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            match self.put(&key, body.clone()).await {
                Ok(()) => return,
                Err(error) if attempt == ATTEMPTS => {
                    tracing::error!(%error, key, records, "audit batch not uploaded; dropped");
                }
                Err(error) => {
                    tracing::warn!(%error, key, attempt, "audit batch upload failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        self.dropped.increment(records);
    }

    /// `<prefix>YYYY/MM/DD/<YYYYMMDDTHHMMSS.mmmZ>-<instance>-<n>.jsonl`.
    fn next_key(&mut self, now: SystemTime) -> String {
        self.sequence += 1;
        let stamp = clock::compact(now);
        format!(
            "{}{}/{}/{}/{stamp}-{}-{}.jsonl",
            self.prefix,
            &stamp[..4],
            &stamp[4..6],
            &stamp[6..8],
            self.instance,
            self.sequence
        )
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), String> {
        let request = signed_put(&self.backend, key, body)?;
        let response = (self.backend.client.request(request).await).map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("S3 answered {}", response.status()))
        }
    }
}

/// A `PUT` of `body` at `key`, signed with the payload's hash when the
/// export has credentials.
fn signed_put(
    backend: &S3Backend,
    key: &str,
    body: Bytes,
) -> Result<Request<crate::body::ProxyBody>, String> {
    let uri = backend.object_uri(key, "").map_err(|e| e.to_string())?;
    let mut request = Request::put(uri)
        .header(header::HOST, backend.host().clone())
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CONTENT_LENGTH, body.len())
        .body(())
        .map_err(|e| e.to_string())?;
    if let Some(identity) = &backend.identity {
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(&backend.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(SETTINGS.clone())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let uri = request.uri().to_string();
        let headers = request
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("")));
        let signable = SignableRequest::new("PUT", &uri, headers, SignableBody::Bytes(&body))
            .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        let (new_headers, _) = instructions.into_parts();
        for h in new_headers {
            let name = HeaderName::from_bytes(h.name().as_bytes()).map_err(|e| e.to_string())?;
            let value = HeaderValue::from_str(h.value()).map_err(|e| e.to_string())?;
            request.headers_mut().insert(name, value);
        }
    }
    Ok(request.map(|()| crate::body::full(body)))
}

/// Signing settings: the payload hash is signed and sent (`x-amz-content-sha256`).
static SETTINGS: LazyLock<SigningSettings> = LazyLock::new(|| {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings
});

/// `hostname-pid`, with anything but `[A-Za-z0-9._-]` replaced.
fn instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let host = if host.is_empty() {
        "yatagarasu".to_owned()
    } else {
        host
    };
    format!("{host}-{}", std::process::id())
}
