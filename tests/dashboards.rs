//! The Grafana dashboard and the Prometheus alert rules in `deploy/` against
//! what a running proxy exports: a short scripted workload (cache hits and
//! misses, a 404, a 429, a 414, a 503 from load shedding, a dead backend with
//! retries and a breaker, reloads that succeed and fail), then one scrape.
//! Every metric name in the dashboard's and the rules' PromQL (parsed with
//! `promql-parser`) must be exported, so renaming a metric breaks this test
//! rather than a dashboard; `promtool check rules` must accept the rules.
//! Every metric exported or described is documented in docs/operations.md.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use bytes::Bytes;
use common::*;
use promql_parser::parser::{self, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::Value;

const BKT: &str = "dash-bkt";

/// Names used by the dashboard or the rules that the workload cannot make
/// appear, with the reason. Each is still checked to be valid PromQL.
const NOT_PRODUCED: &[(&str, &str)] = &[
    (
        "yatagarasu_audit_dropped_total",
        "counts audit records dropped by a full output queue (the audit log's own tests fill one)",
    ),
    (
        "yatagarasu_retry_budget_exhausted_total",
        "needs more failing retries than the budget allows (tests/retry.rs)",
    ),
    (
        "yatagarasu_replica_failovers_total",
        "needs a bucket with replicas (tests/replicas.rs)",
    ),
    (
        "yatagarasu_tls_certificate_expiry_timestamp_seconds",
        "needs server.https with certificate files (tests/tls_listener.rs scrapes it)",
    ),
];

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Collects the metric names of every selector in an expression.
#[derive(Default)]
struct Names(BTreeSet<String>);

impl ExprVisitor for Names {
    type Error = String;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        let selector = match expr {
            Expr::VectorSelector(vs) => Some(vs),
            Expr::MatrixSelector(ms) => Some(&ms.vs),
            _ => None,
        };
        if let Some(vs) = selector {
            let name = vs.name.clone().or_else(|| {
                vs.matchers
                    .matchers
                    .iter()
                    .find(|m| m.name == "__name__")
                    .map(|m| m.value.clone())
            });
            self.0
                .insert(name.ok_or_else(|| format!("a selector without a metric name: {vs}"))?);
        }
        Ok(true)
    }
}

/// Parses `expr` (Grafana variables replaced by plain values) and adds its
/// metric names to `names`.
fn collect(expr: &str, origin: &str, names: &mut Names) {
    let interval = regex::Regex::new(r"\$__\w+").unwrap();
    let variable = regex::Regex::new(r"\$\{?\w+\}?").unwrap();
    let plain = interval.replace_all(expr, "5m");
    let plain = variable.replace_all(&plain, ".*");
    let parsed = parser::parse(&plain).unwrap_or_else(|e| panic!("{origin}: `{expr}`: {e}"));
    walk_expr(names, &parsed).unwrap_or_else(|e| panic!("{origin}: {e}"));
}

/// Every PromQL expression of the dashboard: panel targets (rows included)
/// and the selectors inside `label_values(...)` variable queries.
fn dashboard_names() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo("deploy/grafana/yatagarasu.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut names = Names::default();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    let mut targets = 0;
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        let title = panel["title"].as_str().unwrap_or("?");
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("every target has an expr");
            collect(expr, &format!("panel {title:?}"), &mut names);
            targets += 1;
        }
    }
    assert!(targets > 20, "only {targets} panel queries found");
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        let Some(query) = variable["definition"].as_str() else {
            continue;
        };
        if let Some(inner) = query.strip_prefix("label_values(") {
            let selector = inner.rsplit_once(',').map_or(inner, |(s, _)| s);
            collect(selector, "a dashboard variable", &mut names);
        }
    }
    names.0
}

/// Every rule's `expr` in the alert rules file.
fn alert_names() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo("deploy/prometheus/alerts.yaml")).unwrap();
    let rules: serde_json::Value = serde_norway::from_str(&text).expect("the rules are YAML");
    let mut names = Names::default();
    let mut alerts = 0;
    for group in rules["groups"].as_array().expect("a `groups` list") {
        for rule in group["rules"].as_array().expect("each group has `rules`") {
            let alert = rule["alert"].as_str().expect("alerting rules only");
            let expr = rule["expr"].as_str().expect("every rule has an expr");
            assert!(
                rule["labels"]["severity"].is_string()
                    && rule["annotations"]["summary"].is_string(),
                "{alert}: needs labels.severity and annotations.summary"
            );
            collect(expr, alert, &mut names);
            alerts += 1;
        }
    }
    assert!(alerts >= 8, "only {alerts} alerts found");
    names.0
}

/// A proxy with a cached bucket, a rate-limited one and one whose backend is
/// down (retries, breaker), at most two requests in flight (so a request
/// whose body the proxy has not yet dropped never sheds the next one), short
/// URIs only.
async fn start() -> (S3Server, Proxy) {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "small.txt", b"cached bytes");
    s3.write_pattern_object(BKT, "big.bin", 32 << 20).await;
    let files = BucketCfg::new("files", &s3, BKT);
    let mut limited = BucketCfg::new("limited", &s3, BKT);
    limited.extra_yaml = "      rate_limit: {requests_per_second: 1, burst: 1}\n".to_owned();
    let mut down = BucketCfg::at(
        "down",
        &format!("http://{}", closed_port()),
        BKT,
        "AKID",
        "secret",
    );
    down.extra_yaml = "      retry: { max_attempts: 2, initial_backoff_ms: 1, max_backoff_ms: 2 }\n      \
                       circuit_breaker: { failure_threshold: 2, success_threshold: 1, timeout_seconds: 600 }\n"
        .to_owned();
    let mut config = Config::new(vec![files, limited, down]);
    config.readiness_probe_interval_seconds = 3600;
    config.server_extra_yaml =
        "  max_concurrent_requests: 2\n  security_limits:\n    max_uri_length: 200\n".to_owned();
    config.extra_yaml = "cache:\n  enabled: true\n  memory:\n    max_item_size_mb: 1\n    \
                         max_cache_size_mb: 16\n    default_ttl_seconds: 3600\n"
        .to_owned();
    let proxy = Proxy::start(&config).await;
    (s3, proxy)
}

async fn reload(proxy: &Proxy) -> u16 {
    let headers = [("x-yatagarasu-admin", "1")];
    send_with_body(proxy.admin, "POST", "/admin/reload", &headers, Bytes::new())
        .await
        .status
}

/// Runs the workload and returns the scrape that follows it.
async fn workload() -> (Proxy, String) {
    let (_s3, proxy) = start().await;
    let miss = get(proxy.main, "/files/small.txt").await;
    assert_eq!((miss.status, miss.header("x-cache")), (200, Some("MISS")));
    let hit = get(proxy.main, "/files/small.txt").await;
    assert_eq!(
        (hit.status, hit.header("x-cache")),
        (200, Some("HIT memory"))
    );
    assert_eq!(get(proxy.main, "/files/absent.txt").await.status, 404);
    assert_eq!(
        get(proxy.main, &format!("/files/{}", "x".repeat(300)))
            .await
            .status,
        414
    );
    let mut statuses = Vec::new();
    while statuses.len() < 20 && !statuses.contains(&429) {
        statuses.push(get(proxy.main, "/limited/small.txt").await.status);
    }
    assert!(
        statuses.contains(&429),
        "no 429 from the limited bucket: {statuses:?}"
    );
    for _ in 0..3 {
        let status = get(proxy.main, "/down/small.txt").await.status;
        assert!(status >= 500, "a dead backend answered {status}");
    }
    assert_eq!(
        reload(&proxy).await,
        200,
        "an unchanged configuration reloads"
    );
    let good = std::fs::read_to_string(proxy.config_path()).unwrap();
    proxy.write_config("buckets: [ this is not a configuration");
    assert_ne!(
        reload(&proxy).await,
        200,
        "a broken configuration is refused"
    );
    proxy.write_config(&good);
    // Two requests in flight (downloads not yet read) and the next is shed.
    eventually("nothing in flight", DEADLINE, || async {
        let (_, s) = scrape(&proxy).await;
        match sample_sum(&s, "yatagarasu_http_requests_in_flight", &[]) {
            0.0 => Ok(()),
            n => Err(format!("{n} in flight")),
        }
    })
    .await;
    let mut first = Download::start(proxy.main, "/files/big.bin", &[]).await;
    let mut second = Download::start(proxy.main, "/files/big.bin", &[]).await;
    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(get(proxy.main, "/files/small.txt").await.status, 503);
    first.read_to_end(|_| {}).await.unwrap();
    second.read_to_end(|_| {}).await.unwrap();
    let (text, _) = scrape(&proxy).await;
    (proxy, text)
}

/// Names in a scrape: every sample's name, and every `# TYPE` line's.
fn exported(text: &str) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = parse_prometheus(text).into_iter().map(|s| s.name).collect();
    names.extend(
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned),
    );
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_the_dashboard_and_the_alerts_is_exported() {
    let (_proxy, text) = workload().await;
    let exported = exported(&text);
    let mut used = dashboard_names();
    used.extend(alert_names());
    let missing: Vec<&String> = used
        .iter()
        .filter(|name| !exported.contains(*name))
        .filter(|name| !NOT_PRODUCED.iter().any(|(n, _)| n == name))
        .collect();
    assert!(
        missing.is_empty(),
        "used by deploy/ but not exported after the workload: {missing:?}\n{text}"
    );
    for (name, why) in NOT_PRODUCED {
        assert!(
            used.contains(*name),
            "{name} is listed ({why}) but no longer used"
        );
    }
}

/// Every metric name in src/telemetry/metrics.rs: the described ones, even
/// those that only appear after an event.
fn described() -> BTreeSet<String> {
    let name = regex::Regex::new(r#""((?:yatagarasu|process)_[a-z0-9_]+)""#).unwrap();
    // The TLS listener's gauge is named beside the code that sets it.
    ["src/telemetry/metrics.rs", "src/server/tls/state.rs"]
        .iter()
        .flat_map(|file| {
            let source = std::fs::read_to_string(repo(file)).unwrap();
            name.captures_iter(&source)
                .map(|c| c[1].to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The names in the first column of the "Metrics" table of docs/operations.md.
fn documented() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(repo("docs/operations.md")).unwrap();
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Metrics\n"))
        .expect("a `## Metrics` section");
    let name = regex::Regex::new(r"`([a-z0-9_]+)`").unwrap();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split(" | ").next())
        .flat_map(|cell| {
            name.captures_iter(&format!("`{cell}"))
                .map(|c| c[1].to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exported_or_described_metric_is_documented() {
    let (_proxy, text) = workload().await;
    let mut names: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let described = described();
    assert!(described.len() > 40, "only {} described", described.len());
    names.extend(described);
    let documented = documented();
    let undocumented: Vec<&String> = names.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "not in the Metrics table of docs/operations.md: {undocumented:?}"
    );
    let unknown: Vec<&String> = documented.difference(&names).collect();
    assert!(
        unknown.is_empty(),
        "documented but neither exported nor described: {unknown:?}"
    );
}

#[test]
fn promtool_accepts_the_alert_rules() {
    let out = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(repo("deploy/prometheus/alerts.yaml"))
        .output()
        .expect("promtool (Debian package `prometheus`; scripts/test installs it)");
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
