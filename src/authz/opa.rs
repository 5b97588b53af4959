//! OPA over HTTP: the Data API (`POST /v1/data/<path>` with `{"input": …}`).
//!
//! The answer's `result` decides: `true`, or an object whose `allow` is
//! `true`, allows; `false`, `{"allow": false}` and an undefined result
//! (`{}`: no rule matched) deny; anything else is an engine error.

use bytes::Bytes;

use super::EngineError;
use super::remote::JsonPeer;

/// Asks one OPA Data API URL.
#[derive(Debug, Clone)]
pub(crate) struct OpaEngine {
    pub(crate) peer: JsonPeer,
}

impl OpaEngine {
    /// The request body for an input document.
    pub(crate) fn query(input: &[u8]) -> Vec<u8> {
        let mut body = Vec::with_capacity(input.len() + 10);
        body.extend_from_slice(b"{\"input\":");
        body.extend_from_slice(input);
        body.push(b'}');
        body
    }

    /// Posts the query and reads OPA's decision.
    pub(crate) async fn decide(&self, query: &[u8]) -> Result<bool, EngineError> {
        let answer = self.peer.post(Bytes::copy_from_slice(query)).await?;
        decision(&answer)
    }
}

fn decision(answer: &serde_json::Value) -> Result<bool, EngineError> {
    let Some(object) = answer.as_object() else {
        return Err(EngineError::UnexpectedAnswer(
            "the answer is not a JSON object".into(),
        ));
    };
    match object.get("result") {
        None => Ok(false),
        Some(serde_json::Value::Bool(allowed)) => Ok(*allowed),
        Some(serde_json::Value::Object(result)) => match result.get("allow") {
            Some(serde_json::Value::Bool(allowed)) => Ok(*allowed),
            None => Ok(false),
            Some(_) => Err(EngineError::UnexpectedAnswer(
                "result.allow is not a boolean".into(),
            )),
        },
        Some(_) => Err(EngineError::UnexpectedAnswer(
            "result is neither a boolean nor an object with allow".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers() {
        assert!(decision(&json!({"result": true})).unwrap());
        assert!(!decision(&json!({"result": false})).unwrap());
        assert!(decision(&json!({"result": {"allow": true, "why": "x"}})).unwrap());
        assert!(!decision(&json!({"result": {"allow": false}})).unwrap());
        assert!(!decision(&json!({"result": {}})).unwrap());
        assert!(!decision(&json!({})).unwrap());
        assert!(decision(&json!({"result": "yes"})).is_err());
        assert!(decision(&json!({"result": {"allow": 1}})).is_err());
        assert!(decision(&json!([true])).is_err());
    }

    #[test]
    fn query_wraps_the_input() {
        let body = OpaEngine::query(br#"{"method":"GET"}"#);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value, json!({"input": {"method": "GET"}}));
    }
}
