//! The JWS `crit` header parameter (RFC 7515 §4.1.11).
//!
//! `crit` names header extensions that change how the token must be read
//! (`b64: false` with `crit: ["b64"]`, RFC 7797, means the payload is not
//! base64url); a verifier that does not understand one of them must refuse
//! the token. `jsonwebtoken` parses `crit` but does not enforce it, and this
//! verifier understands no extension, so a token whose header has `crit` at
//! all (an empty list, which the RFC forbids, `null` or a non-array too) is
//! refused. The header is read once per verification, on the path that
//! verifies (never for a token answered from the verified-token cache, which
//! such a token can never enter).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::error::TokenProblem;

/// Reads a JSON object and tells whether it has a `crit` member, whatever
/// its value (`null` included); every other member is skipped unread.
struct HasCrit;

impl<'de> Visitor<'de> for HasCrit {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(is_crit) = map.next_key_seed(IsCrit)? {
            map.next_value::<IgnoredAny>()?;
            found |= is_crit;
        }
        Ok(found)
    }
}

/// A member name, read only to compare it with `crit`.
struct IsCrit;

impl<'de> DeserializeSeed<'de> for IsCrit {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for IsCrit {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<bool, E> {
        Ok(name == "crit")
    }
}

/// Refuses a token whose header has `crit`; a header that is not base64url
/// JSON is malformed (as `jsonwebtoken` would find too).
pub(crate) fn refuse_critical(token: &str) -> Result<(), TokenProblem> {
    let header = token.split('.').next().unwrap_or_default();
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenProblem::Malformed)?;
    let mut reader = serde_json::Deserializer::from_slice(&json);
    let has_crit = reader
        .deserialize_map(HasCrit)
        .and_then(|found| reader.end().map(|()| found))
        .map_err(|_| TokenProblem::Malformed)?;
    if has_crit {
        tracing::debug!("token refused: its header has crit, and no extension is supported");
        return Err(TokenProblem::UnsupportedCritical);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(json: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(json))
    }

    #[test]
    fn any_crit_is_refused() {
        for header in [
            r#"{"alg":"HS256","crit":["exp2"],"exp2":1}"#,
            r#"{"alg":"HS256","b64":false,"crit":["b64"]}"#,
            r#"{"alg":"HS256","crit":[]}"#,
            r#"{"alg":"HS256","crit":"b64"}"#,
            r#"{"alg":"HS256","crit":null}"#,
            r#"{"crit":{"a":1},"alg":"HS256"}"#,
        ] {
            assert_eq!(
                refuse_critical(&with_header(header)),
                Err(TokenProblem::UnsupportedCritical),
                "{header}"
            );
        }
    }

    #[test]
    fn headers_without_crit_pass_and_garbage_is_malformed() {
        for header in [
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS256","kid":"k","b64":false,"critical":1}"#,
        ] {
            assert_eq!(refuse_critical(&with_header(header)), Ok(()), "{header}");
        }
        for token in [
            "",
            "a.b",
            "!!!.e30.c2ln",
            &with_header("[1]"),
            &with_header("{"),
        ] {
            assert_eq!(
                refuse_critical(token),
                Err(TokenProblem::Malformed),
                "{token}"
            );
        }
    }
}
