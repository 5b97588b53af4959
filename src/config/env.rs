//! `${VAR}` expansion of every string scalar of a parsed YAML document.
//!
//! Expansion runs on the YAML value tree, before deserialisation, so it works
//! the same for every option and keeps track of the path of each scalar.
//! Mapping keys are never expanded. Values that come from the environment may
//! be secrets: they are never copied into an error message.

use serde_norway::Value;

use super::{ConfigError, PathSet};

/// The result of expanding a whole document.
#[derive(Debug, Default)]
pub(crate) struct Expansion {
    /// Every bad or unresolvable reference, in document order.
    pub(crate) errors: Vec<ConfigError>,
    /// Paths of the scalars that contained at least one `${...}` reference.
    pub(crate) substituted: PathSet,
    /// Paths of the scalars whose expansion failed (they are left empty).
    pub(crate) failed: PathSet,
}

/// Expands `${VAR}`, `${VAR:-default}` and `$$` in every string scalar of `value`.
pub(crate) fn expand_document(
    value: &mut Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Expansion {
    let mut out = Expansion::default();
    walk(value, String::new(), env, &mut out);
    out
}

fn walk(
    value: &mut Value,
    path: String,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut Expansion,
) {
    match value {
        Value::String(s) => {
            if !s.contains('$') {
                return;
            }
            match expand_str(s, env) {
                Ok(expanded) => {
                    if expanded.referenced {
                        out.substituted.insert(path);
                    }
                    *s = expanded.text;
                }
                Err(problems) => {
                    for problem in problems {
                        out.errors
                            .push(ConfigError::new(path.clone(), problem.message()));
                    }
                    s.clear();
                    out.substituted.insert(path.clone());
                    out.failed.insert(path);
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, format!("{path}[{i}]"), env, out);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let key = key_segment(key);
                let child = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                walk(item, child, env, out);
            }
        }
        Value::Tagged(tagged) => walk(&mut tagged.value, path, env, out),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Formats a mapping key the way `serde_path_to_error` does, so that paths
/// from expansion and from deserialisation can be compared.
fn key_segment(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => "?".to_owned(),
    }
}

/// A successfully expanded scalar.
#[derive(Debug, PartialEq, Eq)]
struct Expanded {
    text: String,
    /// Whether the scalar contained a `${...}` reference (its value may be secret).
    referenced: bool,
}

/// One bad reference in a scalar.
#[derive(Debug, PartialEq, Eq)]
enum Problem {
    /// `${NAME}` with `NAME` unset.
    Unset(String),
    /// `${` without a closing `}`.
    Unterminated,
    /// `${}` or a name with characters other than letters, digits and `_`.
    BadName,
    /// `${A:-${B}}`.
    Nested,
}

impl Problem {
    fn message(&self) -> String {
        match self {
            Problem::Unset(name) => format!("environment variable {name} is not set"),
            Problem::Unterminated => {
                "unterminated `${`: add the closing `}`, or write `$$` for a literal `$`".to_owned()
            }
            Problem::BadName => "invalid `${...}` reference: a variable name is made of letters, \
                                 digits and `_`, and does not start with a digit"
                .to_owned(),
            Problem::Nested => {
                "nested `${...}` references are not supported (a default is taken literally)"
                    .to_owned()
            }
        }
    }
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands one scalar; returns every problem in it, or the expanded text.
fn expand_str(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Expanded, Vec<Problem>> {
    let mut text = String::with_capacity(input.len());
    let mut problems = Vec::new();
    let mut referenced = false;
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        text.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            text.push('$');
            rest = tail;
        } else if let Some(body_and_tail) = after.strip_prefix('{') {
            referenced = true;
            let Some(end) = body_and_tail.find('}') else {
                problems.push(Problem::Unterminated);
                rest = "";
                break;
            };
            let body = &body_and_tail[..end];
            rest = &body_and_tail[end + 1..];
            let (name, default) = match body.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            if !is_valid_name(name) {
                problems.push(Problem::BadName);
                continue;
            }
            if default.is_some_and(|d| d.contains("${")) {
                problems.push(Problem::Nested);
                continue;
            }
            match (env(name), default) {
                (Some(v), None) => text.push_str(&v),
                (Some(v), Some(_)) if !v.is_empty() => text.push_str(&v),
                (_, Some(default)) => text.push_str(default),
                (None, None) => problems.push(Problem::Unset(name.to_owned())),
            }
        } else {
            text.push('$');
            rest = after;
        }
    }
    text.push_str(rest);
    if problems.is_empty() {
        Ok(Expanded { text, referenced })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("example.com".to_owned()),
            "EMPTY" => Some(String::new()),
            "SECRET" => Some("s3cr3t-value".to_owned()),
            _ => None,
        }
    }

    fn ok(s: &str) -> String {
        expand_str(s, &env).unwrap().text
    }

    #[test]
    fn plain_references() {
        assert_eq!(ok("${HOST}"), "example.com");
        assert_eq!(ok("https://${HOST}:443"), "https://example.com:443");
        assert_eq!(ok("${HOST}${HOST}"), "example.comexample.com");
        assert_eq!(ok("${EMPTY}"), "");
        assert!(expand_str("${HOST}", &env).unwrap().referenced);
        assert!(!expand_str("a$$b", &env).unwrap().referenced);
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        assert_eq!(ok("${NOPE:-fallback}"), "fallback");
        assert_eq!(ok("${EMPTY:-fallback}"), "fallback");
        assert_eq!(ok("${HOST:-fallback}"), "example.com");
        assert_eq!(ok("${NOPE:-}"), "");
        assert_eq!(ok("${NOPE:-a:-b}"), "a:-b");
        assert_eq!(ok("${NOPE:-$x}"), "$x");
    }

    #[test]
    fn dollar_escapes_and_lone_dollars() {
        assert_eq!(ok("$$"), "$");
        assert_eq!(ok("$${HOST}"), "${HOST}");
        assert_eq!(ok("price: $5"), "price: $5");
        assert_eq!(ok("end$"), "end$");
        assert_eq!(ok("$$$$"), "$$");
        assert_eq!(ok("$HOST"), "$HOST");
    }

    #[test]
    fn problems() {
        assert_eq!(
            expand_str("${NOPE}", &env).unwrap_err(),
            [Problem::Unset("NOPE".into())]
        );
        assert_eq!(
            expand_str("${A}-${B}", &env).unwrap_err(),
            [Problem::Unset("A".into()), Problem::Unset("B".into())]
        );
        assert_eq!(
            expand_str("${HOST", &env).unwrap_err(),
            [Problem::Unterminated]
        );
        assert_eq!(expand_str("${}", &env).unwrap_err(), [Problem::BadName]);
        assert_eq!(expand_str("${1A}", &env).unwrap_err(), [Problem::BadName]);
        assert_eq!(expand_str("${A B}", &env).unwrap_err(), [Problem::BadName]);
        assert_eq!(
            expand_str("${A:-${B}}", &env).unwrap_err(),
            [Problem::Nested]
        );
    }

    #[test]
    fn walks_every_string_scalar_but_not_keys() {
        let mut v: Value = serde_norway::from_str(
            "
'${HOST}': key
list: ['${HOST}', 3, '${NOPE}']
map:
  inner: '${SECRET}'
  flag: true
",
        )
        .unwrap();
        let out = expand_document(&mut v, &env);
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].path, "list[2]");
        assert_eq!(
            out.errors[0].message,
            "environment variable NOPE is not set"
        );
        assert!(out.failed.contains("list[2]"));
        assert!(out.substituted.contains("list[0]"));
        assert!(out.substituted.contains("map.inner"));
        assert!(!out.substituted.contains("map.flag"));
        assert_eq!(v["${HOST}"], Value::String("key".into()));
        assert_eq!(v["list"][0], Value::String("example.com".into()));
        assert_eq!(v["map"]["inner"], Value::String("s3cr3t-value".into()));
    }

    #[test]
    fn error_messages_never_contain_values() {
        for input in ["${SECRET}${NOPE}", "${SECRET:-x}${", "${SECRET} ${A B}"] {
            for p in expand_str(input, &env).unwrap_err() {
                assert!(!p.message().contains("s3cr3t"), "{}", p.message());
            }
        }
    }
}

#[cfg(test)]
mod proptests;
