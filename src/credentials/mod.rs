//! Per-bucket credentials from the platform (`s3.credentials`), fetched by
//! the AWS SDK's own providers and kept fresh in the background.
//!
//! A bucket (or replica, or fallback) with a credential source gets a
//! [`LiveCredentials`]: the current credentials behind an `ArcSwap`, which
//! the signer reads without waiting. A task started when the configuration
//! goes live (`refresh.rs`) asks the provider before the credentials expire and
//! stores the new ones; a failure keeps the current ones until they expire,
//! after which the bucket answers 503 `CredentialsUnavailable` and `/ready`
//! reports it down (the readiness probe signs like a request).
//!
//! - `provider.rs`: the SDK provider for a [`CredentialSource`].
//! - `live.rs`: the current credentials and their state.
//! - `refresh.rs`: the background refresh loop and its schedule.
//! - `registry.rs`: live credentials shared across reloads (one per source).
//!
//! [`CredentialSource`]: crate::config::CredentialSource

mod live;
mod provider;
mod refresh;
mod registry;

pub use live::{CurrentCredentials, LiveCredentials};
pub use registry::CredentialRegistry;
