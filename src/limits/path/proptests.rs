//! Properties of [`sanitize_path`] on any input a client can send: it never
//! panics, and a path it accepts stays under the prefix it starts with, in
//! every decoding a backend might apply.

use percent_encoding::percent_decode_str;
use proptest::prelude::*;

use super::sanitize_path;

/// Pieces that make traversal, encoding and separator tricks likely.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just("\\".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E".to_owned()),
        Just("%252e".to_owned()),
        Just("%25252e".to_owned()),
        Just("%2f".to_owned()),
        Just("%252f".to_owned()),
        Just("%5c".to_owned()),
        Just("%255c".to_owned()),
        Just("%00".to_owned()),
        Just("%2500".to_owned()),
        Just("%".to_owned()),
        Just("%25".to_owned()),
        Just("%ff".to_owned()),
        Just("%e6%97%a5".to_owned()),
        "[a-z0-9._~-]{1,6}",
        any::<char>().prop_map(String::from),
    ]
}

/// A request path: `/<prefix>/` then a random mix of pieces.
fn under_prefix() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 0..16).prop_map(|p| format!("/bucket/{}", p.concat()))
}

/// The segments left after a backend resolves `.` and `..` in `path`,
/// decoding it `decodings` more times first.
fn resolved(path: &str, decodings: usize) -> Vec<String> {
    let mut text = path.to_owned();
    for _ in 0..decodings {
        text = percent_decode_str(&text).decode_utf8_lossy().into_owned();
    }
    let mut stack: Vec<String> = Vec::new();
    for segment in text.split(['/', '\\']) {
        match segment {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            s => stack.push(s.to_owned()),
        }
    }
    stack
}

/// What every accepted path must satisfy.
fn check_accepted(raw: &str, path: &str) -> Result<(), TestCaseError> {
    prop_assert!(path.starts_with('/'), "{raw:?} -> {path:?}");
    prop_assert!(!path.contains("//"), "{raw:?} -> {path:?}");
    for segment in path.split('/') {
        prop_assert!(segment != "." && segment != "..", "{raw:?} -> {path:?}");
        prop_assert!(!segment.contains('\\'), "{raw:?} -> {path:?}");
        prop_assert!(!segment.bytes().any(|b| b.is_ascii_control()), "{raw:?}");
    }
    Ok(())
}

proptest! {
    #[test]
    fn never_panics_on_any_string(raw in any::<String>()) {
        if let Ok(path) = sanitize_path(&raw) {
            check_accepted(&raw, &path)?;
        }
    }

    #[test]
    fn never_panics_on_any_printable_ascii(raw in "[ -~]{0,64}") {
        if let Ok(path) = sanitize_path(&raw) {
            check_accepted(&raw, &path)?;
        }
    }

    #[test]
    fn an_accepted_path_never_escapes_its_prefix(raw in under_prefix()) {
        if let Ok(path) = sanitize_path(&raw) {
            check_accepted(&raw, &path)?;
            prop_assert!(path == "/bucket" || path.starts_with("/bucket/"), "{raw:?} -> {path:?}");
            // As served, and as a backend that decodes it once more sees it.
            for decodings in 0..2 {
                let segments = resolved(&path, decodings);
                prop_assert_eq!(
                    segments.first().map(String::as_str),
                    Some("bucket"),
                    "{:?} -> {:?} escapes after {} decodings", raw, path, decodings
                );
            }
        }
    }
}
