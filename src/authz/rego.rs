//! The embedded Rego engine: a policy file compiled once per configuration
//! generation and evaluated in-process with `regorus`.
//!
//! The policy is compiled for its query rule into a `CompiledPolicy`, which is
//! immutable and shared (`Send + Sync`): each evaluation starts a fresh
//! lightweight interpreter from it, so concurrent requests never contend for a
//! lock or clone the parsed modules.

use std::path::Path;

use regorus::{CompiledPolicy, Engine, Value};
use sha2::{Digest, Sha256};

use super::EngineError;

/// Why a Rego policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RegoLoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The policy file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The policy does not parse, or the query names no rule of it.
    #[error("{path} does not compile: {message}")]
    Compile {
        /// The policy file.
        path: String,
        /// The parser's (or compiler's) message.
        message: String,
    },
}

/// A compiled Rego policy and the rule that decides.
#[derive(Debug, Clone)]
pub struct RegoPolicy {
    compiled: CompiledPolicy,
    /// SHA-256 of the policy text and query: the policy's generation.
    digest: [u8; 32],
}

impl RegoPolicy {
    /// Reads and compiles the policy at `path` for the rule `query`.
    pub fn load(path: &Path, query: &str) -> Result<Self, RegoLoadError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RegoLoadError::Read {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        Self::compile(&name, &text, query)
    }

    /// Compiles policy `text` (reported as `name` in errors) for the rule `query`.
    pub fn compile(name: &str, text: &str, query: &str) -> Result<Self, RegoLoadError> {
        let fail = |message: String| RegoLoadError::Compile {
            path: name.to_owned(),
            message,
        };
        let mut engine = Engine::new();
        engine
            .add_policy(name.to_owned(), text.to_owned())
            .map_err(|e| fail(e.to_string()))?;
        let compiled = engine
            .compile_with_entrypoint(&query.into())
            .map_err(|e| fail(format!("query {query}: {e}")))?;
        let mut hash = Sha256::new();
        hash.update(query.as_bytes());
        hash.update([0]);
        hash.update(text.as_bytes());
        Ok(Self {
            compiled,
            digest: hash.finalize().into(),
        })
    }

    /// Identifies the policy text and query (changes when either does).
    pub(crate) fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// Evaluates the rule for `input` (a JSON document); only `true` allows.
    pub fn evaluate(&self, input: &[u8]) -> Result<bool, EngineError> {
        let input = std::str::from_utf8(input)
            .map_err(|_| EngineError::Evaluation("the input is not UTF-8".into()))
            .and_then(|text| {
                Value::from_json_str(text).map_err(|e| EngineError::Evaluation(e.to_string()))
            })?;
        match self.compiled.eval_with_input(input) {
            Ok(Value::Bool(allowed)) => Ok(allowed),
            Ok(Value::Undefined) => Ok(false),
            Ok(other) => Err(EngineError::UnexpectedAnswer(format!(
                "the rule evaluated to {} instead of a boolean",
                kind_of(&other)
            ))),
            Err(e) => Err(EngineError::Evaluation(e.to_string())),
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Set(_) => "a set",
        Value::Object(_) => "an object",
        Value::Undefined => "undefined",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "package yatagarasu\nimport rego.v1\ndefault allow := false\n\
                          allow if input.claims.role == \"reader\"\n";

    #[test]
    fn evaluates_to_a_boolean() {
        let p = RegoPolicy::compile("p.rego", POLICY, "data.yatagarasu.allow").unwrap();
        assert!(p.evaluate(br#"{"claims":{"role":"reader"}}"#).unwrap());
        assert!(!p.evaluate(br#"{"claims":null}"#).unwrap());
    }

    #[test]
    fn a_query_naming_no_rule_does_not_compile() {
        let e = RegoPolicy::compile("p.rego", POLICY, "data.yatagarasu.nope").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.rego does not compile: query data.yatagarasu.nope: not a valid rule path"
        );
    }

    #[test]
    fn non_boolean_results_are_errors() {
        let p = RegoPolicy::compile(
            "p.rego",
            "package yatagarasu\nallow := \"yes\"\n",
            "data.yatagarasu.allow",
        )
        .unwrap();
        assert!(matches!(
            p.evaluate(b"{}"),
            Err(EngineError::UnexpectedAnswer(_))
        ));
    }
}
