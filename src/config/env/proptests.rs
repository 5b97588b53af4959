//! Properties of `${VAR}` expansion on any scalar: it never panics, text
//! without `$` is left as it is, `$$` is a literal `$`, defined variables
//! are replaced by their values and defaults apply only when a variable is
//! unset or empty; a failed expansion never echoes a variable's value.

use proptest::prelude::*;

use super::{Expanded, Problem, expand_document, expand_str};

/// Names the environment of these tests defines, with their values.
const DEFINED: &[(&str, &str)] = &[
    ("HOST", "example.com"),
    ("EMPTY", ""),
    ("SECRET", "s3cr3t-VALUE"),
    ("WITH_DOLLAR", "a${B}$$c"),
];

fn env(name: &str) -> Option<String> {
    DEFINED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| (*v).to_owned())
}

/// A variable name: defined, unset, or not a valid name.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(DEFINED).prop_map(|(n, _)| n.to_owned()),
        "[A-Z_][A-Z0-9_]{0,6}",
        "[ -~]{0,4}",
    ]
}

/// Text built from references, `$$`, stray `$`, braces and plain text.
fn template() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        name().prop_map(|n| format!("${{{n}}}")),
        (name(), "[ -~]{0,6}").prop_map(|(n, d)| format!("${{{n}:-{d}}}")),
        Just("$$".to_owned()),
        Just("$".to_owned()),
        Just("${".to_owned()),
        Just("}".to_owned()),
        "[a-z :/-]{0,6}",
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|p| p.concat())
}

proptest! {
    #[test]
    fn any_text_expands_without_panic(text in any::<String>()) {
        let _ = expand_str(&text, &env);
    }

    #[test]
    fn any_template_expands_without_panic_or_leak(text in template()) {
        if let Err(problems) = expand_str(&text, &env) {
            for problem in problems {
                let message = problem.message();
                prop_assert!(!message.contains("s3cr3t-VALUE"), "{message}");
                prop_assert!(!message.contains("example.com"), "{message}");
            }
        }
    }

    #[test]
    fn text_without_a_dollar_is_unchanged(text in "[^$]{0,64}") {
        prop_assert_eq!(
            expand_str(&text, &env),
            Ok(Expanded { text: text.clone(), referenced: false })
        );
    }

    #[test]
    fn dollar_dollar_is_a_literal_dollar(a in "[^$]{0,16}", b in "[^$]{0,16}") {
        let expanded = expand_str(&format!("{a}$${b}"), &env).unwrap();
        prop_assert_eq!(expanded.text, format!("{a}${b}"));
        prop_assert!(!expanded.referenced);
    }

    #[test]
    fn defined_variables_are_replaced(
        a in "[^$]{0,16}",
        which in proptest::sample::select(DEFINED),
        default in proptest::option::of("[^$}]{0,8}"),
        b in "[^$]{0,16}",
    ) {
        let (name, value) = which;
        let reference = match &default {
            Some(d) => format!("${{{name}:-{d}}}"),
            None => format!("${{{name}}}"),
        };
        let expanded = expand_str(&format!("{a}{reference}{b}"), &env).unwrap();
        // A value is inserted as it is: never expanded again.
        let middle = match &default {
            Some(d) if value.is_empty() => d.as_str(),
            _ => value,
        };
        prop_assert_eq!(expanded.text, format!("{a}{middle}{b}"));
        prop_assert!(expanded.referenced);
    }

    #[test]
    fn unset_variables_fail_or_take_their_default(
        name in "UNSET_[A-Z0-9_]{0,8}",
        default in proptest::option::of("[^$}]{0,8}"),
    ) {
        let reference = match &default {
            Some(d) => format!("${{{name}:-{d}}}"),
            None => format!("${{{name}}}"),
        };
        match (expand_str(&reference, &env), default) {
            (Ok(expanded), Some(d)) => prop_assert_eq!(expanded.text, d),
            (Err(problems), None) => prop_assert_eq!(problems, vec![Problem::Unset(name)]),
            (other, default) => prop_assert!(false, "{other:?} with default {default:?}"),
        }
    }

    #[test]
    fn a_document_of_templates_expands_without_panic(
        items in proptest::collection::vec(template(), 0..6),
    ) {
        let mut value = serde_norway::Value::Sequence(
            items.into_iter().map(serde_norway::Value::String).collect(),
        );
        let expansion = expand_document(&mut value, &env);
        for error in expansion.errors {
            prop_assert!(!error.path.is_empty());
            prop_assert!(!error.message.contains("s3cr3t-VALUE"));
        }
    }
}
