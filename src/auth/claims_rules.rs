//! Evaluating `claims_verification` rules against verified claims.
//!
//! A rule on a claim the token does not have fails (whatever the operator),
//! so a missing claim can never grant access.

use serde_json::{Map, Value};

use crate::config::{ClaimOperator, ClaimRule};

/// Whether every rule holds for `claims`.
pub(crate) fn all_hold(rules: &[ClaimRule], claims: &Map<String, Value>) -> bool {
    rules.iter().all(|rule| holds(rule, claims))
}

/// Whether one rule holds for `claims`.
pub(crate) fn holds(rule: &ClaimRule, claims: &Map<String, Value>) -> bool {
    let Some(value) = lookup(claims, &rule.path).filter(|v| !v.is_null()) else {
        return false;
    };
    match &rule.operator {
        ClaimOperator::Exists => true,
        ClaimOperator::Equals(expected) => loosely_equal(value, expected),
        ClaimOperator::NotEquals(expected) => !loosely_equal(value, expected),
        ClaimOperator::In(list) => {
            elements(value).any(|v| list.iter().any(|e| loosely_equal(v, e)))
        }
        ClaimOperator::NotIn(list) => {
            !elements(value).any(|v| list.iter().any(|e| loosely_equal(v, e)))
        }
        ClaimOperator::Contains(expected) => match value {
            Value::Array(items) => items.iter().any(|v| loosely_equal(v, expected)),
            Value::String(s) => as_text(expected).is_some_and(|e| s.contains(e.as_ref())),
            _ => false,
        },
        ClaimOperator::Gt(n) => number(value).is_some_and(|v| v > *n),
        ClaimOperator::Gte(n) => number(value).is_some_and(|v| v >= *n),
        ClaimOperator::Lt(n) => number(value).is_some_and(|v| v < *n),
        ClaimOperator::Lte(n) => number(value).is_some_and(|v| v <= *n),
        ClaimOperator::Regex(re) => value.as_str().is_some_and(|s| re.is_match(s)),
    }
}

/// Follows a dot path into nested objects.
fn lookup<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(claims.get(first)?, |v, segment| v.as_object()?.get(segment))
}

/// A list claim's elements, or the claim itself.
fn elements(value: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match value {
        Value::Array(items) => Box::new(items.iter()),
        other => Box::new(std::iter::once(other)),
    }
}

/// Equal as JSON, or equal as text (`"3"` and `3`), because values expanded
/// from `${VAR}` are always strings.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    a == b
        || match (as_text(a), as_text(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        }
}

fn as_text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(std::borrow::Cow::Borrowed(if *b {
            "true"
        } else {
            "false"
        })),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(claim: &str, operator: ClaimOperator) -> ClaimRule {
        ClaimRule {
            claim: claim.into(),
            path: claim.split('.').map(str::to_owned).collect(),
            operator,
        }
    }

    fn claims() -> Map<String, Value> {
        json!({
            "role": "admin",
            "level": 3,
            "groups": ["ops", "dev"],
            "org": {"id": "acme", "tier": {"name": "gold"}},
            "email": "a@example.com",
            "nothing": null,
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn every_operator() {
        let c = claims();
        let cases = [
            (rule("role", ClaimOperator::Equals(json!("admin"))), true),
            (rule("role", ClaimOperator::Equals(json!("user"))), false),
            (rule("level", ClaimOperator::Equals(json!("3"))), true),
            (rule("role", ClaimOperator::NotEquals(json!("user"))), true),
            (
                rule("role", ClaimOperator::NotEquals(json!("admin"))),
                false,
            ),
            (
                rule(
                    "org.id",
                    ClaimOperator::In(vec![json!("acme"), json!("initech")]),
                ),
                true,
            ),
            (
                rule("org.id", ClaimOperator::In(vec![json!("initech")])),
                false,
            ),
            (rule("groups", ClaimOperator::In(vec![json!("ops")])), true),
            (
                rule("org.id", ClaimOperator::NotIn(vec![json!("initech")])),
                true,
            ),
            (
                rule("groups", ClaimOperator::NotIn(vec![json!("dev")])),
                false,
            ),
            (rule("groups", ClaimOperator::Contains(json!("ops"))), true),
            (
                rule("groups", ClaimOperator::Contains(json!("sales"))),
                false,
            ),
            (
                rule("email", ClaimOperator::Contains(json!("@example"))),
                true,
            ),
            (rule("level", ClaimOperator::Gt(2.0)), true),
            (rule("level", ClaimOperator::Gt(3.0)), false),
            (rule("level", ClaimOperator::Gte(3.0)), true),
            (rule("level", ClaimOperator::Lt(3.0)), false),
            (rule("level", ClaimOperator::Lte(3.0)), true),
            (rule("role", ClaimOperator::Gt(1.0)), false),
            (rule("org.tier.name", ClaimOperator::Exists), true),
            (rule("org.missing", ClaimOperator::Exists), false),
            (rule("nothing", ClaimOperator::Exists), false),
            (
                rule(
                    "email",
                    ClaimOperator::Regex(regex::Regex::new("@example\\.com$").unwrap()),
                ),
                true,
            ),
            (
                rule(
                    "role",
                    ClaimOperator::Regex(regex::Regex::new("^user").unwrap()),
                ),
                false,
            ),
        ];
        for (rule, expected) in cases {
            assert_eq!(holds(&rule, &c), expected, "{rule:?}");
        }
    }

    #[test]
    fn missing_claims_fail_every_operator() {
        let c = claims();
        for op in [
            ClaimOperator::NotEquals(json!("x")),
            ClaimOperator::NotIn(vec![json!("x")]),
            ClaimOperator::Exists,
        ] {
            assert!(!holds(&rule("absent", op), &c));
        }
        assert!(!holds(&rule("role.deeper", ClaimOperator::Exists), &c));
    }

    #[test]
    fn all_rules_must_hold() {
        let c = claims();
        let ok = rule("role", ClaimOperator::Equals(json!("admin")));
        let no = rule("level", ClaimOperator::Gt(5.0));
        assert!(all_hold(std::slice::from_ref(&ok), &c));
        assert!(!all_hold(&[ok, no], &c));
        assert!(all_hold(&[], &c));
    }
}
