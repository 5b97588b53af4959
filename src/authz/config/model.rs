//! The validated authorization settings.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::authz::RegoPolicy;
use crate::config::Secret;

/// Which policy engine decides, and how its decisions are cached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthorizationConfig {
    /// The engine and its connection settings.
    pub engine: PolicyEngineConfig,
    /// How long an "allow" is reused for an identical input.
    pub positive_ttl: Duration,
    /// How long a "deny" is reused for an identical input; zero caches no denials.
    pub negative_ttl: Duration,
    /// Most decisions kept per engine; the least useful are evicted beyond it.
    pub cache_max_entries: usize,
    /// What happens when the engine cannot decide (unreachable, timeout, bad answer).
    pub fail: FailMode,
}

/// One of the supported policy engines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PolicyEngineConfig {
    /// A Rego policy evaluated in-process (`type: rego`).
    Rego(RegoConfig),
    /// An OPA server's Data API (`type: opa`).
    Opa(OpaConfig),
    /// An OpenFGA store's Check API (`type: openfga`).
    OpenFga(OpenFgaConfig),
}

impl PolicyEngineConfig {
    /// The engine's name in configuration, metrics labels and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Rego(_) => "rego",
            Self::Opa(_) => "opa",
            Self::OpenFga(_) => "openfga",
        }
    }
}

/// The embedded Rego engine's settings, with the policy compiled once, when
/// the configuration is validated.
///
/// Equal (and hashed) by path, query and policy text, so an edited policy
/// file makes two otherwise identical configurations differ.
#[derive(Clone)]
pub struct RegoConfig {
    /// The `.rego` file, read and compiled at every load (startup, reload, `check`).
    pub policy_path: PathBuf,
    /// The rule whose value decides (`data.<package>.<rule>`); only `true` allows.
    pub query: String,
    /// The policy compiled for `query`, shared by every stack built from this configuration.
    pub policy: Arc<RegoPolicy>,
}

impl PartialEq for RegoConfig {
    fn eq(&self, other: &Self) -> bool {
        self.policy_path == other.policy_path
            && self.query == other.query
            && self.policy.digest() == other.policy.digest()
    }
}

impl Eq for RegoConfig {}

impl Hash for RegoConfig {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.policy_path.hash(state);
        self.query.hash(state);
        self.policy.digest().hash(state);
    }
}

impl fmt::Debug for RegoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegoConfig")
            .field("policy_path", &self.policy_path)
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

/// The OPA Data API settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OpaConfig {
    /// The full Data API URL of the deciding rule, such as `http://opa:8181/v1/data/yatagarasu/allow`.
    pub url: http::Uri,
    /// Longest wait for OPA's complete answer.
    pub timeout: Duration,
}

/// The OpenFGA Check API settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OpenFgaConfig {
    /// The OpenFGA HTTP API base URL, such as `http://openfga:8080`.
    pub endpoint: http::Uri,
    /// The store asked.
    pub store_id: String,
    /// Pins the authorization model; the store's latest when `None`.
    pub authorization_model_id: Option<String>,
    /// Sent as `Authorization: Bearer` when set.
    pub api_token: Option<Secret>,
    /// Dot path of the claim naming the user (`sub`, `org.user_id`); sent as `user:<value>`.
    pub user_claim: String,
    /// The object template; `{bucket}` and `{key}` are replaced per request.
    pub object: String,
    /// The relation checked, such as `viewer`.
    pub relation: String,
    /// Longest wait for OpenFGA's complete answer.
    pub timeout: Duration,
}

/// Whether an engine failure refuses or allows the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailMode {
    /// Refuse with 503 (the default): an outage never opens private data.
    Closed,
    /// Allow, with a warning and a metric: availability over strictness.
    Open,
}
