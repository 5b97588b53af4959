use percent_encoding::percent_decode_str;

/// Why a path was refused; each maps to a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("the path must start with '/'")]
    NotAbsolute,
    /// The decoded bytes are not UTF-8.
    #[error("the path is not valid UTF-8 once decoded")]
    InvalidUtf8,
    /// A `.` or `..` segment, in any encoding.
    #[error("the path contains a '.' or '..' segment")]
    DotSegment,
    /// A backslash, which some backends treat as a separator.
    #[error("the path contains a backslash")]
    Backslash,
    /// NUL or another control character.
    #[error("the path contains a control character")]
    ControlCharacter,
}

impl PathError {
    /// The fixed message shown to the client.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotAbsolute => "the path must start with '/'",
            Self::InvalidUtf8 => "the path is not valid UTF-8 once decoded",
            Self::DotSegment => "the path contains a '.' or '..' segment",
            Self::Backslash => "the path contains a backslash",
            Self::ControlCharacter => "the path contains a control character",
        }
    }
}

/// Decodes a raw request path once, collapses `//`, and refuses anything unsafe.
///
/// Segments are also decoded a second time only to *check* them, so a
/// double-encoded `%252e%252e` is caught as `..`; the returned path keeps the
/// single decoding (a key may legitimately contain `%`).
pub fn sanitize_path(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| PathError::InvalidUtf8)?;
    let mut out = String::with_capacity(decoded.len());
    for segment in decoded.split('/') {
        if segment.is_empty() {
            continue;
        }
        check_segment(segment)?;
        out.push('/');
        out.push_str(segment);
    }
    if decoded.ends_with('/') || out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

fn check_segment(segment: &str) -> Result<(), PathError> {
    if segment.bytes().any(|b| b.is_ascii_control()) {
        return Err(PathError::ControlCharacter);
    }
    if segment.contains('\\') {
        return Err(PathError::Backslash);
    }
    if is_dot_segment(segment) {
        return Err(PathError::DotSegment);
    }
    if segment.contains('%') {
        // A second decoding reveals double-encoded traversal (`%252e` → `%2e` → `.`).
        let again = percent_decode_str(segment).decode_utf8_lossy();
        // `..%252f` is `../` there: a dot segment once split at the slash.
        if again.split('/').any(is_dot_segment) {
            return Err(PathError::DotSegment);
        }
        if again.contains('\\') {
            return Err(PathError::Backslash);
        }
        if again.bytes().any(|b| b.is_ascii_control()) {
            return Err(PathError::ControlCharacter);
        }
    }
    Ok(())
}

fn is_dot_segment(segment: &str) -> bool {
    segment == "." || segment == ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_pass_and_double_slashes_collapse() {
        assert_eq!(sanitize_path("/b/a.png").unwrap(), "/b/a.png");
        assert_eq!(sanitize_path("//b///a//c.txt").unwrap(), "/b/a/c.txt");
        assert_eq!(sanitize_path("/b/dir/").unwrap(), "/b/dir/");
        assert_eq!(sanitize_path("/").unwrap(), "/");
    }

    #[test]
    fn decodes_once() {
        assert_eq!(
            sanitize_path("/b/hello%20world%2Bx.txt").unwrap(),
            "/b/hello world+x.txt"
        );
        assert_eq!(sanitize_path("/b/100%2525.txt").unwrap(), "/b/100%25.txt");
        assert_eq!(sanitize_path("/b/%E6%97%A5.txt").unwrap(), "/b/日.txt");
        assert_eq!(sanitize_path("/b/a..b").unwrap(), "/b/a..b");
        assert_eq!(sanitize_path("/b/.hidden").unwrap(), "/b/.hidden");
    }

    #[test]
    fn traversal_in_every_encoding_is_refused() {
        for raw in [
            "/b/../etc/passwd",
            "/b/./a",
            "/b/%2e%2e/a",
            "/b/%2E%2E/a",
            "/b/%2e/a",
            "/b/.%2e/a",
            "/b/%252e%252e/a",
            "/b/%252E%252E/a",
            "/b/..",
            "/b/a/%2e%2e",
            "/b/..%252f",
            "/b/%252e%252e%252fa",
            "/b/x%252f..%252fy",
        ] {
            assert_eq!(sanitize_path(raw), Err(PathError::DotSegment), "{raw}");
        }
    }

    #[test]
    fn backslash_nul_control_and_bad_utf8_are_refused() {
        assert_eq!(sanitize_path("/b/a\\b"), Err(PathError::Backslash));
        assert_eq!(sanitize_path("/b/a%5Cb"), Err(PathError::Backslash));
        assert_eq!(sanitize_path("/b/a%255Cb"), Err(PathError::Backslash));
        assert_eq!(
            sanitize_path("/b/a%2500b"),
            Err(PathError::ControlCharacter)
        );
        assert_eq!(sanitize_path("/b/a%00b"), Err(PathError::ControlCharacter));
        assert_eq!(sanitize_path("/b/a%0Ab"), Err(PathError::ControlCharacter));
        assert_eq!(sanitize_path("/b/%FF%FE"), Err(PathError::InvalidUtf8));
        assert_eq!(sanitize_path("b/a"), Err(PathError::NotAbsolute));
    }
}

#[cfg(test)]
mod proptests;
