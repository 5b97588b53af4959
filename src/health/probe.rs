use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use http::{Method, Request, header};

use super::{ProbeResult, Readiness};
use crate::backend::S3Backend;
use crate::body::empty;
use crate::reload::Snapshot;
use crate::route::BucketRoute;
use crate::sigv4::sign_request;
use crate::telemetry::metrics::BACKEND_UP;

/// Probes one bucket: its backend, or each of its replicas.
///
/// Any answer below 500 counts as up: the backend is reachable and speaking
/// S3. A 403 (credentials allowed to read objects but not the bucket) is still
/// "answered"; the status is reported so operators can tell. A bucket with
/// replicas is up while one of them is (see [`ProbeResult::of_replicas`]).
pub async fn probe_backend(route: &BucketRoute, timeout: Duration) -> ProbeResult {
    if route.replicas.is_empty() {
        return probe_target(&route.backend, timeout).await;
    }
    let probes = route.replicas.iter().map(|replica| async move {
        let result = probe_target(&replica.backend, timeout).await;
        (replica.name.to_string(), result)
    });
    ProbeResult::of_replicas(futures_util::future::join_all(probes).await)
}

/// Probes one S3 target with a signed HeadBucket.
async fn probe_target(backend: &S3Backend, timeout: Duration) -> ProbeResult {
    let uri = match backend.bucket_uri() {
        Ok(uri) => uri,
        Err(e) => return ProbeResult::down(e.to_string()),
    };
    let mut request = Request::new(empty());
    *request.method_mut() = Method::HEAD;
    *request.uri_mut() = uri;
    request
        .headers_mut()
        .insert(header::HOST, backend.host().clone());
    if let Err(e) = sign_request(&mut request, backend, SystemTime::now()) {
        return ProbeResult::down(e.to_string());
    }
    match tokio::time::timeout(timeout, backend.client.request(request)).await {
        Err(_) => ProbeResult::down(format!("no answer within {timeout:?}")),
        Ok(Err(e)) => ProbeResult::down(if e.is_connect() {
            "connection failed"
        } else {
            "protocol error"
        }),
        Ok(Ok(response)) => ProbeResult::answered(response.status()),
    }
}

async fn probe_all(snapshot: &Snapshot) -> BTreeMap<String, ProbeResult> {
    let timeout = snapshot.config.server.request_timeout;
    let probes = snapshot
        .routes
        .iter()
        .map(|route| async move { (route.name.to_string(), probe_backend(route, timeout).await) });
    futures_util::future::join_all(probes)
        .await
        .into_iter()
        .collect()
}

/// Probes every bucket of the configuration in force, forever: at start,
/// every interval, and right after each reload.
pub async fn run_probes(current: Arc<ArcSwap<Snapshot>>, readiness: Arc<Readiness>) {
    loop {
        let snapshot = current.load_full();
        let results = probe_all(&snapshot).await;
        for (name, result) in &results {
            metrics::gauge!(BACKEND_UP, "bucket" => name.clone()).set(if result.up {
                1.0
            } else {
                0.0
            });
            if !result.up {
                tracing::warn!(bucket = %name, error = result.error.as_deref().unwrap_or(""), "backend probe failed");
            }
        }
        readiness.record(results);
        let interval = snapshot.config.server.readiness_probe_interval;
        drop(snapshot);
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = readiness.probe_requested() => {}
        }
    }
}
