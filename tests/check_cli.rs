//! `yatagarasu check --config FILE` and its `--test` alias.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{DEADLINE, binary};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    }

    fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the binary with `args` (`{}` is replaced by the config path), bounded by [`DEADLINE`].
fn run(args: &[&str], config: &Path, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(binary());
    for a in args {
        if *a == "{}" {
            cmd.arg(config);
        } else {
            cmd.arg(a);
        }
    }
    cmd.env_remove("YATAGARASU_CONFIG")
        .env_remove("YATA_TEST_UNSET_SECRET_VAR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn yatagarasu");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`yatagarasu {args:?}` did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

fn write(dir: &tempfile::TempDir, name: &str, yaml: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, yaml).unwrap();
    p
}

const GOOD: &str = r#"
server:
  address: "127.0.0.1:0"
  request_timeout_seconds: 30
  graceful_shutdown_timeout_seconds: 30
  readiness_probe_interval_seconds: 1
admin:
  address: "127.0.0.1:0"
  token: "check-admin-TOKEN-5521"
metrics:
  enabled: true
  address: "127.0.0.1:0"
logging:
  level: info
  format: json
buckets:
  - name: products
    path_prefix: /products
    s3:
      bucket: products-bkt
      region: us-east-1
      endpoint: "http://127.0.0.1:9"
      access_key: AKIACHECKGOOD0000001
      secret_key: "check-good-SECRET-value-0001"
"#;

/// Three buckets, three missing required keys.
const SEVERAL_PROBLEMS: &str = r#"
server:
  address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
  token: "check-admin-TOKEN-5521"
buckets:
  - name: alpha
    path_prefix: /alpha
    s3:
      bucket: alpha-bkt
      endpoint: "http://127.0.0.1:9"
      access_key: AKIACHECKBAD00000001
      secret_key: "check-bad-SECRET-value-0001"
  - name: beta
    path_prefix: /beta
    s3:
      region: us-east-1
      endpoint: "http://127.0.0.1:9"
      access_key: AKIACHECKBAD00000002
      secret_key: "check-bad-SECRET-value-0002"
  - name: gamma
    path_prefix: /gamma
    s3:
      bucket: gamma-bkt
      endpoint: "http://127.0.0.1:9"
      access_key: AKIACHECKBAD00000003
      secret_key: "check-bad-SECRET-value-0003"
"#;

const SECRETS: &[&str] = &[
    "check-admin-TOKEN-5521",
    "check-good-SECRET-value-0001",
    "check-bad-SECRET-value-0001",
    "check-bad-SECRET-value-0002",
    "check-bad-SECRET-value-0003",
];

#[track_caller]
fn assert_no_secrets(run: &Run) {
    let all = run.all();
    for s in SECRETS {
        assert!(
            !all.contains(s),
            "output contains the secret {s:?}:\n{}",
            run.describe()
        );
    }
}

#[test]
fn check_accepts_a_good_config() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(&dir, "good.yaml", GOOD);
    let r = run(&["check", "--config", "{}"], &good, &[]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert!(r.all().contains("configuration OK"), "{}", r.describe());
    assert_no_secrets(&r);
}

#[test]
fn test_flag_is_an_alias_of_check() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(&dir, "good.yaml", GOOD);
    let r = run(&["--test", "--config", "{}"], &good, &[]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert!(r.all().contains("configuration OK"), "{}", r.describe());

    let bad = write(&dir, "bad.yaml", SEVERAL_PROBLEMS);
    let r = run(&["--test", "--config", "{}"], &bad, &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(
        r.stderr_lines().contains(&"buckets[0].s3.region: missing"),
        "{}",
        r.describe()
    );
    assert!(!r.all().contains("configuration OK"), "{}", r.describe());
}

#[test]
fn check_reports_every_problem_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(&dir, "bad.yaml", SEVERAL_PROBLEMS);
    let r = run(&["check", "--config", "{}"], &bad, &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    let lines = r.stderr_lines();
    for expected in [
        "buckets[0].s3.region: missing",
        "buckets[1].s3.bucket: missing",
        "buckets[2].s3.region: missing",
    ] {
        assert!(
            lines.contains(&expected),
            "missing line {expected:?}:\n{}",
            r.describe()
        );
    }
    assert!(!r.all().contains("configuration OK"), "{}", r.describe());
    assert_no_secrets(&r);
}

#[test]
fn check_names_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let nested = write(
        &dir,
        "nested.yaml",
        &GOOD.replace(
            "      region: us-east-1\n",
            "      region: us-east-1\n      regoin: eu-west-1\n",
        ),
    );
    let r = run(&["check", "--config", "{}"], &nested, &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(
        r.stderr_lines()
            .iter()
            .any(|l| l.starts_with("buckets[0].s3")
                && l.contains("unknown field")
                && l.contains("regoin")),
        "expected a `buckets[0].s3...: unknown field `regoin`` line:\n{}",
        r.describe()
    );
    assert_no_secrets(&r);

    let top = write(
        &dir,
        "top.yaml",
        &format!("{GOOD}servre:\n  address: \"127.0.0.1:0\"\n"),
    );
    let r = run(&["check", "--config", "{}"], &top, &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(
        r.stderr_lines()
            .iter()
            .any(|l| l.contains("unknown field") && l.contains("servre")),
        "expected an `unknown field `servre`` line:\n{}",
        r.describe()
    );
}

#[test]
fn check_names_a_missing_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = GOOD.replace(
        "secret_key: \"check-good-SECRET-value-0001\"",
        "secret_key: \"${YATA_TEST_UNSET_SECRET_VAR}\"",
    );
    let cfg = write(&dir, "env.yaml", &yaml);
    let r = run(&["check", "--config", "{}"], &cfg, &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(
        r.stderr_lines()
            .iter()
            .any(|l| l.starts_with("buckets[0].s3.secret_key")
                && l.contains("YATA_TEST_UNSET_SECRET_VAR")),
        "expected a `buckets[0].s3.secret_key: ... YATA_TEST_UNSET_SECRET_VAR ...` line:\n{}",
        r.describe()
    );
}

#[test]
fn check_expands_environment_variables_without_printing_them() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = GOOD
        .replace(
            "secret_key: \"check-good-SECRET-value-0001\"",
            "secret_key: \"${YATA_TEST_SECRET}\"",
        )
        .replace(
            "request_timeout_seconds: 30",
            "request_timeout_seconds: \"${YATA_TEST_TIMEOUT}\"",
        );
    let cfg = write(&dir, "env.yaml", &yaml);

    let r = run(
        &["check", "--config", "{}"],
        &cfg,
        &[
            ("YATA_TEST_SECRET", "env-secret-Value-77"),
            ("YATA_TEST_TIMEOUT", "45"),
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert!(r.all().contains("configuration OK"), "{}", r.describe());
    assert!(!r.all().contains("env-secret-Value-77"), "{}", r.describe());

    // An invalid value from the environment is reported without being echoed.
    let r = run(
        &["check", "--config", "{}"],
        &cfg,
        &[
            ("YATA_TEST_SECRET", "env-secret-Value-77"),
            ("YATA_TEST_TIMEOUT", "not-a-number-SECRETISH"),
        ],
    );
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(
        r.stderr_lines()
            .iter()
            .any(|l| l.starts_with("server.request_timeout_seconds")),
        "{}",
        r.describe()
    );
    for s in ["not-a-number-SECRETISH", "env-secret-Value-77"] {
        assert!(
            !r.all().contains(s),
            "output echoes {s:?}:\n{}",
            r.describe()
        );
    }
}

#[test]
fn check_does_not_print_secrets_on_type_errors() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = GOOD.replace(
        "secret_key: \"check-good-SECRET-value-0001\"",
        "secret_key: [\"check-good-SECRET-value-0001\"]",
    );
    let cfg = write(&dir, "type.yaml", &yaml);
    let r = run(&["check", "--config", "{}"], &cfg, &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(
        r.stderr_lines()
            .iter()
            .any(|l| l.starts_with("buckets[0].s3.secret_key")),
        "{}",
        r.describe()
    );
    assert_no_secrets(&r);
}

#[test]
fn check_fails_on_unreadable_or_invalid_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("does-not-exist.yaml");
    let r = run(&["check", "--config", "{}"], &missing, &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(!r.stderr.trim().is_empty(), "{}", r.describe());

    let invalid = write(&dir, "invalid.yaml", "server: [\n  address: \"x\"\n");
    let r = run(&["check", "--config", "{}"], &invalid, &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(!r.stderr.trim().is_empty(), "{}", r.describe());
    assert!(!r.all().contains("configuration OK"), "{}", r.describe());
}

/// A missing environment variable is one problem among others: every problem
/// of the file is still listed.
#[test]
fn check_reports_environment_and_validation_problems_together() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = SEVERAL_PROBLEMS.replace(
        "secret_key: \"check-bad-SECRET-value-0002\"",
        "secret_key: \"${YATA_TEST_UNSET_SECRET_VAR}\"",
    );
    let cfg = write(&dir, "mixed.yaml", &yaml);
    let r = run(&["check", "--config", "{}"], &cfg, &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    let lines = r.stderr_lines();
    let mut missing = Vec::new();
    for expected in [
        "buckets[0].s3.region: missing",
        "buckets[1].s3.bucket: missing",
        "buckets[2].s3.region: missing",
    ] {
        if !lines.contains(&expected) {
            missing.push(expected);
        }
    }
    if !lines.iter().any(|l| {
        l.starts_with("buckets[1].s3.secret_key") && l.contains("YATA_TEST_UNSET_SECRET_VAR")
    }) {
        missing.push("buckets[1].s3.secret_key: ... YATA_TEST_UNSET_SECRET_VAR ...");
    }
    assert!(
        missing.is_empty(),
        "lines not printed: {missing:?}\n{}",
        r.describe()
    );
    assert_no_secrets(&r);
}

/// `GOOD` with `line` added to its `server:` section.
fn with_server_line(line: &str) -> String {
    GOOD.replace(
        "  readiness_probe_interval_seconds: 1\n",
        &format!("  readiness_probe_interval_seconds: 1\n  {line}\n"),
    )
}

/// Values that `check` used to accept although serving with them fails:
/// hyper panics on every connection, the listener task panics, every
/// cacheable GET or every authorized request is a 500, Redis refuses every
/// write, every valid token is refused. Each must be refused, naming its key.
#[test]
fn check_refuses_numbers_that_break_serving() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("allow.rego");
    std::fs::write(
        &policy,
        "package yatagarasu\nimport rego.v1\ndefault allow := true\n",
    )
    .unwrap();
    let max = u64::MAX;
    let cases: Vec<(&str, String)> = vec![
        (
            "server.header_read_timeout_seconds",
            with_server_line(&format!("header_read_timeout_seconds: {max}")),
        ),
        (
            "server.max_connections",
            with_server_line("max_connections: 2305843009213693952"),
        ),
        (
            "cache.memory.default_ttl_seconds",
            format!("{GOOD}cache:\n  enabled: true\n  memory:\n    default_ttl_seconds: {max}\n"),
        ),
        (
            "buckets[0].cache.ttl_seconds",
            format!("{GOOD}    cache:\n      ttl_seconds: {max}\ncache:\n  enabled: true\n"),
        ),
        (
            "cache.stale_if_error_seconds",
            format!("{GOOD}cache:\n  enabled: true\n  stale_if_error_seconds: {max}\n"),
        ),
        (
            "buckets[0].auth.authorization.decision_cache_ttl_seconds",
            format!(
                "{GOOD}    auth:\n      authorization:\n        type: rego\n        \
                 policy_path: {:?}\n        decision_cache_ttl_seconds: {max}\n",
                policy.to_str().unwrap()
            ),
        ),
        (
            "upstream.pool_idle_timeout_seconds",
            format!("{GOOD}upstream:\n  pool_idle_timeout_seconds: {max}\n"),
        ),
        (
            "cache.redis.ttl_seconds",
            format!(
                "{GOOD}cache:\n  enabled: true\n  cache_layers: [memory, redis]\n  redis:\n    \
                 redis_url: \"redis://127.0.0.1:1\"\n    ttl_seconds: {max}\n"
            ),
        ),
        (
            "jwt.leeway_seconds",
            format!(
                "{GOOD}    auth:\n      enabled: true\njwt:\n  algorithm: HS256\n  \
                 secret: \"check-jwt-secret-0123456789abcdef\"\n  \
                 leeway_seconds: 9223372036854775808\n"
            ),
        ),
    ];
    let mut accepted = Vec::new();
    for (i, (path, yaml)) in cases.iter().enumerate() {
        let file = write(&dir, &format!("extreme-{i}.yaml"), yaml);
        let r = run(&["check", "--config", "{}"], &file, &[]);
        let named = r
            .stderr_lines()
            .iter()
            .any(|l| l.starts_with(&format!("{path}: must be")));
        if r.code != Some(1) || !named {
            accepted.push(format!("{path}:\n{}", r.describe()));
        }
    }
    assert!(
        accepted.is_empty(),
        "not refused with the key's path:\n{}",
        accepted.join("\n")
    );
}
