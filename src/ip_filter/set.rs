//! A set of IP addresses and CIDR ranges, looked up in O(log n).
//!
//! The entries are turned into disjoint, sorted ranges of integers once, when
//! the configuration is validated (overlapping and adjacent entries merged),
//! so a lookup is one binary search whatever the number of entries: a
//! hundred CIDRs cost about seven comparisons.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// IPv4 and IPv6 addresses and ranges (`10.0.0.0/8`, `192.0.2.1`, `2001:db8::/32`).
///
/// IPv4-mapped IPv6 entries (`::ffff:10.0.0.0/104`) are stored as IPv4, and
/// addresses are looked up in their canonical form, so `::ffff:10.1.2.3`
/// and `10.1.2.3` are the same address here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSet {
    /// Inclusive, sorted, disjoint and non-adjacent ranges.
    v4: Arc<[(u32, u32)]>,
    /// Same, for IPv6.
    v6: Arc<[(u128, u128)]>,
}

/// Why an entry of an address list was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryError {
    /// Neither an address nor `address/prefix`.
    NotAnAddress,
    /// `address/prefix` with a prefix beyond 32 (IPv4) or 128 (IPv6).
    PrefixTooLong,
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotAnAddress => {
                "not an IP address or CIDR range (such as 192.0.2.1, 10.0.0.0/8 or 2001:db8::/32)"
            }
            Self::PrefixTooLong => "prefix length beyond 32 (IPv4) or 128 (IPv6)",
        })
    }
}

impl std::error::Error for EntryError {}

/// Parses one entry: an address (a single-address range) or `address/prefix`
/// (host bits are ignored: `192.0.2.7/24` is `192.0.2.0/24`).
pub fn parse_entry(text: &str) -> Result<IpNet, EntryError> {
    let text = text.trim();
    let net = match text.split_once('/') {
        None => IpNet::from(
            text.parse::<IpAddr>()
                .map_err(|_| EntryError::NotAnAddress)?,
        ),
        Some((address, prefix)) => {
            let address: IpAddr = address.parse().map_err(|_| EntryError::NotAnAddress)?;
            let prefix: u8 = prefix.parse().map_err(|_| EntryError::NotAnAddress)?;
            IpNet::new(address, prefix).map_err(|_| EntryError::PrefixTooLong)?
        }
    };
    Ok(canonical(net.trunc()))
}

/// An IPv4-mapped IPv6 range as the IPv4 range it maps.
fn canonical(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        other => other,
    }
}

impl IpSet {
    /// The set covering `nets`.
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in nets {
            match canonical(net) {
                IpNet::V4(n) => v4.push(range_v4(n)),
                IpNet::V6(n) => v6.push(range_v6(n)),
            }
        }
        Self {
            v4: merge(v4).into(),
            v6: merge(v6).into(),
        }
    }

    /// Whether the set holds no address.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Disjoint ranges the set is stored as (merged entries count once).
    pub fn ranges(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether `ip` (in any form, IPv4-mapped included) is in the set.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(v4) => find(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => find(&self.v6, u128::from(v6)),
        }
    }
}

fn range_v4(net: Ipv4Net) -> (u32, u32) {
    (u32::from(net.network()), u32::from(net.broadcast()))
}

fn range_v6(net: Ipv6Net) -> (u128, u128) {
    (u128::from(net.network()), u128::from(net.broadcast()))
}

/// Sorts inclusive ranges and merges those that overlap or touch.
fn merge<T: Copy + Ord + num_like::Successor>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if last.1.successor().is_none_or(|next| start <= next) => {
                last.1 = last.1.max(end);
            }
            _ => out.push((start, end)),
        }
    }
    out.shrink_to_fit();
    out
}

/// Whether `x` is in one of the sorted, disjoint `ranges`.
fn find<T: Copy + Ord>(ranges: &[(T, T)], x: T) -> bool {
    let after = ranges.partition_point(|&(start, _)| start <= x);
    after > 0 && ranges[after - 1].1 >= x
}

/// The next integer, for merging ranges that touch.
mod num_like {
    pub(super) trait Successor: Sized {
        fn successor(self) -> Option<Self>;
    }
    impl Successor for u32 {
        fn successor(self) -> Option<Self> {
            self.checked_add(1)
        }
    }
    impl Successor for u128 {
        fn successor(self) -> Option<Self> {
            self.checked_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[&str]) -> IpSet {
        IpSet::new(entries.iter().map(|e| parse_entry(e).unwrap()))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn single_addresses_and_ranges_of_both_families() {
        let s = set(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"]);
        for inside in [
            "10.0.0.0",
            "10.255.255.255",
            "192.0.2.7",
            "2001:db8:1::5",
            "::1",
        ] {
            assert!(s.contains(ip(inside)), "{inside}");
        }
        for outside in [
            "9.255.255.255",
            "11.0.0.0",
            "192.0.2.8",
            "2001:db9::",
            "::2",
        ] {
            assert!(!s.contains(ip(outside)), "{outside}");
        }
    }

    #[test]
    fn ipv4_mapped_addresses_and_entries_are_ipv4() {
        let s = set(&["::ffff:10.0.0.0/104"]);
        assert!(s.contains(ip("10.1.2.3")));
        assert!(s.contains(ip("::ffff:10.1.2.3")));
        assert!(set(&["10.0.0.0/8"]).contains(ip("::ffff:10.9.9.9")));
    }

    #[test]
    fn overlapping_and_adjacent_entries_merge() {
        let s = set(&["10.0.0.0/9", "10.128.0.0/9", "10.1.0.0/16", "0.0.0.0/0"]);
        assert_eq!(s.ranges(), 1);
        assert!(s.contains(ip("255.255.255.255")));
        let s = set(&["::/0", "2001:db8::1"]);
        assert_eq!(s.ranges(), 1);
        assert!(s.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!s.contains(ip("10.0.0.1")), "IPv6 ranges never hold IPv4");
    }

    #[test]
    fn host_bits_are_ignored_and_bad_entries_refused() {
        assert_eq!(
            parse_entry(" 192.0.2.7/24 ").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(parse_entry("10.0.0.0/33"), Err(EntryError::PrefixTooLong));
        assert_eq!(parse_entry("::/129"), Err(EntryError::PrefixTooLong));
        for bad in [
            "",
            "unknown",
            "10.0.0.0/",
            "10.0.0/8",
            "10.0.0.0/-1",
            "[::1]",
            "1.2.3.4:80",
        ] {
            assert_eq!(parse_entry(bad), Err(EntryError::NotAnAddress), "{bad}");
        }
    }

    #[test]
    fn a_hundred_ranges_are_searched_not_scanned() {
        let entries: Vec<String> = (0..100).map(|i| format!("10.{i}.0.0/16")).collect();
        let s = IpSet::new(entries.iter().map(|e| parse_entry(e).unwrap()));
        // Adjacent /16s merge into one range.
        assert_eq!(s.ranges(), 1);
        let spread: Vec<String> = (0..100).map(|i| format!("{}.0.0.0/16", i + 1)).collect();
        let s = IpSet::new(spread.iter().map(|e| parse_entry(e).unwrap()));
        assert_eq!(s.ranges(), 100);
        assert!(s.contains(ip("50.0.9.9")));
        assert!(!s.contains(ip("50.1.0.0")));
        assert!(!s.is_empty());
        assert!(IpSet::default().is_empty());
    }
}
