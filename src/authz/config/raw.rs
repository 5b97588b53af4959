//! `authorization:` as written.

use serde::Deserialize;

use crate::config::{Str, U64};

/// `authorization:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the authorization section (a mapping)"
)]
pub(crate) struct RawAuthorization {
    #[serde(rename = "type")]
    pub(super) kind: Option<Str>,
    // rego
    pub(super) policy_path: Option<Str>,
    pub(super) query: Option<Str>,
    // opa
    pub(super) url: Option<Str>,
    // opa and openfga
    pub(super) timeout_ms: Option<U64>,
    // openfga
    pub(super) endpoint: Option<Str>,
    pub(super) store_id: Option<Str>,
    pub(super) authorization_model_id: Option<Str>,
    pub(super) api_token: Option<Str>,
    pub(super) user_claim: Option<Str>,
    pub(super) object: Option<Str>,
    pub(super) relation: Option<Str>,
    // every engine
    pub(super) decision_cache_ttl_seconds: Option<U64>,
    pub(super) negative_decision_cache_ttl_seconds: Option<U64>,
    pub(super) decision_cache_max_entries: Option<U64>,
    pub(super) fail: Option<Str>,
}
