use std::sync::Arc;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::internal::serve_internal;
use super::{Control, ReloadError};
use crate::body::{ProxyBody, full};
use crate::config::ServerConfig;
use crate::request_id::RequestId;

fn json(status: StatusCode, body: serde_json::Value) -> Response<ProxyBody> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, code: &str, message: &str, id: &str) -> Response<ProxyBody> {
    json(
        status,
        serde_json::json!({"error": {"code": code, "message": message, "request_id": id}}),
    )
}

/// Compares in time independent of where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(control: &Control, request: &Request<Incoming>) -> bool {
    let config = control.proxy.config();
    let Some(token) = &config.admin.token else {
        return true;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.expose().as_bytes()))
}

fn handle(control: &Control, request: &Request<Incoming>) -> Response<ProxyBody> {
    let id = request
        .extensions()
        .get::<RequestId>()
        .map_or_else(String::new, |id| id.to_string());
    if !authorized(control, request) {
        tracing::warn!(
            path = request.uri().path(),
            "admin request without a valid token"
        );
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "a valid admin bearer token is required",
            &id,
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"yatagarasu-admin\""),
        );
        return response;
    }
    match (request.method(), request.uri().path()) {
        (&Method::POST, "/admin/reload") => match control.reload() {
            Ok(generation) => json(
                StatusCode::OK,
                serde_json::json!({"status": "reloaded", "generation": generation}),
            ),
            Err(ReloadError::Invalid(errors)) => json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": {
                    "code": "InvalidConfig",
                    "message": "the new configuration is invalid; the old one keeps serving",
                    "details": errors.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "request_id": id,
                }}),
            ),
            Err(ReloadError::Build(e)) => json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": {
                    "code": "InvalidConfig",
                    "message": "the new configuration could not be built; the old one keeps serving",
                    "details": [e.to_string()],
                    "request_id": id,
                }}),
            ),
            Err(ReloadError::NoSource) => error(
                StatusCode::CONFLICT,
                "NoConfigSource",
                "nothing to reload from",
                &id,
            ),
        },
        (&Method::GET, "/admin/status") => {
            let config = control.proxy.config();
            json(
                StatusCode::OK,
                serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "generation": control.proxy.generation(),
                    "buckets": config.buckets.iter().map(|b| serde_json::json!({
                        "name": b.name, "path_prefix": b.path_prefix,
                    })).collect::<Vec<_>>(),
                }),
            )
        }
        (_, "/admin/reload") => {
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "use POST",
                &id,
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            response
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "no such admin endpoint",
            &id,
        ),
    }
}

/// Serves the admin API until shutdown.
pub(super) async fn serve(
    listener: TcpListener,
    control: Arc<Control>,
    config: ServerConfig,
    shutdown: watch::Receiver<bool>,
) {
    serve_internal(listener, &config, shutdown, move |request| {
        handle(&control, &request)
    })
    .await;
}
