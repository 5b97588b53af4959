//! Byte sizes: a number of MiB, or a whole number with a unit.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::config::Errors;

/// One mebibyte: the unit of every `*_mb` option.
pub(super) const MIB: u64 = 1024 * 1024;

/// A byte size: a number of MiB, or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Size(u64);

impl Size {
    /// The size in bytes.
    pub(super) fn bytes(self) -> u64 {
        self.0
    }
}

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = Size;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number of MiB or a size such as \"512KB\" or \"1GB\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
        v.checked_mul(MIB)
            .map(Size)
            .ok_or_else(|| E::custom("size too large"))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
        u64::try_from(v)
            .map_err(|_| E::custom("expected a non-negative size"))
            .and_then(|v| self.visit_u64(v))
    }

    // Never echoes the string: it may come from the environment.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
        parse_size(v).map(Size).ok_or_else(|| {
            E::custom("expected a number of MiB or a size such as \"512KB\" or \"1GB\"")
        })
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// Parses `"10"` (MiB), `"512KB"`, `"1 GiB"`, `"4096B"`; units are powers of 1024.
pub(super) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().ok()?;
    let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "mb" | "mib" | "m" => MIB,
        "b" => 1,
        "kb" | "kib" | "k" => 1024,
        "gb" | "gib" | "g" => 1024 * MIB,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// A byte size of at least one byte and at most `max` (a whole number of MiB).
pub(super) fn size(
    raw: Option<Size>,
    default: u64,
    max: u64,
    path: &str,
    errs: &mut Errors,
) -> u64 {
    let Some(Size(bytes)) = raw else {
        return default;
    };
    if bytes == 0 {
        errs.push(path, "must be greater than 0");
    } else if bytes > max {
        errs.push(path, format!("must be at most {} MiB", max / MIB));
    }
    bytes
}
