//! `server.trusted_proxies`: the peers whose forwarding headers are believed.

use crate::config::{Errors, Str};
use crate::ip_filter::IpSet;
use crate::ip_filter::config::ip_list;

/// Validates `server.trusted_proxies` (addresses and CIDR ranges, IPv4 and
/// IPv6); absent or empty: trust nobody, the TCP peer is the client.
pub(crate) fn trusted_proxies(raw: Option<Vec<Str>>, errs: &mut Errors) -> IpSet {
    ip_list(raw, "server.trusted_proxies", errs)
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    fn load(list: &str) -> Result<Config, Vec<ConfigError>> {
        Config::from_yaml_str_with_env(
            &format!(
                "server:\n  trusted_proxies: {list}\nbuckets:\n  - {{name: b, path_prefix: /b, \
                 s3: {{bucket: bb-b, region: us-east-1, anonymous: true}}}}\n"
            ),
            &|_| None,
        )
        .map_err(|e| e.0)
    }

    #[test]
    fn the_default_trusts_nobody() {
        let config = Config::from_yaml_str_with_env(
            "buckets:\n  - {name: b, path_prefix: /b, s3: {bucket: bb-b, region: us-east-1, \
             anonymous: true}}\n",
            &|_| None,
        )
        .unwrap();
        assert!(config.server.trusted_proxies.is_empty());
        assert!(load("[]").unwrap().server.trusted_proxies.is_empty());
    }

    #[test]
    fn addresses_and_ranges_of_both_families_load() {
        let trusted = load("[\"10.0.0.0/8\", \"::1/128\", 192.0.2.7, \"2001:db8::1\"]")
            .unwrap()
            .server
            .trusted_proxies;
        for ip in [
            "10.2.3.4",
            "::1",
            "192.0.2.7",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(trusted.contains(ip.parse().unwrap()), "{ip}");
        }
        assert!(!trusted.contains("192.0.2.8".parse().unwrap()));
    }

    #[test]
    fn bad_entries_and_shapes_name_their_path() {
        let errors = load("[10.0.0.0/8, \"10.0.0.0/8/8\", \"::1/200\"]").unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["server.trusted_proxies[1]", "server.trusted_proxies[2]"],
            "{errors:?}"
        );
        let errors = load("10.0.0.0/8").unwrap_err();
        assert_eq!(errors[0].path, "server.trusted_proxies", "{errors:?}");
    }
}
