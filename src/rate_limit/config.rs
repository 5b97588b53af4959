//! The rate limit settings: `server.rate_limit` (global and per client
//! address, the original Yatagarasu's keys plus `burst` and
//! `max_tracked_ips`), `buckets[i].s3.rate_limit` (per bucket, the
//! original's place) and `buckets[i].rate_limit_per_user` (new).

use std::num::NonZeroU32;

use serde::Deserialize;

use crate::config::{Bool, Errors, Str, U64, count};

/// `server.rate_limit:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the rate limits (a mapping)"
)]
pub(crate) struct RawRateLimit {
    enabled: Option<Bool>,
    global: Option<RawRate>,
    per_ip: Option<RawPerIp>,
}

/// A `{ requests_per_second, burst }` mapping as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "a rate limit (a mapping with requests_per_second and burst)"
)]
pub(crate) struct RawRate {
    requests_per_second: Option<U64>,
    burst: Option<U64>,
}

/// `server.rate_limit.per_ip:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the per-address rate limit (a mapping)"
)]
pub(crate) struct RawPerIp {
    requests_per_second: Option<U64>,
    burst: Option<U64>,
    max_tracked_ips: Option<U64>,
}

/// `buckets[i].rate_limit_per_user:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the per-user rate limit (a mapping)"
)]
pub(crate) struct RawUserRate {
    requests_per_second: Option<U64>,
    burst: Option<U64>,
    claim: Option<Str>,
}

/// One GCRA limit: a sustained rate and the burst allowed on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// Requests per second, sustained.
    pub requests_per_second: NonZeroU32,
    /// Requests allowed at once after a quiet period (`RateLimit-Limit`);
    /// defaults to one second's worth.
    pub burst: NonZeroU32,
}

impl Rate {
    /// Largest `requests_per_second` and `burst`: a million, far beyond
    /// what one proxy serves, and small enough that the limiter's
    /// arithmetic (nanoseconds per request times burst) cannot overflow.
    pub const MAX: u32 = 1_000_000;
}

/// `server.rate_limit`, validated: the limits every bucket shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// All requests together; `None` when not configured or not `enabled`.
    pub global: Option<Rate>,
    /// Each client address; `None` when not configured or not `enabled`.
    pub per_ip: Option<Rate>,
    /// Most addresses (and users, per bucket) whose state is kept; the
    /// least recently useful ones are forgotten beyond it.
    pub max_tracked_ips: usize,
}

impl RateLimitConfig {
    /// Default [`Self::max_tracked_ips`]: 100,000 keys, about 8.5 MB.
    pub const DEFAULT_MAX_TRACKED_IPS: usize = 100_000;
    /// Largest [`Self::max_tracked_ips`]: ten million keys (about a gigabyte).
    pub const MAX_TRACKED_IPS: usize = 10_000_000;
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            global: None,
            per_ip: None,
            max_tracked_ips: Self::DEFAULT_MAX_TRACKED_IPS,
        }
    }
}

/// `buckets[i].rate_limit_per_user`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserRateConfig {
    /// Each user's limit.
    pub rate: Rate,
    /// The top-level claim of the verified token that names the user
    /// (default `sub`); requests without it are keyed by client address.
    pub claim: String,
}

/// A bucket's own limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketRateLimits {
    /// `s3.rate_limit`: all requests to the bucket together.
    pub bucket: Option<Rate>,
    /// `rate_limit_per_user`: each user of the bucket.
    pub per_user: Option<UserRateConfig>,
}

/// Validates `server.rate_limit`.
pub(crate) fn rate_limit(raw: Option<RawRateLimit>, errs: &mut Errors) -> RateLimitConfig {
    let Some(raw) = raw else {
        return RateLimitConfig::default();
    };
    let at = "server.rate_limit";
    let enabled = raw.enabled.is_some_and(|Bool(b)| b);
    let global = raw.global.and_then(|g| {
        rate(
            g.requests_per_second,
            g.burst,
            &format!("{at}.global"),
            errs,
        )
    });
    let (per_ip, max_tracked_ips) = match raw.per_ip {
        Some(p) => {
            let path = format!("{at}.per_ip");
            let max = count(
                p.max_tracked_ips,
                RateLimitConfig::DEFAULT_MAX_TRACKED_IPS,
                1,
                RateLimitConfig::MAX_TRACKED_IPS,
                &format!("{path}.max_tracked_ips"),
                errs,
            );
            (rate(p.requests_per_second, p.burst, &path, errs), max)
        }
        None => (None, RateLimitConfig::DEFAULT_MAX_TRACKED_IPS),
    };
    RateLimitConfig {
        global: global.filter(|_| enabled),
        per_ip: per_ip.filter(|_| enabled),
        max_tracked_ips,
    }
}

/// Validates a bucket's `s3.rate_limit` and `rate_limit_per_user` (`at` is
/// the bucket's path); `None` when either is invalid.
pub(crate) fn bucket_rate_limits(
    bucket: Option<RawRate>,
    per_user: Option<RawUserRate>,
    at: &str,
    errs: &mut Errors,
) -> Option<BucketRateLimits> {
    let before = errs.count();
    let bucket = bucket.and_then(|b| {
        rate(
            b.requests_per_second,
            b.burst,
            &format!("{at}.s3.rate_limit"),
            errs,
        )
    });
    let per_user = per_user.and_then(|u| {
        let path = format!("{at}.rate_limit_per_user");
        let claim = claim(u.claim, &format!("{path}.claim"), errs);
        let rate = rate(u.requests_per_second, u.burst, &path, errs);
        Some(UserRateConfig {
            rate: rate?,
            claim: claim?,
        })
    });
    (errs.count() == before).then_some(BucketRateLimits { bucket, per_user })
}

/// A rate at `path`: `requests_per_second` is required, `burst` defaults
/// to it; both within 1..=[`Rate::MAX`].
fn rate(rps: Option<U64>, burst: Option<U64>, path: &str, errs: &mut Errors) -> Option<Rate> {
    let max = Rate::MAX as usize;
    let before = errs.count();
    let rps_path = format!("{path}.requests_per_second");
    let Some(rps) = rps.map(|n| count(Some(n), 1, 1, max, &rps_path, errs)) else {
        errs.push(rps_path, "missing");
        return None;
    };
    let burst = count(burst, rps, 1, max, &format!("{path}.burst"), errs);
    if errs.count() != before {
        return None;
    }
    Some(Rate {
        requests_per_second: non_zero(rps),
        burst: non_zero(burst),
    })
}

/// A validated count (1..=[`Rate::MAX`]) as a `NonZeroU32`.
fn non_zero(n: usize) -> NonZeroU32 {
    u32::try_from(n)
        .ok()
        .and_then(NonZeroU32::new)
        .unwrap_or(NonZeroU32::MIN)
}

/// `claim:`: a non-empty claim name, `sub` when absent.
fn claim(raw: Option<Str>, path: &str, errs: &mut Errors) -> Option<String> {
    match raw {
        None => Some("sub".to_owned()),
        Some(Str(name)) if name.is_empty() => {
            errs.push(path, "must not be empty");
            None
        }
        Some(Str(name)) => Some(name),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{load, with_section};

    fn server(section: &str) -> Result<crate::config::Config, Vec<crate::ConfigError>> {
        load(
            &with_section(&format!("server:\n  rate_limit: {section}")),
            &[],
        )
    }

    fn bucket(
        extra: &str,
        s3_extra: &str,
    ) -> Result<crate::config::Config, Vec<crate::ConfigError>> {
        load(
            &format!(
                "buckets:\n  - name: b\n    path_prefix: /b\n    s3: {{bucket: my-bucket, region: \
                 us-east-1, anonymous: true{s3_extra}}}\n{extra}"
            ),
            &[],
        )
    }

    #[test]
    fn defaults_and_the_original_keys() {
        let c = server("{enabled: true, global: {requests_per_second: 1000}}").unwrap();
        let limits = c.server.rate_limit;
        let global = limits.global.unwrap();
        assert_eq!(global.requests_per_second.get(), 1000);
        assert_eq!(
            global.burst.get(),
            1000,
            "burst defaults to one second's worth"
        );
        assert_eq!(limits.per_ip, None);
        assert_eq!(limits.max_tracked_ips, 100_000);

        let off = server("{global: {requests_per_second: 10}, per_ip: {requests_per_second: 5}}");
        let off = off.unwrap().server.rate_limit;
        assert_eq!(
            (off.global, off.per_ip),
            (None, None),
            "enabled defaults to false"
        );

        let c = server(
            "{enabled: true, per_ip: {requests_per_second: 5, burst: 7, max_tracked_ips: 10}}",
        )
        .unwrap();
        let per_ip = c.server.rate_limit.per_ip.unwrap();
        assert_eq!(
            (per_ip.requests_per_second.get(), per_ip.burst.get()),
            (5, 7)
        );
        assert_eq!(c.server.rate_limit.max_tracked_ips, 10);
    }

    #[test]
    fn bucket_and_user_limits() {
        let c = bucket(
            "    rate_limit_per_user: {requests_per_second: 2}\n",
            ", rate_limit: {requests_per_second: 100, burst: 3}",
        )
        .unwrap();
        let limits = &c.buckets[0].rate_limits;
        let b = limits.bucket.unwrap();
        assert_eq!((b.requests_per_second.get(), b.burst.get()), (100, 3));
        let user = limits.per_user.as_ref().unwrap();
        assert_eq!(user.claim, "sub");
        assert_eq!(user.rate.burst.get(), 2);
        let c = bucket("", "").unwrap();
        assert_eq!(c.buckets[0].rate_limits, Default::default());
    }

    #[test]
    fn bad_values_name_their_path() {
        let rl = "server.rate_limit";
        for (section, path, needle) in [
            (
                "{global: {requests_per_second: 0}}",
                "global.requests_per_second",
                "between 1 and 1000000",
            ),
            (
                "{global: {burst: 5}}",
                "global.requests_per_second",
                "missing",
            ),
            (
                "{global: {requests_per_second: 5, burst: 0}}",
                "global.burst",
                "between 1",
            ),
            (
                "{per_ip: {requests_per_second: 1000001}}",
                "per_ip.requests_per_second",
                "between",
            ),
            (
                "{per_ip: {requests_per_second: 1, max_tracked_ips: 0}}",
                "per_ip.max_tracked_ips",
                "between",
            ),
            (
                "{per_ip: {requests_per_second: 1, max_tracked_ips: 10000001}}",
                "per_ip.max_tracked_ips",
                "between",
            ),
            (
                "{global: {requests_per_second: 1, rate: 2}}",
                "global.rate",
                "unknown field",
            ),
            ("{enabled: maybe}", "enabled", ""),
        ] {
            let errors = server(section).unwrap_err();
            assert_eq!(errors.len(), 1, "{section}: {errors:?}");
            assert_eq!(errors[0].path, format!("{rl}.{path}"), "{section}");
            assert!(
                errors[0].message.contains(needle),
                "{section}: {}",
                errors[0]
            );
        }
        for (extra, s3_extra, path) in [
            (
                "",
                ", rate_limit: {requests_per_second: 0}",
                "buckets[0].s3.rate_limit.requests_per_second",
            ),
            (
                "",
                ", rate_limit: {requests_per_second: 1, burst: 0}",
                "buckets[0].s3.rate_limit.burst",
            ),
            (
                "    rate_limit_per_user: {burst: 1}\n",
                "",
                "buckets[0].rate_limit_per_user.requests_per_second",
            ),
            (
                "    rate_limit_per_user: {requests_per_second: 1, claim: ''}\n",
                "",
                "buckets[0].rate_limit_per_user.claim",
            ),
            (
                "    rate_limit_per_user: {requests_per_second: 1, user: x}\n",
                "",
                "buckets[0].rate_limit_per_user.user",
            ),
        ] {
            let errors = bucket(extra, s3_extra).unwrap_err();
            assert_eq!(errors.len(), 1, "{extra}{s3_extra}: {errors:?}");
            assert_eq!(errors[0].path, path, "{}", errors[0]);
        }
    }
}
