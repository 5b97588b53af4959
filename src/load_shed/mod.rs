//! Load shedding: beyond `server.max_concurrent_requests` requests in
//! flight, a request is answered at once with 503 and `Retry-After: 1`
//! instead of queueing (the original Yatagarasu's key; 0 = unlimited).
//!
//! A request holds its permit until its response *body* has been sent (a
//! long download counts for its whole length), which `tower::limit` does
//! not do: the permit rides in the access log's [`LogContext`], which lives
//! as long as the body guard. HTTP/2 streams count one by one, so many
//! streams on few connections are bounded too. Health and readiness
//! probes are never shed, so an overloaded instance is not restarted for it.
//!
//! [`LogContext`]: crate::access_log::LogContext

mod layer;
mod service;

pub use layer::LoadShedLayer;
pub use service::LoadShed;
