//! `Forwarded`, `X-Forwarded-For` and `X-Real-IP` parsed into hops, left to
//! right, without allocating. Pure functions over the header bytes: any
//! input gives hops (maybe [`Hop::Invalid`]), never an error or a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::HeaderMap;
use http::header::{FORWARDED, HeaderName};

/// `X-Forwarded-For` (de facto standard).
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Real-IP` (nginx's `real_ip` module).
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// One hop a proxy reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// An address (IPv4-mapped IPv6 written as IPv4); a port is dropped.
    Addr(IpAddr),
    /// Not an address: `unknown`, an obfuscated `_name`, a `Forwarded`
    /// element without `for=`, or garbage.
    Invalid,
}

/// Calls `visit` with every hop, left (farthest) to right (nearest), of the
/// first header present among `Forwarded`, `X-Forwarded-For`, `X-Real-IP`.
/// Every field of that header counts, in order.
pub fn for_each_hop(headers: &HeaderMap, mut visit: impl FnMut(Hop)) {
    if headers.contains_key(FORWARDED) {
        for field in headers.get_all(FORWARDED) {
            forwarded(field.as_bytes(), &mut visit);
        }
    } else if headers.contains_key(X_FORWARDED_FOR) {
        for field in headers.get_all(X_FORWARDED_FOR) {
            for element in field.as_bytes().split(|&b| b == b',') {
                let element = trim(element);
                if !element.is_empty() {
                    visit(parse_node(element));
                }
            }
        }
    } else {
        for field in headers.get_all(X_REAL_IP) {
            visit(parse_node(trim(field.as_bytes())));
        }
    }
}

/// The hops of one `Forwarded` field: the `for=` of each element (RFC 7239).
fn forwarded(field: &[u8], visit: &mut impl FnMut(Hop)) {
    for element in split_unquoted(field, b',') {
        if !trim(element).is_empty() {
            visit(element_for(element));
        }
    }
}

/// The `for=` node of one element; `Invalid` when it has none, has two, or
/// a parameter is malformed.
fn element_for(element: &[u8]) -> Hop {
    let mut node = None;
    for pair in split_unquoted(element, b';') {
        let pair = trim(pair);
        if pair.is_empty() {
            continue;
        }
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            return Hop::Invalid;
        };
        let (name, value) = (trim(&pair[..eq]), trim(&pair[eq + 1..]));
        if name.eq_ignore_ascii_case(b"for") {
            if node.is_some() {
                return Hop::Invalid;
            }
            node = Some(value);
        }
    }
    match node.and_then(unquote) {
        Some(value) => parse_node(value),
        None => Hop::Invalid,
    }
}

/// A token, or a quoted string without escapes (an address never needs one).
fn unquote(value: &[u8]) -> Option<&[u8]> {
    match value {
        [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') && !inner.contains(&b'"') => {
            Some(inner)
        }
        [b'"', ..] => None,
        token => Some(token),
    }
}

/// One node as written in any of the three headers: `192.0.2.1`,
/// `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:8080`
/// (a port, digits or an obfuscated `_name`, is dropped).
pub fn parse_node(node: &[u8]) -> Hop {
    let Ok(text) = std::str::from_utf8(node) else {
        return Hop::Invalid;
    };
    // The form decides the parser: `[v6]…`, `v6` (two colons or more),
    // `v4:port` (one), `v4` (none).
    let ip = if let Some(rest) = text.strip_prefix('[') {
        rest.split_once(']').and_then(|(v6, port)| {
            let port_ok = port.is_empty() || port.strip_prefix(':').is_some_and(is_port);
            port_ok
                .then(|| v6.parse::<Ipv6Addr>().ok())
                .flatten()
                .map(IpAddr::V6)
        })
    } else {
        match text.bytes().filter(|&b| b == b':').count() {
            0 => text.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            1 => text
                .split_once(':')
                .filter(|(_, port)| is_port(port))
                .and_then(|(v4, _)| v4.parse::<Ipv4Addr>().ok())
                .map(IpAddr::V4),
            _ => text.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        }
    };
    ip.map_or(Hop::Invalid, |ip| Hop::Addr(ip.to_canonical()))
}

/// RFC 7239 `node-port`: up to five digits, or `_` and obfuscation characters.
fn is_port(port: &str) -> bool {
    let digits = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    let obfuscated = port.len() > 1
        && port.starts_with('_')
        && port
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    digits || obfuscated
}

/// Optional whitespace (space, tab) removed at both ends.
fn trim(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Splits on `separator` outside quoted strings (a `\` escapes the next
/// byte inside them); an unterminated quote runs to the end.
fn split_unquoted(bytes: &[u8], separator: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(bytes);
    std::iter::from_fn(move || {
        let input = rest?;
        let mut from = 0;
        while let Some(at) = input[from..]
            .iter()
            .position(|&b| b == separator || b == b'"')
        {
            let at = from + at;
            if input[at] == separator {
                rest = Some(&input[at + 1..]);
                return Some(&input[..at]);
            }
            from = after_quoted(input, at + 1);
        }
        rest = None;
        Some(input)
    })
}

/// The index after the quoted string whose content starts at `from` (the
/// end of `input` when it is unterminated).
fn after_quoted(input: &[u8], mut from: usize) -> usize {
    while let Some(&b) = input.get(from) {
        match b {
            b'\\' => from += 2,
            b'"' => return from + 1,
            _ => from += 1,
        }
    }
    input.len()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn hops(fields: &[(&str, &[u8])]) -> Vec<Hop> {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let mut out = Vec::new();
        for_each_hop(&headers, |hop| out.push(hop));
        out
    }

    fn a(ip: &str) -> Hop {
        Hop::Addr(ip.parse().unwrap())
    }

    #[test]
    fn nodes_with_and_without_ports() {
        for (node, ip) in [
            ("192.0.2.1", "192.0.2.1"),
            ("192.0.2.1:8080", "192.0.2.1"),
            ("192.0.2.1:_gw", "192.0.2.1"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:4711", "2001:db8::1"),
            ("::ffff:192.0.2.9", "192.0.2.9"),
            ("[::ffff:192.0.2.9]:1", "192.0.2.9"),
        ] {
            assert_eq!(parse_node(node.as_bytes()), a(ip), "{node}");
        }
        for bad in [
            "",
            "unknown",
            "_hidden",
            "192.0.2",
            "192.0.2.1:",
            "192.0.2.1:123456",
            "[2001:db8::1",
            "[192.0.2.1]",
            "[2001:db8::1]x",
            "2001:db8::1:_x:",
            "1.2.3.4 5",
        ] {
            assert_eq!(parse_node(bad.as_bytes()), Hop::Invalid, "{bad:?}");
        }
        assert_eq!(parse_node(b"\xff\xfe"), Hop::Invalid);
    }

    #[test]
    fn forwarded_elements_and_fields_in_order() {
        assert_eq!(
            hops(&[
                (
                    "forwarded",
                    b"for=192.0.2.43, For=\"[2001:db8:cafe::17]:4711\""
                ),
                (
                    "forwarded",
                    b"proto=https;for=198.51.100.17;by=203.0.113.60"
                ),
                ("forwarded", b"for=unknown, for=\"_hidden\" ,by=1.2.3.4"),
                ("x-forwarded-for", b"10.0.0.1"),
            ]),
            [
                a("192.0.2.43"),
                a("2001:db8:cafe::17"),
                a("198.51.100.17"),
                Hop::Invalid,
                Hop::Invalid,
                Hop::Invalid,
            ]
        );
    }

    #[test]
    fn forwarded_quoting_and_malformed_parameters() {
        assert_eq!(
            hops(&[("forwarded", b"for=\"1.2.3.4\";by=\"a,b;c\", for=5.6.7.8")]),
            [a("1.2.3.4"), a("5.6.7.8")]
        );
        for bad in [
            &b"for=1.2.3.4;for=5.6.7.8"[..],
            b"for",
            b"for=\"1.2.3.4",
            b"for=\"1.2.\\3.4\"",
            b"for=\"\"",
            b"for=",
            b"garbage",
        ] {
            assert_eq!(hops(&[("forwarded", bad)]), [Hop::Invalid], "{bad:?}");
        }
        assert_eq!(hops(&[("forwarded", b" , ,")]), []);
    }

    #[test]
    fn x_forwarded_for_then_x_real_ip() {
        assert_eq!(
            hops(&[
                ("x-forwarded-for", b"203.0.113.7, unknown,,  10.0.0.2 "),
                ("x-forwarded-for", b"[2001:db8::2]:443"),
                ("x-real-ip", b"192.0.2.200"),
            ]),
            [
                a("203.0.113.7"),
                Hop::Invalid,
                a("10.0.0.2"),
                a("2001:db8::2")
            ]
        );
        assert_eq!(hops(&[("x-real-ip", b" 192.0.2.200 ")]), [a("192.0.2.200")]);
        assert_eq!(hops(&[("x-real-ip", b"1.2.3.4, 5.6.7.8")]), [Hop::Invalid]);
        assert_eq!(hops(&[]), []);
    }
}
