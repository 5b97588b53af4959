//! Typed errors of the request path and the one place they become HTTP answers.
//!
//! Every failure is classified by where it came from (pingora's lesson):
//! the client (4xx), the upstream S3 service (the S3 status mapped, or
//! 502/503/504), or the proxy itself (500). The client gets the same JSON
//! shape with the request id, or, when it is an S3 SDK ([`ErrorFormat`]),
//! S3's XML `<Error>` document with S3's code for the condition. Either way
//! S3 internals (bucket names, endpoints, AWS request ids, S3's own
//! messages) never leave the proxy, they go to the log; the messages are
//! fixed texts.

use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};

use crate::body::{BoxError, ProxyBody, full};
use crate::request_id::RequestId;

/// Who caused an error; decides the status family and the log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The request was bad or not allowed (4xx).
    Client,
    /// S3 failed or refused (mapped S3 status, or 502/503/504).
    Upstream,
    /// A bug or an unexpected state in the proxy (500).
    Internal,
}

/// How an error answer is written, decided once from the request head
/// ([`ErrorFormat::detect`]) or by the bucket (`buckets[i].errors`) and
/// carried to the place that renders it ([`ProxyError::into_response_as`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ErrorFormat {
    /// The proxy's JSON body, for browsers, scripts and everyone else.
    #[default]
    Json,
    /// S3's XML `<Error>` document, for S3 SDKs (their exception handlers
    /// read the code from it).
    S3Xml {
        /// The request's URI: its path (never its query, which may hold a
        /// token) is the `<Resource>` element.
        resource: Option<http::Uri>,
    },
}

impl ErrorFormat {
    /// The format an error answer to `request` takes: S3's XML when the
    /// client is an S3 SDK (see [`is_s3_client`]), JSON otherwise. The JSON
    /// path costs three header lookups and no allocation.
    pub fn detect<B>(request: &http::Request<B>) -> Self {
        if is_s3_client(request.headers()) {
            Self::s3_xml(request)
        } else {
            Self::Json
        }
    }

    /// S3's XML for `request`, whoever the client is.
    pub fn s3_xml<B>(request: &http::Request<B>) -> Self {
        Self::S3Xml {
            resource: Some(request.uri().clone()),
        }
    }
}

/// Whether the request comes from an S3 SDK: it is signed with SigV4
/// (`Authorization: AWS4-…`), carries `x-amz-content-sha256` (every
/// SigV4 signer adds it), or asks for `application/xml` first in `Accept`
/// (a browser's `Accept` lists it after `text/html`, and keeps JSON).
pub fn is_s3_client(headers: &http::HeaderMap) -> bool {
    // A constant name: looking up by `&str` would parse it on every request.
    const X_AMZ_CONTENT_SHA256: http::HeaderName =
        http::HeaderName::from_static("x-amz-content-sha256");
    let sigv4 = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes().starts_with(b"AWS4-"));
    sigv4
        || headers.contains_key(X_AMZ_CONTENT_SHA256)
        || headers
            .get(header::ACCEPT)
            .is_some_and(|value| prefers_xml(value.as_bytes()))
}

/// Whether an `Accept` value's first media range is `application/xml`.
fn prefers_xml(accept: &[u8]) -> bool {
    let first = accept
        .split(|b| *b == b',' || *b == b';')
        .next()
        .unwrap_or_default();
    first.trim_ascii().eq_ignore_ascii_case(b"application/xml")
}

/// Everything that can go wrong on the request path.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The method is not GET or HEAD.
    #[error("method {0} is not allowed")]
    MethodNotAllowed(http::Method),
    /// The path failed the safety checks (traversal, encoding, control bytes).
    #[error("invalid path: {0}")]
    InvalidPath(&'static str),
    /// The request exceeds a security limit (`server.security_limits`).
    #[error("request refused: {0}")]
    LimitExceeded(Limit),
    /// `server.max_concurrent_requests` requests are in flight (503, `Retry-After: 1`).
    #[error("too many requests in flight")]
    Overloaded,
    /// A rate limit refused the request (429 with `Retry-After` and `RateLimit-*`).
    #[error("rate limited ({})", .0.scope)]
    RateLimited(Throttled),
    /// The bucket's circuit breaker is open: S3 is not asked (503 with `Retry-After`).
    #[error("the circuit breaker is open for {retry_after:?}")]
    CircuitOpen {
        /// When the breaker lets a probe request through again.
        retry_after: Duration,
    },
    /// The bucket's upstream connections (`upstream.max_connections_per_bucket`)
    /// stayed busy for the whole wait (503, `Retry-After: 1`).
    #[error("every upstream connection of the bucket is busy")]
    UpstreamBusy,
    /// No bucket is mapped at the request path.
    #[error("no bucket is mapped at this path")]
    NoRoute,
    /// The path names a bucket but no object in it.
    #[error("no object key in the path")]
    EmptyKey,
    /// S3 answered with an error status.
    #[error("S3 answered {status} {code}: {message}")]
    S3 {
        /// The status S3 sent.
        status: StatusCode,
        /// S3's error code (`NoSuchKey`, `AccessDenied`, …), or empty.
        code: String,
        /// S3's error message (logged, never sent to the client).
        message: String,
    },
    /// No connection could be made to S3 (connect, DNS, TLS).
    #[error("could not reach S3: {0}")]
    Connect(#[source] BoxError),
    /// S3 sent no response headers within the request timeout.
    #[error("S3 did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection to S3 broke or S3 spoke invalid HTTP.
    #[error("upstream protocol error: {0}")]
    UpstreamProtocol(#[source] BoxError),
    /// Building or signing the upstream request failed.
    #[error("could not sign the S3 request: {0}")]
    Signing(String),
    /// The bucket's run-time credentials (`s3.credentials`) are not loaded
    /// yet, or expired and could not be refreshed (503, `Retry-After: 5`).
    #[error("{}", .0.message())]
    CredentialsUnavailable(CredentialsProblem),
    /// An unexpected state inside the proxy.
    #[error("internal error: {0}")]
    Internal(String),
    /// A private bucket was asked without a token (401).
    #[error("no token was presented")]
    MissingToken,
    /// The presented token failed verification (401, `error="invalid_token"`).
    #[error("invalid token: {}", .0.message())]
    InvalidToken(TokenProblem),
    /// A valid token whose claims or policy do not allow the request (403).
    #[error("access denied: {0}")]
    Forbidden(&'static str),
    /// The policy engine could not decide and the bucket fails closed (503).
    #[error("the authorization service is unavailable: {0}")]
    AuthorizationUnavailable(String),
    /// A cached object cannot satisfy the requested range (416).
    #[error("range not satisfiable for an object of {length} bytes")]
    RangeNotSatisfiable {
        /// The full object's length, sent as `Content-Range: bytes */length`.
        length: u64,
    },
    /// An `If-Match` / `If-Unmodified-Since` precondition failed against a cached object (412).
    #[error("precondition failed")]
    PreconditionFailed,
    /// A CORS preflight asked for something the bucket's `cors` rules do
    /// not allow (403, without any `Access-Control-Allow-*` field).
    #[error("CORS preflight refused: {}", .0.message())]
    CorsRejected(CorsRejection),
}

/// What a refused CORS preflight asked for that is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorsRejection {
    /// Its `Origin` is not in `allowed_origins`.
    Origin,
    /// Its `Access-Control-Request-Method` is not in `allowed_methods`.
    Method,
    /// A name in its `Access-Control-Request-Headers` is not in `allowed_headers`.
    Headers,
}

impl CorsRejection {
    /// The fixed, client-facing explanation.
    pub fn message(self) -> &'static str {
        match self {
            Self::Origin => "the origin is not allowed by the bucket's CORS rules",
            Self::Method => "the method is not allowed by the bucket's CORS rules",
            Self::Headers => "a requested header is not allowed by the bucket's CORS rules",
        }
    }
}

/// A rate limit's refusal: which limit, and what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// The limit's scope (`global`, `ip`, `bucket`, `user`): the metric label.
    pub scope: &'static str,
    /// The limit's burst (`RateLimit-Limit`).
    pub limit: u32,
    /// When one request is allowed again (`Retry-After`, `RateLimit-Reset`).
    pub retry_after: Duration,
}

/// Which security limit a request exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The path and query are longer than `max_uri_length` (414).
    UriLength,
    /// More header fields than `max_headers` (431).
    HeaderCount,
    /// The header fields take more than `max_header_size` bytes (431).
    HeaderSize,
    /// A request body (or its announced length) beyond `max_body_size` (413).
    BodySize,
}

impl Limit {
    /// The metric label (`reason`) of the limit.
    pub fn label(self) -> &'static str {
        match self {
            Self::UriLength => "uri_length",
            Self::HeaderCount => "header_count",
            Self::HeaderSize => "header_size",
            Self::BodySize => "body_size",
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Why a bucket has no credentials to sign with (the client learns which,
/// never the credentials nor the provider's error, which go to the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsProblem {
    /// The provider has not answered yet since the bucket was configured.
    NotLoaded,
    /// The last credentials expired and every refresh since failed.
    Expired,
}

impl CredentialsProblem {
    /// The fixed text shown to the client.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotLoaded => "the bucket's storage credentials are not loaded yet; retry shortly",
            Self::Expired => {
                "the bucket's storage credentials expired and could not be refreshed; retry later"
            }
        }
    }
}

/// Why a token was refused; the client learns which, never the token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// Not a JWT (wrong segment count, bad base64, bad JSON).
    Malformed,
    /// The signature does not verify with any configured key.
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` does not contain a configured audience.
    WrongAudience,
    /// The header's `alg` is not one the configuration allows.
    WrongAlgorithm,
    /// No configured (or published) key has the token's `kid`.
    UnknownKey,
    /// The keys to verify with are not loaded yet (JWKS unreachable).
    KeysUnavailable,
    /// The header has `crit` (RFC 7515 §4.1.11): extensions the verifier
    /// must understand, and it understands none.
    UnsupportedCritical,
}

impl TokenProblem {
    /// The fixed, client-facing explanation.
    pub fn message(self) -> &'static str {
        match self {
            Self::Malformed => "the token is malformed",
            Self::BadSignature => "the token signature is invalid",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::WrongIssuer => "the token issuer is not accepted",
            Self::WrongAudience => "the token audience is not accepted",
            Self::WrongAlgorithm => "the token algorithm is not accepted",
            Self::UnknownKey => "the token key id is unknown",
            Self::KeysUnavailable => "the signing keys are not available yet",
            Self::UnsupportedCritical => {
                "the token requires header extensions (crit) that are not supported"
            }
        }
    }

    /// A short label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::WrongAlgorithm => "wrong_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::KeysUnavailable => "keys_unavailable",
            Self::UnsupportedCritical => "unsupported_critical",
        }
    }
}

impl ProxyError {
    /// Who caused the error.
    pub fn source_kind(&self) -> ErrorSource {
        match self {
            Self::MethodNotAllowed(_)
            | Self::InvalidPath(_)
            | Self::LimitExceeded(_)
            | Self::NoRoute
            | Self::EmptyKey
            | Self::MissingToken
            | Self::InvalidToken(_)
            | Self::Forbidden(_)
            | Self::RangeNotSatisfiable { .. }
            | Self::PreconditionFailed
            | Self::CorsRejected(_)
            | Self::RateLimited(_) => ErrorSource::Client,
            Self::AuthorizationUnavailable(_) => ErrorSource::Upstream,
            Self::S3 { .. }
            | Self::Connect(_)
            | Self::Timeout(_)
            | Self::UpstreamProtocol(_)
            | Self::CircuitOpen { .. }
            | Self::UpstreamBusy
            | Self::CredentialsUnavailable(_) => ErrorSource::Upstream,
            // The proxy's own capacity.
            Self::Signing(_) | Self::Internal(_) | Self::Overloaded => ErrorSource::Internal,
        }
    }

    /// The status the client receives.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidPath(_) => StatusCode::BAD_REQUEST,
            Self::LimitExceeded(Limit::UriLength) => StatusCode::URI_TOO_LONG,
            Self::LimitExceeded(Limit::HeaderCount | Limit::HeaderSize) => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            Self::LimitExceeded(Limit::BodySize) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NoRoute | Self::EmptyKey => StatusCode::NOT_FOUND,
            Self::Overloaded | Self::CircuitOpen { .. } | Self::UpstreamBusy => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::S3 { status, code, .. } => s3_status_for_client(*status, code),
            Self::Connect(_) | Self::UpstreamProtocol(_) => StatusCode::BAD_GATEWAY,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Signing(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::CorsRejected(_) => StatusCode::FORBIDDEN,
            Self::AuthorizationUnavailable(_) | Self::CredentialsUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        }
    }

    /// The stable, client-facing error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::InvalidPath(_) => "InvalidPath",
            Self::LimitExceeded(Limit::UriLength) => "UriTooLong",
            Self::LimitExceeded(Limit::HeaderCount | Limit::HeaderSize) => "HeadersTooLarge",
            Self::LimitExceeded(Limit::BodySize) => "PayloadTooLarge",
            Self::NoRoute => "NoSuchRoute",
            Self::Overloaded => "Overloaded",
            Self::RateLimited(_) => "TooManyRequests",
            Self::CircuitOpen { .. } => "CircuitOpen",
            Self::UpstreamBusy => "UpstreamBusy",
            Self::EmptyKey => "NoSuchKey",
            Self::S3 { .. } => match self.status() {
                StatusCode::NOT_FOUND => "NoSuchKey",
                StatusCode::FORBIDDEN => "AccessDenied",
                StatusCode::PRECONDITION_FAILED => "PreconditionFailed",
                StatusCode::RANGE_NOT_SATISFIABLE => "InvalidRange",
                StatusCode::BAD_REQUEST => "BadRequest",
                StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
                s if s.is_client_error() => "ClientError",
                _ => "BadGateway",
            },
            Self::Connect(_) | Self::UpstreamProtocol(_) => "BadGateway",
            Self::Timeout(_) => "GatewayTimeout",
            Self::Signing(_) | Self::Internal(_) => "InternalError",
            Self::MissingToken => "Unauthorized",
            Self::InvalidToken(_) => "InvalidToken",
            Self::Forbidden(_) => "AccessDenied",
            Self::AuthorizationUnavailable(_) => "AuthorizationUnavailable",
            Self::CredentialsUnavailable(_) => "CredentialsUnavailable",
            Self::RangeNotSatisfiable { .. } => "InvalidRange",
            Self::PreconditionFailed => "PreconditionFailed",
            Self::CorsRejected(_) => "CorsRejected",
        }
    }

    /// A message safe to show the client: fixed text, never S3's own words.
    pub fn public_message(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed(_) => "only GET and HEAD are allowed",
            Self::InvalidPath(reason) => reason,
            Self::LimitExceeded(Limit::UriLength) => "the request URI is too long",
            Self::LimitExceeded(Limit::HeaderCount) => "the request has too many header fields",
            Self::LimitExceeded(Limit::HeaderSize) => "the request header fields are too large",
            Self::LimitExceeded(Limit::BodySize) => "the request body is too large",
            Self::Overloaded => "too many requests are in flight; retry shortly",
            Self::RateLimited(_) => "too many requests; retry after the time in Retry-After",
            Self::CircuitOpen { .. } => "the storage backend is failing; retry later",
            Self::UpstreamBusy => "the storage backend's connections are all busy; retry shortly",
            Self::NoRoute => "no bucket is mapped at this path",
            Self::EmptyKey => "the path names no object",
            Self::S3 { .. } => match self.status() {
                StatusCode::NOT_FOUND => "the object does not exist",
                StatusCode::FORBIDDEN => "the storage backend refused access",
                StatusCode::PRECONDITION_FAILED => "a precondition of the request failed",
                StatusCode::RANGE_NOT_SATISFIABLE => "the requested range is not satisfiable",
                StatusCode::SERVICE_UNAVAILABLE => "the storage backend is busy; retry later",
                s if s.is_client_error() => "the storage backend rejected the request",
                _ => "the storage backend failed",
            },
            Self::Connect(_) | Self::UpstreamProtocol(_) => "the storage backend is unreachable",
            Self::Timeout(_) => "the storage backend did not answer in time",
            Self::Signing(_) | Self::Internal(_) => "internal error",
            Self::MissingToken => "a bearer token is required",
            Self::InvalidToken(problem) => problem.message(),
            Self::Forbidden(reason) => reason,
            Self::AuthorizationUnavailable(_) => {
                "the authorization service is unavailable; retry later"
            }
            Self::CredentialsUnavailable(problem) => problem.message(),
            Self::RangeNotSatisfiable { .. } => "the requested range is not satisfiable",
            Self::PreconditionFailed => "a precondition of the request failed",
            Self::CorsRejected(rejection) => rejection.message(),
        }
    }

    /// The code an S3 SDK expects in the XML `<Error>` document: S3's own
    /// code from upstream (when it is a well-formed code and says nothing
    /// about the proxy's credentials), otherwise S3's code for the same
    /// condition, so SDK exception handlers (`NoSuchKey`, …) fire.
    pub fn s3_code(&self) -> &str {
        match self {
            Self::S3 { code, .. } => {
                upstream_s3_code(code).unwrap_or_else(|| match self.status() {
                    StatusCode::NOT_FOUND => "NoSuchKey",
                    StatusCode::FORBIDDEN => "AccessDenied",
                    StatusCode::PRECONDITION_FAILED => "PreconditionFailed",
                    StatusCode::RANGE_NOT_SATISFIABLE => "InvalidRange",
                    StatusCode::BAD_REQUEST => "InvalidRequest",
                    StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
                    _ => "InternalError",
                })
            }
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::InvalidPath(_) => "InvalidURI",
            Self::LimitExceeded(Limit::UriLength) => "KeyTooLongError",
            Self::LimitExceeded(Limit::HeaderCount | Limit::HeaderSize) => {
                "RequestHeaderSectionTooLarge"
            }
            Self::LimitExceeded(Limit::BodySize) => "MaxMessageLengthExceeded",
            Self::NoRoute => "NoSuchBucket",
            Self::EmptyKey => "NoSuchKey",
            // Throttling: SDKs back off and retry on SlowDown.
            Self::Overloaded | Self::RateLimited(_) | Self::UpstreamBusy => "SlowDown",
            Self::CircuitOpen { .. }
            | Self::AuthorizationUnavailable(_)
            | Self::CredentialsUnavailable(_)
            | Self::Connect(_) => "ServiceUnavailable",
            Self::Timeout(_) | Self::UpstreamProtocol(_) | Self::Signing(_) | Self::Internal(_) => {
                "InternalError"
            }
            Self::MissingToken
            | Self::InvalidToken(_)
            | Self::Forbidden(_)
            | Self::CorsRejected(_) => "AccessDenied",
            Self::RangeNotSatisfiable { .. } => "InvalidRange",
            Self::PreconditionFailed => "PreconditionFailed",
        }
    }

    /// Renders the JSON error answer (see [`ProxyError::into_response_as`]).
    pub fn into_response(self, request_id: Option<&RequestId>) -> Response<ProxyBody> {
        self.into_response_as(request_id, &ErrorFormat::Json)
    }

    /// Renders the error answer in `format`; the only place errors become HTTP.
    pub fn into_response_as(
        self,
        request_id: Option<&RequestId>,
        format: &ErrorFormat,
    ) -> Response<ProxyBody> {
        let id = request_id.map(RequestId::as_str);
        let (body, content_type) = match format {
            ErrorFormat::Json => (self.json_body(id), "application/json"),
            ErrorFormat::S3Xml { resource } => {
                let resource = resource.as_ref().map(http::Uri::path);
                (self.xml_body(resource, id), "application/xml")
            }
        };
        let mut response = Response::new(full(body));
        *response.status_mut() = self.status();
        response.extensions_mut().insert(ErrorAnswer {
            code: self.code(),
            message: self.public_message(),
        });
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.write_headers(headers);
        response
    }

    /// The JSON body: `{"error": {"code", "message", "request_id"}}`.
    fn json_body(&self, request_id: Option<&str>) -> String {
        serde_json::json!({
            "error": {
                "code": self.code(),
                "message": self.public_message(),
                "request_id": request_id,
            }
        })
        .to_string()
    }

    /// The S3 XML body an SDK parses: its code from [`ProxyError::s3_code`],
    /// the fixed public message, the request path and the request id.
    fn xml_body(&self, resource: Option<&str>, request_id: Option<&str>) -> String {
        let mut xml = String::with_capacity(256);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
        xml_element(&mut xml, "Code", self.s3_code());
        xml_element(&mut xml, "Message", self.public_message());
        if let Some(resource) = resource {
            xml_element(&mut xml, "Resource", resource);
        }
        xml_element(&mut xml, "RequestId", request_id.unwrap_or_default());
        xml.push_str("</Error>");
        xml
    }

    /// The headers some errors carry besides the body (`Allow`,
    /// `Retry-After`, `WWW-Authenticate`, `Content-Range`, …).
    fn write_headers(&self, headers: &mut http::HeaderMap) {
        match self {
            Self::MethodNotAllowed(_) => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            Self::Overloaded | Self::UpstreamBusy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::CredentialsUnavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::RateLimited(throttled) => throttled.write_headers(headers),
            Self::CircuitOpen { retry_after } => {
                headers.insert(header::RETRY_AFTER, whole_seconds(*retry_after));
            }
            Self::MissingToken => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"yatagarasu\""),
                );
            }
            Self::InvalidToken(problem) => {
                let value = format!(
                    "Bearer realm=\"yatagarasu\", error=\"invalid_token\", error_description=\"{}\"",
                    problem.message()
                );
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            Self::RangeNotSatisfiable { length } => {
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{length}")) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
            }
            _ => {}
        }
    }
}

impl Throttled {
    /// `Retry-After` and the IETF `RateLimit-Limit` / `RateLimit-Remaining` /
    /// `RateLimit-Reset` fields of a refusal (nothing is left: remaining 0).
    fn write_headers(&self, headers: &mut http::HeaderMap) {
        let reset = whole_seconds(self.retry_after);
        headers.insert(header::RETRY_AFTER, reset.clone());
        headers.insert(
            http::HeaderName::from_static("ratelimit-limit"),
            HeaderValue::from(self.limit),
        );
        headers.insert(
            http::HeaderName::from_static("ratelimit-remaining"),
            HeaderValue::from_static("0"),
        );
        headers.insert(http::HeaderName::from_static("ratelimit-reset"), reset);
    }
}

/// A delay as whole seconds, rounded up and at least 1 (`Retry-After` has no
/// fractions, and 0 would invite an immediate retry).
fn whole_seconds(delay: Duration) -> HeaderValue {
    let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    HeaderValue::from(seconds.max(1))
}

/// What the proxy answered an error with, as a response extension: the
/// audit log records a refusal's reason from it without reading the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorAnswer {
    /// The JSON body's `code`.
    pub code: &'static str,
    /// The JSON body's `message`.
    pub message: &'static str,
}

/// S3's own code from an upstream error, when it may be shown: a
/// well-formed code (ASCII letters and digits, as S3's are), with the
/// codes about the proxy's own credentials (the client did not sign the
/// upstream request) said as `AccessDenied`.
fn upstream_s3_code(code: &str) -> Option<&str> {
    let well_formed =
        !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric());
    match code {
        _ if !well_formed => None,
        "SignatureDoesNotMatch" | "InvalidAccessKeyId" | "ExpiredToken" | "InvalidToken" => {
            Some("AccessDenied")
        }
        _ => Some(code),
    }
}

/// Appends `<name>text</name>` with `text` escaped.
fn xml_element(xml: &mut String, name: &str, text: &str) {
    xml.push('<');
    xml.push_str(name);
    xml.push('>');
    xml_escape(xml, text);
    xml.push_str("</");
    xml.push_str(name);
    xml.push('>');
}

/// Appends `text` with XML's five special characters escaped.
fn xml_escape(xml: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => xml.push_str("&lt;"),
            '>' => xml.push_str("&gt;"),
            '&' => xml.push_str("&amp;"),
            '"' => xml.push_str("&quot;"),
            '\'' => xml.push_str("&apos;"),
            c => xml.push(c),
        }
    }
}

/// Maps S3's status and code to what the client sees.
fn s3_status_for_client(status: StatusCode, code: &str) -> StatusCode {
    match code {
        "NoSuchKey" | "NoSuchBucket" | "NoSuchVersion" => StatusCode::NOT_FOUND,
        "AccessDenied"
        | "SignatureDoesNotMatch"
        | "InvalidAccessKeyId"
        | "ExpiredToken"
        | "InvalidToken" => StatusCode::FORBIDDEN,
        "InvalidRange" => StatusCode::RANGE_NOT_SATISFIABLE,
        "PreconditionFailed" => StatusCode::PRECONDITION_FAILED,
        "SlowDown" | "ServiceUnavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => match status {
            StatusCode::SERVICE_UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
            s if s.is_server_error() => StatusCode::BAD_GATEWAY,
            StatusCode::NOT_FOUND
            | StatusCode::FORBIDDEN
            | StatusCode::PRECONDITION_FAILED
            | StatusCode::RANGE_NOT_SATISFIABLE
            | StatusCode::BAD_REQUEST => status,
            s if s.is_client_error() => StatusCode::BAD_GATEWAY,
            _ => StatusCode::BAD_GATEWAY,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn s3(status: u16, code: &str) -> ProxyError {
        ProxyError::S3 {
            status: StatusCode::from_u16(status).unwrap(),
            code: code.into(),
            message: "secret-bucket-name in message".into(),
        }
    }

    #[test]
    fn s3_codes_map_to_client_statuses() {
        assert_eq!(s3(404, "NoSuchKey").status(), 404);
        assert_eq!(s3(404, "NoSuchBucket").status(), 404);
        assert_eq!(s3(403, "AccessDenied").status(), 403);
        assert_eq!(s3(403, "SignatureDoesNotMatch").status(), 403);
        assert_eq!(s3(403, "InvalidAccessKeyId").status(), 403);
        assert_eq!(s3(416, "InvalidRange").status(), 416);
        assert_eq!(s3(503, "SlowDown").status(), 503);
        assert_eq!(s3(503, "").status(), 503);
        assert_eq!(s3(500, "InternalError").status(), 502);
        assert_eq!(s3(501, "NotImplemented").status(), 502);
        assert_eq!(s3(412, "PreconditionFailed").status(), 412);
        assert_eq!(s3(409, "Conflict").status(), 502);
    }

    #[tokio::test]
    async fn response_is_json_with_request_id_and_no_s3_internals() {
        let id = RequestId::parse("abc-123").unwrap();
        let response = s3(404, "NoSuchKey").into_response(Some(&id));
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()["content-type"], "application/json");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"]["code"], "NoSuchKey");
        assert_eq!(v["error"]["request_id"], "abc-123");
        assert!(!String::from_utf8_lossy(&bytes).contains("secret-bucket-name"));
    }

    #[test]
    fn method_not_allowed_has_allow_header() {
        let response = ProxyError::MethodNotAllowed(http::Method::POST).into_response(None);
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "GET, HEAD");
    }

    #[test]
    fn refusals_say_when_to_come_back() {
        let throttled = ProxyError::RateLimited(Throttled {
            scope: "ip",
            limit: 50,
            retry_after: Duration::from_millis(1500),
        })
        .into_response(None);
        assert_eq!(throttled.status(), 429);
        let h = throttled.headers();
        assert_eq!(h["retry-after"], "2");
        assert_eq!(h["ratelimit-limit"], "50");
        assert_eq!(h["ratelimit-remaining"], "0");
        assert_eq!(h["ratelimit-reset"], "2");
        let open = ProxyError::CircuitOpen {
            retry_after: Duration::ZERO,
        }
        .into_response(None);
        assert_eq!(open.status(), 503);
        assert_eq!(open.headers()["retry-after"], "1");
        let busy = ProxyError::UpstreamBusy.into_response(None);
        assert_eq!(busy.status(), 503);
        assert_eq!(busy.headers()["retry-after"], "1");
    }

    fn request(headers: &[(&str, &str)]) -> http::Request<()> {
        let mut builder = http::Request::builder().uri("/media/a%20b.txt?x=1");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn s3_sdks_are_detected_and_everyone_else_is_not() {
        let sdk = |headers: &[(&str, &str)]| is_s3_client(request(headers).headers());
        assert!(sdk(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"
        )]));
        assert!(sdk(&[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]));
        assert!(sdk(&[("accept", "application/xml")]));
        assert!(sdk(&[("accept", " Application/XML ;q=1, */*")]));
        assert!(!sdk(&[]));
        assert!(!sdk(&[("authorization", "Bearer eyJhbGciOi")]));
        assert!(!sdk(&[("accept", "application/json")]));
        // A browser's navigation lists XML after HTML: it keeps JSON.
        assert!(!sdk(&[(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )]));
        assert_eq!(ErrorFormat::detect(&request(&[])), ErrorFormat::Json);
        let xml = ErrorFormat::detect(&request(&[("accept", "application/xml")]));
        assert!(matches!(xml, ErrorFormat::S3Xml { resource: Some(_) }));
    }

    async fn xml_of(error: ProxyError, id: &str, uri: &str) -> (Response<ProxyBody>, String) {
        let id = RequestId::parse(id).unwrap();
        let format = ErrorFormat::S3Xml {
            resource: Some(uri.parse().unwrap()),
        };
        let response = error.into_response_as(Some(&id), &format);
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        (Response::from_parts(parts, full("")), text)
    }

    #[tokio::test]
    async fn xml_answer_has_s3s_shape_and_code() {
        let (response, body) = xml_of(s3(404, "NoSuchKey"), "req-1", "/media/k.txt?a=b").await;
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()["content-type"], "application/xml");
        assert_eq!(
            body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>\
             <Message>the object does not exist</Message><Resource>/media/k.txt</Resource>\
             <RequestId>req-1</RequestId></Error>"
        );
        assert!(!body.contains("secret-bucket-name"));
    }

    #[tokio::test]
    async fn xml_escapes_what_the_client_sent() {
        let (_, body) = xml_of(ProxyError::NoRoute, "r", "/a%3C/%3Cb%3E&x").await;
        assert!(
            body.contains("<Resource>/a%3C/%3Cb%3E&amp;x</Resource>"),
            "{body}"
        );
        let mut escaped = String::new();
        xml_escape(&mut escaped, "a<b>&\"c'");
        assert_eq!(escaped, "a&lt;b&gt;&amp;&quot;c&apos;");
    }

    #[tokio::test]
    async fn xml_keeps_statuses_and_headers() {
        let (response, body) = xml_of(ProxyError::MissingToken, "r", "/p/k").await;
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
        assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
        let (response, body) =
            xml_of(ProxyError::RangeNotSatisfiable { length: 9 }, "r", "/p/k").await;
        assert_eq!(response.status(), 416);
        assert_eq!(response.headers()["content-range"], "bytes */9");
        assert!(body.contains("<Code>InvalidRange</Code>"), "{body}");
    }

    #[test]
    fn every_error_has_the_s3_code_an_sdk_expects() {
        let throttled = Throttled {
            scope: "ip",
            limit: 1,
            retry_after: Duration::from_secs(1),
        };
        let cases = [
            (
                ProxyError::MethodNotAllowed(http::Method::PUT),
                "MethodNotAllowed",
            ),
            (ProxyError::InvalidPath("bad"), "InvalidURI"),
            (
                ProxyError::LimitExceeded(Limit::UriLength),
                "KeyTooLongError",
            ),
            (
                ProxyError::LimitExceeded(Limit::HeaderSize),
                "RequestHeaderSectionTooLarge",
            ),
            (
                ProxyError::LimitExceeded(Limit::BodySize),
                "MaxMessageLengthExceeded",
            ),
            (ProxyError::Overloaded, "SlowDown"),
            (ProxyError::RateLimited(throttled), "SlowDown"),
            (ProxyError::UpstreamBusy, "SlowDown"),
            (
                ProxyError::CircuitOpen {
                    retry_after: Duration::ZERO,
                },
                "ServiceUnavailable",
            ),
            (
                ProxyError::CredentialsUnavailable(CredentialsProblem::Expired),
                "ServiceUnavailable",
            ),
            (ProxyError::NoRoute, "NoSuchBucket"),
            (ProxyError::EmptyKey, "NoSuchKey"),
            (ProxyError::Timeout(Duration::ZERO), "InternalError"),
            (ProxyError::Internal("x".into()), "InternalError"),
            (
                ProxyError::InvalidToken(TokenProblem::Expired),
                "AccessDenied",
            ),
            (ProxyError::Forbidden("no"), "AccessDenied"),
            (
                ProxyError::AuthorizationUnavailable("x".into()),
                "ServiceUnavailable",
            ),
            (
                ProxyError::RangeNotSatisfiable { length: 1 },
                "InvalidRange",
            ),
            (ProxyError::PreconditionFailed, "PreconditionFailed"),
            // Upstream: S3's own code stays, except what is about the proxy's keys.
            (s3(404, "NoSuchKey"), "NoSuchKey"),
            (s3(404, "NoSuchBucket"), "NoSuchBucket"),
            (s3(400, "InvalidArgument"), "InvalidArgument"),
            (s3(503, "SlowDown"), "SlowDown"),
            (s3(500, "InternalError"), "InternalError"),
            (s3(403, "SignatureDoesNotMatch"), "AccessDenied"),
            (s3(403, "InvalidAccessKeyId"), "AccessDenied"),
            (s3(404, ""), "NoSuchKey"),
            (s3(400, "<bad code>"), "InvalidRequest"),
            (s3(503, ""), "ServiceUnavailable"),
        ];
        for (error, code) in cases {
            assert_eq!(error.s3_code(), code, "{error:?}");
        }
    }
}
