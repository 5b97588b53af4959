//! `buckets[i].s3.fallback_on_404`: the bucket a missing key is looked up in,
//! an s3 block of its own (validated like the bucket's s3 section).

use serde::Deserialize;

use crate::config::{Bool, Errors, S3Config, Str};
use crate::upstream::config::{RawS3, s3_config};

/// `fallback_on_404:` as written: the keys of an s3 block.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the fallback bucket (an s3 block: a mapping)"
)]
pub(crate) struct RawFallback {
    bucket: Option<Str>,
    region: Option<Str>,
    endpoint: Option<Str>,
    force_path_style: Option<Bool>,
    access_key: Option<Str>,
    secret_key: Option<Str>,
    session_token: Option<Str>,
    anonymous: Option<Bool>,
    ca_cert_path: Option<Str>,
}

/// Validates `fallback_on_404` of the s3 section at `at`; `None` after
/// recording an error.
pub(crate) fn fallback_on_404(
    raw: RawFallback,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<S3Config> {
    let s3 = RawS3 {
        bucket: raw.bucket,
        region: raw.region,
        endpoint: raw.endpoint,
        force_path_style: raw.force_path_style,
        access_key: raw.access_key,
        secret_key: raw.secret_key,
        session_token: raw.session_token,
        anonymous: raw.anonymous,
        ca_cert_path: raw.ca_cert_path,
        ..RawS3::default()
    };
    s3_config(s3, &format!("{at}.fallback_on_404"), env, errs)
}
