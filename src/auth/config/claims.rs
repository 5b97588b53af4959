//! Claim rules (`claims_verification:` entries and `admin.jwt.require_claim`):
//! a claim's dot path, an operator, and the value the operator needs.

use serde_json::Value;

use super::model::{ClaimOperator, ClaimRule};
use super::raw::RawClaimRule;
use crate::config::{Errors, Str};

/// Validates one rule found at `at`.
pub(super) fn claim_rule(raw: RawClaimRule, at: &str, errs: &mut Errors) -> Option<ClaimRule> {
    let before = errs.count();
    let claim = claim_path(raw.claim, at, errs);
    let value = match raw.value.map(serde_json::to_value) {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            errs.push(
                format!("{at}.value"),
                "must be a scalar or a list of scalars",
            );
            None
        }
        None => None,
    };
    let operator = operator(raw.operator, value, at, errs);
    let claim = claim?;
    let operator = operator?;
    (errs.count() == before).then(|| ClaimRule {
        path: claim.split('.').map(str::to_owned).collect(),
        claim,
        operator,
    })
}

/// `claim:`: a name or a dot path of non-empty segments.
fn claim_path(raw: Option<Str>, at: &str, errs: &mut Errors) -> Option<String> {
    match raw {
        Some(Str(c)) if !c.is_empty() && c.split('.').all(|s| !s.is_empty()) => Some(c),
        Some(_) => {
            errs.push(
                format!("{at}.claim"),
                "must be a claim name or a dot path (org.id)",
            );
            None
        }
        None => {
            errs.push(format!("{at}.claim"), "missing");
            None
        }
    }
}

/// `operator:`, with the `value:` of the shape it needs.
fn operator(
    raw: Option<Str>,
    value: Option<Value>,
    at: &str,
    errs: &mut Errors,
) -> Option<ClaimOperator> {
    let value_path = format!("{at}.value");
    let path = value_path.as_str();
    match raw.map(|Str(o)| o).as_deref() {
        Some("equals") => scalar(value, path, errs).map(ClaimOperator::Equals),
        Some("not_equals") => scalar(value, path, errs).map(ClaimOperator::NotEquals),
        Some("in") => list(value, path, errs).map(ClaimOperator::In),
        Some("not_in") => list(value, path, errs).map(ClaimOperator::NotIn),
        Some("contains") => scalar(value, path, errs).map(ClaimOperator::Contains),
        Some("gt") => number(value, path, errs).map(ClaimOperator::Gt),
        Some("gte") => number(value, path, errs).map(ClaimOperator::Gte),
        Some("lt") => number(value, path, errs).map(ClaimOperator::Lt),
        Some("lte") => number(value, path, errs).map(ClaimOperator::Lte),
        Some("exists") => Some(ClaimOperator::Exists),
        Some("regex") => regex(value, path, errs).map(ClaimOperator::Regex),
        Some(_) => {
            errs.push(
                format!("{at}.operator"),
                "unknown operator; expected equals, not_equals, in, not_in, contains, gt, gte, \
                 lt, lte, exists or regex",
            );
            None
        }
        None => {
            errs.push(format!("{at}.operator"), "missing");
            None
        }
    }
}

/// A single value (not a list, a mapping or null).
fn scalar(value: Option<Value>, path: &str, errs: &mut Errors) -> Option<Value> {
    match value {
        Some(v) if !v.is_array() && !v.is_object() && !v.is_null() => Some(v),
        Some(_) => {
            errs.push(path, "must be a single value");
            None
        }
        None => {
            errs.push(path, "missing");
            None
        }
    }
}

/// A list of values.
fn list(value: Option<Value>, path: &str, errs: &mut Errors) -> Option<Vec<Value>> {
    match value {
        Some(Value::Array(items)) => Some(items),
        Some(_) => {
            errs.push(path, "must be a list for this operator");
            None
        }
        None => {
            errs.push(path, "missing (a list)");
            None
        }
    }
}

/// A number, or a string holding one (`"3"`, as `${VAR}` gives).
fn number(value: Option<Value>, path: &str, errs: &mut Errors) -> Option<f64> {
    let n = match &value {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    if n.is_none() {
        errs.push(path, "must be a number for this operator");
    }
    n
}

/// A regular expression (a string); the message never quotes it.
fn regex(value: Option<Value>, path: &str, errs: &mut Errors) -> Option<regex::Regex> {
    match value {
        Some(Value::String(pattern)) => match regex::Regex::new(&pattern) {
            Ok(re) => Some(re),
            Err(_) => {
                errs.push(path, "is not a valid regular expression");
                None
            }
        },
        _ => {
            errs.push(path, "must be a regular expression (a string)");
            None
        }
    }
}
