//! The input document every policy engine decides on.
//!
//! `{method, path, bucket, key, claims, client_ip, headers}`: headers are
//! lower-cased (as HTTP/2 and the `http` crate keep them), repeated headers
//! are joined with `, `, and `authorization`, `cookie` and any header the
//! bucket takes tokens from are left out, so credentials never reach a policy
//! engine or the decision cache.
//!
//! The decision cache is keyed by [`InputDocument::cache_key`], a compact
//! length-prefixed encoding of the same fields: equal keys mean equal
//! documents, and building one copies bytes without escaping or sorting, so a
//! cached decision costs little more than the lookup. The JSON document is
//! only serialised when an engine has to be asked.

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
    /// The token payload the claims were decoded from, when known: the cache
    /// key uses it instead of serialising the claims (never serialised).
    #[serde(skip)]
    pub claims_payload: Option<&'a str>,
    /// The client's IP address, when known.
    pub client_ip: Option<IpAddr>,
    /// The request headers, minus `authorization`, `cookie` and token headers.
    pub headers: PolicyHeaders<'a>,
}

/// Keys longer than this are not built: such requests are decided without
/// the cache, so one huge request header cannot pin memory per entry.
pub(crate) const MAX_KEY_BYTES: usize = 16 * 1024;

impl InputDocument<'_> {
    /// The decision-cache key: every field of the document, each with its
    /// length, in a fixed order (headers in the request's own order, so two
    /// equal keys always describe equal documents; the converse need not
    /// hold, which only costs a cache miss). `None` when the key would exceed
    /// 16 KiB.
    pub fn cache_key(&self) -> Option<Vec<u8>> {
        let mut key = Vec::with_capacity(512);
        self.write_cache_key(&mut key).then_some(key)
    }

    /// Writes [`Self::cache_key`] into `out` (cleared first), so a caller can
    /// reuse one buffer; `false` when the key would exceed 16 KiB.
    pub fn write_cache_key(&self, out: &mut Vec<u8>) -> bool {
        out.clear();
        self.write_key_fields(&mut KeyWriter(out)).is_some() && out.len() <= MAX_KEY_BYTES
    }

    fn write_key_fields(&self, key: &mut KeyWriter<'_>) -> Option<()> {
        key.field(self.method.as_bytes())?;
        key.field(self.path.as_bytes())?;
        key.field(self.bucket.as_bytes())?;
        key.field(self.key.as_bytes())?;
        match (self.claims_payload, self.claims) {
            // The signed payload the claims came from: equal payloads, equal claims.
            (Some(payload), Some(_)) => {
                key.0.push(2);
                key.field(payload.as_bytes())?;
            }
            // Compact JSON of the claims: exact, but slower to build.
            (None, Some(claims)) => {
                key.0.push(1);
                let start = key.0.len();
                key.0.extend_from_slice(&[0, 0]);
                let _ = serde_json::to_writer(&mut *key.0, claims);
                let length = u16::try_from(key.0.len() - start - 2).ok()?;
                key.0[start..start + 2].copy_from_slice(&length.to_le_bytes());
            }
            (_, None) => key.0.push(0),
        }
        match self.client_ip {
            Some(IpAddr::V4(ip)) => {
                key.0.push(4);
                key.0.extend_from_slice(&ip.octets());
            }
            Some(IpAddr::V6(ip)) => {
                key.0.push(6);
                key.0.extend_from_slice(&ip.octets());
            }
            None => key.0.push(0),
        }
        // Last, so the list needs no count: the key ends where it ends.
        for (name, value) in self.headers.headers {
            if self.headers.shows(name) {
                key.field(name.as_str().as_bytes())?;
                key.field(value.as_bytes())?;
            }
        }
        Some(())
    }

    /// The document as compact JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        // Serialising borrowed strings, an optional map of JSON values and an
        // IP address into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, self);
        out
    }
}

/// Builds a cache key: fields prefixed with their 16-bit length.
struct KeyWriter<'a>(&'a mut Vec<u8>);

impl KeyWriter<'_> {
    /// Appends one length-prefixed field; `None` past [`MAX_KEY_BYTES`].
    fn field(&mut self, bytes: &[u8]) -> Option<()> {
        if self.0.len() + bytes.len() > MAX_KEY_BYTES {
            return None;
        }
        let length = u16::try_from(bytes.len()).ok()?;
        self.0.extend_from_slice(&length.to_le_bytes());
        self.0.extend_from_slice(bytes);
        Some(())
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

impl PolicyHeaders<'_> {
    /// Whether a policy may see header `name` (credentials never).
    fn shows(&self, name: &HeaderName) -> bool {
        !self.hidden.contains(name) && !HIDDEN_HEADERS.contains(&name.as_str())
    }
}

impl Serialize for PolicyHeaders<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut names: Vec<&str> = self
            .headers
            .keys()
            .filter(|name| self.shows(name))
            .map(HeaderName::as_str)
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
            claims_payload: None,
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
            claims_payload: None,
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

    fn doc<'a>(
        path: &'a str,
        key: &'a str,
        claims: Option<&'a serde_json::Map<String, serde_json::Value>>,
        headers: &'a HeaderMap,
    ) -> InputDocument<'a> {
        InputDocument {
            method: "GET",
            path,
            bucket: "private",
            key,
            claims,
            claims_payload: None,
            client_ip: Some("10.1.2.3".parse().unwrap()),
            headers: PolicyHeaders {
                headers,
                hidden: &[],
            },
        }
    }

    #[test]
    fn cache_keys_tell_every_field_apart() {
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", "curl/8".parse().unwrap());
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "alice".into());
        let base = doc("/p/ab", "ab", Some(&claims), &headers);
        let key = base.cache_key().unwrap();
        assert_eq!(
            key,
            doc("/p/ab", "ab", Some(&claims), &headers)
                .cache_key()
                .unwrap()
        );

        let mut variants = vec![
            doc("/p/ac", "ab", Some(&claims), &headers).cache_key(),
            doc("/p/ab", "a", Some(&claims), &headers).cache_key(),
            doc("/p/ab", "ab", None, &headers).cache_key(),
            InputDocument {
                method: "HEAD",
                ..doc("/p/ab", "ab", Some(&claims), &headers)
            }
            .cache_key(),
            InputDocument {
                client_ip: None,
                ..doc("/p/ab", "ab", Some(&claims), &headers)
            }
            .cache_key(),
            InputDocument {
                client_ip: Some("::1".parse().unwrap()),
                ..doc("/p/ab", "ab", Some(&claims), &headers)
            }
            .cache_key(),
            // Where one field ends and the next begins is part of the key.
            doc("/p/a", "bab", Some(&claims), &headers).cache_key(),
        ];
        let mut bob = claims.clone();
        bob.insert("sub".into(), "bob".into());
        variants.push(doc("/p/ab", "ab", Some(&bob), &headers).cache_key());
        let mut other_agent = headers.clone();
        other_agent.insert("user-agent", "curl/9".parse().unwrap());
        variants.push(doc("/p/ab", "ab", Some(&claims), &other_agent).cache_key());
        let mut more = headers.clone();
        more.append("user-agent", "again".parse().unwrap());
        variants.push(doc("/p/ab", "ab", Some(&claims), &more).cache_key());
        for (i, variant) in variants.iter().enumerate() {
            assert_ne!(variant.as_ref(), Some(&key), "variant {i}");
        }
    }

    #[test]
    fn credentials_stay_out_of_cache_keys() {
        let mut headers = HeaderMap::new();
        headers.insert("accept", "*/*".parse().unwrap());
        let key = doc("/p/k", "k", None, &headers).cache_key().unwrap();
        headers.insert("authorization", "Bearer secret-token".parse().unwrap());
        headers.insert("cookie", "session=secret-cookie".parse().unwrap());
        headers.insert("x-auth-token", "Token secret-custom".parse().unwrap());
        let hidden = [HeaderName::from_static("x-auth-token")];
        let with_credentials = InputDocument {
            headers: PolicyHeaders {
                headers: &headers,
                hidden: &hidden,
            },
            ..doc("/p/k", "k", None, &headers)
        };
        let with_credentials = with_credentials.cache_key().unwrap();
        assert_eq!(with_credentials, key);
        assert!(!String::from_utf8_lossy(&with_credentials).contains("secret"));
    }

    #[test]
    fn oversized_documents_have_no_cache_key() {
        let mut headers = HeaderMap::new();
        headers.insert("x-big", "x".repeat(MAX_KEY_BYTES).parse().unwrap());
        assert!(doc("/p/k", "k", None, &headers).cache_key().is_none());
        headers.insert("x-big", "x".repeat(100).parse().unwrap());
        assert!(doc("/p/k", "k", None, &headers).cache_key().is_some());
    }

    #[test]
    fn a_token_payload_stands_for_its_claims_in_the_key() {
        let headers = HeaderMap::new();
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "alice".into());
        let with = |payload| InputDocument {
            claims_payload: payload,
            ..doc("/p/k", "k", Some(&claims), &headers)
        };
        let alice = with(Some("eyJzdWIiOiJhbGljZSJ9")).cache_key().unwrap();
        assert_eq!(
            alice,
            with(Some("eyJzdWIiOiJhbGljZSJ9")).cache_key().unwrap()
        );
        assert_ne!(alice, with(Some("eyJzdWIiOiJib2IifQ")).cache_key().unwrap());
        assert_ne!(alice, with(None).cache_key().unwrap());
        // The payload is only a key: the document the engine sees has the claims.
        let json: serde_json::Value =
            serde_json::from_slice(&with(Some("eyJzdWIiOiJhbGljZSJ9")).to_json()).unwrap();
        assert_eq!(json["claims"], serde_json::json!({"sub": "alice"}));
        assert!(json.get("claims_payload").is_none());
    }
}
