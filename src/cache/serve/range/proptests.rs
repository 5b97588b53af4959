//! Properties of the `Range` parser on any field value a client can send:
//! it never panics, and whatever it decides to serve lies within the object,
//! never repeats a byte and never exceeds [`MAX_RANGES`] parts.

use http::{HeaderMap, HeaderValue, header};
use proptest::prelude::*;

use super::{ByteRange, MAX_RANGES, RangeDecision, decide, parse};

/// A position: small (near the object's end), or anywhere up to `u64::MAX`,
/// sometimes written with more digits than fit in 64 bits.
fn position() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..300).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[0-9]{20,30}",
        Just(String::new()),
        "[ -~]{0,3}",
    ]
}

/// One range-spec: `first-last`, `first-`, `-suffix`, or noise.
fn spec() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (position(), position()).prop_map(|(a, b)| format!("{a}-{b}")),
        1 => position().prop_map(|a| format!("{a}-")),
        1 => position().prop_map(|b| format!("-{b}")),
        1 => "[ \t,=0-9-]{0,6}",
    ]
}

/// A whole field value, usually `bytes=` and a list of specs.
fn field() -> impl Strategy<Value = String> {
    let unit = prop_oneof![
        8 => Just("bytes".to_owned()),
        1 => Just("BYTES ".to_owned()),
        1 => "[a-z]{0,6}",
    ];
    let sep = prop_oneof![Just(","), Just(", "), Just(" ,\t"), Just(",,")];
    (
        unit,
        proptest::collection::vec((spec(), sep), 0..(MAX_RANGES + 8)),
    )
        .prop_map(|(unit, specs)| {
            let mut text = format!("{unit}=");
            for (spec, sep) in specs {
                text.push_str(&spec);
                text.push_str(sep);
            }
            text
        })
}

/// An object length: empty, small, or huge.
fn length() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 1u64..400, any::<u64>()]
}

/// What every decision must satisfy for an object of `length` bytes.
fn check(text: &str, length: u64, decision: &RangeDecision) -> Result<(), TestCaseError> {
    let RangeDecision::Partial(ranges) = decision else {
        return Ok(());
    };
    prop_assert!(!ranges.is_empty(), "{text:?}");
    prop_assert!(
        ranges.len() <= MAX_RANGES,
        "{text:?}: {} parts",
        ranges.len()
    );
    for r in ranges {
        prop_assert!(
            r.first <= r.last && r.last < length,
            "{text:?} ({length}): {r:?}"
        );
        prop_assert_eq!(r.len(), r.last - r.first + 1);
    }
    let mut sorted: Vec<ByteRange> = ranges.clone();
    sorted.sort_unstable_by_key(|r| r.first);
    for pair in sorted.windows(2) {
        // Overlapping or touching ranges are merged into one.
        prop_assert!(pair[0].last + 1 < pair[1].first, "{text:?}: {ranges:?}");
    }
    Ok(())
}

proptest! {
    #[test]
    fn any_string_is_parsed_without_panic(text in any::<String>(), length in length()) {
        let decision = parse(&text, length);
        check(&text, length, &decision)?;
    }

    #[test]
    fn a_parsed_range_lies_within_the_object(text in field(), length in length()) {
        let decision = parse(&text, length);
        check(&text, length, &decision)?;
        if length <= 1 << 20
            && let RangeDecision::Partial(ranges) = &decision
        {
            // Slicing the body with them cannot panic.
            let body = vec![0u8; usize::try_from(length).unwrap_or(0)];
            for r in ranges {
                prop_assert_eq!(body[r.as_index()].len() as u64, r.len());
            }
        }
    }

    #[test]
    fn the_header_is_read_like_the_text(
        text in field(),
        length in length(),
        lines in 0usize..3,
    ) {
        let mut headers = HeaderMap::new();
        let Ok(value) = HeaderValue::from_str(&text) else {
            return Ok(());
        };
        for _ in 0..lines {
            headers.append(header::RANGE, value.clone());
        }
        let decision = decide(&headers, length);
        check(&text, length, &decision)?;
        if lines != 1 {
            // Absent, or several `Range` lines: the whole object.
            prop_assert_eq!(decision, RangeDecision::Full);
        } else {
            prop_assert_eq!(decision, parse(&text, length));
        }
    }
}
