//! Each admin endpoint's answer.

use http::{Response, StatusCode};
use serde_json::json;

use super::json::{self, error};
use super::routes::{Endpoint, Miss};
use crate::body::ProxyBody;
use crate::cache::admin::{self as cache_admin, UnknownBucket};
use crate::reload::Proxy;
use crate::server::{Control, ReloadError};

/// Answers a resolved admin request (already past the gate).
pub(super) async fn answer(
    control: &Control,
    route: Result<Endpoint, Miss>,
    id: &str,
) -> Response<ProxyBody> {
    match route {
        Err(Miss::NotFound) => json::not_found(id),
        Err(Miss::Method { allow }) => json::method_not_allowed(allow, id),
        Ok(Endpoint::Reload) => reload(control, id).await,
        Ok(Endpoint::Status) => status(&control.proxy),
        Ok(Endpoint::Purge { bucket, key }) => purge(&control.proxy, bucket, key, id).await,
        Ok(Endpoint::Stats { bucket }) => stats(&control.proxy, bucket.as_deref(), id),
    }
}

/// `GET /admin/status`: version, generation and buckets in force.
fn status(proxy: &Proxy) -> Response<ProxyBody> {
    let config = proxy.config();
    let buckets: Vec<_> = config
        .buckets
        .iter()
        .map(|b| json!({"name": b.name, "path_prefix": b.path_prefix}))
        .collect();
    json::json(
        StatusCode::OK,
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "generation": proxy.generation(),
            "buckets": buckets,
        }),
    )
}

/// `POST /admin/reload`.
async fn reload(control: &Control, id: &str) -> Response<ProxyBody> {
    match control.reload().await {
        Ok(generation) => json::json(
            StatusCode::OK,
            json!({"status": "reloaded", "generation": generation}),
        ),
        Err(refused) => reload_failed(refused, id),
    }
}

/// Why a reload did not happen, as the answer to the operator.
fn reload_failed(failure: ReloadError, id: &str) -> Response<ProxyBody> {
    let invalid = |message: &str, details: Vec<String>| {
        json::json(
            StatusCode::BAD_REQUEST,
            json!({"error": {
                "code": "InvalidConfig",
                "message": message,
                "details": details,
                "request_id": id,
            }}),
        )
    };
    match failure {
        ReloadError::Invalid(errors) => invalid(
            "the new configuration is invalid; the old one keeps serving",
            errors.0.iter().map(ToString::to_string).collect(),
        ),
        ReloadError::Build(e) => invalid(
            "the new configuration could not be built; the old one keeps serving",
            vec![e.to_string()],
        ),
        ReloadError::NoSource => error(
            StatusCode::CONFLICT,
            "NoConfigSource",
            "nothing to reload from",
            id,
        ),
        ReloadError::Interrupted(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "the reload did not finish; see the log",
            id,
        ),
    }
}

/// `POST /admin/cache/purge[/{bucket}[/{key…}]]`.
async fn purge(
    proxy: &Proxy,
    bucket: Option<String>,
    key: Option<String>,
    id: &str,
) -> Response<ProxyBody> {
    match cache_admin::purge_scope(proxy, bucket, key) {
        Ok(scope) => json::json(StatusCode::OK, cache_admin::purge(proxy, scope).await),
        Err(unknown) => no_such_bucket(unknown, id),
    }
}

/// `GET /admin/cache/stats[/{bucket}]`.
fn stats(proxy: &Proxy, bucket: Option<&str>, id: &str) -> Response<ProxyBody> {
    match cache_admin::stats(proxy, bucket) {
        Ok(stats) => json::json(StatusCode::OK, stats),
        Err(unknown) => no_such_bucket(unknown, id),
    }
}

fn no_such_bucket(unknown: UnknownBucket, id: &str) -> Response<ProxyBody> {
    error(
        StatusCode::NOT_FOUND,
        "NoSuchBucket",
        &unknown.to_string(),
        id,
    )
}
