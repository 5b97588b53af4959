//! `buckets[i].errors`: which error body the bucket's clients get.

use crate::config::{Errors, Str};

/// A bucket's error answer format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BucketErrors {
    /// S3's XML for S3 SDK clients, JSON for everyone else (detected per request).
    #[default]
    Auto,
    /// The proxy's JSON body for every client.
    Json,
    /// S3's XML `<Error>` document for every client.
    S3Xml,
}

/// Validates `{at}.errors` (absent: `auto`).
pub(crate) fn bucket_errors(raw: Option<Str>, at: &str, errs: &mut Errors) -> BucketErrors {
    match raw.as_ref().map(|Str(value)| value.as_str()) {
        None | Some("auto") => BucketErrors::Auto,
        Some("json") => BucketErrors::Json,
        Some("s3_xml") => BucketErrors::S3Xml,
        // The value is not echoed: it may come from `${VAR}`.
        Some(_) => {
            errs.push(
                format!("{at}.errors"),
                "must be one of `auto`, `json`, `s3_xml`",
            );
            BucketErrors::Auto
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError, test_support};

    fn load(errors: &str) -> Result<Config, Vec<ConfigError>> {
        test_support::load(&test_support::bucket_with(errors), &[])
    }

    #[test]
    fn values_load_and_default_to_auto() {
        assert_eq!(load("").unwrap().buckets[0].errors, BucketErrors::Auto);
        let of = |v: &str| load(&format!("    errors: {v}\n")).unwrap().buckets[0].errors;
        assert_eq!(of("auto"), BucketErrors::Auto);
        assert_eq!(of("json"), BucketErrors::Json);
        assert_eq!(of("s3_xml"), BucketErrors::S3Xml);
    }

    #[test]
    fn an_unknown_value_is_refused_at_its_path() {
        let errs = load("    errors: xml\n").unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "buckets[0].errors");
        assert!(errs[0].message.contains("s3_xml"), "{}", errs[0]);
    }
}
