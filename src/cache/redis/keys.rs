//! Redis key names and the `SCAN MATCH` patterns that select them.
//!
//! An entry lives at `<prefix><bucket>:<object hex>:<hex>`, where `<hex>`
//! is [`CacheKey::hex`] (bucket, backend, object and version) and
//! `<object hex>` is [`CacheKey::object_hex`] (bucket and object only). So
//! one entry is one exact key, purging one object (every backend and
//! version) is one `SCAN MATCH <prefix><bucket>:<object hex>:*`, and
//! purging a bucket is one `SCAN MATCH <prefix><bucket>:*`.
//!
//! Entries written before the backend was part of the key lived at
//! `<prefix><bucket>:<object hex>` (unversioned) and
//! `<prefix><bucket>:<object hex>:<old hex>` (versioned). No lookup asks
//! for those names any more (and their encoding version is refused), so
//! they are never served; purges still remove them, and they expire.
//!
//! On a Redis Cluster (see [`slotted`]) keys carry a hash tag instead, so
//! that everything of one object lives in one hash slot, and generation
//! numbers replace the `SCAN`s.

use crate::cache::{CacheKey, PurgeScope};

/// The Redis key of `key`'s entry.
pub(crate) fn entry_key(prefix: &str, key: &CacheKey) -> String {
    let object = CacheKey::object_hex(&key.bucket, &key.object);
    format!("{}:{}", object_key(prefix, &key.bucket, &object), key.hex())
}

/// The pub/sub channel carrying purges.
pub(crate) fn purge_channel(prefix: &str) -> String {
    format!("{prefix}purge")
}

/// What to delete for `scope`: exact keys, and `SCAN MATCH` patterns.
pub(crate) fn purge_targets(prefix: &str, scope: &PurgeScope) -> (Vec<String>, Vec<String>) {
    match scope {
        PurgeScope::All => (Vec::new(), vec![format!("{}*", glob_escape(prefix))]),
        PurgeScope::Bucket(bucket) => (
            Vec::new(),
            vec![format!("{}{}:*", glob_escape(prefix), glob_escape(bucket))],
        ),
        PurgeScope::Object { bucket, key } => {
            let base = object_key(prefix, bucket, &CacheKey::object_hex(bucket, key));
            let entries = format!("{}:*", glob_escape(&base));
            // The exact name is where the previous layout kept the unversioned entry.
            (vec![base], vec![entries])
        }
        PurgeScope::Entry(key) => (vec![entry_key(prefix, key)], Vec::new()),
    }
}

fn object_key(prefix: &str, bucket: &str, object_hex: &str) -> String {
    format!("{prefix}{bucket}:{object_hex}")
}

/// Escapes Redis glob metacharacters so `s` matches only itself.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Key names on a Redis Cluster.
///
/// Every key of one object is tagged `{<bucket>:<object hex>}`: Redis
/// Cluster hashes only the tag, so the object's entries (each holds the
/// object's metadata and body together) and its index share one hash
/// slot, hence one node, and multi-key commands on them are allowed.
/// Objects spread over the slots by their hash.
///
/// - entry: `<prefix>{<bucket>:<object hex>}:<all gen>.<bucket gen>:<hex>`
/// - object index (a set of its entry keys, for object purges):
///   `<prefix>{<bucket>:<object hex>}:keys`
/// - bucket generation: `<prefix>gen:{<bucket>}`; whole-cache generation:
///   `<prefix>gen`
pub(crate) mod slotted {
    use crate::cache::CacheKey;

    /// The whole-cache and bucket generation numbers an entry key includes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct Gens {
        /// Bumped by a purge of everything.
        pub(crate) all: u64,
        /// Bumped by a purge of the bucket.
        pub(crate) bucket: u64,
    }

    /// The hash-tagged base of every key of one object.
    fn object_base(prefix: &str, bucket: &str, object: &str) -> String {
        let object_hex = CacheKey::object_hex(bucket, object);
        format!("{prefix}{{{bucket}:{object_hex}}}")
    }

    /// The key of `key`'s entry under the generations `gens`.
    pub(crate) fn entry_key(prefix: &str, key: &CacheKey, gens: Gens) -> String {
        let base = object_base(prefix, &key.bucket, &key.object);
        format!("{base}:{}.{}:{}", gens.all, gens.bucket, key.hex())
    }

    /// The set of the entry keys written for one object (any backend,
    /// version or generation).
    pub(crate) fn object_index(prefix: &str, bucket: &str, object: &str) -> String {
        format!("{}:keys", object_base(prefix, bucket, object))
    }

    /// The counter bumped by a purge of `bucket`.
    pub(crate) fn bucket_generation(prefix: &str, bucket: &str) -> String {
        format!("{prefix}gen:{{{bucket}}}")
    }

    /// The counter bumped by a purge of everything.
    pub(crate) fn all_generation(prefix: &str) -> String {
        format!("{prefix}gen")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::key::BackendId;

    fn key(backend: u8, version: Option<&str>) -> CacheKey {
        CacheKey {
            bucket: "b".into(),
            backend: BackendId([backend; 16]),
            object: "o".into(),
            version_id: version.map(str::to_owned),
        }
    }

    #[test]
    fn every_backend_and_version_sits_under_the_object_key() {
        let base = format!("p:b:{}", CacheKey::object_hex("b", "o"));
        let plain = entry_key("p:", &key(1, None));
        assert_eq!(plain, format!("{base}:{}", key(1, None).hex()));
        let other_backend = entry_key("p:", &key(2, None));
        assert_ne!(plain, other_backend, "each backend has its own entry");
        let versioned = entry_key("p:", &key(1, Some("v1")));
        for entry in [&plain, &other_backend, &versioned] {
            assert!(entry.starts_with(&format!("{base}:")), "{entry}");
        }
        let (exact, patterns) = purge_targets(
            "p:",
            &PurgeScope::Object {
                bucket: "b".into(),
                key: "o".into(),
            },
        );
        assert_eq!(exact, vec![base.clone()]);
        assert_eq!(patterns, vec![format!("{base}:*")]);
        let (exact, patterns) = purge_targets("p:", &PurgeScope::Entry(key(2, None)));
        assert_eq!((exact, patterns.len()), (vec![other_backend], 0));
    }

    #[test]
    fn glob_characters_are_escaped() {
        let (_, patterns) = purge_targets("a*[x]:", &PurgeScope::Bucket("b?".into()));
        assert_eq!(patterns, vec![r"a\*\[x\]:b\?:*".to_owned()]);
    }

    /// The slot Redis Cluster computes: CRC16/XMODEM of the hash tag.
    fn slot(key: &str) -> u16 {
        let tag = key
            .find('{')
            .and_then(|open| {
                let rest = &key[open + 1..];
                rest.find('}')
                    .filter(|&close| close > 0)
                    .map(|close| &rest[..close])
            })
            .unwrap_or(key);
        // CRC16/XMODEM, as the Redis Cluster specification gives it.
        let mut crc: u16 = 0;
        for &byte in tag.as_bytes() {
            crc ^= u16::from(byte) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 == 0 {
                    crc << 1
                } else {
                    (crc << 1) ^ 0x1021
                };
            }
        }
        crc % 16384
    }

    #[test]
    fn the_slot_function_matches_redis() {
        // The specification's example: "123456789" has CRC 0x31C3.
        assert_eq!(slot("123456789"), 0x31C3);
        assert_eq!(slot("a{123456789}b"), slot("123456789"));
    }

    #[test]
    fn an_objects_keys_share_one_slot_and_objects_spread() {
        use slotted::{Gens, entry_key, object_index};
        let gens = Gens { all: 0, bucket: 7 };
        let index = object_index("p:", "b", "o");
        for k in [key(1, None), key(2, Some("v1"))] {
            let entry = entry_key("p:", &k, gens);
            assert_eq!(slot(&entry), slot(&index), "{entry} / {index}");
            assert!(entry.contains(":0.7:"), "{entry}");
        }
        let other = object_index("p:", "b", "another object");
        assert_ne!(slot(&other), slot(&index), "another object, another slot");
        let bumped = entry_key("p:", &key(1, None), Gens { all: 0, bucket: 8 });
        assert_ne!(bumped, entry_key("p:", &key(1, None), gens));
    }
}
