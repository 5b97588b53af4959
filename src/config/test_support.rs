//! Helpers shared by the configuration tests of every concern: load a
//! document with a fixed environment and assert on the errors it gives.

use std::collections::HashMap;

use super::{Config, ConfigError};

/// An environment holding exactly `vars`.
pub(crate) fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

/// Loads `text` with the environment `vars`.
pub(crate) fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, Vec<ConfigError>> {
    Config::from_yaml_str_with_env(text, &env_of(vars)).map_err(|e| e.0)
}

/// Wraps one bucket's extra s3 lines (indented by 6) in a minimal config.
pub(crate) fn with_s3(extra: &str) -> String {
    format!(
        "buckets:\n  - name: b\n    path_prefix: /b\n    s3:\n      bucket: my-bucket\n      \
         region: us-east-1\n{extra}"
    )
}

/// A minimal config: one anonymous bucket at `prefix`.
pub(crate) fn anonymous_bucket(prefix: &str) -> String {
    format!(
        "buckets:\n  - name: b\n    path_prefix: {prefix}\n    s3:\n      bucket: my-bucket\n      \
         region: us-east-1\n      anonymous: true\n"
    )
}

/// One anonymous bucket `a` at `/a` with the bucket-level lines `extra`
/// (indented by 4) after its s3 block.
pub(crate) fn bucket_with(extra: &str) -> String {
    format!(
        "buckets:\n  - name: a\n    path_prefix: /a\n    s3: {{bucket: bb-a, region: us-east-1, \
         anonymous: true}}\n{extra}"
    )
}

/// The only error `text` gives.
pub(crate) fn one_error(text: &str, vars: &[(&str, &str)]) -> ConfigError {
    let errors = load(text, vars).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.into_iter().next().unwrap()
}

/// `text` gives exactly one error, at `path`, whose message contains `needle`.
#[track_caller]
pub(crate) fn assert_error(text: &str, path: &str, needle: &str) {
    let e = one_error(text, &[]);
    assert_eq!(e.path, path, "{e}");
    assert!(e.message.contains(needle), "{e}");
}

/// `section` (top-level YAML) followed by a minimal anonymous bucket.
pub(crate) fn with_section(section: &str) -> String {
    format!("{section}\n{}", anonymous_bucket("/b"))
}

/// A throw-away self-signed certificate in PEM form.
pub(crate) fn self_signed_pem() -> String {
    rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .unwrap()
        .cert
        .pem()
}
