//! The 404 fallback: a missing key is looked up in a second bucket (`fallback_on_404`).
//!
//! Made for migrations: objects move from an old bucket to a new one, and
//! the proxy serves the new bucket while it fills. When the bucket's targets
//! (its replicas, or its own s3 target) answer `NoSuchKey` (a 404; on HEAD,
//! a 404 without a body), [`Fallback`] asks the fallback bucket for the same
//! key with the same request head, signed with the fallback's own
//! credentials. Its answer is final: a 404 there is the client's 404. A 403
//! (which S3 also gives for missing keys without `ListBucket`), a 416 and
//! every other answer of the primary are passed on untouched.
//!
//! Each lookup is counted in `yatagarasu_fallback_404_total{bucket,result}`:
//! `hit` (the fallback served it), `miss` (a 404 there too), `error`
//! (anything else; the fallback's error is the answer).
//!
//! - `config`: the `fallback_on_404` keys.
//! - `layer` / `service`: [`FallbackLayer`] and [`Fallback`].

pub mod config;
mod layer;
mod service;

pub use layer::FallbackLayer;
pub use service::{Fallback, TargetService, is_no_such_key};
