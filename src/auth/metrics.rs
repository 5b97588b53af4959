//! `yatagarasu_auth_requests_total{bucket,result}` and
//! `yatagarasu_auth_token_cache_total{bucket,result}`, with the counters of each
//! bucket resolved once per build so the request path does not allocate.

use metrics::Counter;

use crate::error::TokenProblem;
use crate::telemetry::metrics::{AUTH_REQUESTS_TOTAL, AUTH_TOKEN_CACHE_TOTAL};

/// How one authentication attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The token verified and its claims satisfied the rules.
    Success,
    /// No token was presented.
    Missing,
    /// The token failed verification (other than expiry).
    Invalid,
    /// The token had expired.
    Expired,
    /// The token verified but its claims do not allow the request.
    Denied,
    /// The keys could not be loaded (JWKS unreachable).
    Error,
}

impl Outcome {
    /// The outcome of a refused token.
    pub(crate) fn of(problem: TokenProblem) -> Self {
        match problem {
            TokenProblem::Expired => Self::Expired,
            TokenProblem::KeysUnavailable => Self::Error,
            _ => Self::Invalid,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Missing => "missing",
            Self::Invalid => "invalid",
            Self::Expired => "expired",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

const OUTCOMES: [Outcome; 6] = [
    Outcome::Success,
    Outcome::Missing,
    Outcome::Invalid,
    Outcome::Expired,
    Outcome::Denied,
    Outcome::Error,
];

/// One bucket's pre-resolved counters: one per outcome, and the
/// verified-token cache's hits and misses.
#[derive(Debug, Clone)]
pub(crate) struct AuthCounters {
    outcomes: [Counter; 6],
    token_cache: [Counter; 2],
}

impl AuthCounters {
    pub(crate) fn new(bucket: &str) -> Self {
        Self {
            outcomes: OUTCOMES.map(|o| {
                metrics::counter!(AUTH_REQUESTS_TOTAL, "bucket" => bucket.to_owned(), "result" => o.label())
            }),
            token_cache: ["hit", "miss"].map(|result| {
                metrics::counter!(AUTH_TOKEN_CACHE_TOTAL, "bucket" => bucket.to_owned(), "result" => result)
            }),
        }
    }

    pub(crate) fn record(&self, outcome: Outcome) {
        self.outcomes[outcome.index()].increment(1);
    }

    /// Counts a presented token as answered by the cache or verified.
    pub(crate) fn record_token_cache(&self, hit: bool) {
        self.token_cache[usize::from(!hit)].increment(1);
    }
}
