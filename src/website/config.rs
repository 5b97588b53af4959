//! `buckets[i].website`: index document, error document, SPA fallback.

use serde::Deserialize;

use crate::config::{Bool, Errors, Str};

/// `buckets[i].website:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the website section (a mapping with `index_document`, `error_document`, `spa_fallback`)"
)]
pub(crate) struct RawWebsite {
    index_document: Option<Str>,
    error_document: Option<Str>,
    spa_fallback: Option<Bool>,
}

/// A bucket's validated website settings; present only when the bucket
/// has a `website` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebsiteConfig {
    /// The key suffix served for a path ending in `/` (and, at the bucket
    /// root, for the bare prefix); default `index.html`.
    pub index_document: String,
    /// The key served, with status 404, for a key that does not exist;
    /// `None`: the plain 404.
    pub error_document: Option<String>,
    /// Serve the root index document (200) for a missing key without a
    /// file extension (client-side routes of a single-page app).
    pub spa_fallback: bool,
}

/// Validates `{at}.website` (absent: no website).
pub(crate) fn website(
    raw: Option<RawWebsite>,
    at: &str,
    errs: &mut Errors,
) -> Option<WebsiteConfig> {
    let raw = raw?;
    let at = format!("{at}.website");
    let index_document = match raw.index_document {
        None => "index.html".to_owned(),
        Some(Str(name)) => {
            let path = format!("{at}.index_document");
            if name.contains('/') {
                errs.push(
                    &path,
                    "must be a file name without '/' (it is appended to the folder)",
                );
            }
            checked_key(name, &path, errs)
        }
    };
    let error_document = raw
        .error_document
        .map(|Str(key)| checked_key(key, &format!("{at}.error_document"), errs));
    Some(WebsiteConfig {
        index_document,
        error_document,
        spa_fallback: raw.spa_fallback.is_some_and(|Bool(on)| on),
    })
}

/// Checks that `key` is a plain object key relative to the bucket root (not
/// empty, no leading `/`, no `.`/`..` segment, no control characters); the
/// value is not echoed (it may come from `${VAR}`).
fn checked_key(key: String, path: &str, errs: &mut Errors) -> String {
    let dot_segment = key
        .split('/')
        .any(|s| s == "." || s == ".." || s.is_empty());
    if key.is_empty() || key.chars().any(char::is_control) || dot_segment {
        errs.push(
            path,
            "must be an object key relative to the bucket root (no leading '/', no empty, \
             '.' or '..' segments, no control characters)",
        );
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError, test_support};

    fn load(website: &str) -> Result<Config, Vec<ConfigError>> {
        test_support::load(&test_support::bucket_with(website), &[])
    }

    #[test]
    fn off_by_default_and_defaults_when_on() {
        assert_eq!(load("").unwrap().buckets[0].website, None);
        let on = load("    website: {}\n").unwrap().buckets[0]
            .website
            .clone();
        assert_eq!(
            on,
            Some(WebsiteConfig {
                index_document: "index.html".into(),
                error_document: None,
                spa_fallback: false,
            })
        );
        let set = load(
            "    website: {index_document: home.htm, error_document: errors/404.html, \
             spa_fallback: 'true'}\n",
        )
        .unwrap();
        let set = set.buckets[0].website.clone().unwrap();
        assert_eq!(set.index_document, "home.htm");
        assert_eq!(set.error_document.as_deref(), Some("errors/404.html"));
        assert!(set.spa_fallback);
    }

    #[test]
    fn bad_documents_are_refused_at_their_paths() {
        let errs = load("    website: {index_document: a/b.html, error_document: /404.html}\n")
            .unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "buckets[0].website.index_document",
                "buckets[0].website.error_document"
            ],
            "{errs:?}"
        );
        for bad in ["''", "../x.html", "a//b.html"] {
            let errs = load(&format!("    website: {{error_document: {bad}}}\n")).unwrap_err();
            assert_eq!(errs[0].path, "buckets[0].website.error_document", "{bad}");
        }
        let errs = load("    website: {index: x}\n").unwrap_err();
        assert_eq!(errs[0].path, "buckets[0].website.index");
    }
}
