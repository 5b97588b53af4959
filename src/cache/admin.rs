//! `/admin/cache/*`: purge and stats.
//!
//! - `POST /admin/cache/purge`: everything, in every tier.
//! - `POST /admin/cache/purge/{bucket}`: one bucket.
//! - `POST /admin/cache/purge/{bucket}/{key…}`: one object (every version).
//! - `GET /admin/cache/stats`: every tier and bucket.
//! - `GET /admin/cache/stats/{bucket}`: one bucket.
//!
//! Buckets are named as configured; an unknown one is a 404. A purge reaches
//! every tier; with Redis configured, the Redis tier broadcasts it so other
//! instances drop the entries from their memory tier too.

use http::{HeaderValue, Method, Response, StatusCode, header};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use super::PurgeScope;
use super::stats::hit_rate;
use super::store::Store;
use crate::body::{ProxyBody, full};
use crate::reload::Proxy;

/// Answers a request under `/admin/cache`; `None` when `path` is not one.
pub(crate) async fn handle(
    proxy: &Proxy,
    method: &Method,
    path: &str,
    request_id: &str,
) -> Option<Response<ProxyBody>> {
    let rest = path.strip_prefix("/admin/cache")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let (action, target) = match rest.trim_start_matches('/').split_once('/') {
        Some((action, target)) => (action, Some(target)),
        None => (rest.trim_start_matches('/'), None),
    };
    let (allowed, allow) = match action {
        "purge" => (Method::POST, "POST"),
        "stats" => (Method::GET, "GET"),
        _ => {
            return Some(error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "no such cache endpoint",
                request_id,
            ));
        }
    };
    if *method != allowed {
        let mut response = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "method not allowed on this endpoint",
            request_id,
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        return Some(response);
    }
    let (bucket, key) = match target.filter(|t| !t.is_empty()) {
        None => (None, None),
        Some(target) => match target.split_once('/') {
            Some((bucket, key)) if !key.is_empty() => (Some(decode(bucket)), Some(decode(key))),
            Some((bucket, _)) => (Some(decode(bucket)), None),
            None => (Some(decode(target)), None),
        },
    };
    if let Some(bucket) = &bucket
        && !proxy.config().buckets.iter().any(|b| &b.name == bucket)
    {
        return Some(error(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "no bucket with this name is configured",
            request_id,
        ));
    }
    let store = proxy.shared().cache.store();
    Some(match (action, key) {
        ("stats", Some(_)) => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "no such cache endpoint",
            request_id,
        ),
        ("stats", None) => json_response(
            StatusCode::OK,
            stats(store.as_deref(), proxy, bucket.as_deref()),
        ),
        (_, key) => {
            let scope = match (bucket, key) {
                (None, _) => PurgeScope::All,
                (Some(bucket), None) => PurgeScope::Bucket(bucket),
                (Some(bucket), Some(key)) => PurgeScope::Object { bucket, key },
            };
            purge(store.as_deref(), scope).await
        }
    })
}

fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

async fn purge(store: Option<&Store>, scope: PurgeScope) -> Response<ProxyBody> {
    let mut removed = serde_json::Map::new();
    let mut failed = serde_json::Map::new();
    let mut broadcast = None;
    if let Some(store) = store {
        for (tier, result) in store.purge(&scope).await {
            match result {
                Ok(count) => {
                    removed.insert(tier.as_str().into(), count.into());
                }
                Err(message) => {
                    failed.insert(tier.as_str().into(), message.into());
                }
            }
        }
        // Other instances sharing Redis drop it from their own tiers.
        broadcast = store.broadcast_purge(&scope).await;
    }
    tracing::info!(?scope, "cache purged");
    let scope = match &scope {
        PurgeScope::All => json!({"all": true}),
        PurgeScope::Bucket(bucket) => json!({"bucket": bucket}),
        PurgeScope::Object { bucket, key } => json!({"bucket": bucket, "key": key}),
        // Not requested through this API (forgets), but named exactly if it were.
        PurgeScope::Entry(entry) => json!({
            "bucket": &*entry.bucket,
            "key": entry.object,
            "backend": entry.backend.hex(),
            "version_id": entry.version_id,
        }),
    };
    let mut body = json!({"status": "purged", "scope": scope, "removed": removed});
    match broadcast {
        Some(Ok(())) => body["broadcast"] = Value::Bool(true),
        Some(Err(message)) => {
            body["broadcast"] = Value::Bool(false);
            failed.insert("broadcast".into(), message.into());
        }
        None => {}
    }
    if !failed.is_empty() {
        body["failed"] = Value::Object(failed);
    }
    json_response(StatusCode::OK, body)
}

fn stats(store: Option<&Store>, proxy: &Proxy, only: Option<&str>) -> Value {
    let Some(store) = store else {
        return json!({"enabled": false, "tiers": {}, "buckets": {}});
    };
    let config = proxy.config();
    let counters = store.all_bucket_counters();
    let mut buckets = serde_json::Map::new();
    for bucket in &config.buckets {
        if only.is_some_and(|only| only != bucket.name) {
            continue;
        }
        let snapshot = counters
            .iter()
            .find(|(name, _)| **name == *bucket.name)
            .map(|(_, c)| c.snapshot())
            .unwrap_or_default();
        let (items, bytes) = store.memory_usage(&bucket.name);
        buckets.insert(
            bucket.name.clone(),
            json!({
                "enabled": config.cache.enabled && bucket.cache.enabled,
                "hits": snapshot.hits,
                "misses": snapshot.misses,
                "stale": snapshot.stale,
                "bypass": snapshot.bypass,
                "coalesced": snapshot.coalesced,
                "hit_rate": hit_rate(snapshot.hits, snapshot.misses),
                "memory": {"items": items, "bytes": bytes},
            }),
        );
    }
    let tiers: serde_json::Map<String, Value> = store
        .tier_stats()
        .into_iter()
        .map(|(kind, s)| {
            (
                kind.as_str().to_owned(),
                json!({
                    "hits": s.hits,
                    "misses": s.misses,
                    "hit_rate": hit_rate(s.hits, s.misses),
                    "evictions": s.evictions,
                    "items": s.items,
                    "bytes": s.bytes,
                }),
            )
        })
        .collect();
    if let Some(only) = only {
        let mut bucket = buckets.remove(only).unwrap_or(Value::Null);
        bucket["name"] = Value::String(only.to_owned());
        return bucket;
    }
    json!({"enabled": config.cache.enabled, "tiers": tiers, "buckets": buckets})
}

fn json_response(status: StatusCode, body: Value) -> Response<ProxyBody> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response<ProxyBody> {
    json_response(
        status,
        json!({"error": {"code": code, "message": message, "request_id": request_id}}),
    )
}
