//! The main listener's TLS (`server.https`): the certificate files read and
//! checked at validation ([`load`]), their `notAfter` ([`expiry`]), and the
//! settings in force for new connections, replaced on reload ([`state`]).
//!
//! The handshake runs in each connection's task under the first-request
//! deadline, never in the accept loop. ALPN offers `h2` and `http/1.1`.

mod expiry;
mod load;
mod state;

pub use load::{LoadedTls, MinTlsVersion};
pub(crate) use load::{TlsFiles, load};
pub use state::TLS_CERTIFICATE_EXPIRY;
pub(crate) use state::TlsState;
