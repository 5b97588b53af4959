//! Where slices and a sliced object's description are stored: under the
//! object's own key with a marked version, so a purge of the object (every
//! version) removes them too, and the key's backend fingerprint applies.
//!
//! The marker starts with a NUL, which no S3 version id contains; the
//! cache layer sends a request whose `versionId` holds one past the cache
//! (`service.rs`), so a client can never read these entries as a version.
//! The slice size is part of every marker (a change of `slice_size_mb`
//! never mixes slices cut differently), and a slice's marker holds the
//! object's ETag (slices of two versions never mix).

use crate::cache::CacheKey;

/// The entry describing `key`'s object (headers, ETag, length) when it
/// is larger than the item limit.
pub(crate) fn description(key: &CacheKey) -> CacheKey {
    marked(key, "described".to_owned())
}

/// The entry of slice `index` of the version `etag` of `key`'s object.
pub(crate) fn slice(key: &CacheKey, size: u64, etag: &str, index: u64) -> CacheKey {
    marked(key, format!("slice\0{size}\0{index}\0{etag}"))
}

fn marked(key: &CacheKey, marker: String) -> CacheKey {
    let version = match &key.version_id {
        Some(version) => format!("\0{marker}\0v{version}"),
        None => format!("\0{marker}\0-"),
    };
    CacheKey {
        version_id: Some(version),
        ..key.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::PurgeScope;

    fn key(version: Option<&str>) -> CacheKey {
        CacheKey {
            bucket: Arc::from("b"),
            backend: Default::default(),
            object: "video.mp4".into(),
            version_id: version.map(str::to_owned),
        }
    }

    #[test]
    fn every_version_size_etag_and_index_has_its_own_entry() {
        let plain = key(None);
        let keys = [
            description(&plain),
            description(&key(Some("v1"))),
            slice(&plain, 4, "\"a\"", 0),
            slice(&plain, 4, "\"a\"", 1),
            slice(&plain, 4, "\"b\"", 0),
            slice(&plain, 8, "\"a\"", 0),
            slice(&key(Some("v1")), 4, "\"a\"", 0),
            slice(&key(Some("")), 4, "\"a\"", 0),
        ];
        for (i, a) in keys.iter().enumerate() {
            assert_ne!(a, &plain);
            for b in &keys[i + 1..] {
                assert_ne!(a.digest(), b.digest(), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn a_purge_of_the_object_covers_its_slices() {
        let scope = PurgeScope::Object {
            bucket: "b".into(),
            key: "video.mp4".into(),
        };
        assert!(scope.covers(&slice(&key(None), 4, "\"a\"", 3)));
        assert!(scope.covers(&description(&key(None))));
    }
}
