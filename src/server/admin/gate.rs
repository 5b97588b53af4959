//! The admin API's gate: who may reach an admin endpoint at all.
//!
//! Two checks, in this order, before any route is looked at:
//! 1. the browser and DNS-rebinding guard ([`admin_guard`]): a request from a
//!    browser page, for another host, or changing state without the admin
//!    header is a 403, token or not;
//! 2. the admin token or JWT ([`admin::check`]): missing or invalid is a 401
//!    with `WWW-Authenticate`, valid without the admin claim a 403.
//!
//! The checks read only the request's head and answer at once, which is what
//! tower-http's `ValidateRequestHeader` runs: [`AdminGateLayer`] puts it in
//! front of a service with [`AdminGate`] as the rule.

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode, header};
use tower::Layer;
use tower_http::validate_request::{ValidateRequest, ValidateRequestHeader};

use super::json;
use crate::auth::admin::{self, AdminAccess};
use crate::auth::admin_guard::{self, AdminListener};
use crate::body::ProxyBody;
use crate::server::Control;

/// Guards every request to the service it wraps with [`AdminGate`].
#[derive(Debug, Clone)]
pub(super) struct AdminGateLayer {
    gate: AdminGate,
}

impl AdminGateLayer {
    /// The gate of the admin listener bound to `bound`, reading the admin
    /// settings in force from `control` at each request.
    pub(super) fn new(control: Arc<Control>, bound: IpAddr) -> Self {
        Self {
            gate: AdminGate { control, bound },
        }
    }
}

impl<S> Layer<S> for AdminGateLayer {
    type Service = ValidateRequestHeader<S, AdminGate>;

    fn layer(&self, inner: S) -> Self::Service {
        ValidateRequestHeader::custom(inner, self.gate.clone())
    }
}

/// The gate's rule: `Err` is the refusal sent instead of calling the endpoint.
#[derive(Debug, Clone)]
pub(super) struct AdminGate {
    control: Arc<Control>,
    /// The IP the admin listener is bound to (a name of it for the Host guard).
    bound: IpAddr,
}

impl<B> ValidateRequest<B> for AdminGate {
    type ResponseBody = ProxyBody;

    fn validate(&mut self, request: &mut Request<B>) -> Result<(), Response<ProxyBody>> {
        let id = json::request_id(request);
        match self
            .refuse_foreign(request, &id)
            .or_else(|| self.refuse_unauthorized(request, &id))
        {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }
}

impl AdminGate {
    /// Refuses browsers and DNS-rebinding pages (see [`admin_guard`]).
    fn refuse_foreign<B>(&self, request: &Request<B>, id: &str) -> Option<Response<ProxyBody>> {
        let config = self.control.proxy.config();
        let listener = AdminListener {
            bound: self.bound,
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
        Some(json::error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            refusal.message(),
            id,
        ))
    }

    /// Checks the admin token or JWT.
    fn refuse_unauthorized<B>(
        &self,
        request: &Request<B>,
        id: &str,
    ) -> Option<Response<ProxyBody>> {
        let path = request.uri().path();
        match admin::check(&self.control.proxy, request.headers()) {
            AdminAccess::Allowed => None,
            AdminAccess::Unauthenticated => {
                tracing::warn!(path, "admin request without a valid token");
                let mut response = json::error(
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
                    path,
                    "admin request with a token that lacks the admin claim"
                );
                Some(json::error(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "the token does not grant admin access",
                    id,
                ))
            }
        }
    }
}
