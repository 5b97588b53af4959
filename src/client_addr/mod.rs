//! The client's address, decided once per request.
//!
//! Rate limits, IP filters, logs and policies all read the [`ClientIp`]
//! extension rather than the TCP peer, so they agree on who the client is.
//!
//! The listener inserts the peer's address (IPv4-mapped IPv6 written as
//! IPv4). When `server.trusted_proxies` lists addresses, [`ClientAddrLayer`]
//! replaces it, once per request, with the address the proxies in front
//! report, but only when the peer itself is one of them: a client that is
//! not a trusted proxy can never choose its address by sending a header.
//!
//! From a trusted peer, the hops of the first of these present are used:
//! `Forwarded` (RFC 7239, the `for=` of each element), `X-Forwarded-For`,
//! `X-Real-IP` (every field of the header, in order). They are walked from
//! the right (the hop nearest to the proxy), skipping trusted proxies: the
//! first untrusted hop is the client; if every hop is trusted, the left-most
//! is. A hop that is not an address (`unknown`, an obfuscated `_name`,
//! garbage) ends the walk: the client is then the last trusted address
//! walked. A malformed header is never an error.
//!
//! The layer sits below the reload seam (at the top of the generation's
//! stack), so `trusted_proxies` changes on reload; with an empty list it is
//! not built and costs nothing. The resolved address is reported to the
//! access log through the request's log context.
//!
//! Layout: `headers.rs` parses the headers into hops and `resolve.rs` walks
//! them (pure functions, property-tested in `proptests.rs`); `config.rs`
//! validates `server.trusted_proxies`; `layer.rs`/`service.rs` are the layer.

pub mod config;
mod headers;
mod layer;
#[cfg(test)]
mod proptests;
mod resolve;
mod service;

pub use headers::{Hop, for_each_hop, parse_node};
pub use layer::ClientAddrLayer;
pub use resolve::resolve;
pub use service::ResolveClient;

use std::net::IpAddr;

use crate::access_log::ClientAddr;

/// The address the proxy treats as the client's: a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// The client of a request: the resolved [`ClientIp`], else the TCP peer
/// ([`ClientAddr`], in canonical form), else `None` (a proxy embedded and
/// called without either).
pub fn client_ip(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions.get::<ClientIp>().map(|c| c.0).or_else(|| {
        extensions
            .get::<ClientAddr>()
            .map(|a| a.0.ip().to_canonical())
    })
}
