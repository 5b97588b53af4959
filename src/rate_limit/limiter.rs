//! The limiters themselves: governor's GCRA over one shared state (global,
//! per bucket) or over a [`BoundedStore`] of keys (per address, per user).

use std::hash::{BuildHasher, Hash, RandomState};
use std::net::{IpAddr, Ipv6Addr};

use governor::clock::{Clock, DefaultClock};
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};
use serde_json::Value;

use super::config::{Rate, UserRateConfig};
use super::store::BoundedStore;
use crate::auth::VerifiedClaims;
use crate::error::Throttled;

type Instant = <DefaultClock as Clock>::Instant;

/// The limit's quota: `requests_per_second` sustained, `burst` at once.
fn quota(rate: Rate) -> Quota {
    Quota::per_second(rate.requests_per_second).allow_burst(rate.burst)
}

/// The refusal of a request that may go again at `not_until`.
fn throttled(
    scope: &'static str,
    rate: Rate,
    not_until: &NotUntil<Instant>,
    now: Instant,
) -> Throttled {
    Throttled {
        scope,
        limit: rate.burst.get(),
        retry_after: not_until.wait_time_from(now),
    }
}

/// One limit shared by every request it covers (global, or one bucket).
#[derive(Debug)]
pub struct SharedLimit {
    limiter: RateLimiter<NotKeyed, InMemoryState, DefaultClock>,
    rate: Rate,
}

impl SharedLimit {
    /// A limit at `rate` with its full burst available.
    pub fn new(rate: Rate) -> Self {
        Self {
            limiter: RateLimiter::direct(quota(rate)),
            rate,
        }
    }

    /// The configured rate (a reload keeps the limit when it is unchanged).
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes one request from the budget, or says when to come back.
    pub fn check(&self, scope: &'static str) -> Result<(), Throttled> {
        self.limiter
            .check()
            .map_err(|n| throttled(scope, self.rate, &n, self.limiter.clock().now()))
    }
}

/// One limit per key (client address, user), in a bounded store.
#[derive(Debug)]
pub struct KeyedLimit<K: Eq + Hash + Clone> {
    limiter: RateLimiter<K, BoundedStore<K>, DefaultClock>,
    rate: Rate,
    max_keys: usize,
}

impl<K: Eq + Hash + Clone> KeyedLimit<K> {
    /// A limit at `rate` for each key, remembering at most `max_keys` keys.
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        let store = BoundedStore::new(max_keys);
        Self {
            limiter: RateLimiter::new(quota(rate), store, DefaultClock::default()),
            rate,
            max_keys,
        }
    }

    /// Whether this limit was built from these settings.
    pub fn is(&self, rate: Rate, max_keys: usize) -> bool {
        self.rate == rate && self.max_keys == max_keys
    }

    /// Takes one request from `key`'s budget, or says when to come back.
    pub fn check(&self, key: &K, scope: &'static str) -> Result<(), Throttled> {
        self.limiter
            .check_key(key)
            .map_err(|n| throttled(scope, self.rate, &n, self.limiter.clock().now()))
    }
}

/// The key of a client address: IPv4 as is; IPv6 by its /64, the block one
/// host or customer is routed (so rotating addresses within it neither
/// escapes the limit nor fills the store); IPv4-mapped IPv6 as IPv4.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// Who a per-user limit counts a request against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserKey {
    /// A keyed hash of the claim's text: fixed size, no allocation per
    /// request, and not predictable by clients (random key per limit).
    Claim(u64),
    /// A request without the claim (anonymous): its client address key.
    Addr(IpAddr),
}

/// A bucket's per-user limit: the keyed limit and how users are named.
#[derive(Debug)]
pub struct UserLimit {
    limit: KeyedLimit<UserKey>,
    settings: UserRateConfig,
    hasher: RandomState,
}

impl UserLimit {
    /// A per-user limit with these settings, remembering at most `max_keys` users.
    pub fn new(settings: UserRateConfig, max_keys: usize) -> Self {
        Self {
            limit: KeyedLimit::new(settings.rate, max_keys),
            settings,
            hasher: RandomState::new(),
        }
    }

    /// Whether this limit was built from these settings.
    pub fn is(&self, settings: &UserRateConfig, max_keys: usize) -> bool {
        self.settings == *settings && self.limit.is(settings.rate, max_keys)
    }

    /// The key of a request: the configured claim when the token has it
    /// (a string, number or boolean), otherwise the client address.
    pub fn key(&self, claims: Option<&VerifiedClaims>, addr: Option<IpAddr>) -> Option<UserKey> {
        let claim = claims.and_then(|c| c.claims.get(&self.settings.claim));
        let hashed = match claim {
            Some(Value::String(s)) => Some(self.hasher.hash_one(s.as_str())),
            Some(Value::Number(n)) => Some(self.hasher.hash_one(n.to_string().as_str())),
            Some(Value::Bool(b)) => Some(self.hasher.hash_one(if *b { "true" } else { "false" })),
            _ => None,
        };
        hashed
            .map(UserKey::Claim)
            .or_else(|| addr.map(|ip| UserKey::Addr(address_key(ip))))
    }

    /// Takes one request from `key`'s budget, or says when to come back.
    pub fn check(&self, key: &UserKey) -> Result<(), Throttled> {
        self.limit.check(key, "user")
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::sync::Arc;

    use super::*;

    fn rate(rps: u32, burst: u32) -> Rate {
        Rate {
            requests_per_second: NonZeroU32::new(rps).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    /// Checks until the first refusal: how many passed, and the refusal.
    /// At 1/s, a passed count above the burst means that many seconds went by.
    fn exhaust(mut check: impl FnMut() -> Result<(), Throttled>) -> (usize, Throttled) {
        let mut passed = 0;
        loop {
            match check() {
                Ok(()) => passed += 1,
                Err(refusal) => return (passed, refusal),
            }
            assert!(passed < 1000, "never refused");
        }
    }

    #[test]
    fn a_shared_limit_allows_its_burst_then_refuses_with_a_delay() {
        let limit = SharedLimit::new(rate(1, 3));
        let start = std::time::Instant::now();
        let (passed, refusal) = exhaust(|| limit.check("global"));
        let bound = 3 + start.elapsed().as_secs() as usize + 1;
        assert!((3..=bound).contains(&passed), "{passed}");
        assert_eq!((refusal.scope, refusal.limit), ("global", 3));
        assert!(refusal.retry_after > std::time::Duration::ZERO);
        assert!(refusal.retry_after <= std::time::Duration::from_secs(1));
    }

    #[test]
    fn keys_are_limited_apart() {
        let limit = KeyedLimit::new(rate(1, 2), 100);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let (passed, refusal) = exhaust(|| limit.check(&a, "ip"));
        assert!(passed >= 2);
        assert_eq!(refusal.scope, "ip");
        assert!(
            limit.check(&b, "ip").is_ok(),
            "another address has its own budget"
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
    }

    #[test]
    fn users_are_keyed_by_their_claim_or_else_by_address() {
        let settings = UserRateConfig {
            rate: rate(1, 1),
            claim: "tenant".into(),
        };
        let limit = UserLimit::new(settings.clone(), 10);
        assert!(limit.is(&settings, 10));
        assert!(!limit.is(&settings, 11));
        let claims = |v: Value| VerifiedClaims {
            subject: None,
            key_id: None,
            claims: Arc::new(serde_json::Map::from_iter([("tenant".to_owned(), v)])),
            payload: None,
        };
        let addr: Option<IpAddr> = Some("10.1.1.1".parse().unwrap());
        let alice = limit.key(Some(&claims(Value::from("alice"))), addr);
        let bob = limit.key(Some(&claims(Value::from("bob"))), addr);
        assert!(matches!(alice, Some(UserKey::Claim(_))));
        assert_ne!(alice, bob);
        assert_eq!(alice, limit.key(Some(&claims(Value::from("alice"))), None));
        assert_eq!(
            limit.key(Some(&claims(Value::from(7))), None),
            limit.key(Some(&claims(Value::from("7"))), None),
            "a claim is its text"
        );
        let anonymous = limit.key(None, addr);
        assert_eq!(anonymous, Some(UserKey::Addr("10.1.1.1".parse().unwrap())));
        assert_eq!(limit.key(Some(&claims(Value::Null)), addr), anonymous);
        assert_eq!(limit.key(None, None), None);
        let alice = alice.unwrap();
        let (passed, refusal) = exhaust(|| limit.check(&alice));
        assert!(passed >= 1);
        assert_eq!(refusal.scope, "user");
        assert!(limit.check(&bob.unwrap()).is_ok());
    }
}
