//! `admin:`: the admin API listener, its token and JWT settings, and the
//! host names it answers to.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::RawAdmin;
use super::address::listen_address;
use super::model::AdminConfig;
use crate::auth::config::admin_jwt;
use crate::config::{Bool, Errors, Secret, Str};

/// Where the admin API listens by default: loopback only.
const DEFAULT_ADMIN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9091);

/// Validates the `admin:` section.
pub(crate) fn admin(raw: RawAdmin, errs: &mut Errors) -> Option<AdminConfig> {
    let before = errs.count();
    let enabled = raw.enabled.is_none_or(|Bool(b)| b);
    let address = listen_address(
        raw.address.map(|s| s.0),
        None,
        DEFAULT_ADMIN,
        "admin.address",
        None,
        errs,
    );
    let token = match raw.token {
        Some(Str(t)) if t.is_empty() => {
            errs.push("admin.token", "is empty: set a token or remove the key");
            None
        }
        Some(Str(t)) => Some(Secret::new(t)),
        None => None,
    };
    let jwt = admin_jwt(raw.jwt, "admin.jwt", errs);
    let allowed_hosts = admin_allowed_hosts(raw.allowed_hosts.unwrap_or_default(), errs);
    match jwt {
        Some(jwt) if errs.count() == before => Some(AdminConfig {
            address: if enabled { address } else { None },
            token,
            jwt,
            allowed_hosts,
        }),
        _ => None,
    }
}

/// `admin.allowed_hosts`: each entry a host name or an IP address (IPv6 with
/// or without brackets), without scheme, port or path; names are lowercased
/// and addresses written in canonical form.
fn admin_allowed_hosts(raw: Vec<Str>, errs: &mut Errors) -> Vec<String> {
    let mut hosts = Vec::with_capacity(raw.len());
    for (i, Str(entry)) in raw.into_iter().enumerate() {
        let entry = entry.trim();
        let unbracketed = entry
            .strip_prefix('[')
            .and_then(|e| e.strip_suffix(']'))
            .unwrap_or(entry);
        if let Ok(ip) = unbracketed.parse::<std::net::IpAddr>() {
            hosts.push(ip.to_string());
        } else if is_dns_name(entry) {
            hosts.push(entry.to_ascii_lowercase());
        } else {
            errs.push(
                format!("admin.allowed_hosts[{i}]"),
                "not a host name or IP address (no scheme, port, path or wildcard)",
            );
        }
    }
    hosts
}

/// A DNS name: dot-separated labels of 1–63 letters, digits, `-` or `_`, not
/// starting or ending with `-`, 253 characters at most.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{assert_error, load, one_error, with_section};

    #[test]
    fn admin_section() {
        let c = load(
            &with_section(
                "admin:\n  enabled: true\n  address: \"127.0.0.1:9999\"\n  token: \"${TOK}\"",
            ),
            &[("TOK", "t0ken")],
        )
        .unwrap();
        assert_eq!(c.admin.address, Some("127.0.0.1:9999".parse().unwrap()));
        assert_eq!(c.admin.token.as_ref().unwrap().expose(), "t0ken");

        let c = load(&with_section("admin:\n  enabled: false"), &[]).unwrap();
        assert_eq!(c.admin.address, None);

        let e = one_error(&with_section("admin:\n  token: \"${TOK}\""), &[("TOK", "")]);
        assert_eq!(e.path, "admin.token");
        assert!(e.message.contains("set a token or remove the key"), "{e}");

        assert_error(
            &with_section("admin:\n  address: \"127.0.0.1\""),
            "admin.address",
            "not a valid address (expected host:port)",
        );
    }

    #[test]
    fn admin_allowed_hosts() {
        let c = load(&with_section("admin:\n  address: \"0.0.0.0:9091\""), &[]).unwrap();
        assert!(c.admin.allowed_hosts.is_empty());
        let c = load(
            &with_section(
                "admin:\n  allowed_hosts: [\"Admin.Internal\", \"${IP}\", \"[FD00::0:7]\", \"fd00::8\"]",
            ),
            &[("IP", "192.168.1.20")],
        )
        .unwrap();
        assert_eq!(
            c.admin.allowed_hosts,
            ["admin.internal", "192.168.1.20", "fd00::7", "fd00::8"]
        );
        for bad in [
            "\"\"",
            "\"admin.internal:9091\"",
            "\"http://admin.internal\"",
            "\"*.internal\"",
            "\"admin..internal\"",
            "\"-admin.internal\"",
            "\"admin/x\"",
        ] {
            assert_error(
                &with_section(&format!("admin:\n  allowed_hosts: [{bad}]")),
                "admin.allowed_hosts[0]",
                "not a host name or IP address",
            );
        }
    }
}
