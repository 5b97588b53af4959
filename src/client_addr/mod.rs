//! The client's address, decided once per request.
//!
//! Rate limits, IP filters, logs and policies all read the [`ClientIp`]
//! extension rather than the TCP peer, so they agree on who the client is.

use std::net::IpAddr;

/// The address the proxy treats as the client's: a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);
