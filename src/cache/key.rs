//! The cache key: which bucket (by its configured name), which object, which version.
//!
//! Never the client or its token: authorization has already happened.

use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Identifies one cached object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The bucket's configured name (not the S3 bucket's).
    pub bucket: Arc<str>,
    /// The object key, decoded.
    pub object: String,
    /// The `versionId` query parameter, when the request named a version.
    pub version_id: Option<String>,
}

impl CacheKey {
    /// A stable digest, used to name disk files and Redis keys.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.bucket.as_bytes());
        hasher.update([0]);
        hasher.update(self.object.as_bytes());
        hasher.update([0]);
        if let Some(version) = &self.version_id {
            hasher.update([1]);
            hasher.update(version.as_bytes());
        }
        hasher.finalize().into()
    }

    /// The digest as lower-case hex.
    pub fn hex(&self) -> String {
        use std::fmt::Write as _;
        self.digest()
            .iter()
            .fold(String::with_capacity(64), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }
}
