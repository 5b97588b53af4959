//! What building one configuration generation needs besides the layers:
//! the error a build reports, and the staging area that keeps a build free
//! of side effects until its generation goes live.
//!
//! A build only *stages* changes to the state that outlives reloads (new
//! connection pools, new JWKS key sets and their refresh tasks, the readiness
//! key-status report, cache purges). [`Staged::commit`] applies them after the
//! new stack is swapped in, so a build that fails half-way leaves no trace.

mod error;
mod staging;

pub use error::BuildError;
pub(crate) use staging::Pools;
pub use staging::{Staged, Staging};
