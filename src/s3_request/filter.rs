use http::{HeaderName, header};

/// Client headers forwarded to S3; every other header is dropped.
pub const FORWARDED_REQUEST_HEADERS: [HeaderName; 6] = [
    header::RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
];
