//! Control characters in text-format log fields, written as escapes.
//!
//! The text format writes field values as they are: a newline inside a value
//! (an S3 error message echoing a query parameter, a client's header, a
//! path) would start a new line that a reader cannot tell from a real event,
//! and an ESC would drive the operator's terminal. [`EscapedFields`] formats
//! every field — the message, event fields, span fields, errors and their
//! sources — through [`EscapeControls`], so each event stays on one line.
//! The JSON format escapes by itself and does not use this.

use std::fmt;

use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};

/// The default text field formatter, with control characters escaped.
///
/// Used for event and span fields alike (`fmt::Layer::fmt_fields`), so no
/// field reaches the output without passing through it.
#[derive(Debug, Default)]
pub(crate) struct EscapedFields {
    inner: DefaultFields,
}

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut escaped = EscapeControls(writer);
        self.inner.format_fields(Writer::new(&mut escaped), fields)
    }
}

/// A `fmt::Write` that writes control characters (C0, DEL, C1, which covers
/// CR, LF, TAB and ESC) as `\n`, `\r`, `\t` or `\u{..}`, everything else as is.
///
/// Text without control characters is passed through in one write, with no
/// allocation.
pub(crate) struct EscapeControls<W>(pub(crate) W);

impl<W: fmt::Write> fmt::Write for EscapeControls<W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| c.is_control()) {
            self.0.write_str(&rest[..at])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                other => write!(self.0, "\\u{{{:x}}}", u32::from(other))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use super::*;

    fn escape(text: &str) -> String {
        let mut out = EscapeControls(String::new());
        out.write_str(text).unwrap();
        out.0
    }

    #[test]
    fn control_characters_become_escapes() {
        assert_eq!(escape("plain text, ünïcode ✓"), "plain text, ünïcode ✓");
        assert_eq!(escape("a\nb\r\nc\td"), "a\\nb\\r\\nc\\td");
        assert_eq!(escape("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape("nul\0del\u{7f}"), "nul\\u{0}del\\u{7f}");
        // C1 controls, NEL among them.
        assert_eq!(escape("x\u{85}y\u{9b}z"), "x\\u{85}y\\u{9b}z");
        assert_eq!(escape("\n"), "\\n");
        assert_eq!(escape(""), "");
    }
}
