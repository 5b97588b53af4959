//! Property tests of the header parser and the resolver: whatever a client
//! sends, no panic; the client is the peer or an address written in the
//! headers; an untrusted peer is always the client; and on well-formed
//! `X-Forwarded-For` lists the forward-pass walk agrees with a plain
//! right-to-left walk written from the rules.
//!
//! `PROPTEST_CASES=1000000 cargo test --lib client_addr::proptests` for a
//! long run.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::{Hop, for_each_hop, resolve};
use crate::ip_filter::{IpSet, parse_entry};

const HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

fn trusted() -> IpSet {
    IpSet::new(
        ["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"]
            .iter()
            .map(|e| parse_entry(e).unwrap()),
    )
}

/// One element as proxies (or clients pretending) write them.
fn element() -> impl Strategy<Value = String> {
    let node = prop_oneof![
        address().prop_map(|ip| ip.to_string()),
        (address(), any::<u16>())
            .prop_map(|(ip, port)| std::net::SocketAddr::new(ip, port).to_string()),
        any::<[u8; 4]>().prop_map(|o| format!("::ffff:{}", std::net::Ipv4Addr::from(o))),
        Just("unknown".to_owned()),
        Just("_hidden".to_owned()),
        "[0-9a-f:.\\[\\]]{0,12}",
    ];
    (node, 0..4usize).prop_map(|(node, form)| match form {
        0 => node,
        1 => format!("for={node}"),
        2 => format!("for=\"{node}\";proto=https"),
        _ => format!("by=10.0.0.1;For=\"{node}\""),
    })
}

/// Any bytes a header value may hold (no CR, LF, NUL or other controls but tab).
fn value_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..120),
        "[0-9a-fA-F:.\\[\\]\"=,; _\\\\forFOunkw-]{0,120}".prop_map(String::into_bytes),
        prop::collection::vec(element(), 0..6).prop_map(|e| e.join(", ").into_bytes()),
    ]
    .prop_map(|bytes| {
        bytes
            .into_iter()
            .map(|b| {
                if (b < 0x20 && b != b'\t') || b == 0x7f {
                    b'x'
                } else {
                    b
                }
            })
            .collect()
    })
}

/// Up to four fields, each of one of the three headers.
fn headers() -> impl Strategy<Value = Vec<(usize, Vec<u8>)>> {
    prop::collection::vec((0..HEADERS.len(), value_bytes()), 0..4)
}

fn header_map(fields: &[(usize, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in fields {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(HeaderName::from_static(HEADERS[*name]), value);
        }
    }
    map
}

/// Addresses in and out of the trusted set, of both families.
fn address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        Just("127.0.0.1".parse().unwrap()),
        (0u32..=255).prop_map(|x| IpAddr::from([10, 0, 0, x as u8])),
        (0u32..=255).prop_map(|x| IpAddr::from([203, 0, 113, x as u8])),
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<u16>().prop_map(|x| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, x])),
        any::<[u16; 8]>().prop_map(IpAddr::from),
    ]
}

/// Addresses outside the trusted set (mapped rather than filtered, so long
/// runs do not hit proptest's limit on rejected cases).
fn untrusted_address() -> impl Strategy<Value = IpAddr> {
    let trusted = trusted();
    address().prop_map(move |ip| {
        if trusted.contains(ip) {
            IpAddr::from([192, 0, 2, 1])
        } else {
            ip
        }
    })
}

/// Whether some substring of some field parses to `ip` (in canonical form).
fn written_in(fields: &HeaderMap, ip: IpAddr) -> bool {
    fields.values().any(|value| {
        let bytes = value.as_bytes();
        (0..bytes.len()).any(|start| {
            (start + 2..=bytes.len().min(start + 46)).any(|end| {
                std::str::from_utf8(&bytes[start..end])
                    .ok()
                    .and_then(|s| s.parse::<IpAddr>().ok())
                    .is_some_and(|parsed| parsed.to_canonical() == ip)
            })
        })
    })
}

/// The rules, walked right to left over a list of hops (`None`: garbage).
fn walk_from_the_right(peer: IpAddr, hops: &[Option<IpAddr>], trusted: &IpSet) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let mut last_trusted = peer;
    for hop in hops.iter().rev() {
        match hop {
            None => return last_trusted,
            Some(ip) if !trusted.contains(*ip) => return *ip,
            Some(ip) => last_trusted = *ip,
        }
    }
    hops.first().copied().flatten().unwrap_or(peer)
}

proptest! {
    #[test]
    fn any_header_bytes_give_the_peer_or_a_written_address(
        peer in address(),
        fields in headers(),
    ) {
        let map = header_map(&fields);
        let client = resolve(peer, &map, &trusted());
        prop_assert!(
            client == peer.to_canonical() || written_in(&map, client),
            "{client} is neither the peer {peer} nor written in {map:?}"
        );
    }

    #[test]
    fn an_untrusted_peer_is_always_the_client(
        peer in untrusted_address(),
        fields in headers(),
    ) {
        prop_assert_eq!(resolve(peer, &header_map(&fields), &trusted()), peer.to_canonical());
    }

    #[test]
    fn the_walk_matches_the_rules_on_well_formed_lists(
        peer in address(),
        hops in prop::collection::vec(prop::option::weighted(0.85, address()), 0..8),
        split in 0usize..8,
    ) {
        let text = |hops: &[Option<IpAddr>]| {
            hops.iter()
                .map(|h| h.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // The list split over two fields at `split` (both fields count, in order).
        let (left, right) = hops.split_at(split.min(hops.len()));
        let mut map = HeaderMap::new();
        for part in [left, right] {
            if !part.is_empty() {
                map.append("x-forwarded-for", HeaderValue::from_str(&text(part)).unwrap());
            }
        }
        let mut parsed = Vec::new();
        for_each_hop(&map, |hop| parsed.push(match hop {
            Hop::Addr(ip) => Some(ip),
            Hop::Invalid => None,
        }));
        let canonical: Vec<Option<IpAddr>> = hops.iter().map(|h| h.map(|ip| ip.to_canonical())).collect();
        prop_assert_eq!(&parsed, &canonical);
        let trusted = trusted();
        prop_assert_eq!(
            resolve(peer, &map, &trusted),
            walk_from_the_right(peer.to_canonical(), &canonical, &trusted)
        );
    }
}
