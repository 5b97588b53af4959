//! The input document every policy engine decides on.
//!
//! `{method, path, bucket, key, claims, client_ip, headers}`: headers are
//! lower-cased (as HTTP/2 and the `http` crate keep them), repeated headers
//! are joined with `, `, and `authorization`, `cookie` and any header the
//! bucket takes tokens from are left out, so credentials never reach a policy
//! engine or the decision cache. The document
//! is serialised once; the bytes are both what the engine evaluates and the
//! decision cache key.

use std::borrow::Cow;
use std::net::IpAddr;

use http::{HeaderMap, HeaderName};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// Headers never passed to a policy: they carry credentials.
const HIDDEN_HEADERS: [&str; 2] = ["authorization", "cookie"];

/// What a policy sees about one request (borrowed from it).
#[derive(Debug, Serialize)]
pub struct InputDocument<'a> {
    /// `GET` or `HEAD`.
    pub method: &'a str,
    /// The decoded request path (bucket prefix included).
    pub path: &'a str,
    /// The configured bucket name.
    pub bucket: &'a str,
    /// The object key (the path after the bucket prefix).
    pub key: &'a str,
    /// The verified token's claims; `null` when the bucket does not authenticate.
    pub claims: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// The client's IP address, when known.
    pub client_ip: Option<IpAddr>,
    /// The request headers, minus `authorization`, `cookie` and token headers.
    pub headers: PolicyHeaders<'a>,
}

impl InputDocument<'_> {
    /// The document as compact JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        // Serialising borrowed strings, an optional map of JSON values and an
        // IP address into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, self);
        out
    }
}

/// Request headers as a JSON object, in a stable (sorted) order so identical
/// requests give identical documents.
#[derive(Debug, Clone, Copy)]
pub struct PolicyHeaders<'a> {
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// Left out besides `authorization` and `cookie` (the bucket's token headers).
    pub hidden: &'a [HeaderName],
}

impl Serialize for PolicyHeaders<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut names: Vec<&str> = self
            .headers
            .keys()
            .filter(|name| !self.hidden.contains(name))
            .map(HeaderName::as_str)
            .filter(|name| !HIDDEN_HEADERS.contains(name))
            .collect();
        names.sort_unstable();
        let mut map = serializer.serialize_map(Some(names.len()))?;
        for name in names {
            map.serialize_entry(name, &joined(self.headers, name))?;
        }
        map.end()
    }
}

/// All values of header `name`, joined with `, ` (invalid UTF-8 replaced).
fn joined<'a>(headers: &'a HeaderMap, name: &str) -> Cow<'a, str> {
    let mut values = headers.get_all(name).iter();
    let first = values
        .next()
        .map_or(Cow::Borrowed(""), |v| String::from_utf8_lossy(v.as_bytes()));
    values.fold(first, |mut acc, v| {
        let acc_mut = acc.to_mut();
        acc_mut.push_str(", ");
        acc_mut.push_str(&String::from_utf8_lossy(v.as_bytes()));
        acc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_shape() {
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", "curl/8".parse().unwrap());
        headers.insert("authorization", "Bearer secret-token".parse().unwrap());
        headers.insert("cookie", "session=secret-cookie".parse().unwrap());
        headers.insert("x-auth-token", "Token secret-custom".parse().unwrap());
        headers.append("accept", "text/plain".parse().unwrap());
        headers.append("accept", "*/*".parse().unwrap());
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "alice".into());
        let doc = InputDocument {
            method: "GET",
            path: "/private/a b.txt",
            bucket: "private",
            key: "a b.txt",
            claims: Some(&claims),
            client_ip: Some("10.1.2.3".parse().unwrap()),
            headers: PolicyHeaders {
                headers: &headers,
                hidden: &[HeaderName::from_static("x-auth-token")],
            },
        };
        let json: serde_json::Value = serde_json::from_slice(&doc.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "method": "GET",
                "path": "/private/a b.txt",
                "bucket": "private",
                "key": "a b.txt",
                "claims": {"sub": "alice"},
                "client_ip": "10.1.2.3",
                "headers": {"accept": "text/plain, */*", "user-agent": "curl/8"},
            })
        );
        let text = String::from_utf8(doc.to_json()).unwrap();
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn absent_claims_and_address_are_null() {
        let headers = HeaderMap::new();
        let doc = InputDocument {
            method: "HEAD",
            path: "/p/k",
            bucket: "p",
            key: "k",
            claims: None,
            client_ip: None,
            headers: PolicyHeaders {
                headers: &headers,
                hidden: &[],
            },
        };
        let json: serde_json::Value = serde_json::from_slice(&doc.to_json()).unwrap();
        assert_eq!(json["claims"], serde_json::Value::Null);
        assert_eq!(json["client_ip"], serde_json::Value::Null);
        assert_eq!(json["headers"], serde_json::json!({}));
    }
}
