//! Which requests may reach the admin API at all, checked before credentials.
//!
//! The admin API is for operators' tools (curl, scripts, `kubectl
//! port-forward`), never for browsers. Without this guard a web page the
//! operator visits could `POST` a form to `http://127.0.0.1:9091/admin/reload`
//! (a "simple" cross-origin request needs no CORS preflight), or point its own
//! hostname at 127.0.0.1 (DNS rebinding) and then call and read the API as if
//! it were same-origin. Three rules close both, with or without an admin token:
//!
//! - a request carrying `Origin` is refused: browsers send it on every
//!   cross-origin `fetch` and on every `POST`; command-line clients do not;
//! - the `Host` header (and the authority of an absolute or HTTP/2 URI) must
//!   name this listener: `localhost`, a loopback IP, the IP the listener is
//!   bound to, or a name listed in `admin.allowed_hosts`; any port is
//!   accepted, since port mappings change it; a rebinding page arrives with
//!   its own name;
//! - a method other than `GET` and `HEAD` must carry the
//!   [`ADMIN_REQUEST_HEADER`] header (any value): a page cannot add a custom
//!   header without a preflight, and an HTML form cannot add one at all.

use std::net::IpAddr;

use http::{HeaderMap, Method, Uri, header};

/// The header state-changing admin calls must carry (`X-Yatagarasu-Admin: 1`).
pub const ADMIN_REQUEST_HEADER: &str = "x-yatagarasu-admin";

/// Why an admin request was refused before its credentials were looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRefusal {
    /// The request carries `Origin`: it comes from a browser.
    BrowserOrigin,
    /// `Host` (or the URI authority) is missing or names another host.
    ForeignHost,
    /// A state-changing method without [`ADMIN_REQUEST_HEADER`].
    MissingAdminHeader,
}

impl AdminRefusal {
    /// The explanation sent to the client in the JSON error body.
    pub fn message(self) -> &'static str {
        match self {
            Self::BrowserOrigin => {
                "admin requests with an Origin header (from a browser) are refused"
            }
            Self::ForeignHost => {
                "the Host header does not name this admin listener (see admin.allowed_hosts)"
            }
            Self::MissingAdminHeader => {
                "POST, PUT and DELETE admin requests must carry the header X-Yatagarasu-Admin: 1"
            }
        }
    }

    /// A short tag for the log line.
    pub fn reason(self) -> &'static str {
        match self {
            Self::BrowserOrigin => "origin header",
            Self::ForeignHost => "foreign host",
            Self::MissingAdminHeader => "missing admin header",
        }
    }
}

/// What the guard knows about the admin listener.
#[derive(Debug, Clone, Copy)]
pub struct AdminListener<'a> {
    /// The IP the listener is bound to (`0.0.0.0`/`::` add nothing beyond loopback).
    pub bound: IpAddr,
    /// `admin.allowed_hosts`: lowercase names and canonical IP addresses.
    pub allowed_hosts: &'a [String],
}

/// Applies the three rules of the module doc to a request's head.
pub fn check(
    listener: &AdminListener<'_>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), AdminRefusal> {
    if headers.contains_key(header::ORIGIN) {
        return Err(AdminRefusal::BrowserOrigin);
    }
    let mut named = false;
    if let Some(authority) = uri.authority() {
        named = true;
        if !listener.accepts(authority.as_str()) {
            return Err(AdminRefusal::ForeignHost);
        }
    }
    for host in headers.get_all(header::HOST) {
        named = true;
        if !host.to_str().is_ok_and(|host| listener.accepts(host)) {
            return Err(AdminRefusal::ForeignHost);
        }
    }
    if !named {
        return Err(AdminRefusal::ForeignHost);
    }
    if !matches!(*method, Method::GET | Method::HEAD) && !headers.contains_key(ADMIN_REQUEST_HEADER)
    {
        return Err(AdminRefusal::MissingAdminHeader);
    }
    Ok(())
}

impl AdminListener<'_> {
    /// Whether `authority` (`host[:port]`, no user info) names this listener.
    fn accepts(&self, authority: &str) -> bool {
        let Some(host) = host_of(authority) else {
            return false;
        };
        if host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        match parse_ip(host) {
            Some(ip) => {
                ip.is_loopback()
                    || (ip == self.bound && !ip.is_unspecified())
                    || self
                        .allowed_hosts
                        .iter()
                        .any(|allowed| allowed.parse::<IpAddr>() == Ok(ip))
            }
            None => self
                .allowed_hosts
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(host)),
        }
    }
}

/// The host of `host[:port]` (`[v6]` kept bracketed); `None` when malformed.
fn host_of(authority: &str) -> Option<&str> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')? + 1;
        let port = authority[end..].strip_prefix(':');
        if port.is_none() && end != authority.len() {
            return None;
        }
        (&authority[..end], port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    (!host.is_empty() && port_ok).then_some(host)
}

/// An IP literal as it appears in a Host header (`1.2.3.4`, `[::1]`).
fn parse_ip(host: &str) -> Option<IpAddr> {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn run(
        bound: &str,
        allowed: &[&str],
        method: Method,
        headers: &[(&str, &str)],
    ) -> Result<(), AdminRefusal> {
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        let listener = AdminListener {
            bound: bound.parse().unwrap(),
            allowed_hosts: &allowed,
        };
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        check(&listener, &method, &Uri::from_static("/admin/status"), &map)
    }

    fn host(bound: &str, allowed: &[&str], host: &str) -> Result<(), AdminRefusal> {
        run(bound, allowed, Method::GET, &[("host", host)])
    }

    #[test]
    fn loopback_names_and_the_bound_address_are_accepted() {
        for ok in [
            "localhost",
            "LocalHost:9091",
            "127.0.0.1",
            "127.0.0.1:19091",
            "[::1]",
            "[::1]:9091",
            "10.0.0.5:9091",
        ] {
            assert_eq!(host("10.0.0.5", &[], ok), Ok(()), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:9091",
            "localhost.evil.example",
            "10.0.0.6:9091",
            "0.0.0.0:9091",
            "localhost:",
            "localhost:x",
            "localhost:9091:1",
            "[::1]x",
            "",
            "user@localhost",
        ] {
            assert_eq!(
                host("10.0.0.5", &[], refused),
                Err(AdminRefusal::ForeignHost),
                "{refused}"
            );
        }
        // An unspecified bind address is not itself a name of the listener.
        assert_eq!(
            host("0.0.0.0", &[], "0.0.0.0:9091"),
            Err(AdminRefusal::ForeignHost)
        );
        assert_eq!(host("0.0.0.0", &[], "localhost:9091"), Ok(()));
    }

    #[test]
    fn allowed_hosts_add_names_and_addresses() {
        let allowed = ["admin.internal", "192.168.1.20", "fd00::7"];
        assert_eq!(host("0.0.0.0", &allowed, "Admin.Internal:9091"), Ok(()));
        assert_eq!(host("0.0.0.0", &allowed, "192.168.1.20:9091"), Ok(()));
        assert_eq!(host("0.0.0.0", &allowed, "[fd00:0::7]:9091"), Ok(()));
        assert_eq!(
            host("0.0.0.0", &allowed, "other.internal"),
            Err(AdminRefusal::ForeignHost)
        );
    }

    #[test]
    fn browsers_and_simple_requests_are_refused() {
        let local = [("host", "127.0.0.1:9091")];
        assert_eq!(
            run(
                "127.0.0.1",
                &[],
                Method::GET,
                &[local[0], ("origin", "http://127.0.0.1:9091")]
            ),
            Err(AdminRefusal::BrowserOrigin)
        );
        assert_eq!(
            run(
                "127.0.0.1",
                &[],
                Method::POST,
                &[local[0], ("origin", "null"), (ADMIN_REQUEST_HEADER, "1")]
            ),
            Err(AdminRefusal::BrowserOrigin)
        );
        assert_eq!(
            run(
                "127.0.0.1",
                &[],
                Method::POST,
                &[
                    local[0],
                    ("content-type", "application/x-www-form-urlencoded")
                ]
            ),
            Err(AdminRefusal::MissingAdminHeader)
        );
        assert_eq!(
            run("127.0.0.1", &[], Method::DELETE, &local),
            Err(AdminRefusal::MissingAdminHeader)
        );
        assert_eq!(
            run(
                "127.0.0.1",
                &[],
                Method::POST,
                &[local[0], ("X-Yatagarasu-Admin", "1")]
            ),
            Ok(())
        );
        assert_eq!(run("127.0.0.1", &[], Method::GET, &local), Ok(()));
        // No Host at all, or a second one naming another host.
        assert_eq!(
            run("127.0.0.1", &[], Method::GET, &[]),
            Err(AdminRefusal::ForeignHost)
        );
        assert_eq!(
            run(
                "127.0.0.1",
                &[],
                Method::GET,
                &[local[0], ("host", "evil.example")]
            ),
            Err(AdminRefusal::ForeignHost)
        );
    }

    #[test]
    fn an_absolute_uri_must_name_the_listener_too() {
        let listener = AdminListener {
            bound: "127.0.0.1".parse().unwrap(),
            allowed_hosts: &[],
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9091"));
        let uri = Uri::from_static("http://evil.example:9091/admin/status");
        assert_eq!(
            check(&listener, &Method::GET, &uri, &headers),
            Err(AdminRefusal::ForeignHost)
        );
        let uri = Uri::from_static("http://localhost:9091/admin/status");
        assert_eq!(
            check(&listener, &Method::GET, &uri, &HeaderMap::new()),
            Ok(())
        );
    }
}
