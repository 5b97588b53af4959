//! The admin API listener: `/admin/reload`, `/admin/status` and the cache
//! endpoints, behind the browser and DNS-rebinding guard
//! ([`crate::auth::admin_guard`]) and the admin token or JWT.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::internal::serve_internal;
use super::{Control, ReloadError};
use crate::auth::admin::{self, AdminAccess};
use crate::auth::admin_guard::{self, AdminListener};
use crate::body::{ProxyBody, full};
use crate::cache;
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

async fn handle(
    control: &Control,
    bound: IpAddr,
    request: &Request<Incoming>,
) -> Response<ProxyBody> {
    let id = request
        .extensions()
        .get::<RequestId>()
        .map_or_else(String::new, |id| id.to_string());
    if let Some(refused) = refuse_foreign(control, bound, request, &id) {
        return refused;
    }
    if let Some(refused) = authorize(control, request, &id) {
        return refused;
    }
    if let Some(response) =
        cache::admin::handle(&control.proxy, request.method(), request.uri().path(), &id).await
    {
        return response;
    }
    route(control, request, &id).await
}

/// Refuses browsers and DNS-rebinding pages (see [`admin_guard`]), token or not.
fn refuse_foreign(
    control: &Control,
    bound: IpAddr,
    request: &Request<Incoming>,
    id: &str,
) -> Option<Response<ProxyBody>> {
    let config = control.proxy.config();
    let listener = AdminListener {
        bound,
        allowed_hosts: &config.admin.allowed_hosts,
    };
    let refusal = admin_guard::check(
        &listener,
        request.method(),
        request.uri(),
        request.headers(),
    )
    .err()?;
    tracing::warn!(
        path = request.uri().path(),
        reason = refusal.reason(),
        host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok()),
        "admin request refused"
    );
    Some(error(
        StatusCode::FORBIDDEN,
        "Forbidden",
        refusal.message(),
        id,
    ))
}

/// Checks the admin token or JWT; `Some` is the refusal.
fn authorize(
    control: &Control,
    request: &Request<Incoming>,
    id: &str,
) -> Option<Response<ProxyBody>> {
    match admin::check(&control.proxy, request.headers()) {
        AdminAccess::Allowed => None,
        AdminAccess::Unauthenticated => {
            tracing::warn!(
                path = request.uri().path(),
                "admin request without a valid token"
            );
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "a valid admin bearer token is required",
                id,
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"yatagarasu-admin\""),
            );
            Some(response)
        }
        AdminAccess::Forbidden => {
            tracing::warn!(
                path = request.uri().path(),
                "admin request with a token that lacks the admin claim"
            );
            Some(error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "the token does not grant admin access",
                id,
            ))
        }
    }
}

/// `/admin/reload` and `/admin/status`.
async fn route(control: &Control, request: &Request<Incoming>, id: &str) -> Response<ProxyBody> {
    match (request.method(), request.uri().path()) {
        (&Method::POST, "/admin/reload") => reload(control, id).await,
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
                id,
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
            id,
        ),
    }
}

async fn reload(control: &Control, id: &str) -> Response<ProxyBody> {
    match control.reload().await {
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
            id,
        ),
        Err(ReloadError::Interrupted(_)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "the reload did not finish; see the log",
            id,
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
    // The Host guard accepts the bound IP as a name of this listener.
    let bound = listener
        .local_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    serve_internal(listener, "admin", &config, shutdown, move |request| {
        let control = control.clone();
        async move { handle(&control, bound, &request).await }
    })
    .await;
}
