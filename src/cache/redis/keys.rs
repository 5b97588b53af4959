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
}
