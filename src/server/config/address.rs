//! Listen addresses: `host:port`, or an IP or host name plus a separate
//! `port:`. A host name is resolved once, at validation.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use crate::config::{Errors, U64};

/// A `port:` option: 0 to 65535.
pub(super) fn port(raw: Option<U64>, path: &str, errs: &mut Errors) -> Option<u16> {
    let U64(p) = raw?;
    match u16::try_from(p) {
        Ok(p) => Some(p),
        Err(_) => {
            errs.push(path, "must be a port number (0 to 65535)");
            None
        }
    }
}

/// What an `address` option holds.
#[derive(Debug, PartialEq, Eq)]
enum AddressSpec {
    /// `host:port`, already resolved.
    Full(SocketAddr),
    /// A bare IP address: the port comes from elsewhere.
    Ip(IpAddr),
    /// A bare host name: resolved once the port is known.
    Host(String),
}

const BAD_ADDRESS: &str = "not a valid address (expected host:port)";

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !s.starts_with(['-', '.'])
}

fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    (host, port).to_socket_addrs().ok()?.next()
}

/// Parses `host:port`, `ip`, `[ipv6]` or `host`; `Err` carries the message.
fn parse_address(s: &str) -> Result<AddressSpec, &'static str> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(AddressSpec::Full(addr));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(AddressSpec::Ip(ip));
    }
    if let Some(ip) = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|s| s.parse::<Ipv6Addr>().ok())
    {
        return Ok(AddressSpec::Ip(IpAddr::V6(ip)));
    }
    match s.rsplit_once(':') {
        Some((host, port)) => {
            let port: u16 = port.parse().map_err(|_| BAD_ADDRESS)?;
            if !is_host_name(host) {
                return Err(BAD_ADDRESS);
            }
            resolve(host, port)
                .map(AddressSpec::Full)
                .ok_or("not a valid address (expected host:port): the host name does not resolve")
        }
        None if is_host_name(s) => Ok(AddressSpec::Host(s.to_owned())),
        None => Err(BAD_ADDRESS),
    }
}

/// Combines an `address` option (either form) with an optional `port` option.
///
/// Returns `None` after recording an error.
pub(super) fn listen_address(
    address: Option<String>,
    port: Option<u16>,
    default: SocketAddr,
    address_path: &str,
    port_path: Option<&str>,
    errs: &mut Errors,
) -> Option<SocketAddr> {
    let Some(address) = address else {
        return Some(port.map_or(default, |p| SocketAddr::new(default.ip(), p)));
    };
    let spec = match parse_address(&address) {
        Ok(spec) => spec,
        Err(message) => {
            errs.push(address_path, message);
            return None;
        }
    };
    match (spec, port) {
        (AddressSpec::Full(addr), None) => Some(addr),
        (AddressSpec::Full(addr), Some(p)) if addr.port() == p => Some(addr),
        (AddressSpec::Full(_), Some(_)) => {
            errs.push(
                port_path.unwrap_or(address_path),
                format!("differs from the port given in {address_path}"),
            );
            None
        }
        (AddressSpec::Ip(ip), Some(p)) => Some(SocketAddr::new(ip, p)),
        (AddressSpec::Host(host), Some(p)) => match resolve(&host, p) {
            Some(addr) => Some(addr),
            None => {
                errs.push(
                    address_path,
                    "not a valid address (expected host:port): the host name does not resolve",
                );
                None
            }
        },
        (AddressSpec::Ip(_) | AddressSpec::Host(_), None) => {
            let message = match port_path {
                Some(port_path) => format!("has no port: write host:port or set {port_path}"),
                None => BAD_ADDRESS.to_owned(),
            };
            errs.push(address_path, message);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{assert_error, load, with_section};

    #[test]
    fn server_address_forms() {
        let host_port = load(&with_section("server:\n  address: \"127.0.0.1:8081\""), &[]).unwrap();
        assert_eq!(host_port.server.address, "127.0.0.1:8081".parse().unwrap());

        let split = load(
            &with_section("server:\n  address: \"127.0.0.1\"\n  port: 8081"),
            &[],
        )
        .unwrap();
        assert_eq!(split.server.address, "127.0.0.1:8081".parse().unwrap());

        let both_agree = load(
            &with_section("server:\n  address: \"127.0.0.1:8081\"\n  port: 8081"),
            &[],
        )
        .unwrap();
        assert_eq!(both_agree.server.address, "127.0.0.1:8081".parse().unwrap());

        let port_only = load(&with_section("server:\n  port: 8082"), &[]).unwrap();
        assert_eq!(port_only.server.address, "0.0.0.0:8082".parse().unwrap());

        let v6 = load(&with_section("server:\n  address: \"[::1]:8083\""), &[]).unwrap();
        assert_eq!(v6.server.address, "[::1]:8083".parse().unwrap());
        let v6 = load(
            &with_section("server:\n  address: \"::\"\n  port: 8083"),
            &[],
        )
        .unwrap();
        assert_eq!(v6.server.address, "[::]:8083".parse().unwrap());

        let named = load(&with_section("server:\n  address: \"localhost:8084\""), &[]).unwrap();
        assert_eq!(named.server.address.port(), 8084);
        assert!(named.server.address.ip().is_loopback());
        let named = load(
            &with_section("server:\n  address: localhost\n  port: 8085"),
            &[],
        )
        .unwrap();
        assert_eq!(named.server.address.port(), 8085);
    }

    #[test]
    fn server_address_errors() {
        assert_error(
            &with_section("server:\n  address: \"127.0.0.1:8081\"\n  port: 8080"),
            "server.port",
            "differs from the port given in server.address",
        );
        assert_error(
            &with_section("server:\n  address: \"127.0.0.1\""),
            "server.address",
            "has no port",
        );
        for bad in [
            "\"not an address!\"",
            "\"1.2.3.4:99999\"",
            "\":80\"",
            "\"\"",
        ] {
            assert_error(
                &with_section(&format!("server:\n  address: {bad}")),
                "server.address",
                "not a valid address (expected host:port)",
            );
        }
        assert_error(
            &with_section("server:\n  port: 70000"),
            "server.port",
            "port number",
        );
    }
}
