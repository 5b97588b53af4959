//! `buckets[i].ip_filter` (the original Yatagarasu's keys), and the address
//! lists it shares with `server.trusted_proxies`.

use serde::Deserialize;

use super::set::{IpSet, parse_entry};
use crate::config::{Errors, Str};

/// `buckets[i].ip_filter:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the IP filter (a mapping with `allowlist` and `blocklist`)"
)]
pub(crate) struct RawIpFilter {
    allowlist: Option<Vec<Str>>,
    blocklist: Option<Vec<Str>>,
}

/// A bucket's validated allow and block lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpFilterConfig {
    /// Only these clients may use the bucket; empty: everyone.
    pub allowlist: IpSet,
    /// These clients may not, even when allowlisted (block wins).
    pub blocklist: IpSet,
}

impl IpFilterConfig {
    /// Whether the filter lets every client through (no layer is built).
    pub fn is_empty(&self) -> bool {
        self.allowlist.is_empty() && self.blocklist.is_empty()
    }

    /// Whether `client` may use the bucket. An unknown client (no address,
    /// e.g. an embedded proxy called without one) passes only when there is
    /// no allowlist to prove membership of.
    pub fn allows(&self, client: Option<std::net::IpAddr>) -> bool {
        match client {
            Some(ip) => {
                !self.blocklist.contains(ip)
                    && (self.allowlist.is_empty() || self.allowlist.contains(ip))
            }
            None => self.allowlist.is_empty(),
        }
    }
}

/// Validates `{at}.ip_filter`.
pub(crate) fn ip_filter(raw: Option<RawIpFilter>, at: &str, errs: &mut Errors) -> IpFilterConfig {
    let raw = raw.unwrap_or_default();
    IpFilterConfig {
        allowlist: ip_list(raw.allowlist, &format!("{at}.ip_filter.allowlist"), errs),
        blocklist: ip_list(raw.blocklist, &format!("{at}.ip_filter.blocklist"), errs),
    }
}

/// Validates a list of addresses and CIDR ranges at `path`; each bad entry
/// is reported at `path[i]` (without echoing it: it may come from `${VAR}`).
pub(crate) fn ip_list(raw: Option<Vec<Str>>, path: &str, errs: &mut Errors) -> IpSet {
    let mut nets = Vec::new();
    for (i, entry) in raw.unwrap_or_default().iter().enumerate() {
        match parse_entry(&entry.0) {
            Ok(net) => nets.push(net),
            Err(e) => errs.push(format!("{path}[{i}]"), e.to_string()),
        }
    }
    IpSet::new(nets)
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    fn load(ip_filter: &str) -> Result<Config, Vec<ConfigError>> {
        Config::from_yaml_str_with_env(
            &format!(
                "buckets:\n  - {{name: a, path_prefix: /a, s3: {{bucket: bb-a, region: us-east-1, \
                 anonymous: true}}}}\n  - name: b\n    path_prefix: /b\n    s3: {{bucket: bb-b, \
                 region: us-east-1, anonymous: true}}\n    ip_filter: {ip_filter}\n"
            ),
            &|name| (name == "NET").then(|| "10.0.0.0/8".to_owned()),
        )
        .map_err(|e| e.0)
    }

    #[test]
    fn absent_or_empty_lists_filter_nothing() {
        let config = load("{}").unwrap();
        assert!(config.buckets[0].ip_filter.is_empty());
        assert!(config.buckets[1].ip_filter.is_empty());
        assert!(
            load("{allowlist: [], blocklist: []}").unwrap().buckets[1]
                .ip_filter
                .is_empty()
        );
    }

    #[test]
    fn lists_of_both_families_load_and_block_wins() {
        let config = load(
            "{allowlist: [\"192.168.0.0/16\", \"2001:db8::/32\", \"${NET}\"], \
             blocklist: [192.168.66.0/24, \"::ffff:10.9.0.0/112\"]}",
        )
        .unwrap();
        let filter = &config.buckets[1].ip_filter;
        let allows = |ip: &str| filter.allows(Some(ip.parse().unwrap()));
        assert!(allows("192.168.1.1"));
        assert!(allows("2001:db8::5"));
        assert!(allows("10.1.2.3"));
        assert!(!allows("192.168.66.1"), "block wins over allow");
        assert!(!allows("10.9.1.1"), "IPv4-mapped entries are IPv4");
        assert!(!allows("172.16.0.1"), "outside the allowlist");
        assert!(!filter.allows(None), "an unknown client is not allowlisted");
    }

    #[test]
    fn a_blocklist_alone_lets_everyone_else_in() {
        let config = load("{blocklist: [\"::1\", 127.0.0.2]}").unwrap();
        let filter = &config.buckets[1].ip_filter;
        assert!(!filter.allows(Some("::1".parse().unwrap())));
        assert!(!filter.allows(Some("127.0.0.2".parse().unwrap())));
        assert!(filter.allows(Some("127.0.0.1".parse().unwrap())));
        assert!(filter.allows(None));
    }

    #[test]
    fn bad_entries_are_reported_at_their_index() {
        let errors = load(
            "{allowlist: [10.0.0.0/8, \"::1\", \"10.0.0.0/33\"], blocklist: [nonsense, 1.2.3.4]}",
        )
        .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "buckets[1].ip_filter.allowlist[2]",
                "buckets[1].ip_filter.blocklist[0]"
            ],
            "{errors:?}"
        );
        assert!(errors[0].message.contains("prefix length"), "{errors:?}");
        assert!(!errors[1].message.contains("nonsense"), "{errors:?}");
    }

    #[test]
    fn unknown_keys_and_wrong_shapes_name_their_path() {
        let errors = load("{allow: [10.0.0.0/8]}").unwrap_err();
        assert_eq!(errors[0].path, "buckets[1].ip_filter.allow", "{errors:?}");
        let errors = load("{allowlist: 10.0.0.0/8}").unwrap_err();
        assert_eq!(
            errors[0].path, "buckets[1].ip_filter.allowlist",
            "{errors:?}"
        );
    }
}
