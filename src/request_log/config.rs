//! `observability.request_logging` (the original Yatagarasu's keys), as
//! written and validated.

use globset::{Glob, GlobSet, GlobSetBuilder};
use http::HeaderName;
use serde::Deserialize;

use crate::config::{Bool, Errors, Str, U64};

/// `max_body_size` when not set (the original's default).
const DEFAULT_MAX_BODY_SIZE: u64 = 1024;
/// The largest `max_body_size`: every logged response holds this much
/// until its line is written, so it is a per-request memory cost.
pub const MAX_BODY_SIZE_LIMIT: u64 = 64 * 1024;

/// Headers whose values are never logged, whatever `redact_headers` says:
/// the original's defaults, plus `proxy-authorization`. Tokens and
/// credentials travel in these.
pub const ALWAYS_REDACTED: [HeaderName; 6] = [
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
    http::header::COOKIE,
    http::header::SET_COOKIE,
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("x-amz-security-token"),
];

/// `observability.request_logging:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the request logging section (a mapping)"
)]
pub(crate) struct RawRequestLogging {
    log_requests: Option<Bool>,
    log_responses: Option<Bool>,
    include_paths: Option<Vec<Str>>,
    exclude_paths: Option<Vec<Str>>,
    status_codes: Option<Vec<U64>>,
    redact_headers: Option<Vec<Str>>,
    log_request_body: Option<Bool>,
    log_response_body: Option<Bool>,
    max_body_size: Option<U64>,
}

/// The validated `observability.request_logging` section, when it logs
/// anything (`log_requests` or `log_responses`).
#[derive(Debug, Clone)]
pub struct RequestLogConfig {
    /// A line for each request as it arrives (method, path, headers).
    pub log_requests: bool,
    /// A line for each response (status, latency, headers, maybe body).
    pub log_responses: bool,
    /// Which paths are logged (`include_paths`, `exclude_paths`).
    pub paths: PathFilter,
    /// Only responses with these statuses are logged; empty: all.
    pub status_codes: Vec<u16>,
    /// Headers whose values are logged as `[REDACTED]`: [`ALWAYS_REDACTED`]
    /// and the ones `redact_headers` adds.
    pub redacted: Vec<HeaderName>,
    /// Whether a response line carries the first `max_body_size` bytes of
    /// the body (`log_response_body`, with `max_body_size` above 0).
    pub log_response_body: bool,
    /// How many body bytes a response line carries at most.
    pub max_body_size: usize,
}

/// Which request paths are logged: those matching an `include_paths` glob
/// (all, when there is none) and no `exclude_paths` glob.
///
/// Globs match the whole path (the bucket prefix included, the query not):
/// `*` and `?` match `/` too, as in the original, so `/private/*` covers
/// every key below `/private/`.
#[derive(Debug, Clone, Default)]
pub struct PathFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl PathFilter {
    /// Whether requests for `path` are logged.
    pub fn admits(&self, path: &str) -> bool {
        if self.exclude.as_ref().is_some_and(|set| set.is_match(path)) {
            return false;
        }
        self.include.as_ref().is_none_or(|set| set.is_match(path))
    }
}

impl RequestLogConfig {
    /// Whether a response with `status` is logged.
    pub fn admits_status(&self, status: http::StatusCode) -> bool {
        self.status_codes.is_empty() || self.status_codes.contains(&status.as_u16())
    }

    /// Whether the value of `name` is logged as `[REDACTED]`.
    pub fn redacts(&self, name: &HeaderName) -> bool {
        self.redacted.contains(name)
    }
}

const AT: &str = "observability.request_logging";

/// Validates `observability.request_logging`; `None` when it logs nothing.
pub(crate) fn request_logging(
    raw: RawRequestLogging,
    errs: &mut Errors,
) -> Option<RequestLogConfig> {
    let before = errs.count();
    let include = globs(raw.include_paths, "include_paths", errs);
    let exclude = globs(raw.exclude_paths, "exclude_paths", errs);
    let status_codes = statuses(raw.status_codes, errs);
    let redacted = redacted(raw.redact_headers, errs);
    let max_body_size = match raw.max_body_size {
        None => DEFAULT_MAX_BODY_SIZE,
        Some(U64(n)) if n <= MAX_BODY_SIZE_LIMIT => n,
        Some(_) => {
            errs.push(
                format!("{AT}.max_body_size"),
                format!("must be at most {MAX_BODY_SIZE_LIMIT} (bytes held per logged response)"),
            );
            0
        }
    };
    // The proxy reads no request body (it serves GET, HEAD and CORS
    // preflights): `log_request_body` is accepted and has nothing to log.
    let _ = raw.log_request_body;
    let log_requests = raw.log_requests.is_some_and(|Bool(b)| b);
    let log_responses = raw.log_responses.is_some_and(|Bool(b)| b);
    let on = (log_requests || log_responses) && errs.count() == before;
    on.then(|| RequestLogConfig {
        log_requests,
        log_responses,
        paths: PathFilter { include, exclude },
        status_codes,
        redacted,
        log_response_body: raw.log_response_body.is_some_and(|Bool(b)| b) && max_body_size > 0,
        max_body_size: usize::try_from(max_body_size).unwrap_or(0),
    })
}

/// Compiles a list of globs (`None` when empty); each bad one is reported
/// at its index.
fn globs(raw: Option<Vec<Str>>, key: &str, errs: &mut Errors) -> Option<GlobSet> {
    let raw = raw.unwrap_or_default();
    if raw.is_empty() {
        return None;
    }
    let mut set = GlobSetBuilder::new();
    for (i, Str(pattern)) in raw.iter().enumerate() {
        match Glob::new(pattern.trim()) {
            Ok(glob) => {
                set.add(glob);
            }
            Err(e) => errs.push(
                format!("{AT}.{key}[{i}]"),
                format!("not a glob: {}", e.kind()),
            ),
        }
    }
    set.build()
        .map_err(|e| {
            errs.push(
                format!("{AT}.{key}"),
                format!("not a glob set: {}", e.kind()),
            )
        })
        .ok()
}

fn statuses(raw: Option<Vec<U64>>, errs: &mut Errors) -> Vec<u16> {
    let mut codes = Vec::new();
    for (i, U64(code)) in raw.unwrap_or_default().into_iter().enumerate() {
        match u16::try_from(code) {
            Ok(code) if (100..=599).contains(&code) => codes.push(code),
            _ => errs.push(
                format!("{AT}.status_codes[{i}]"),
                "must be an HTTP status from 100 to 599",
            ),
        }
    }
    codes
}

fn redacted(raw: Option<Vec<Str>>, errs: &mut Errors) -> Vec<HeaderName> {
    let mut names = ALWAYS_REDACTED.to_vec();
    for (i, Str(name)) in raw.unwrap_or_default().iter().enumerate() {
        match HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes()) {
            Ok(name) if !names.contains(&name) => names.push(name),
            Ok(_) => {}
            Err(_) => errs.push(format!("{AT}.redact_headers[{i}]"), "not a header name"),
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{assert_error, load, with_section};

    fn section(body: &str) -> String {
        with_section(&format!("observability:\n  request_logging:\n{body}"))
    }

    fn loaded(body: &str) -> Option<RequestLogConfig> {
        load(&section(body), &[])
            .unwrap()
            .observability
            .request_logging
    }

    #[test]
    fn the_originals_keys_load() {
        let c = loaded(
            "    log_requests: true\n    log_responses: true\n    include_paths: [\"/api/*\", \
             \"/data/*\"]\n    exclude_paths: [\"/health\", \"/metrics\"]\n    status_codes: [400, \
             500]\n    redact_headers: [Authorization, X-Custom]\n    log_request_body: true\n    \
             log_response_body: true\n    max_body_size: 4096\n",
        )
        .unwrap();
        assert!(c.log_requests && c.log_responses && c.log_response_body);
        assert_eq!(c.status_codes, [400, 500]);
        assert_eq!(c.max_body_size, 4096);
        assert!(c.paths.admits("/api/v1/users") && c.paths.admits("/data/x"));
        assert!(!c.paths.admits("/health") && !c.paths.admits("/other/x"));
        assert!(c.admits_status(http::StatusCode::BAD_REQUEST));
        assert!(!c.admits_status(http::StatusCode::OK));
        // `redact_headers` adds to the always-redacted headers.
        for name in [
            "authorization",
            "cookie",
            "x-amz-security-token",
            "x-custom",
        ] {
            assert!(c.redacts(&HeaderName::from_static(name)), "{name}");
        }
    }

    #[test]
    fn defaults_log_every_path_and_status() {
        let c = loaded("    log_responses: true\n").unwrap();
        assert!(!c.log_requests && !c.log_response_body);
        assert_eq!(c.max_body_size, 1024);
        assert!(c.paths.admits("/anything/at/all"));
        assert!(c.admits_status(http::StatusCode::IM_A_TEAPOT));
        assert_eq!(c.redacted.len(), ALWAYS_REDACTED.len());
        assert!(loaded("    log_requests: false\n    include_paths: [\"/a/*\"]\n").is_none());
        // No bytes to log: the response line is written at the head.
        let c =
            loaded("    log_responses: true\n    log_response_body: true\n    max_body_size: 0\n");
        assert!(!c.unwrap().log_response_body);
    }

    #[test]
    fn globs_match_the_whole_path_across_slashes() {
        let c = loaded(
            "    log_requests: true\n    include_paths: [\"/private/*\", \"/img/*.{png,jpg}\"]\n    \
             exclude_paths: [\"*/tmp/?\"]\n",
        )
        .unwrap();
        assert!(c.paths.admits("/private/a/b/c.txt"));
        assert!(c.paths.admits("/img/2024/cat.png"));
        assert!(!c.paths.admits("/img/cat.gif"));
        assert!(!c.paths.admits("/private/x/tmp/1"));
        assert!(c.paths.admits("/private/x/tmp/12"));
        assert!(!c.paths.admits("/public/private/x"));
    }

    #[test]
    fn bad_values_name_their_path() {
        let at = "observability.request_logging";
        assert_error(
            &section("    log_requests: true\n    include_paths: [\"/a/[b\"]\n"),
            &format!("{at}.include_paths[0]"),
            "not a glob",
        );
        assert_error(
            &section("    log_requests: true\n    status_codes: [200, 99]\n"),
            &format!("{at}.status_codes[1]"),
            "from 100 to 599",
        );
        assert_error(
            &section("    log_requests: true\n    redact_headers: [\"bad header\"]\n"),
            &format!("{at}.redact_headers[0]"),
            "not a header name",
        );
        assert_error(
            &section("    log_responses: true\n    max_body_size: 65537\n"),
            &format!("{at}.max_body_size"),
            "at most 65536",
        );
        assert_error(
            &section("    log_requests: true\n    log_headers: true\n"),
            &format!("{at}.log_headers"),
            "unknown field",
        );
    }
}
