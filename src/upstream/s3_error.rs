/// Extracts `<Code>` and `<Message>` from an S3 XML error body.
///
/// S3 error documents are flat and tiny; a bounded substring scan with entity
/// unescaping is all that is needed, and it never fails: missing elements are
/// empty strings.
pub fn parse_s3_error(body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    (element(&text, "Code"), element(&text, "Message"))
}

fn element(text: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let Some(start) = text.find(&open).map(|i| i + open.len()) else {
        return String::new();
    };
    let Some(len) = text[start..].find(&close) else {
        return String::new();
    };
    unescape(&text[start..start + len])
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_code_and_message() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The specified key does not exist &amp; more.</Message><Key>a</Key><RequestId>X</RequestId></Error>"#;
        let (code, message) = parse_s3_error(xml);
        assert_eq!(code, "NoSuchKey");
        assert_eq!(message, "The specified key does not exist & more.");
    }

    #[test]
    fn garbage_gives_empty_strings() {
        assert_eq!(
            parse_s3_error(b"<html>oops"),
            (String::new(), String::new())
        );
        assert_eq!(
            parse_s3_error(b"<Code>unterminated"),
            (String::new(), String::new())
        );
    }
}
