use http::StatusCode;

use crate::error::ProxyError;

/// Whether `error` says the target is failing (so another replica may
/// answer), rather than the request or the object being wrong.
///
/// Retriable: no connection, no response head in time, a broken exchange
/// before the head, S3 500/502/503/504, S3's `SlowDown` (whatever status it
/// came with), a target whose circuit breaker is open, and a target whose
/// run-time credentials expired or are not loaded yet. Never a 4xx
/// such as 403, 404, 412 or 416: another replica would say the same.
pub fn is_retriable(error: &ProxyError) -> bool {
    match error {
        ProxyError::Connect(_)
        | ProxyError::Timeout(_)
        | ProxyError::UpstreamProtocol(_)
        | ProxyError::CircuitOpen { .. }
        | ProxyError::CredentialsUnavailable(_) => true,
        ProxyError::S3 { status, code, .. } => {
            matches!(
                *status,
                StatusCode::INTERNAL_SERVER_ERROR
                    | StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            ) || code == "SlowDown"
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn s3(status: u16, code: &str) -> ProxyError {
        ProxyError::S3 {
            status: StatusCode::from_u16(status).unwrap(),
            code: code.into(),
            message: String::new(),
        }
    }

    #[test]
    fn target_failures_are_retriable() {
        for e in [
            ProxyError::Connect("refused".into()),
            ProxyError::Timeout(Duration::from_secs(1)),
            ProxyError::UpstreamProtocol("reset".into()),
            ProxyError::CircuitOpen {
                retry_after: Duration::from_secs(3),
            },
            s3(500, "InternalError"),
            s3(502, ""),
            s3(503, "SlowDown"),
            s3(504, ""),
            s3(400, "SlowDown"),
            ProxyError::CredentialsUnavailable(crate::error::CredentialsProblem::Expired),
        ] {
            assert!(is_retriable(&e), "{e}");
        }
    }

    #[test]
    fn answers_about_the_request_are_final() {
        for e in [
            s3(403, "AccessDenied"),
            s3(404, "NoSuchKey"),
            s3(404, ""),
            s3(412, "PreconditionFailed"),
            s3(416, "InvalidRange"),
            s3(400, "InvalidArgument"),
            s3(501, "NotImplemented"),
            ProxyError::Forbidden("no"),
            ProxyError::Internal("bug".into()),
            ProxyError::Signing("bad".into()),
        ] {
            assert!(!is_retriable(&e), "{e}");
        }
    }
}
