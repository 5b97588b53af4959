//! Which upstream errors mean "the target is failing": the one list both the
//! breaker (counts them) and retries (retry them) use.

use http::StatusCode;

use crate::error::ProxyError;

/// Why an S3 exchange failed in a way that says the target is unwell.
///
/// Everything else is not the target's fault or proves it answers: a 4xx
/// (the object, the key or the request was wrong), a signing problem, an open
/// breaker (the failover moves on instead), a full pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be made.
    Connect,
    /// No response head within the request timeout.
    Timeout,
    /// The connection broke or S3 spoke invalid HTTP before the head.
    Protocol,
    /// S3 answered 503 `SlowDown`.
    SlowDown,
    /// S3 answered 500, 502, 503 or 504.
    Status(StatusCode),
}

impl Failure {
    /// The failure an error stands for, if it is one.
    pub fn of(error: &ProxyError) -> Option<Failure> {
        match error {
            ProxyError::Connect(_) => Some(Failure::Connect),
            ProxyError::Timeout(_) => Some(Failure::Timeout),
            ProxyError::UpstreamProtocol(_) => Some(Failure::Protocol),
            ProxyError::S3 { code, .. } if code == "SlowDown" => Some(Failure::SlowDown),
            ProxyError::S3 { status, .. } => match *status {
                StatusCode::INTERNAL_SERVER_ERROR
                | StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT => Some(Failure::Status(*status)),
                _ => None,
            },
            _ => None,
        }
    }

    /// The metric label (`reason`).
    pub fn label(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Timeout => "timeout",
            Failure::Protocol => "protocol",
            Failure::SlowDown => "slow_down",
            Failure::Status(StatusCode::INTERNAL_SERVER_ERROR) => "500",
            Failure::Status(StatusCode::BAD_GATEWAY) => "502",
            Failure::Status(StatusCode::SERVICE_UNAVAILABLE) => "503",
            Failure::Status(_) => "504",
        }
    }
}

/// What one request through a breaker says about its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The target answered (a whole body, or an error that is its client's fault).
    Success,
    /// The target failed (see [`Failure`]), before or during the body.
    Failure,
    /// Nothing to learn: the client went away mid-body, or the proxy failed.
    Unknown,
}

impl Outcome {
    /// The outcome of an exchange that ended in `error` before any body.
    pub(crate) fn of_error(error: &ProxyError) -> Outcome {
        if Failure::of(error).is_some() {
            Outcome::Failure
        } else if matches!(error, ProxyError::S3 { .. }) {
            // A 4xx from S3: the target is up and answering.
            Outcome::Success
        } else {
            Outcome::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(status: u16, code: &str) -> ProxyError {
        ProxyError::S3 {
            status: StatusCode::from_u16(status).unwrap(),
            code: code.to_owned(),
            message: String::new(),
        }
    }

    #[test]
    fn server_errors_and_transport_failures_count_client_errors_do_not() {
        for (error, label) in [
            (s3(500, "InternalError"), Some("500")),
            (s3(502, ""), Some("502")),
            (s3(503, "SlowDown"), Some("slow_down")),
            (s3(503, ""), Some("503")),
            (s3(504, ""), Some("504")),
            (
                ProxyError::Timeout(std::time::Duration::ZERO),
                Some("timeout"),
            ),
            (ProxyError::Connect("refused".into()), Some("connect")),
            (
                ProxyError::UpstreamProtocol("reset".into()),
                Some("protocol"),
            ),
            (s3(501, "NotImplemented"), None),
            (s3(404, "NoSuchKey"), None),
            (s3(403, "AccessDenied"), None),
            (s3(412, "PreconditionFailed"), None),
            (
                ProxyError::CircuitOpen {
                    retry_after: std::time::Duration::ZERO,
                },
                None,
            ),
        ] {
            assert_eq!(Failure::of(&error).map(Failure::label), label, "{error}");
        }
        assert_eq!(Outcome::of_error(&s3(404, "NoSuchKey")), Outcome::Success);
        assert_eq!(Outcome::of_error(&s3(503, "")), Outcome::Failure);
        assert_eq!(
            Outcome::of_error(&ProxyError::Signing(String::new())),
            Outcome::Unknown
        );
    }
}
