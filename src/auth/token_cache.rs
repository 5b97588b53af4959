//! Tokens that already verified, so a client sending the same token on every
//! request pays for the signature and claim checks once, not per request.
//!
//! Envoy's `jwt_authn` does the same (`jwt_cache_config`). An entry is keyed
//! by the whole token as sent, so a token that differs in any byte (another
//! signature on the same payload included) is verified from scratch. Only
//! tokens that passed every check are stored; a refusal is never cached.
//! A hit is still checked against the clock (`exp`, `nbf`, with the leeway)
//! and against the key set that verified it: when a JWKS refresh replaces
//! the keys, entries verified with the old set are no longer used. A reload
//! builds new verifiers, so it starts with an empty cache.

use std::sync::{Arc, Weak};

use quick_cache::sync::Cache;

use super::keys::KeySet;
use super::verifier::Verified;

/// Longest token kept; longer ones (rare, and costly to hold) are verified
/// every time.
pub(crate) const MAX_CACHED_TOKEN_BYTES: usize = 8 * 1024;

/// A verified token and the limits of its validity.
#[derive(Debug)]
struct Entry {
    verified: Verified,
    /// `exp`, in seconds since the epoch.
    expires_at: u64,
    /// `nbf`, when the token has one.
    not_before: Option<u64>,
    /// The key set that verified it; a hit requires it to still be current.
    keys: Weak<KeySet>,
}

/// Bounded cache of verified tokens for one verifier.
#[derive(Debug)]
pub(crate) struct TokenCache {
    entries: Cache<Box<str>, Arc<Entry>>,
    leeway: u64,
}

impl TokenCache {
    /// A cache of at most `max_tokens` tokens, checked with `leeway` seconds
    /// of clock skew (the verifier's own leeway).
    pub(crate) fn new(max_tokens: usize, leeway: u64) -> Self {
        Self {
            entries: Cache::new(max_tokens.max(1)),
            leeway,
        }
    }

    /// The verification of `token`, when it verified earlier with `keys`
    /// and is still within its validity at `now` (seconds since the epoch).
    pub(crate) fn get(&self, token: &str, keys: &Arc<KeySet>, now: u64) -> Option<Verified> {
        let entry = self.entries.get(token)?;
        let in_time = entry.expires_at.saturating_add(self.leeway) >= now
            && entry
                .not_before
                .is_none_or(|nbf| nbf <= now.saturating_add(self.leeway));
        if in_time && std::ptr::eq(entry.keys.as_ptr(), Arc::as_ptr(keys)) {
            let mut verified = entry.verified.clone();
            verified.cached = true;
            return Some(verified);
        }
        self.entries.remove(token);
        None
    }

    /// Remembers a token that just verified with `keys`. Tokens without a
    /// whole-number `exp` (or with a non-numeric `nbf`), and tokens over
    /// [`MAX_CACHED_TOKEN_BYTES`], are not stored.
    pub(crate) fn insert(&self, token: &str, keys: &Arc<KeySet>, verified: &Verified) {
        if token.len() > MAX_CACHED_TOKEN_BYTES {
            return;
        }
        let Some(expires_at) = verified.claims.get("exp").and_then(|v| v.as_u64()) else {
            return;
        };
        let not_before = match verified.claims.get("nbf") {
            None => None,
            Some(nbf) => match nbf.as_u64() {
                Some(nbf) => Some(nbf),
                None => return,
            },
        };
        let entry = Entry {
            verified: verified.clone(),
            expires_at,
            not_before,
            keys: Arc::downgrade(keys),
        };
        self.entries.insert(token.into(), Arc::new(entry));
    }

    /// How many tokens are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn verified(claims: Value) -> Verified {
        let Value::Object(claims) = claims else {
            panic!("claims must be an object")
        };
        Verified {
            claims: Arc::new(claims),
            key_id: Some("k1".into()),
            payload: Some("cGF5bG9hZA".into()),
            rules_hold: true,
            cached: false,
        }
    }

    #[test]
    fn a_stored_token_is_returned_as_cached_until_it_expires() {
        let keys = Arc::new(KeySet::default());
        let cache = TokenCache::new(10, 30);
        cache.insert("a.b.c", &keys, &verified(json!({"exp": NOW + 60})));
        let hit = cache.get("a.b.c", &keys, NOW).expect("hit");
        assert!(hit.cached);
        assert_eq!(hit.key_id.as_deref(), Some("k1"));
        assert_eq!(hit.claims.get("exp"), Some(&json!(NOW + 60)));
        assert!(cache.get("a.b.d", &keys, NOW).is_none(), "another token");
        // Still valid within the leeway after `exp`, not after it.
        assert!(cache.get("a.b.c", &keys, NOW + 90).is_some());
        assert!(cache.get("a.b.c", &keys, NOW + 91).is_none());
        assert_eq!(cache.len(), 0, "an expired entry is dropped");
    }

    #[test]
    fn a_token_not_yet_valid_is_not_served() {
        let keys = Arc::new(KeySet::default());
        let cache = TokenCache::new(10, 0);
        let claims = json!({"exp": NOW + 600, "nbf": NOW + 100});
        cache.insert("t", &keys, &verified(claims));
        assert!(cache.get("t", &keys, NOW).is_none());
    }

    #[test]
    fn new_keys_invalidate_entries_verified_with_old_ones() {
        let old = Arc::new(KeySet::default());
        let cache = TokenCache::new(10, 0);
        cache.insert("t", &old, &verified(json!({"exp": NOW + 60})));
        let new = Arc::new(KeySet::default());
        assert!(cache.get("t", &new, NOW).is_none());
        assert!(cache.get("t", &old, NOW).is_none(), "the entry is gone");
    }

    #[test]
    fn uncacheable_tokens_are_not_stored() {
        let keys = Arc::new(KeySet::default());
        let cache = TokenCache::new(10, 0);
        cache.insert("no-exp", &keys, &verified(json!({})));
        cache.insert("float-exp", &keys, &verified(json!({"exp": 1.5e9})));
        let claims = json!({"exp": NOW + 60, "nbf": "soon"});
        cache.insert("odd-nbf", &keys, &verified(claims));
        let long = "x".repeat(MAX_CACHED_TOKEN_BYTES + 1);
        cache.insert(&long, &keys, &verified(json!({"exp": NOW + 60})));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn bounded() {
        let keys = Arc::new(KeySet::default());
        let cache = TokenCache::new(20, 0);
        for i in 0..500 {
            cache.insert(&format!("token-{i}"), &keys, &verified(json!({"exp": NOW})));
        }
        assert!(cache.len() <= 20, "{}", cache.len());
    }
}
