//! The admin API's JSON answers.

use http::{HeaderValue, Request, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::body::{ProxyBody, full};
use crate::request_id::RequestId;

/// `body` as a JSON answer with `status`.
pub(super) fn json(status: StatusCode, body: Value) -> Response<ProxyBody> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The error body every admin refusal uses.
pub(super) fn error(
    status: StatusCode,
    code: &str,
    message: &str,
    id: &str,
) -> Response<ProxyBody> {
    json(
        status,
        json!({"error": {"code": code, "message": message, "request_id": id}}),
    )
}

/// A 404 for a path that names no admin endpoint.
pub(super) fn not_found(id: &str) -> Response<ProxyBody> {
    error(
        StatusCode::NOT_FOUND,
        "NotFound",
        "no such admin endpoint",
        id,
    )
}

/// A 405 naming the one method `allow` the endpoint takes.
pub(super) fn method_not_allowed(allow: &'static str, id: &str) -> Response<ProxyBody> {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        &format!("use {allow}"),
        id,
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// The request's id for error bodies (empty when the request id layer is absent).
pub(super) fn request_id<B>(request: &Request<B>) -> String {
    request
        .extensions()
        .get::<RequestId>()
        .map_or_else(String::new, ToString::to_string)
}
