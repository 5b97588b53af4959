//! Lenient scalars: the leaf types of every raw configuration struct.
//!
//! A value produced by `${VAR}` expansion is always a string, so `port:
//! "${PORT}"` must still give a number and `enabled: "${FLAG}"` a boolean.
//! The visitors never put a string they were given into an error: it may
//! have come from the environment.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Unexpected, Visitor};

/// A string option; plain integers and booleans are taken as their text
/// (`bucket: 123456`), floats are refused (quote them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Str(pub(crate) String);

/// A non-negative integer option; a string holding one is accepted (`"${PORT}"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct U64(pub(crate) u64);

/// A boolean option; the strings `true` and `false` are accepted (`"${FLAG}"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bool(pub(crate) bool);

// The visitors never put a string they were given into an error: it may have
// come from the environment.

struct StrVisitor;

impl Visitor<'_> for StrVisitor {
    type Value = Str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Str, E> {
        Ok(Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Str, E> {
        Ok(Str(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Str, E> {
        Ok(Str(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Str, E> {
        Ok(Str(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Str, E> {
        Ok(Str(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Str, E> {
        Err(E::invalid_type(
            Unexpected::Float(v),
            &"a string (quote the value)",
        ))
    }
}

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrVisitor)
    }
}

struct U64Visitor;

impl Visitor<'_> for U64Visitor {
    type Value = U64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<U64, E> {
        Ok(U64(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<U64, E> {
        u64::try_from(v)
            .map(U64)
            .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<U64, E> {
        v.trim().parse().map(U64).map_err(|_| {
            E::custom("expected a non-negative integer, found a string that is not one")
        })
    }
}

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(U64Visitor)
    }
}

struct BoolVisitor;

impl Visitor<'_> for BoolVisitor {
    type Value = Bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true or false")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Bool, E> {
        Ok(Bool(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bool, E> {
        match v.trim() {
            t if t.eq_ignore_ascii_case("true") => Ok(Bool(true)),
            f if f.eq_ignore_ascii_case("false") => Ok(Bool(false)),
            _ => Err(E::custom(
                "expected true or false, found a string that is neither",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BoolVisitor)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{load, one_error, with_section};

    #[test]
    fn numbers_and_booleans_from_the_environment() {
        let text = with_section(
            "server:\n  address: \"${HOST}\"\n  port: \"${PORT}\"\n  max_connections: \
             ${MAXC}\nmetrics:\n  enabled: \"${METRICS_ON}\"",
        );
        let c = load(
            &text,
            &[
                ("HOST", "127.0.0.1"),
                ("PORT", "8089"),
                ("MAXC", "42"),
                ("METRICS_ON", "false"),
            ],
        )
        .unwrap();
        assert_eq!(c.server.address, "127.0.0.1:8089".parse().unwrap());
        assert_eq!(c.server.max_connections, 42);
        assert!(!c.metrics.enabled);

        let e = one_error(
            &text,
            &[
                ("HOST", "127.0.0.1"),
                ("PORT", "eighty"),
                ("MAXC", "42"),
                ("METRICS_ON", "false"),
            ],
        );
        assert_eq!(e.path, "server.port");
        assert!(!e.message.contains("eighty"), "{e}");
    }
}
