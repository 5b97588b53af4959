//! `buckets[i].s3.fallback_on_404`: the bucket a missing key is looked up in,
//! an s3 block of its own (validated like the bucket's s3 section).

use crate::config::{Errors, S3Config};
use crate::upstream::config::{RawS3, s3_config};

/// Validates `fallback_on_404` of the s3 section at `at`; `None` after
/// recording an error.
pub(crate) fn fallback_on_404(
    raw: RawS3,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<S3Config> {
    s3_config(raw, &format!("{at}.fallback_on_404"), env, errs)
}
