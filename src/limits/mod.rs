//! Cheap, stateless rejections before anything else runs: methods, sizes
//! (`server.security_limits`) and unsafe paths.
//!
//! The path is percent-decoded exactly once here, checked, and handed on as a
//! [`SafePath`] extension, so no later layer ever decodes or re-checks it.
//! Everything that could let a client escape its bucket prefix or confuse S3
//! (`.`/`..` segments in any encoding, backslashes, control bytes, invalid
//! UTF-8) is a 400 before any byte goes upstream.

pub mod config;
mod layer;
mod path;
mod service;

pub use config::SecurityLimitsConfig;
pub use layer::SecurityLimitsLayer;
pub use path::{PathError, sanitize_path};
pub use service::SecurityLimits;

/// The request path, decoded once, with `//` collapsed and all checks passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafePath(pub String);
