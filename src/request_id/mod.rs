//! Request ids: keep a sane client `X-Request-ID`, or mint a UUID v4.
//!
//! The id is inserted as a [`RequestId`] extension, returned on every response
//! and recorded on a `tracing` span that wraps the whole request, so every log
//! line of the request carries it.

mod layer;
mod service;

pub use layer::RequestIdLayer;
pub use service::{RequestIdService, ResponseFuture};

use std::sync::Arc;

use http::HeaderName;

/// The header that carries the request id in both directions.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied id that is kept.
const MAX_LEN: usize = 128;

/// The id of one request, cheap to clone into logs and error bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// Accepts a client-supplied id when it is 1..=128 visible ASCII characters.
    pub fn parse(value: &str) -> Option<Self> {
        let sane = !value.is_empty()
            && value.len() <= MAX_LEN
            && value.bytes().all(|b| b.is_ascii_graphic());
        sane.then(|| Self(Arc::from(value)))
    }

    /// A fresh random (v4) id.
    pub fn generate() -> Self {
        let mut buf = uuid::Uuid::encode_buffer();
        Self(Arc::from(
            &*uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf),
        ))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_visible_ascii_up_to_128() {
        assert!(RequestId::parse("abc-DEF_123.~!").is_some());
        assert!(RequestId::parse(&"a".repeat(128)).is_some());
    }

    #[test]
    fn rejects_empty_long_spaces_and_non_ascii() {
        assert!(RequestId::parse("").is_none());
        assert!(RequestId::parse(&"a".repeat(129)).is_none());
        assert!(RequestId::parse("a b").is_none());
        assert!(RequestId::parse("é").is_none());
        assert!(RequestId::parse("a\tb").is_none());
    }

    #[test]
    fn generated_ids_are_uuid_v4() {
        let id = RequestId::generate();
        let parsed = uuid::Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
    }
}
