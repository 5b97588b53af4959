//! Redis key names and the `SCAN MATCH` patterns that select them.
//!
//! An unversioned entry lives at `<prefix><bucket>:<hex>` where `<hex>` is
//! [`CacheKey::hex`]. A versioned entry lives at
//! `<prefix><bucket>:<object hex>:<hex>`, where `<object hex>` is the hex of
//! the same key without its version: so purging one object (every version)
//! is one `UNLINK` plus one `SCAN MATCH <prefix><bucket>:<object hex>:*`.

use crate::cache::{CacheKey, PurgeScope};

/// The Redis key of `key`'s entry.
pub(crate) fn entry_key(prefix: &str, key: &CacheKey) -> String {
    let base = base_key(prefix, &key.bucket, &object_hex(key));
    match key.version_id {
        None => base,
        Some(_) => format!("{base}:{}", key.hex()),
    }
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
            let unversioned = CacheKey {
                bucket: bucket.as_str().into(),
                object: key.clone(),
                version_id: None,
            };
            let base = base_key(prefix, bucket, &unversioned.hex());
            let versions = format!("{}:*", glob_escape(&base));
            (vec![base], vec![versions])
        }
    }
}

fn base_key(prefix: &str, bucket: &str, hex: &str) -> String {
    format!("{prefix}{bucket}:{hex}")
}

fn object_hex(key: &CacheKey) -> String {
    if key.version_id.is_none() {
        return key.hex();
    }
    CacheKey {
        bucket: key.bucket.clone(),
        object: key.object.clone(),
        version_id: None,
    }
    .hex()
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

    fn key(version: Option<&str>) -> CacheKey {
        CacheKey {
            bucket: "b".into(),
            object: "o".into(),
            version_id: version.map(str::to_owned),
        }
    }

    #[test]
    fn versioned_keys_sit_under_the_object_key() {
        let plain = entry_key("p:", &key(None));
        assert_eq!(plain, format!("p:b:{}", key(None).hex()));
        let versioned = entry_key("p:", &key(Some("v1")));
        assert!(versioned.starts_with(&format!("{plain}:")));
        let (exact, patterns) = purge_targets(
            "p:",
            &PurgeScope::Object {
                bucket: "b".into(),
                key: "o".into(),
            },
        );
        assert_eq!(exact, vec![plain.clone()]);
        assert_eq!(patterns, vec![format!("{plain}:*")]);
    }

    #[test]
    fn glob_characters_are_escaped() {
        let (_, patterns) = purge_targets("a*[x]:", &PurgeScope::Bucket("b?".into()));
        assert_eq!(patterns, vec![r"a\*\[x\]:b\?:*".to_owned()]);
    }
}
