//! Entity tags (RFC 9110 §8.8.3): parsing lists and the two comparisons.

use http::HeaderValue;

/// One entity tag: its opaque part (without quotes) and whether it is weak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityTag<'a> {
    /// `W/` prefix present.
    pub weak: bool,
    /// The characters between the quotes.
    pub opaque: &'a str,
}

impl<'a> EntityTag<'a> {
    /// Parses exactly one entity tag (surrounding whitespace allowed).
    pub fn parse(text: &'a str) -> Option<Self> {
        match parse_next(text.trim()) {
            Some((tag, "")) => Some(tag),
            _ => None,
        }
    }

    /// The stored object's `ETag` as S3 sent it; an unquoted value (some
    /// S3-compatible stores) counts as a strong tag with that opaque part.
    pub fn of_stored(etag: &'a str) -> Self {
        Self::parse(etag).unwrap_or(Self {
            weak: false,
            opaque: etag.trim(),
        })
    }
}

/// Strong comparison: both strong and identical (If-Match, If-Range).
pub fn strong_eq(a: &EntityTag<'_>, b: &EntityTag<'_>) -> bool {
    !a.weak && !b.weak && a.opaque == b.opaque
}

/// Weak comparison: identical opaque parts (If-None-Match).
pub fn weak_eq(a: &EntityTag<'_>, b: &EntityTag<'_>) -> bool {
    a.opaque == b.opaque
}

/// Whether any tag in the field lines `values` matches `current` under
/// `matches`; `*` matches any representation. Elements that are not valid
/// entity tags (and everything after one on the same line) never match.
pub fn list_matches<'v>(
    values: impl Iterator<Item = &'v HeaderValue>,
    current: Option<&EntityTag<'_>>,
    matches: fn(&EntityTag<'_>, &EntityTag<'_>) -> bool,
) -> bool {
    for value in values {
        let Ok(text) = value.to_str() else {
            continue;
        };
        if text.trim() == "*" {
            return true;
        }
        let Some(current) = current else {
            continue;
        };
        if ListIter::new(text).any(|tag| matches(&tag, current)) {
            return true;
        }
    }
    false
}

/// The tags of one `#entity-tag` list line, in order, stopping at the first
/// malformed element.
#[derive(Debug)]
pub struct ListIter<'a> {
    rest: &'a str,
}

impl<'a> ListIter<'a> {
    /// Iterates over the tags of `text`.
    pub fn new(text: &'a str) -> Self {
        Self { rest: text }
    }
}

impl<'a> Iterator for ListIter<'a> {
    type Item = EntityTag<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // Skip empty list elements and optional whitespace (RFC 9110 §5.6.1).
        let start = self.rest.trim_start_matches([' ', '\t', ',']);
        let (tag, rest) = parse_next(start)?;
        let rest = rest.trim_start_matches([' ', '\t']);
        if !(rest.is_empty() || rest.starts_with(',')) {
            self.rest = "";
            return None;
        }
        self.rest = rest;
        Some(tag)
    }
}

/// Parses `[W/]"etagc*"` at the start of `text`; returns it and the rest.
fn parse_next(text: &str) -> Option<(EntityTag<'_>, &str)> {
    let (weak, quoted) = match text.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let inner = quoted.strip_prefix('"')?;
    let end = inner.find('"')?;
    let opaque = &inner[..end];
    // etagc = %x21 / %x23-7E / obs-text: no controls, spaces or quotes.
    if !opaque.bytes().all(|b| b == 0x21 || b >= 0x23 && b != 0x7f) {
        return None;
    }
    Some((EntityTag { weak, opaque }, &inner[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(text: &str) -> EntityTag<'_> {
        EntityTag::parse(text).unwrap()
    }

    #[test]
    fn rfc_9110_comparison_table() {
        // RFC 9110 §8.8.3.2.
        let rows = [
            ("W/\"1\"", "W/\"1\"", false, true),
            ("W/\"1\"", "W/\"2\"", false, false),
            ("W/\"1\"", "\"1\"", false, true),
            ("\"1\"", "\"1\"", true, true),
        ];
        for (a, b, strong, weak) in rows {
            assert_eq!(strong_eq(&tag(a), &tag(b)), strong, "{a} {b} strong");
            assert_eq!(weak_eq(&tag(a), &tag(b)), weak, "{a} {b} weak");
            assert_eq!(strong_eq(&tag(b), &tag(a)), strong, "{b} {a} strong");
            assert_eq!(weak_eq(&tag(b), &tag(a)), weak, "{b} {a} weak");
        }
    }

    #[test]
    fn parses_single_tags_and_rejects_malformed_ones() {
        assert_eq!(
            tag("\"abc\""),
            EntityTag {
                weak: false,
                opaque: "abc"
            }
        );
        assert_eq!(
            tag(" W/\"abc\" "),
            EntityTag {
                weak: true,
                opaque: "abc"
            }
        );
        assert_eq!(
            tag("\"\""),
            EntityTag {
                weak: false,
                opaque: ""
            }
        );
        for bad in [
            "abc",
            "\"abc",
            "w/\"abc\"",
            "W/abc",
            "\"a b\"",
            "\"a\"b",
            "\"a\" \"b\"",
        ] {
            assert_eq!(EntityTag::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn stored_etags_without_quotes_are_strong() {
        assert_eq!(
            EntityTag::of_stored("abc"),
            EntityTag {
                weak: false,
                opaque: "abc"
            }
        );
        assert_eq!(
            EntityTag::of_stored("W/\"x\""),
            EntityTag {
                weak: true,
                opaque: "x"
            }
        );
    }

    #[test]
    fn lists_with_spaces_commas_and_empty_elements() {
        let tags: Vec<_> = ListIter::new(" \"a\" ,W/\"b\",, \t\"c,d\" ,").collect();
        assert_eq!(
            tags,
            [
                EntityTag {
                    weak: false,
                    opaque: "a"
                },
                EntityTag {
                    weak: true,
                    opaque: "b"
                },
                EntityTag {
                    weak: false,
                    opaque: "c,d"
                },
            ]
        );
        // A malformed element ends the list.
        let tags: Vec<_> = ListIter::new("\"a\", b, \"c\"").collect();
        assert_eq!(
            tags,
            [EntityTag {
                weak: false,
                opaque: "a"
            }]
        );
        let tags: Vec<_> = ListIter::new("\"a\"\"c\"").collect();
        assert_eq!(tags, []);
    }

    #[test]
    fn list_matching_over_several_lines_and_star() {
        let lines = [
            HeaderValue::from_static("\"x\""),
            HeaderValue::from_static("W/\"y\", \"z\""),
        ];
        let y = tag("\"y\"");
        assert!(list_matches(lines.iter(), Some(&y), weak_eq));
        assert!(!list_matches(lines.iter(), Some(&y), strong_eq));
        let z = tag("\"z\"");
        assert!(list_matches(lines.iter(), Some(&z), strong_eq));
        let star = [HeaderValue::from_static(" * ")];
        assert!(list_matches(star.iter(), None, strong_eq));
        assert!(!list_matches(lines.iter(), None, weak_eq));
    }
}
