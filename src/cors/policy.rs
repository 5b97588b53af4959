//! One bucket's CORS rules in the form the request path uses: every
//! response header value built once, at stack build time.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};

use super::config::CorsConfig;
use super::origin::AllowedOrigins;
use crate::body::{ProxyBody, empty};
use crate::error::CorsRejection;

/// `Vary` of every answer of a bucket with CORS: it depends on the origin.
fn vary_origin() -> HeaderValue {
    HeaderValue::from_static("Origin")
}

/// `Vary` of a preflight answer: it depends on all three request fields.
fn vary_preflight_value() -> HeaderValue {
    HeaderValue::from_static(
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    )
}

/// A bucket's CORS rules, ready to answer with.
#[derive(Debug)]
pub(crate) struct CorsPolicy {
    origins: AllowedOrigins,
    /// `Access-Control-Allow-Origin: *` rather than the request's origin
    /// (`"*"` listed and no credentials).
    wildcard: bool,
    methods: Vec<Method>,
    allow_methods: Option<HeaderValue>,
    /// `*` listed: any requested header is allowed (and echoed).
    any_header: bool,
    headers: Vec<HeaderName>,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
}

impl CorsPolicy {
    /// The policy of `config`.
    pub(crate) fn new(config: &CorsConfig) -> Self {
        let any_header = config.allowed_headers.iter().any(|h| h.as_str() == "*");
        Self {
            origins: config.allowed_origins.clone(),
            wildcard: config.allowed_origins.is_any() && !config.allow_credentials,
            methods: config.allowed_methods.clone(),
            allow_methods: joined(config.allowed_methods.iter().map(Method::as_str)),
            any_header,
            headers: config.allowed_headers.clone(),
            allow_headers: joined(config.allowed_headers.iter().map(HeaderName::as_str)),
            expose_headers: joined(config.expose_headers.iter().map(HeaderName::as_str)),
            credentials: config.allow_credentials,
            max_age: config.max_age.map(|age| HeaderValue::from(age.as_secs())),
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request with these
    /// headers: `None` when it has no `Origin` or one not allowed.
    pub(crate) fn allow_origin(&self, request: &HeaderMap) -> Option<HeaderValue> {
        let origin = request.get(ORIGIN)?;
        if !self.origins.matches(origin.as_bytes()) {
            return None;
        }
        if self.wildcard {
            return Some(HeaderValue::from_static("*"));
        }
        // Shares the request's bytes: no allocation.
        Some(origin.clone())
    }

    /// Adds the CORS fields of a non-preflight answer (`allow_origin` from
    /// [`Self::allow_origin`]); `Vary: Origin` always, as the answer depends on it.
    pub(crate) fn decorate(&self, response: &mut HeaderMap, allow_origin: Option<HeaderValue>) {
        response.append(VARY, vary_origin());
        let Some(origin) = allow_origin else {
            return;
        };
        response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if let Some(expose) = &self.expose_headers {
            response.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
        if self.credentials {
            response.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    /// The 204 answer to a preflight, or why it is refused.
    pub(crate) fn preflight(
        &self,
        request: &HeaderMap,
    ) -> Result<Response<ProxyBody>, CorsRejection> {
        let origin = self.allow_origin(request).ok_or(CorsRejection::Origin)?;
        let method = request.get(ACCESS_CONTROL_REQUEST_METHOD);
        if !method.is_some_and(|m| {
            self.methods
                .iter()
                .any(|a| a.as_str().as_bytes() == m.as_bytes())
        }) {
            return Err(CorsRejection::Method);
        }
        let asked = request.get_all(ACCESS_CONTROL_REQUEST_HEADERS);
        if !self.any_header && !asked.iter().all(|value| self.allows_headers(value)) {
            return Err(CorsRejection::Headers);
        }
        let mut response = Response::new(empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if let Some(methods) = &self.allow_methods {
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, methods.clone());
        }
        let allow_headers = if self.any_header {
            // Echoes what was asked: `*` would not cover `Authorization`.
            request.get(ACCESS_CONTROL_REQUEST_HEADERS).cloned()
        } else {
            self.allow_headers.clone()
        };
        if let Some(allow_headers) = allow_headers {
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
        }
        if let Some(max_age) = &self.max_age {
            headers.insert(ACCESS_CONTROL_MAX_AGE, max_age.clone());
        }
        if self.credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        headers.insert(VARY, vary_preflight_value());
        Ok(response)
    }

    /// Whether every name in one `Access-Control-Request-Headers` value
    /// (comma-separated) is allowed.
    fn allows_headers(&self, value: &HeaderValue) -> bool {
        (value.as_bytes().split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|name| !name.is_empty())
            .all(|name| {
                (self.headers.iter()).any(|h| h.as_str().as_bytes().eq_ignore_ascii_case(name))
            })
    }
}

/// `Vary` of a refused preflight (it carries no `Access-Control-Allow-*`).
pub(crate) fn vary_preflight(response: &mut HeaderMap) {
    response.append(VARY, vary_preflight_value());
}

/// `a, b, c`; `None` for no item. Methods and header names are tokens, so
/// the value is always valid.
fn joined<'a>(items: impl Iterator<Item = &'a str>) -> Option<HeaderValue> {
    let text = items.collect::<Vec<_>>().join(", ");
    if text.is_empty() {
        return None;
    }
    HeaderValue::try_from(text).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cors::origin::parse_origin;

    fn policy(origins: &[&str], credentials: bool, headers: &[&str]) -> CorsPolicy {
        CorsPolicy::new(&CorsConfig {
            allowed_origins: AllowedOrigins::new(origins.iter().map(|o| parse_origin(o).unwrap())),
            allowed_methods: vec![Method::GET, Method::HEAD],
            allowed_headers: headers
                .iter()
                .map(|h| HeaderName::from_bytes(h.as_bytes()).unwrap())
                .collect(),
            expose_headers: vec![
                HeaderName::from_static("etag"),
                HeaderName::from_static("content-range"),
            ],
            allow_credentials: credentials,
            max_age: Some(Duration::from_secs(600)),
        })
    }

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn a_preflight_gets_every_allowed_value() {
        let p = policy(&["https://a.example"], true, &["range", "authorization"]);
        let ok = p
            .preflight(&request(&[
                ("origin", "https://a.example"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "Range, authorization"),
            ]))
            .unwrap();
        assert_eq!(ok.status(), 204);
        let h = ok.headers();
        assert_eq!(h["access-control-allow-origin"], "https://a.example");
        assert_eq!(h["access-control-allow-methods"], "GET, HEAD");
        assert_eq!(h["access-control-allow-headers"], "range, authorization");
        assert_eq!(h["access-control-max-age"], "600");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(
            h["vary"],
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        );
    }

    #[test]
    fn a_preflight_is_refused_for_origin_method_or_header() {
        let p = policy(&["https://a.example"], false, &["range"]);
        let ask = |origin, method, headers| {
            p.preflight(&request(&[
                ("origin", origin),
                ("access-control-request-method", method),
                ("access-control-request-headers", headers),
            ]))
            .map(|r| r.status())
        };
        assert_eq!(
            ask("https://b.example", "GET", "range"),
            Err(CorsRejection::Origin)
        );
        assert_eq!(
            ask("https://a.example", "PUT", "range"),
            Err(CorsRejection::Method)
        );
        assert_eq!(
            ask("https://a.example", "get", ""),
            Err(CorsRejection::Method)
        );
        assert_eq!(
            ask("https://a.example", "GET", "range, x-custom"),
            Err(CorsRejection::Headers)
        );
        assert_eq!(
            ask("https://a.example", "HEAD", " range ,"),
            Ok(StatusCode::NO_CONTENT)
        );
    }

    #[test]
    fn a_star_header_list_echoes_what_was_asked() {
        let p = policy(&["*"], false, &["*"]);
        let ok = p
            .preflight(&request(&[
                ("origin", "https://z.example"),
                ("access-control-request-method", "GET"),
                (
                    "access-control-request-headers",
                    "authorization, x-anything",
                ),
            ]))
            .unwrap();
        assert_eq!(ok.headers()["access-control-allow-origin"], "*");
        assert_eq!(
            ok.headers()["access-control-allow-headers"],
            "authorization, x-anything"
        );
        assert!(
            ok.headers()
                .get("access-control-allow-credentials")
                .is_none()
        );
    }

    #[test]
    fn answers_echo_the_origin_unless_a_wildcard_without_credentials() {
        let listed = policy(&["https://*.example.org"], false, &[]);
        let asked = request(&[("origin", "https://x.example.org")]);
        let mut out = HeaderMap::new();
        listed.decorate(&mut out, listed.allow_origin(&asked));
        assert_eq!(out["access-control-allow-origin"], "https://x.example.org");
        assert_eq!(out["access-control-expose-headers"], "etag, content-range");
        assert_eq!(out["vary"], "Origin");
        assert!(out.get("access-control-allow-credentials").is_none());

        let any = policy(&["*"], false, &[]);
        assert_eq!(any.allow_origin(&asked).unwrap(), "*");

        let mut none = HeaderMap::new();
        listed.decorate(&mut none, listed.allow_origin(&request(&[])));
        assert_eq!(none.len(), 1, "{none:?}");
        assert_eq!(none["vary"], "Origin");
        let refused = request(&[("origin", "https://example.org")]);
        assert_eq!(listed.allow_origin(&refused), None);
    }
}
