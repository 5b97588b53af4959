//! Logging and metrics setup, and the names of every metric the proxy emits.

pub mod config;
pub mod logging;
pub mod metrics;
pub mod process;
