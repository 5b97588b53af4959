//! OpenFGA over HTTP: the Check API (`POST {endpoint}/stores/{store_id}/check`).
//!
//! The user is `user:<claim>` (the configured claim of the verified token),
//! the object comes from the template with `{bucket}` and `{key}` filled in,
//! and `{"allowed": true}` allows. The check tuple, not the whole input
//! document, is the decision cache key: OpenFGA sees nothing else.

use bytes::Bytes;
use serde::Serialize;

use super::EngineError;
use super::input::InputDocument;
use super::remote::JsonPeer;

/// Asks one OpenFGA store.
#[derive(Debug, Clone)]
pub(crate) struct OpenFgaEngine {
    pub(crate) peer: JsonPeer,
    pub(crate) authorization_model_id: Option<String>,
    /// Dot path of the user claim, split once.
    pub(crate) user_claim: Vec<String>,
    pub(crate) object: String,
    pub(crate) relation: String,
}

#[derive(Serialize)]
struct CheckRequest<'a> {
    tuple_key: TupleKey<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_model_id: Option<&'a str>,
}

#[derive(Serialize)]
struct TupleKey<'a> {
    user: String,
    relation: &'a str,
    object: String,
}

impl OpenFgaEngine {
    /// The Check request body, or `None` when the request has no user to check.
    pub(crate) fn query(&self, input: &InputDocument<'_>) -> Option<Vec<u8>> {
        let mut value = input.claims?.get(self.user_claim.first()?)?;
        for part in &self.user_claim[1..] {
            value = value.as_object()?.get(part)?;
        }
        let user = match value {
            serde_json::Value::String(s) if !s.is_empty() => format!("user:{s}"),
            serde_json::Value::Number(n) => format!("user:{n}"),
            _ => return None,
        };
        let object = self
            .object
            .replace("{bucket}", input.bucket)
            .replace("{key}", input.key);
        let body = CheckRequest {
            tuple_key: TupleKey {
                user,
                relation: &self.relation,
                object,
            },
            authorization_model_id: self.authorization_model_id.as_deref(),
        };
        serde_json::to_vec(&body).ok()
    }

    /// Posts the check and reads `allowed`.
    pub(crate) async fn decide(&self, query: &[u8]) -> Result<bool, EngineError> {
        let answer = self.peer.post(Bytes::copy_from_slice(query)).await?;
        match answer.get("allowed") {
            Some(serde_json::Value::Bool(allowed)) => Ok(*allowed),
            _ => Err(EngineError::UnexpectedAnswer(
                "the answer has no boolean allowed".into(),
            )),
        }
    }
}
