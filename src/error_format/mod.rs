//! A bucket's own error format (`buckets[i].errors: auto | json | s3_xml`).
//!
//! By default (`auto`) the rescue layer picks the format of every error
//! answer from the request head ([`crate::error::ErrorFormat::detect`]): S3's
//! XML `<Error>` document for S3 SDKs, JSON for everyone else. A bucket that
//! fixes the format gets [`ErrorFormatLayer`] at the top of its stack: it
//! renders the errors of everything below it (from the IP filter down to
//! S3) in that format, through the same logging renderer as the rescue
//! layer ([`crate::rescue`]). Errors raised before routing (limits, unknown
//! prefixes) and panics stay with the rescue layer's detected format: the
//! bucket is not known there. `auto` buckets have no layer at all.

pub mod config;
mod layer;
mod service;

pub use config::BucketErrors;
pub use layer::ErrorFormatLayer;
pub use service::{BucketErrorFormat, ResponseFuture};
