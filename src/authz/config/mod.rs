//! `buckets[i].auth.authorization:`: the policy engine consulted after JWT
//! verification (embedded Rego, OPA over HTTP, OpenFGA), as written and
//! validated.
//!
//! One flat mapping whose `type` selects the engine; options of another engine
//! are refused rather than ignored, so a typo cannot silently change what
//! decides. A Rego policy is compiled here, so `yatagarasu check` and reloads
//! reject a policy that does not parse, and the stack uses the compiled
//! policy the configuration carries ([`RegoConfig::policy`]).

mod model;
mod raw;
mod rego;
mod remote;
#[cfg(test)]
mod tests;
mod validate;

pub use model::{
    AuthorizationConfig, FailMode, OpaConfig, OpenFgaConfig, PolicyEngineConfig, RegoConfig,
};
pub(crate) use raw::RawAuthorization;
pub(crate) use validate::authorization;
