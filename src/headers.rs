//! The header sets passed between client and S3, each defined once, so a
//! cache hit and a miss can never answer with different headers and the
//! cache can never disagree with the request filter about what makes a
//! request conditional.

use http::{HeaderName, header};

/// Request headers that make a request conditional or partial: the only
/// client headers forwarded to S3 (every other one is dropped), and the ones
/// that keep a request from being answered by a plain cache lookup.
pub const CONDITIONAL: [HeaderName; 6] = [
    header::RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
];

/// Response headers that describe the object itself (besides `x-amz-meta-*`
/// and `x-amz-version-id`): forwarded from S3 on a miss and stored with a
/// cached entry to be replayed on a hit.
const OBJECT: [HeaderName; 8] = [
    header::CONTENT_TYPE,
    header::ETAG,
    header::LAST_MODIFIED,
    header::CACHE_CONTROL,
    header::CONTENT_DISPOSITION,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::EXPIRES,
];

/// Response headers that frame this particular answer rather than describe
/// the object: forwarded from S3 on a miss, computed by the cache on a hit.
const FRAMING: [HeaderName; 3] = [
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
];

/// Whether `name` describes the object (`Content-Type`, `ETag`,
/// `Last-Modified`, `Cache-Control`, `Content-Disposition`,
/// `Content-Encoding`, `Content-Language`, `Expires`, `x-amz-meta-*`,
/// `x-amz-version-id`): what a cache entry keeps and replays.
pub fn is_object_header(name: &HeaderName) -> bool {
    OBJECT.contains(name) || is_object_amz(name.as_str())
}

/// Whether an S3 response header reaches the client: the object's headers
/// and the framing ones (`Content-Length`, `Content-Range`,
/// `Accept-Ranges`). Everything else (S3 request ids, `Server`,
/// hop-by-hop headers) stays behind.
pub fn is_forwarded_response_header(name: &HeaderName) -> bool {
    FRAMING.contains(name) || is_object_header(name)
}

/// The `x-amz-*` response headers that describe the object.
fn is_object_amz(name: &str) -> bool {
    name.starts_with("x-amz-meta-") || name == "x-amz-version-id"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_headers_are_forwarded_and_framing_is_not_replayed() {
        for name in OBJECT {
            assert!(is_object_header(&name) && is_forwarded_response_header(&name));
        }
        for name in FRAMING {
            assert!(!is_object_header(&name) && is_forwarded_response_header(&name));
        }
        let meta = HeaderName::from_static("x-amz-meta-owner");
        assert!(is_object_header(&meta));
        let request_id = HeaderName::from_static("x-amz-request-id");
        assert!(!is_forwarded_response_header(&request_id));
        assert!(!is_forwarded_response_header(&header::SERVER));
    }
}
