//! `jwt:`, `buckets[i].auth:` and `admin.jwt:`: as written, validated, and
//! the validated types the auth layer is built from.
//!
//! Buckets with `auth.enabled: true` and no `jwt:` of their own inherit the
//! top-level `jwt:` section (as a whole: the two are never merged).
//!
//! Key material is read and parsed here, once per load, so a bad PEM file is
//! a configuration error (naming the file, never its content) and a reload
//! picks up a rotated key or secret.
//!
//! The auth layer is built from the parsed keys ([`StaticKey::key`]) and
//! never reads a key file itself.

mod claims;
mod key_source;
mod keys;
mod model;
mod raw;
#[cfg(test)]
mod tests;
mod token_sources;
mod validate;

pub use model::{
    AdminJwtConfig, AuthConfig, ClaimOperator, ClaimRule, JwksSource, JwtConfig, KeySource,
    StaticKey, TokenSource,
};
pub(crate) use raw::{RawBucketAuth, RawJwt};
pub(crate) use validate::{admin_jwt, bucket_auth, global_jwt};
