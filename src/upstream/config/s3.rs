//! `buckets[i].s3`: where a bucket lives (name, region, endpoint,
//! addressing style), how requests to it are signed, and the extra CA its
//! endpoint may need.

use std::net::Ipv4Addr;

use super::RawS3;
use super::ca_bundle::ca_bundle;
use super::credential_source::{CredentialSource, RawCredentialSource, credential_source};
use super::credentials::{RawCredentials, credentials};
use super::model::{S3Config, S3Credentials};
use crate::config::{Bool, Errors, Str};

/// Validates the S3 target of the s3 block at `at`; `env` supplies the
/// `AWS_*` credential fallback. The caller has taken the extra keys its place
/// allows: any left is refused.
pub(crate) fn s3_config(
    raw: RawS3,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<S3Config> {
    let before = errs.count();
    for (key, present, why) in raw.place_keys() {
        if present {
            errs.push(format!("{at}.{key}"), format!("not allowed here: {why}"));
        }
    }
    let bucket = s3_bucket(raw.bucket, at, errs);
    let endpoint = raw.endpoint.and_then(|Str(e)| match parse_endpoint(&e) {
        Ok(uri) => Some(uri),
        Err(message) => {
            errs.push(format!("{at}.endpoint"), message);
            None
        }
    });
    let region = region(raw.region, endpoint.is_some(), at, errs);
    let keys = RawCredentials {
        access_key: raw.access_key,
        secret_key: raw.secret_key,
        session_token: raw.session_token,
        anonymous: raw.anonymous.is_some_and(|Bool(a)| a),
    };
    let (credentials, credential_source) =
        signing(raw.credentials, keys, region.as_deref(), at, env, errs);
    let ca_cert_path = ca_bundle(raw.ca_cert_path, endpoint.as_ref(), at, errs);
    if errs.count() != before {
        return None;
    }
    Some(S3Config {
        bucket: bucket?,
        region: region?,
        endpoint,
        force_path_style: raw.force_path_style.is_some_and(|Bool(b)| b),
        credentials,
        credential_source,
        ca_cert_path,
    })
}

/// How the target signs: a run-time source (`credentials:`), which
/// replaces the static keys (both at once is an error naming the keys,
/// never their values), or the keys (else the `AWS_*` environment).
fn signing(
    source: Option<RawCredentialSource>,
    keys: RawCredentials,
    region: Option<&str>,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> (Option<S3Credentials>, Option<CredentialSource>) {
    let Some(source) = source else {
        return (credentials(keys, at, env, errs), None);
    };
    let given: Vec<&str> = [
        ("access_key", keys.access_key.is_some()),
        ("secret_key", keys.secret_key.is_some()),
        ("session_token", keys.session_token.is_some()),
        ("anonymous", keys.anonymous),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect();
    if !given.is_empty() {
        errs.push(
            format!("{at}.credentials"),
            format!("cannot be combined with {}", given.join(", ")),
        );
    }
    let at = format!("{at}.credentials");
    (None, credential_source(source, region, &at, errs))
}

/// `bucket:`: every naming rule it breaks is reported.
fn s3_bucket(raw: Option<Str>, at: &str, errs: &mut Errors) -> Option<String> {
    let Some(Str(bucket)) = raw else {
        errs.push(format!("{at}.bucket"), "missing");
        return None;
    };
    let problems = s3_bucket_problems(&bucket);
    for p in &problems {
        errs.push(format!("{at}.bucket"), *p);
    }
    problems.is_empty().then_some(bucket)
}

/// `region:`: an AWS region name unless a custom endpoint is set.
fn region(raw: Option<Str>, custom_endpoint: bool, at: &str, errs: &mut Errors) -> Option<String> {
    let Some(Str(region)) = raw else {
        errs.push(format!("{at}.region"), "missing");
        return None;
    };
    match region_problem(&region, custom_endpoint) {
        Some(message) => {
            errs.push(format!("{at}.region"), message);
            None
        }
        None => Some(region),
    }
}

/// Every S3 bucket naming rule that `name` breaks.
fn s3_bucket_problems(name: &str) -> Vec<&'static str> {
    let mut problems = Vec::new();
    if !(3..=63).contains(&name.len()) {
        problems.push("must be 3 to 63 characters long");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    {
        problems.push("may contain only lowercase letters, digits, '.' and '-'");
    }
    // Case is the previous rule's business: report each rule independently.
    let bad_edge = |c: Option<char>| c.is_some_and(|c| !c.is_ascii_alphanumeric());
    if bad_edge(name.chars().next()) || bad_edge(name.chars().last()) {
        problems.push("must begin and end with a lowercase letter or digit");
    }
    if name.contains("..") {
        problems.push("must not contain two adjacent periods");
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        problems.push("must not be formatted as an IP address");
    }
    problems
}

fn region_problem(region: &str, custom_endpoint: bool) -> Option<&'static str> {
    if region.is_empty() {
        Some("must not be empty")
    } else if !custom_endpoint
        && !region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Some(
            "must be an AWS region such as us-east-1 (lowercase letters, digits and '-') \
             when no endpoint is set",
        )
    } else if !region.chars().all(|c| c.is_ascii_graphic() && c != '/') {
        Some("must not contain whitespace, control characters, '/' or non-ASCII characters")
    } else {
        None
    }
}

fn parse_endpoint(s: &str) -> Result<http::Uri, &'static str> {
    if s.contains('#') {
        return Err("must not have a fragment ('#')");
    }
    let uri: http::Uri = s
        .parse()
        .map_err(|_| "not a valid URL (expected http://host[:port] or https://host[:port])")?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        None => return Err("must be an absolute http:// or https:// URL"),
        Some(_) => return Err("the scheme must be http or https"),
    }
    let Some(authority) = uri.authority() else {
        return Err("has no host");
    };
    if authority.as_str().contains('@') {
        return Err(
            "must not contain user information (the part before '@'); use access_key and secret_key",
        );
    }
    if authority.host().is_empty() {
        return Err("has no host");
    }
    if uri.query().is_some() {
        return Err("must not have a query string");
    }
    if !matches!(uri.path(), "" | "/") {
        return Err("must not have a path (only scheme, host and port)");
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{assert_error, load, one_error, with_s3};

    #[test]
    fn s3_bucket_names() {
        for good in [
            "abc",
            "my-products-bucket",
            "a.b-c.9",
            "123456",
            &"a".repeat(63),
        ] {
            let text = with_s3("      anonymous: true\n").replace("my-bucket", good);
            load(&text, &[]).unwrap_or_else(|e| panic!("{good}: {e:?}"));
        }
        for (bad, needle) in [
            ("ab", "3 to 63"),
            (&"a".repeat(64), "3 to 63"),
            ("My-Bucket", "lowercase letters"),
            ("my_bucket", "lowercase letters"),
            ("-bucket", "begin and end"),
            ("bucket.", "begin and end"),
            ("my..bucket", "two adjacent periods"),
            ("192.168.1.1", "IP address"),
        ] {
            let text = with_s3("      anonymous: true\n").replace("my-bucket", bad);
            assert_error(&text, "buckets[0].s3.bucket", needle);
        }
        assert_error(
            "buckets:\n  - name: b\n    path_prefix: /b\n    s3:\n      region: us-east-1\n      anonymous: true\n",
            "buckets[0].s3.bucket",
            "missing",
        );
    }

    #[test]
    fn regions() {
        let e = one_error(
            "buckets:\n  - name: b\n    path_prefix: /b\n    s3:\n      bucket: my-bucket\n      anonymous: true\n",
            &[],
        );
        assert_eq!(e.to_string(), "buckets[0].s3.region: missing");
        let text = with_s3("      anonymous: true\n");
        assert_error(
            &text.replace("us-east-1", "\"\""),
            "buckets[0].s3.region",
            "must not be empty",
        );
        assert_error(
            &text.replace("us-east-1", "US_EAST"),
            "buckets[0].s3.region",
            "AWS region",
        );
        // Custom endpoints may use any region name their server expects.
        let custom = with_s3("      anonymous: true\n      endpoint: http://minio:9000\n")
            .replace("us-east-1", "Garage_1");
        load(&custom, &[]).unwrap();
        let custom = custom.replace("Garage_1", "\"a/b\"");
        assert_error(&custom, "buckets[0].s3.region", "'/'");
    }

    #[test]
    fn endpoints() {
        let ok = |endpoint: &str| {
            let c = load(
                &with_s3(&format!(
                    "      anonymous: true\n      endpoint: \"{endpoint}\"\n"
                )),
                &[],
            )
            .unwrap_or_else(|e| panic!("{endpoint}: {e:?}"));
            c.buckets[0].s3.endpoint.clone().unwrap()
        };
        let uri = ok("http://127.0.0.1:9000");
        assert_eq!(uri.scheme_str(), Some("http"));
        assert_eq!(uri.port_u16(), Some(9000));
        let uri = ok("https://s3.example.com/");
        assert_eq!(uri.host(), Some("s3.example.com"));
        ok("https://[::1]:9000");

        for (bad, needle) in [
            ("127.0.0.1:9000", "absolute http:// or https://"),
            ("ftp://example.com", "http or https"),
            ("http://example.com/bucket", "must not have a path"),
            ("http://example.com/?x=1", "query string"),
            ("http://example.com#frag", "fragment"),
            ("http://user:pass@example.com", "user information"),
            ("http://", "not a valid URL"),
            ("not a url", "not a valid URL"),
            ("/just/a/path", "absolute http"),
        ] {
            let e = one_error(
                &with_s3(&format!(
                    "      anonymous: true\n      endpoint: \"{bad}\"\n"
                )),
                &[],
            );
            assert_eq!(e.path, "buckets[0].s3.endpoint", "{bad}: {e}");
            assert!(e.message.contains(needle), "{bad}: {e}");
            assert!(!e.message.contains("pass"), "{e}");
        }
    }

    #[test]
    fn force_path_style() {
        let c = load(
            &with_s3("      anonymous: true\n      force_path_style: true\n"),
            &[],
        )
        .unwrap();
        assert!(c.buckets[0].s3.force_path_style);
    }
}
