//! The one point where errors (and panics) become HTTP answers.
//!
//! Inner layers return typed [`crate::error::ProxyError`]s; this layer logs
//! each with its cause at a level that fits its source, renders the body
//! with the request id (JSON, or S3's XML for S3 SDK clients: see
//! [`crate::error::ErrorFormat`]), and turns a panic into a 500, so the service it
//! exposes has `Error = Infallible` as hyper and axum want.

mod layer;
mod service;

pub use layer::RescueLayer;
pub use service::Rescue;
pub(crate) use service::render;
