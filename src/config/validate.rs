//! Semantic validation: from [`RawConfig`] to the validated [`Config`].
//!
//! Each section is validated by its own concern (`server::config`,
//! `upstream::config`, `auth::config`, `cache::config`, …), given the path it
//! sits at; this module only calls them in order and assembles the result.
//! Every rule is checked for every bucket, and every violation is collected,
//! so that one run of `yatagarasu check` lists everything to fix. No message
//! contains an option's value: it may come from the environment or be secret.

use super::buckets::buckets;
use super::model::Config;
use super::raw::RawConfig;
use super::{ConfigError, Errors};
use crate::server::config::{admin, listener_conflicts, metrics, server};
use crate::{audit, auth, cache, cors, telemetry, upstream};

/// Checks every rule and builds the validated configuration, or returns every violation.
pub(crate) fn validate(
    raw: RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let mut errs = Errors::default();
    let server = server(raw.server, &mut errs);
    let admin = admin(raw.admin, &mut errs);
    let upstream = upstream::config::upstream(raw.upstream, &mut errs);
    let global_jwt = auth::config::global_jwt(raw.jwt, &mut errs);
    let cache = cache::config::cache(raw.cache, &mut errs);
    let cors = cors::config::cors(raw.cors, "cors", &mut errs);
    let audit_log = audit::config::audit_log(raw.audit_log, &mut errs);
    let observability = telemetry::otel::config::observability(raw.observability, &mut errs);
    let buckets = match (&global_jwt, &cache) {
        (Some(jwt), Some(cache)) => buckets(raw.buckets, env, jwt.as_ref(), cache, &mut errs),
        _ => None,
    };
    let logging = telemetry::config::logging(raw.logging, &mut errs);
    let metrics = metrics(raw.metrics, &mut errs);
    if let (Some(server), Some(admin), Some(metrics)) = (&server, &admin, &metrics) {
        listener_conflicts(server, admin, metrics, &mut errs);
    }
    match (server, admin, upstream, buckets, logging, metrics, cache) {
        (
            Some(server),
            Some(admin),
            Some(upstream),
            Some(buckets),
            Some(logging),
            Some(metrics),
            Some(cache),
        ) if errs.0.is_empty() => Ok(Config {
            server,
            admin,
            upstream,
            buckets,
            logging,
            metrics,
            cache,
            cors,
            audit_log,
            observability,
        }),
        _ => {
            debug_assert!(!errs.0.is_empty(), "a section failed without an error");
            Err(errs.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{load, one_error, with_s3, with_section};

    #[test]
    fn secrets_never_appear_in_errors() {
        let secret = "Zq9-very-secret-value";
        let text = "
admin:
  token: \"${SECRET}\"
  address: \"${SECRET}\"
server:
  port: \"${SECRET}\"
buckets:
  - name: \"${SECRET}\"
    path_prefix: \"${SECRET}\"
    s3:
      bucket: \"${SECRET}\"
      region: \"${SECRET}\"
      endpoint: \"${SECRET}\"
      access_key: \"${SECRET}\"
      anonymous: true
";
        let errors = load(text, &[("SECRET", secret)]).unwrap_err();
        assert!(!errors.is_empty());
        for e in &errors {
            assert!(!e.to_string().contains(secret), "{e}");
            assert!(!e.to_string().contains("very-secret"), "{e}");
        }
        // Sections replaced wholesale by a substituted string are redacted too.
        let errors = load("buckets: \"${SECRET}\"\n", &[("SECRET", secret)]).unwrap_err();
        assert_eq!(errors[0].path, "buckets");
        assert!(!errors[0].message.contains(secret), "{}", errors[0]);
        // Validated configurations do not leak through Debug either.
        let c = load(
            &with_s3("      access_key: \"${SECRET}\"\n      secret_key: \"${SECRET}\"\n"),
            &[("SECRET", secret)],
        )
        .unwrap();
        assert!(!format!("{c:?}").contains(secret));
    }

    // ------------------------------------------------------------ ${VAR} through the loader

    #[test]
    fn variable_expansion_through_the_loader() {
        let text = with_s3(
            "      access_key: \"${AK}\"\n      secret_key: \"${SK:-default-secret}\"\n      \
             endpoint: \"http://${HOST}:9000\"\n",
        )
        .replace("name: b", "name: \"cost$$center\"");
        let e = one_error(&text, &[("AK", "a"), ("HOST", "minio")]);
        // `$$` became `$`, which is not allowed in a name: expansion happened first.
        assert_eq!(e.path, "buckets[0].name");

        let text = text.replace("\"cost$$center\"", "b");
        let c = load(&text, &[("AK", "a"), ("HOST", "minio")]).unwrap();
        let s3 = &c.buckets[0].s3;
        assert_eq!(
            s3.credentials.as_ref().unwrap().secret_key.expose(),
            "default-secret"
        );
        assert_eq!(s3.endpoint.as_ref().unwrap().host(), Some("minio"));
        let c = load(&text, &[("AK", "a"), ("HOST", "minio"), ("SK", "")]).unwrap();
        assert_eq!(
            c.buckets[0]
                .s3
                .credentials
                .as_ref()
                .unwrap()
                .secret_key
                .expose(),
            "default-secret"
        );
    }

    #[test]
    fn missing_variable_names_variable_and_path() {
        let text = with_s3("      access_key: \"${AWS_KEY}\"\n      secret_key: \"${SK}\"\n");
        let errors = load(&text, &[("SK", "the-secret")]).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].to_string(),
            "buckets[0].s3.access_key: environment variable AWS_KEY is not set"
        );
        let errors = load(&with_s3("      region2: \"${NOPE}\"\n"), &[]).unwrap_err();
        // The unknown key is reported too, after the expansion error.
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["buckets[0].s3.region2", "buckets[0].s3.region2"]);
        assert!(errors[1].message.contains("unknown field"));
        // An unset variable in a number is not reported twice.
        let errors = load(&with_section("server:\n  port: \"${NOPE}\""), &[]).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let errors = load(&with_section("server:\n  port: \"${NOPE\""), &[]).unwrap_err();
        assert_eq!(errors[0].path, "server.port");
        assert!(errors[0].message.contains("unterminated"), "{errors:?}");
    }

    // ------------------------------------------------------------ all errors at once

    #[test]
    fn every_problem_is_reported() {
        let text = "
server:
  request_timeout_seconds: 0
  max_header_bytes: 10
admin:
  token: ''
logging:
  level: loud
buckets:
  - name: 'bad name'
    path_prefix: /health
    s3:
      bucket: BAD
      endpoint: 'ftp://x'
    auth:
      enabled: true
  - name: ok
    path_prefix: nope
    s3:
      bucket: fine-bucket
      region: us-east-1
      access_key: only-one
  - name: ok
    path_prefix: /ok
";
        let errors = load(text, &[]).unwrap_err();
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let expected_paths = [
            "server.request_timeout_seconds",
            "server.max_header_bytes",
            "admin.token",
            "buckets[0].name",
            "buckets[0].path_prefix",
            "buckets[0].s3.bucket",
            "buckets[0].s3.endpoint",
            "buckets[0].s3.region",
            "buckets[0].s3.access_key",
            "buckets[0].auth.enabled",
            "buckets[1].path_prefix",
            "buckets[1].s3.secret_key",
            "buckets[2].name",
            "buckets[2].s3",
            "logging.level",
        ];
        for path in expected_paths {
            assert!(
                errors.iter().any(|e| e.path == path),
                "no error at {path}:\n{}",
                lines.join("\n")
            );
        }
        assert!(!lines.iter().any(|l| l.contains("only-one")));
        assert!(
            lines.contains(
                &"buckets[2].name: duplicate bucket name (also used by buckets[1])".to_owned()
            ),
            "{}",
            lines.join("\n")
        );
    }
}
