//! The cache key: which bucket (by its configured name), which S3 backend
//! it stands for, which object, which version.
//!
//! Never the client or its token: authorization has already happened.
//!
//! The backend is part of the key because the disk and Redis tiers outlive
//! the configuration that filled them (a restart, or another instance with a
//! different mapping sharing one Redis): an entry is only ever found under
//! the backend identity it was fetched from, so a bucket name pointed at
//! other S3 data never answers with the old data.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::{BucketConfig, S3Config};

/// Identifies one cached object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The bucket's configured name (not the S3 bucket's).
    pub bucket: Arc<str>,
    /// The S3 data the bucket name stood for when the entry was fetched.
    pub backend: BackendId,
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
        hasher.update(self.backend.0);
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
        to_hex(&self.digest())
    }

    /// Hex digest of the bucket name and object key alone (every backend and
    /// version of the object), which groups an object's entries in Redis so
    /// a purge by object finds them all.
    pub fn object_hex(bucket: &str, object: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(bucket.as_bytes());
        hasher.update([0]);
        hasher.update(object.as_bytes());
        hasher.update([0]);
        to_hex(&hasher.finalize())
    }
}

/// A short fingerprint of the S3 backend a bucket name stands for.
///
/// Computed once per configuration generation (never per request) from the
/// fields listed in [`BackendId::of`]; equal fingerprints mean the same S3
/// data. Adding a field (say, a replica set) only appends to that list:
/// every fingerprint changes, so entries written before are simply not found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct BackendId(pub [u8; 16]);

/// Names the fingerprint scheme; change it to invalidate every fingerprint.
const BACKEND_SCHEME: &[u8] = b"yatagarasu-backend-v1";

impl BackendId {
    /// The fingerprint of `s3`'s identity: endpoint, S3 bucket, region.
    ///
    /// Addressing style and credentials are left out: they change how the
    /// data is reached, not which data it is (a change of them still purges
    /// the bucket at reload, see `CacheShared::prepare`).
    pub fn of(s3: &S3Config) -> Self {
        let endpoint = s3.endpoint.as_ref().map(ToString::to_string);
        Self::from_fields(&[
            ("endpoint", endpoint.as_deref().unwrap_or("")),
            ("bucket", &s3.bucket),
            ("region", &s3.region),
        ])
    }

    /// The fingerprint of everything `bucket`'s answers can come from: its
    /// s3 target, and when it has them each replica and its 404 fallback (a
    /// change of one of those changes the data the bucket stands for). A
    /// bucket with neither keeps [`Self::of`] its s3 target.
    pub fn of_bucket(bucket: &BucketConfig) -> Self {
        if bucket.replicas.is_empty() && bucket.fallback_on_404.is_none() {
            return Self::of(&bucket.s3);
        }
        let replicas = bucket.replicas.iter().map(|r| ("replica", &r.s3));
        let fallback = bucket.fallback_on_404.iter().map(|f| ("fallback", f));
        let sources: Vec<(&str, &S3Config)> = std::iter::once(("s3", &bucket.s3))
            .chain(replicas)
            .chain(fallback)
            .collect();
        let endpoints: Vec<String> = (sources.iter())
            .map(|(_, s3)| {
                s3.endpoint
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            })
            .collect();
        let fields: Vec<(&str, &str)> = (sources.iter().zip(&endpoints))
            .flat_map(|((kind, s3), endpoint)| {
                [
                    ("target", *kind),
                    ("endpoint", endpoint.as_str()),
                    ("bucket", s3.bucket.as_str()),
                    ("region", s3.region.as_str()),
                ]
            })
            .collect();
        Self::from_fields(&fields)
    }

    /// The fingerprint of named fields, each length-prefixed so no two
    /// different lists hash alike.
    pub fn from_fields(fields: &[(&str, &str)]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(BACKEND_SCHEME);
        for (name, value) in fields {
            for part in [name.as_bytes(), value.as_bytes()] {
                hasher.update((part.len() as u64).to_le_bytes());
                hasher.update(part);
            }
        }
        let digest = hasher.finalize();
        let mut id = [0; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }

    /// The fingerprint as lower-case hex (purge messages, logs).
    pub fn hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Parses [`BackendId::hex`]'s output.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        if bytes.len() != 32 || !bytes.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut id = [0; 16];
        for (i, out) in id.iter_mut().enumerate() {
            let pair = std::str::from_utf8(&bytes[2 * i..2 * i + 2]).ok()?;
            *out = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(id))
    }
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backend_changes_the_digest_and_round_trips_as_hex() {
        let one = BackendId::from_fields(&[("bucket", "a")]);
        let two = BackendId::from_fields(&[("bucket", "b")]);
        assert_ne!(one, two);
        // Length prefixes: moving bytes between fields changes the fingerprint.
        assert_ne!(
            BackendId::from_fields(&[("bucket", "ab"), ("region", "")]),
            BackendId::from_fields(&[("bucket", "a"), ("region", "b")])
        );
        let key = |backend| CacheKey {
            bucket: Arc::from("b"),
            backend,
            object: "o".into(),
            version_id: None,
        };
        assert_ne!(key(one).digest(), key(two).digest());
        assert_eq!(BackendId::from_hex(&one.hex()), Some(one));
        assert_eq!(BackendId::from_hex("zz"), None);
    }

    #[test]
    fn replicas_and_the_fallback_are_part_of_a_buckets_backend() {
        use crate::config::test_support::{load, with_s3};
        let id = |extra: &str| {
            let config = load(&with_s3(&format!("      anonymous: true\n{extra}")), &[]).unwrap();
            BackendId::of_bucket(&config.buckets[0])
        };
        let plain = id("");
        assert_eq!(
            plain,
            BackendId::of(
                &load(&with_s3("      anonymous: true\n"), &[])
                    .unwrap()
                    .buckets[0]
                    .s3
            )
        );
        let replica = |bucket: &str| {
            format!(
                "      replicas: [{{name: r, bucket: {bucket}, region: us-east-1, anonymous: true, priority: 1}}]\n"
            )
        };
        let with_replica = id(&replica("bkt-one"));
        assert_ne!(with_replica, plain);
        assert_ne!(with_replica, id(&replica("bkt-two")));
        let fallback =
            "      fallback_on_404: {bucket: old-bkt, region: us-east-1, anonymous: true}\n";
        assert_ne!(id(fallback), plain);
        assert_eq!(with_replica, id(&replica("bkt-one")));
    }
}
