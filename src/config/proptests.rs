//! Properties of configuration loading on any document: it never panics;
//! a document that is a mapping is either accepted or refused with errors
//! that each name a non-empty path under one of its own top-level keys (or
//! the required `buckets`), with a message, and never echo a value that
//! came from the environment.
//!
//! Keys that name files or directories (`ca_cert_path`, `cache_dir`,
//! `policy_path`, …) are left out of the generated documents: validation
//! reads them, and random paths must not touch the machine's files.

use proptest::prelude::*;
use serde_norway::{Mapping, Value};

use super::Config;

/// The value of `${SECRET}`: must never appear in an error.
const SECRET: &str = "s3cr3t-VALUE-0123";

fn env(name: &str) -> Option<String> {
    match name {
        "SECRET" => Some(SECRET.to_owned()),
        "PORT" => Some("8080".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

/// A scalar of any type, often near a range's edges or from the environment.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(1 << 31),
            Just(u64::MAX),
            any::<u64>()
        ]
        .prop_map(|n| Value::Number(n.into())),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_map(|n| Value::Number(n.into())),
        prop_oneof![
            Just("${SECRET}".to_owned()),
            Just("${PORT}".to_owned()),
            Just("${UNSET}".to_owned()),
            Just("${EMPTY:-x}".to_owned()),
            Just("${".to_owned()),
            Just("/p".to_owned()),
            Just("us-east-1".to_owned()),
            Just("http://127.0.0.1:9".to_owned()),
            Just("127.0.0.1:0".to_owned()),
            "[ -~]{0,12}",
        ]
        .prop_map(Value::String),
    ]
}

/// A mapping of some of `keys` (sometimes a key the schema does not know).
fn mapping(
    keys: &'static [&'static str],
    value: BoxedStrategy<Value>,
) -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        9 => proptest::sample::select(keys).prop_map(str::to_owned),
        1 => "[a-z_]{1,8}",
    ];
    proptest::collection::vec((key, value), 0..6).prop_map(|entries| {
        let mut map = Mapping::new();
        for (k, v) in entries {
            map.insert(Value::String(k), v);
        }
        Value::Mapping(map)
    })
}

/// A scalar, or (rarely) a list or mapping where a scalar belongs.
fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => scalar(),
        1 => proptest::collection::vec(scalar(), 0..3).prop_map(Value::Sequence),
        1 => Just(Value::Mapping(Mapping::new())),
    ]
    .boxed()
}

/// A section: a mapping of its keys, or (rarely) the wrong type altogether.
fn section(keys: &'static [&'static str], inner: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![9 => mapping(keys, inner), 1 => scalar()].boxed()
}

fn s3() -> BoxedStrategy<Value> {
    let keys = &[
        "bucket",
        "region",
        "endpoint",
        "force_path_style",
        "access_key",
        "secret_key",
        "session_token",
        "anonymous",
        // Keys only some s3 blocks take (a replica's, the bucket's own).
        "name",
        "priority",
        "replicas",
        "fallback_on_404",
    ];
    section(keys, leaf())
}

fn bucket() -> BoxedStrategy<Value> {
    let auth = section(&["enabled", "jwt"], leaf());
    let cache = section(&["enabled", "ttl_seconds", "max_item_size_mb"], leaf());
    let inner = prop_oneof![3 => leaf(), 2 => s3(), 1 => auth, 1 => cache].boxed();
    section(&["name", "path_prefix", "s3", "auth", "cache"], inner)
}

fn document() -> impl Strategy<Value = Value> {
    let server = &[
        "address",
        "port",
        "request_timeout_seconds",
        "max_concurrent_requests",
        "http2_max_concurrent_streams",
        "max_connections",
        "worker_threads",
        "header_read_timeout_seconds",
        "idle_timeout_seconds",
    ];
    let limits = section(
        &[
            "max_uri_length",
            "max_header_size",
            "max_body_size",
            "max_headers",
        ],
        leaf(),
    );
    let server_inner = prop_oneof![4 => leaf(), 1 => limits].boxed();
    let upstream = &[
        "pool_max_idle_per_host",
        "pool_idle_timeout_seconds",
        "connect_timeout_seconds",
        "read_buffer_bytes",
        "max_connections_per_bucket",
        "connection_wait_ms",
    ];
    let sections = prop_oneof![
        section(server, server_inner).prop_map(|v| ("server", v)),
        section(upstream, leaf()).prop_map(|v| ("upstream", v)),
        section(&["level", "format"], leaf()).prop_map(|v| ("logging", v)),
        section(&["enabled", "address", "port"], leaf()).prop_map(|v| ("metrics", v)),
        section(&["enabled", "address", "token"], leaf()).prop_map(|v| ("admin", v)),
        section(&["algorithm", "secret", "leeway_seconds"], leaf()).prop_map(|v| ("jwt", v)),
        section(&["enabled", "stale_if_error_seconds"], leaf()).prop_map(|v| ("cache", v)),
        proptest::collection::vec(bucket(), 0..3).prop_map(|b| ("buckets", Value::Sequence(b))),
    ];
    proptest::collection::vec(sections, 0..6).prop_map(|sections| {
        let mut map = Mapping::new();
        for (k, v) in sections {
            map.insert(Value::String(k.to_owned()), v);
        }
        Value::Mapping(map)
    })
}

/// A configuration that loads, for [`merge`] to alter.
const VALID: &str = "
server:
  address: 127.0.0.1:0
buckets:
  - name: products
    path_prefix: /products
    s3:
      bucket: products
      region: us-east-1
      anonymous: true
";

/// `overlay` written over `base`: mappings key by key, lists element by
/// element (extra elements over a copy of the first), anything else replaced.
fn merge(base: &Value, overlay: Value) -> Value {
    match (base, overlay) {
        (Value::Mapping(base), Value::Mapping(overlay)) => {
            let mut out = base.clone();
            for (k, v) in overlay {
                let merged = match base.get(&k) {
                    Some(b) => merge(b, v),
                    None => v,
                };
                out.insert(k, merged);
            }
            Value::Mapping(out)
        }
        (Value::Sequence(base), Value::Sequence(overlay)) if !base.is_empty() => Value::Sequence(
            overlay
                .into_iter()
                .enumerate()
                .map(|(i, v)| merge(base.get(i).unwrap_or(&base[0]), v))
                .collect(),
        ),
        (_, overlay) => overlay,
    }
}

/// Checks every error of loading `doc` (a mapping).
fn check_errors(doc: &Value) -> Result<(), TestCaseError> {
    let text = serde_norway::to_string(doc).unwrap();
    let Err(errors) = Config::from_yaml_str_with_env(&text, &env) else {
        return Ok(());
    };
    prop_assert!(!errors.0.is_empty());
    let Value::Mapping(map) = doc else {
        return Err(TestCaseError::fail("the document is a mapping"));
    };
    for error in &errors.0 {
        prop_assert!(!error.path.is_empty(), "{error} in\n{text}");
        prop_assert!(!error.message.is_empty(), "{error:?}");
        let root = root_of(&error.path);
        prop_assert!(
            root == "buckets" || map.contains_key(root),
            "{error} is outside the document:\n{text}"
        );
        prop_assert!(!error.to_string().contains(SECRET), "{error}");
    }
    Ok(())
}

/// The top-level key a path starts with (`buckets[0].s3` → `buckets`).
fn root_of(path: &str) -> &str {
    path.split(['.', '[']).next().unwrap_or_default()
}

proptest! {
    #[test]
    fn any_text_loads_or_fails_without_panic(text in any::<String>()) {
        if let Err(errors) = Config::from_yaml_str_with_env(&text, &env) {
            prop_assert!(!errors.0.is_empty());
            prop_assert!(errors.0.iter().all(|e| !e.message.is_empty()));
        }
    }

    #[test]
    fn every_error_names_its_path(doc in document()) {
        check_errors(&doc)?;
    }

    #[test]
    fn every_error_in_an_altered_valid_document_names_its_path(overlay in document()) {
        let base: Value = serde_norway::from_str(VALID).unwrap();
        check_errors(&merge(&base, overlay))?;
    }
}

#[test]
fn the_document_to_alter_loads() {
    let loaded = Config::from_yaml_str_with_env(VALID, &env);
    assert!(loaded.is_ok(), "{loaded:?}");
}
