use std::time::Duration;

use crate::config::test_support::{assert_error, load, with_s3};

/// A bucket with the given `replicas:` entries (each a flow mapping).
fn with_replicas(entries: &[&str]) -> String {
    let mut extra = String::from("      anonymous: true\n      replicas:\n");
    for e in entries {
        extra.push_str(&format!("        - {e}\n"));
    }
    with_s3(&extra)
}

const R1: &str = "{name: primary-us-west, bucket: products-primary, region: us-west-2, \
                  access_key: a1, secret_key: s1, priority: 1, timeout: 5}";
const R2: &str = "{name: backup-us-east, bucket: products-backup, region: us-east-1, \
                  access_key: a2, secret_key: s2, priority: 2, timeout: 8}";

/// The replica section of the original Yatagarasu's `config.example.yaml`
/// (its bucket entry, unchanged).
const ORIGINAL_EXAMPLE: &str = r#"
buckets:
  - name: "products-ha"
    path_prefix: "/products"
    s3:
      # Legacy fields (required for backward compatibility)
      bucket: "products-primary"
      region: "us-west-2"
      access_key: "${AWS_ACCESS_KEY_PRIMARY}"
      secret_key: "${AWS_SECRET_KEY_PRIMARY}"

      # Replica set configuration (Phase 23)
      # Replicas are selected by priority (lower = higher priority)
      # Circuit breaker automatically detects unhealthy replicas
      replicas:
        # Primary replica (highest priority)
        - name: "primary-us-west"
          bucket: "products-primary"
          region: "us-west-2"
          access_key: "${AWS_ACCESS_KEY_PRIMARY}"
          secret_key: "${AWS_SECRET_KEY_PRIMARY}"
          priority: 1        # Lower = higher priority
          timeout: 5         # Connection/request timeout in seconds

        # Backup replica in different region
        - name: "backup-us-east"
          bucket: "products-backup"
          region: "us-east-1"
          access_key: "${AWS_ACCESS_KEY_BACKUP}"
          secret_key: "${AWS_SECRET_KEY_BACKUP}"
          priority: 2        # Used when primary fails
          timeout: 8         # Higher timeout for cross-region

        # Optional: Third fallback replica (e.g., different cloud provider)
        - name: "backup-minio"
          bucket: "products"
          region: "us-east-1"
          access_key: "${MINIO_ACCESS_KEY}"
          secret_key: "${MINIO_SECRET_KEY}"
          endpoint: "https://minio.example.com:9000"  # Custom S3-compatible endpoint
          priority: 3
          timeout: 10

      # Circuit breaker configuration (optional, applies to replica health)
      circuit_breaker:
        failure_threshold: 5       # Open circuit after N failures
        success_threshold: 2       # Close circuit after N successes in half-open
        timeout_seconds: 30        # Half-open state timeout

    auth:
      enabled: false
"#;

#[test]
fn the_original_example_loads() {
    let vars = [
        ("AWS_ACCESS_KEY_PRIMARY", "AKIAPRIMARY"),
        ("AWS_SECRET_KEY_PRIMARY", "primary-secret"),
        ("AWS_ACCESS_KEY_BACKUP", "AKIABACKUP"),
        ("AWS_SECRET_KEY_BACKUP", "backup-secret"),
        ("MINIO_ACCESS_KEY", "minio"),
        ("MINIO_SECRET_KEY", "minio-secret"),
    ];
    let c = load(ORIGINAL_EXAMPLE, &vars).unwrap();
    let replicas = &c.buckets[0].replicas;
    let names: Vec<_> = replicas.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["primary-us-west", "backup-us-east", "backup-minio"]);
    assert_eq!(replicas[1].s3.region, "us-east-1");
    assert_eq!(replicas[1].timeout, Some(Duration::from_secs(8)));
    let creds = replicas[1].s3.credentials.as_ref().unwrap();
    assert_eq!(creds.access_key.expose(), "AKIABACKUP");
    assert_eq!(
        replicas[2].s3.endpoint.as_ref().unwrap().to_string(),
        "https://minio.example.com:9000/"
    );
    assert!(c.buckets[0].fallback_on_404.is_none());
    let breaker = c.buckets[0].circuit_breaker.unwrap();
    assert_eq!(
        (
            breaker.failure_threshold,
            breaker.success_threshold,
            breaker.timeout
        ),
        (5, 2, Duration::from_secs(30))
    );
}

#[test]
fn replicas_are_sorted_by_priority_and_timeout_is_optional() {
    let r3 = "{name: third, bucket: bkt-three, region: eu-west-1, anonymous: true, priority: 7}";
    let c = load(&with_replicas(&[r3, R2, R1]), &[]).unwrap();
    let order: Vec<_> = c.buckets[0]
        .replicas
        .iter()
        .map(|r| (r.name.as_str(), r.priority))
        .collect();
    assert_eq!(
        order,
        [("primary-us-west", 1), ("backup-us-east", 2), ("third", 7)]
    );
    assert_eq!(c.buckets[0].replicas[2].timeout, None);
    assert!(c.buckets[0].replicas[2].s3.credentials.is_none());
    // Without replicas the bucket has none.
    let c = load(&with_s3("      anonymous: true\n"), &[]).unwrap();
    assert!(c.buckets[0].replicas.is_empty());
}

#[test]
fn replica_errors_name_their_path() {
    let at = |i: usize, key: &str| format!("buckets[0].s3.replicas[{i}].{key}");
    let dup_name = R2.replace("backup-us-east", "primary-us-west");
    assert_error(
        &with_replicas(&[R1, &dup_name]),
        &at(1, "name"),
        "duplicate replica name (also used by replicas[0])",
    );
    assert_error(
        &with_replicas(&[R1, &R2.replace("priority: 2", "priority: 1")]),
        &at(1, "priority"),
        "duplicate priority (also used by replicas[0])",
    );
    for (bad, needle) in [
        ("priority: 0", "between 1 and 255"),
        ("priority: 256", "between 1 and 255"),
    ] {
        assert_error(
            &with_replicas(&[R1, &R2.replace("priority: 2", bad)]),
            &at(1, "priority"),
            needle,
        );
    }
    assert_error(
        &with_replicas(&[R1, &R2.replace(", priority: 2", "")]),
        &at(1, "priority"),
        "missing",
    );
    assert_error(
        &with_replicas(&[R1, &R2.replace("timeout: 8", "timeout: 0")]),
        &at(1, "timeout"),
        "greater than 0",
    );
    for bad in ["\"has space\"", "\"a/b\"", "\"\"", "\"ünï\""] {
        assert_error(
            &with_replicas(&[R1, &R2.replace("backup-us-east", bad)]),
            &at(1, "name"),
            "metrics label",
        );
    }
    assert_error(
        &with_replicas(&[R1, &R2.replace("name: backup-us-east, ", "")]),
        &at(1, "name"),
        "missing",
    );
    // The s3 keys are validated like the bucket's own.
    assert_error(
        &with_replicas(&[R1, &R2.replace("products-backup", "Bad_Bucket")]),
        &at(1, "bucket"),
        "lowercase letters",
    );
    assert_error(
        &with_replicas(&[R1, &R2.replace(", secret_key: s2", "")]),
        &at(1, "secret_key"),
        "missing (access_key is set)",
    );
    assert_error(
        &with_replicas(&[R1, &R2.replace("priority: 2", "priority: 2, colour: red")]),
        "buckets[0].s3.replicas[1].colour",
        "unknown field",
    );
    assert_error(
        &with_replicas(&[R1, &R2.replace("priority: 2", "priority: 2, retry: {}")]),
        "buckets[0].s3.replicas[1].retry",
        "not allowed here: only a bucket's own s3 section takes it",
    );
    assert_error(
        &with_s3("      anonymous: true\n      name: primary\n"),
        "buckets[0].s3.name",
        "not allowed here: only a replica",
    );
    assert_error(
        &with_s3("      anonymous: true\n      replicas: []\n"),
        "buckets[0].s3.replicas",
        "at least one replica",
    );
}

#[test]
fn replica_keys_expand_variables_and_take_the_other_s3_keys() {
    let r = "{name: r, bucket: bkt-r, region: garage, endpoint: \"http://127.0.0.1:9\", \
             access_key: \"${AK}\", secret_key: \"${SK}\", session_token: \"${ST}\", \
             force_path_style: true, priority: \"${P}\"}";
    let c = load(
        &with_replicas(&[r]),
        &[("AK", "ak"), ("SK", "sk"), ("ST", "st"), ("P", "3")],
    )
    .unwrap();
    let replica = &c.buckets[0].replicas[0];
    assert_eq!(replica.priority, 3);
    assert!(replica.s3.force_path_style);
    let creds = replica.s3.credentials.as_ref().unwrap();
    assert_eq!(creds.session_token.as_ref().unwrap().expose(), "st");
}

#[test]
fn fallback_on_404_is_an_s3_block() {
    let fallback = "      anonymous: true\n      fallback_on_404:\n        bucket: old-products\n        \
                    region: eu-west-1\n        access_key: fa\n        secret_key: fs\n        \
                    endpoint: \"http://127.0.0.1:9000\"\n";
    let c = load(&with_s3(fallback), &[]).unwrap();
    let f = c.buckets[0].fallback_on_404.as_ref().unwrap();
    assert_eq!(f.bucket, "old-products");
    assert_eq!(f.credentials.as_ref().unwrap().access_key.expose(), "fa");
    assert_error(
        &with_s3(&fallback.replace("region: eu-west-1\n        ", "")),
        "buckets[0].s3.fallback_on_404.region",
        "missing",
    );
    assert_error(
        &with_s3(&fallback.replace("bucket: old-products", "bucket: Old")),
        "buckets[0].s3.fallback_on_404.bucket",
        "lowercase letters",
    );
    assert_error(
        &with_s3(&format!("{fallback}        replicas: []\n")),
        "buckets[0].s3.fallback_on_404.replicas",
        "not allowed here: only a bucket's own s3 section takes it",
    );
    assert_error(
        &with_s3(&format!("{fallback}        priority: 1\n")),
        "buckets[0].s3.fallback_on_404.priority",
        "not allowed here: only a replica",
    );
}
