//! The signing credentials of one bucket: `access_key` and `secret_key` (and
//! `session_token`) as written, else the `AWS_*` environment, unless
//! `anonymous: true` sends unsigned requests.

use super::model::S3Credentials;
use crate::config::{Errors, Secret, Str};

/// The message when a bucket has neither keys nor `anonymous: true`.
pub(super) const NO_CREDENTIALS: &str = "no credentials: set access_key and secret_key, set \
     AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, or set anonymous: true";

/// The credential options of one s3 section.
pub(super) struct RawCredentials {
    pub(super) access_key: Option<Str>,
    pub(super) secret_key: Option<Str>,
    pub(super) session_token: Option<Str>,
    pub(super) anonymous: bool,
}

/// Validates the credentials of the s3 section at `at`; `None` for an
/// anonymous bucket or after recording an error.
pub(super) fn credentials(
    raw: RawCredentials,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<S3Credentials> {
    if raw.anonymous {
        refuse_keys_of_anonymous(&raw, at, errs);
        return None;
    }
    let mut non_empty = |key: &str, value: Option<Str>| -> Option<Option<Secret>> {
        match value {
            None => Some(None),
            Some(Str(v)) if v.is_empty() => {
                errs.push(format!("{at}.{key}"), "must not be empty");
                None
            }
            Some(Str(v)) => Some(Some(Secret::new(v))),
        }
    };
    let access_key = non_empty("access_key", raw.access_key);
    let secret_key = non_empty("secret_key", raw.secret_key);
    let session_token = non_empty("session_token", raw.session_token);
    let (Some(access_key), Some(secret_key), Some(session_token)) =
        (access_key, secret_key, session_token)
    else {
        return None;
    };
    match (access_key, secret_key) {
        (Some(access_key), Some(secret_key)) => Some(S3Credentials {
            access_key,
            secret_key,
            session_token,
        }),
        (Some(_), None) => {
            errs.push(format!("{at}.secret_key"), "missing (access_key is set)");
            None
        }
        (None, Some(_)) => {
            errs.push(format!("{at}.access_key"), "missing (secret_key is set)");
            None
        }
        (None, None) => from_environment(session_token, at, env, errs),
    }
}

/// `anonymous: true` with any key set is refused, naming the keys (never their values).
fn refuse_keys_of_anonymous(raw: &RawCredentials, at: &str, errs: &mut Errors) {
    let given: Vec<&str> = [
        ("access_key", raw.access_key.is_some()),
        ("secret_key", raw.secret_key.is_some()),
        ("session_token", raw.session_token.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, present)| present.then_some(key))
    .collect();
    if !given.is_empty() {
        errs.push(
            format!("{at}.anonymous"),
            format!(
                "anonymous: true cannot be combined with {}",
                given.join(", ")
            ),
        );
    }
}

/// No keys written: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (both
/// non-empty), with the written `session_token` or else `AWS_SESSION_TOKEN`.
fn from_environment(
    session_token: Option<Secret>,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<S3Credentials> {
    let from_env = |name: &str| env(name).filter(|v| !v.is_empty());
    match (
        from_env("AWS_ACCESS_KEY_ID"),
        from_env("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(access_key), Some(secret_key)) => Some(S3Credentials {
            access_key: Secret::new(access_key),
            secret_key: Secret::new(secret_key),
            session_token: session_token.or_else(|| from_env("AWS_SESSION_TOKEN").map(Secret::new)),
        }),
        _ => {
            errs.push(format!("{at}.access_key"), NO_CREDENTIALS);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NO_CREDENTIALS;
    use crate::config::test_support::{assert_error, load, one_error, with_s3};

    #[test]
    fn explicit_credentials() {
        let c = load(
            &with_s3(
                "      access_key: \"${AK}\"\n      secret_key: \"${SK}\"\n      session_token: \
                 \"${ST}\"\n",
            ),
            &[("AK", "AKIA1"), ("SK", "sk1"), ("ST", "st1")],
        )
        .unwrap();
        let creds = c.buckets[0].s3.credentials.clone().unwrap();
        assert_eq!(creds.access_key.expose(), "AKIA1");
        assert_eq!(creds.secret_key.expose(), "sk1");
        assert_eq!(creds.session_token.unwrap().expose(), "st1");
        // Explicit keys win over the AWS_* environment.
        let c = load(
            &with_s3("      access_key: a\n      secret_key: s\n"),
            &[
                ("AWS_ACCESS_KEY_ID", "env-a"),
                ("AWS_SECRET_ACCESS_KEY", "env-s"),
            ],
        )
        .unwrap();
        let creds = c.buckets[0].s3.credentials.clone().unwrap();
        assert_eq!(creds.access_key.expose(), "a");
        assert!(creds.session_token.is_none());
    }

    #[test]
    fn credentials_fall_back_to_the_aws_environment() {
        let vars = [
            ("AWS_ACCESS_KEY_ID", "env-a"),
            ("AWS_SECRET_ACCESS_KEY", "env-s"),
            ("AWS_SESSION_TOKEN", "env-t"),
        ];
        let c = load(&with_s3(""), &vars).unwrap();
        let creds = c.buckets[0].s3.credentials.clone().unwrap();
        assert_eq!(creds.access_key.expose(), "env-a");
        assert_eq!(creds.secret_key.expose(), "env-s");
        assert_eq!(creds.session_token.unwrap().expose(), "env-t");

        let c = load(&with_s3(""), &vars[..2]).unwrap();
        assert!(
            c.buckets[0]
                .s3
                .credentials
                .clone()
                .unwrap()
                .session_token
                .is_none()
        );

        let e = one_error(&with_s3(""), &[]);
        assert_eq!(e.path, "buckets[0].s3.access_key");
        assert_eq!(e.message, NO_CREDENTIALS);
        // Half an environment pair, or empty values, are no credentials.
        let e = one_error(&with_s3(""), &vars[..1]);
        assert_eq!(e.message, NO_CREDENTIALS);
        let e = one_error(
            &with_s3(""),
            &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")],
        );
        assert_eq!(e.message, NO_CREDENTIALS);
    }

    #[test]
    fn credential_errors() {
        assert_error(
            &with_s3("      access_key: a\n"),
            "buckets[0].s3.secret_key",
            "missing (access_key is set)",
        );
        assert_error(
            &with_s3("      secret_key: s\n"),
            "buckets[0].s3.access_key",
            "missing (secret_key is set)",
        );
        let errors = load(
            &with_s3("      access_key: \"${AK}\"\n      secret_key: \"${SK}\"\n"),
            &[("AK", ""), ("SK", "")],
        )
        .unwrap_err();
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["buckets[0].s3.access_key", "buckets[0].s3.secret_key"]
        );
        assert!(errors.iter().all(|e| e.message == "must not be empty"));
        assert_error(
            &with_s3("      access_key: a\n      secret_key: s\n      session_token: \"\"\n"),
            "buckets[0].s3.session_token",
            "must not be empty",
        );
    }

    #[test]
    fn anonymous_buckets() {
        let c = load(
            &with_s3("      anonymous: true\n"),
            &[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "s")],
        )
        .unwrap();
        assert!(c.buckets[0].s3.credentials.is_none());
        let e = one_error(
            &with_s3(
                "      anonymous: true\n      access_key: AKIASECRET\n      secret_key: topsecret\n",
            ),
            &[],
        );
        assert_eq!(e.path, "buckets[0].s3.anonymous");
        assert!(e.message.contains("access_key, secret_key"), "{e}");
        assert!(!e.message.contains("topsecret") && !e.message.contains("AKIASECRET"));
    }
}
