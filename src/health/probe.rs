use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use http::{Method, Request, header};

use super::{ProbeResult, Readiness};
use crate::body::empty;
use crate::reload::Snapshot;
use crate::route::BucketRoute;
use crate::sigv4::sign_request;
use crate::telemetry::metrics::BACKEND_UP;

/// Probes one bucket's backend with a signed HeadBucket.
///
/// Any answer below 500 counts as up: the backend is reachable and speaking
/// S3. A 403 (credentials allowed to read objects but not the bucket) is still
/// "answered"; the status is reported so operators can tell.
pub async fn probe_backend(route: &BucketRoute, timeout: Duration) -> ProbeResult {
    let down = |error: String| ProbeResult {
        up: false,
        status: None,
        error: Some(error),
    };
    let backend = &route.backend;
    let uri = match backend.bucket_uri() {
        Ok(uri) => uri,
        Err(e) => return down(e.to_string()),
    };
    let mut request = Request::new(empty());
    *request.method_mut() = Method::HEAD;
    *request.uri_mut() = uri;
    request
        .headers_mut()
        .insert(header::HOST, backend.host().clone());
    if let Err(e) = sign_request(&mut request, backend, SystemTime::now()) {
        return down(e.to_string());
    }
    match tokio::time::timeout(timeout, backend.client.request(request)).await {
        Err(_) => down(format!("no answer within {timeout:?}")),
        Ok(Err(e)) => down(if e.is_connect() {
            "connection failed".to_owned()
        } else {
            "protocol error".to_owned()
        }),
        Ok(Ok(response)) => {
            let status = response.status();
            ProbeResult {
                up: !status.is_server_error(),
                status: Some(status.as_u16()),
                error: status
                    .is_server_error()
                    .then(|| format!("backend answered {status}")),
            }
        }
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
