//! The walk over the hops: which one is the client.

use std::net::IpAddr;

use http::HeaderMap;

use super::headers::{Hop, for_each_hop};
use crate::ip_filter::IpSet;

/// The client of a request from `peer` with `headers`, trusting the proxies
/// in `trusted` (see the module docs for the rules).
///
/// The result is always `peer` (canonical) or an address written in the
/// headers, and always `peer` when `peer` is not trusted.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &IpSet) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let mut walk = Walk::default();
    for_each_hop(headers, |hop| walk.step(hop, trusted));
    walk.finish(peer)
}

/// Walking from the right, the walk stops at the right-most hop that is not
/// a trusted address. The hops arrive left to right, so each such hop
/// replaces the previous stopping point.
#[derive(Debug, Default)]
struct Walk {
    /// The left-most hop, the answer when every hop is trusted.
    first: Option<IpAddr>,
    stop: Stop,
}

#[derive(Debug, Default)]
enum Stop {
    /// Every hop so far is a trusted address.
    #[default]
    None,
    /// The walk ends at this untrusted address (or, after an invalid hop,
    /// at the trusted one right of it).
    At(IpAddr),
    /// The walk ends at an invalid hop: the answer is the hop right of it,
    /// or the peer if none follows.
    RightOfInvalid,
}

impl Walk {
    fn step(&mut self, hop: Hop, trusted: &IpSet) {
        match hop {
            Hop::Invalid => self.stop = Stop::RightOfInvalid,
            Hop::Addr(ip) => {
                self.first.get_or_insert(ip);
                if matches!(self.stop, Stop::RightOfInvalid) || !trusted.contains(ip) {
                    self.stop = Stop::At(ip);
                }
            }
        }
    }

    fn finish(self, peer: IpAddr) -> IpAddr {
        match self.stop {
            Stop::At(ip) => ip,
            Stop::RightOfInvalid => peer,
            Stop::None => self.first.unwrap_or(peer),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};

    use super::*;
    use crate::ip_filter::parse_entry;

    fn trusted() -> IpSet {
        IpSet::new(
            ["127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48"]
                .iter()
                .map(|e| parse_entry(e).unwrap()),
        )
    }

    fn from(peer: &str, fields: &[(&str, &str)]) -> String {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        resolve(peer.parse().unwrap(), &headers, &trusted()).to_string()
    }

    const XFF: &str = "x-forwarded-for";

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        for header in [XFF, "x-real-ip", "forwarded"] {
            assert_eq!(from("192.0.2.1", &[(header, "for=1.1.1.1")]), "192.0.2.1");
            assert_eq!(from("192.0.2.1", &[(header, "1.1.1.1")]), "192.0.2.1");
        }
        assert_eq!(from("::ffff:192.0.2.1", &[(XFF, "1.1.1.1")]), "192.0.2.1");
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        assert_eq!(
            from("127.0.0.1", &[(XFF, "1.1.1.1, 203.0.113.5, 10.1.1.1")]),
            "203.0.113.5"
        );
        assert_eq!(
            from("127.0.0.1", &[(XFF, "1.1.1.1"), (XFF, "203.0.113.5")]),
            "203.0.113.5"
        );
        assert_eq!(
            from(
                "127.0.0.1",
                &[(
                    "forwarded",
                    "for=1.1.1.1, for=\"[2001:db8::5]:80\";proto=http, for=10.0.0.9"
                )]
            ),
            "2001:db8::5"
        );
        assert_eq!(
            from("127.0.0.1", &[("x-real-ip", "198.51.100.2")]),
            "198.51.100.2"
        );
        assert_eq!(
            from("::ffff:127.0.0.1", &[(XFF, "::ffff:198.51.100.3")]),
            "198.51.100.3"
        );
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_which_wins_over_x_real_ip() {
        let all = [
            ("x-real-ip", "3.3.3.3"),
            (XFF, "2.2.2.2"),
            ("forwarded", "for=1.1.1.1"),
        ];
        assert_eq!(from("127.0.0.1", &all), "1.1.1.1");
        assert_eq!(from("127.0.0.1", &all[..2]), "2.2.2.2");
        assert_eq!(from("127.0.0.1", &all[..1]), "3.3.3.3");
        assert_eq!(from("127.0.0.1", &[]), "127.0.0.1");
    }

    #[test]
    fn when_every_hop_is_trusted_the_left_most_is_the_client() {
        assert_eq!(
            from("127.0.0.1", &[(XFF, "10.0.0.1, 10.0.0.2")]),
            "10.0.0.1"
        );
        assert_eq!(from("127.0.0.1", &[(XFF, ", ,")]), "127.0.0.1");
    }

    #[test]
    fn an_invalid_hop_ends_the_walk_at_the_last_trusted_address() {
        assert_eq!(from("127.0.0.1", &[(XFF, "1.1.1.1, garbage")]), "127.0.0.1");
        assert_eq!(
            from("127.0.0.1", &[(XFF, "1.1.1.1, unknown, 10.0.0.7")]),
            "10.0.0.7"
        );
        assert_eq!(
            from("127.0.0.1", &[(XFF, "unknown, 10.0.0.7, 10.0.0.8")]),
            "10.0.0.7"
        );
        assert_eq!(
            from("127.0.0.1", &[(XFF, "unknown, 10.0.0.7, 8.8.8.8")]),
            "8.8.8.8"
        );
        assert_eq!(
            from("127.0.0.1", &[("forwarded", "for=_hidden")]),
            "127.0.0.1"
        );
        assert_eq!(
            from("127.0.0.1", &[("forwarded", "proto=https")]),
            "127.0.0.1"
        );
    }
}
