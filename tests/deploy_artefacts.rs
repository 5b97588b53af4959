//! The deployment artefacts of `deploy/`, checked statically (there is no
//! Docker engine or Kubernetes cluster where the tests run).
//!
//! - `deploy/compose/`: the YAML parses; every file or directory a service
//!   mounts or builds from exists and every named volume is declared; every
//!   port the proxy's configuration listens on is published; every `${VAR}`
//!   it uses is set in the proxy's `environment`; Prometheus scrapes the
//!   metrics port and loads the mounted alert rules; `yatagarasu check`
//!   accepts the configuration with the compose environment.
//! - `deploy/kubernetes/prometheusrule.yaml` carries the rules of
//!   `deploy/prometheus/alerts.yaml` (same names, same expressions).
//! - `deploy/validate.sh` passes: the manifests against the Kubernetes
//!   schemas (`kubernetes-validate --strict`), yamllint, and its
//!   cross-checks; and it fails on a manifest with an unknown field.
//!   It needs the venv `scripts/test` makes (`YATAGARASU_DEPLOY_VENV`);
//!   without it the test says so and passes, except under `CI` or when
//!   `YATAGARASU_DEPLOY_VENV` is set, where a missing venv fails it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The proxy's service in the compose file.
const PROXY: &str = "yatagarasu";
/// Where the compose file mounts the proxy's configuration.
const CONFIG_TARGET: &str = "/etc/yatagarasu/config.yaml";
/// The venv `scripts/test` makes for `deploy/validate.sh`.
const DEPLOY_VENV: &str = "yatagarasu/python-kubernetes-validate-1.37.0-yamllint-1.38.0";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn compose_dir() -> PathBuf {
    repo("deploy/compose")
}

fn compose() -> Value {
    yaml(&compose_dir().join("docker-compose.yml"))
}

fn services(compose: &Value) -> &serde_json::Map<String, Value> {
    compose["services"].as_object().expect("services")
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `(source, target)` of a short-syntax volume entry `SRC:DST[:MODE]`.
fn volume(entry: &str) -> (&str, &str) {
    let mut parts = entry.split(':');
    let source = parts.next().unwrap_or_default();
    (source, parts.next().unwrap_or_default())
}

/// The container port of a short-syntax port entry `[IP:]HOST:CONTAINER`.
fn container_port(entry: &str) -> u16 {
    let last = entry.rsplit(':').next().unwrap_or_default();
    let port = last.split('/').next().unwrap_or_default();
    port.parse()
        .unwrap_or_else(|_| panic!("port entry {entry:?}"))
}

/// The `${NAME}` / `${NAME:-default}` references in the string values of a
/// document (where the proxy expands them; comments do not count), by name.
fn env_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => out.extend(s.split("${").skip(1).map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })),
        Value::Array(items) => items.iter().for_each(|v| env_refs(v, out)),
        Value::Object(map) => map.values().for_each(|v| env_refs(v, out)),
        _ => {}
    }
}

/// The proxy configuration file a compose file mounts, read from `dir`.
fn proxy_config_path(compose: &Value, dir: &Path) -> PathBuf {
    let proxy = &services(compose)[PROXY];
    let source = strings(&proxy["volumes"])
        .into_iter()
        .map(volume)
        .find(|(_, target)| *target == CONFIG_TARGET)
        .map(|(source, _)| source)
        .expect("the proxy's configuration is mounted");
    dir.join(source)
}

/// Everything wrong with a compose file whose relative paths start at `dir`.
fn compose_problems(compose: &Value, dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let named: BTreeSet<&str> = compose["volumes"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut host_ports = BTreeMap::new();
    for (name, service) in services(compose) {
        if let Some(build) = service.get("build") {
            let context = dir.join(build["context"].as_str().unwrap_or("."));
            let dockerfile = context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
            if !dockerfile.is_file() {
                problems.push(format!("{name}: no Dockerfile at {}", dockerfile.display()));
            }
        }
        for (source, _) in strings(&service["volumes"]).into_iter().map(volume) {
            let local = source.starts_with('.') || source.starts_with('/');
            if local && !dir.join(source).exists() {
                problems.push(format!("{name}: mounts {source}, which does not exist"));
            } else if !local && !named.contains(source) {
                problems.push(format!("{name}: volume {source} is not declared"));
            }
        }
        for entry in strings(&service["ports"]) {
            let host = entry.rsplit_once(':').map_or("", |(h, _)| h).to_owned();
            if let Some(other) = host_ports.insert(host.clone(), name.clone()) {
                problems.push(format!("{name} and {other} both publish {host}"));
            }
        }
    }
    problems.extend(proxy_problems(compose, dir));
    problems.extend(prometheus_problems(compose, dir));
    problems
}

/// The proxy's listeners are published and its `${VAR}`s are set.
fn proxy_problems(compose: &Value, dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let proxy = &services(compose)[PROXY];
    let path = proxy_config_path(compose, dir);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let config: Value = serde_norway::from_str(&text).unwrap_or_default();
    let mut published: BTreeSet<u16> = strings(&proxy["ports"])
        .into_iter()
        .map(container_port)
        .collect();
    published.extend(strings(&proxy["expose"]).into_iter().map(container_port));
    for section in ["server", "admin", "metrics"] {
        let Some(address) = config[section]["address"].as_str() else {
            continue;
        };
        let port = container_port(address);
        if !published.contains(&port) {
            problems.push(format!(
                "{section}.address {address}: port {port} is not published"
            ));
        }
    }
    let environment = proxy["environment"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut refs = BTreeSet::new();
    env_refs(&config, &mut refs);
    assert!(!refs.is_empty(), "{}: no ${{VAR}} at all", path.display());
    for var in refs {
        if !environment.contains_key(&var) {
            problems.push(format!("the proxy configuration uses ${{{var}}}, not set"));
        }
    }
    problems
}

/// Prometheus scrapes the proxy's metrics port and loads mounted rule files.
fn prometheus_problems(compose: &Value, dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let prometheus = &services(compose)["prometheus"];
    let mounts: BTreeMap<&str, &str> = strings(&prometheus["volumes"])
        .into_iter()
        .map(|e| (volume(e).1, volume(e).0))
        .collect();
    let Some(source) = mounts.get("/etc/prometheus/prometheus.yml") else {
        return vec!["prometheus: prometheus.yml is not mounted".to_owned()];
    };
    let scrape = yaml(&dir.join(source));
    for rule_file in strings(&scrape["rule_files"]) {
        if !mounts.contains_key(rule_file) {
            problems.push(format!("prometheus: rule file {rule_file} is not mounted"));
        }
    }
    let config: Value = serde_norway::from_str(
        &std::fs::read_to_string(proxy_config_path(compose, dir)).unwrap_or_default(),
    )
    .unwrap_or_default();
    let metrics_port = config["metrics"]["address"].as_str().map(container_port);
    let target = format!("{PROXY}:{}", metrics_port.unwrap_or_default());
    let targets = &scrape["scrape_configs"][0]["static_configs"][0]["targets"];
    if !strings(targets).contains(&target.as_str()) {
        problems.push(format!("prometheus does not scrape {target}"));
    }
    problems
}

/// The value compose would give `${NAME:-default}` with an empty environment.
fn compose_value(raw: &str) -> String {
    match raw.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(inner) => inner
            .split_once(":-")
            .map(|(_, d)| d)
            .unwrap_or("")
            .to_owned(),
        None => raw.to_owned(),
    }
}

fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_compose_file_references_only_what_exists_and_sets_what_the_proxy_needs() {
    let compose = compose();
    let problems = compose_problems(&compose, &compose_dir());
    assert!(problems.is_empty(), "{problems:#?}");
    let names: BTreeSet<&str> = services(&compose).keys().map(String::as_str).collect();
    for needed in [
        PROXY,
        "minio",
        "minio-setup",
        "redis",
        "prometheus",
        "grafana",
        "jaeger",
    ] {
        assert!(names.contains(needed), "no {needed} service");
    }
    assert_eq!(
        strings(&services(&compose)["jaeger"]["profiles"]),
        ["tracing"]
    );
}

#[test]
fn the_checks_catch_an_unpublished_port_an_unset_variable_and_a_missing_file() {
    let mut compose = compose();
    let proxy = compose["services"][PROXY].as_object_mut().unwrap();
    proxy["ports"] = serde_json::json!(["127.0.0.1:8080:8080", "127.0.0.1:9091:9091"]);
    proxy["environment"]
        .as_object_mut()
        .unwrap()
        .remove("REDIS_URL");
    compose["services"]["grafana"]["volumes"]
        .as_array_mut()
        .unwrap()
        .push("./no-such-dir:/x:ro".into());
    let problems = compose_problems(&compose, &compose_dir()).join("\n");
    assert!(
        problems.contains("port 9090 is not published"),
        "{problems}"
    );
    assert!(problems.contains("${REDIS_URL}, not set"), "{problems}");
    assert!(problems.contains("mounts ./no-such-dir"), "{problems}");
}

#[test]
fn yatagarasu_check_accepts_the_compose_configuration() {
    let compose = compose();
    let path = proxy_config_path(&compose, &compose_dir());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_yatagarasu"));
    cmd.arg("check").arg("--config").arg(&path).env_clear();
    let environment = services(&compose)[PROXY]["environment"]
        .as_object()
        .unwrap();
    for (name, value) in environment {
        cmd.env(name, compose_value(value.as_str().unwrap()));
    }
    let out = run(cmd);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("configuration OK (1 bucket(s))"),
        "{}",
        describe(&out)
    );
}

/// `(group, alert, expr)` of every rule in a list of rule groups.
fn rules(groups: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for group in groups.as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            out.push((
                group["name"].as_str().unwrap_or_default().to_owned(),
                rule["alert"].as_str().unwrap_or_default().to_owned(),
                rule["expr"].as_str().unwrap_or_default().trim().to_owned(),
            ));
        }
    }
    out
}

#[test]
fn the_prometheus_rule_carries_the_alert_rules() {
    let alerts = yaml(&repo("deploy/prometheus/alerts.yaml"));
    let rule = yaml(&repo("deploy/kubernetes/prometheusrule.yaml"));
    assert_eq!(rule["kind"], "PrometheusRule");
    let (want, got) = (rules(&alerts["groups"]), rules(&rule["spec"]["groups"]));
    assert!(want.len() >= 8, "only {} alerts", want.len());
    assert_eq!(got, want, "prometheusrule.yaml differs from alerts.yaml");
    assert_eq!(
        rule["spec"]["groups"], alerts["groups"],
        "labels or annotations differ"
    );
    let kustomization = yaml(&repo("deploy/kubernetes/kustomization.yaml"));
    assert!(strings(&kustomization["resources"]).contains(&"prometheusrule.yaml"));
}

/// The venv with kubernetes-validate and yamllint, or `None` (after saying
/// so) where the test may be skipped; panics under `CI` or when
/// `YATAGARASU_DEPLOY_VENV` is set but unusable.
fn deploy_venv() -> Option<PathBuf> {
    let explicit = std::env::var_os("YATAGARASU_DEPLOY_VENV");
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")));
    let venv = explicit
        .clone()
        .map(PathBuf::from)
        .or_else(|| cache.map(|c| c.join(DEPLOY_VENV)))?;
    let ready = ["kubernetes-validate", "yamllint", "python3"]
        .iter()
        .all(|tool| venv.join("bin").join(tool).is_file());
    if ready {
        return Some(venv);
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    let message = format!(
        "deploy/validate.sh needs kubernetes-validate and yamllint in {}; `scripts/test` installs them",
        venv.display()
    );
    assert!(!ci && explicit.is_none(), "{message}");
    eprintln!("SKIPPED: {message}");
    None
}

/// Runs `validate.sh` of the `deploy` directory `dir` with the venv's tools.
fn validate(dir: &Path, venv: &Path, tmp: &Path) -> Output {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![venv.join("bin")];
    paths.extend(std::env::split_paths(&path));
    let mut cmd = Command::new("bash");
    cmd.arg(dir.join("validate.sh"))
        .env("PATH", std::env::join_paths(paths).unwrap())
        .env("VALIDATE_REQUIRE", "yamllint kubernetes-validate")
        .env("YATAGARASU_BIN", env!("CARGO_BIN_EXE_yatagarasu"))
        .env("TMPDIR", tmp);
    run(cmd)
}

#[test]
fn validate_sh_passes_and_refuses_a_manifest_with_an_unknown_field() {
    let Some(venv) = deploy_venv() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = validate(&repo("deploy"), &venv, tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!stdout.contains("SKIP: kubernetes-validate"), "{stdout}");
    assert!(
        stdout.contains("configuration OK (2 bucket(s))"),
        "{stdout}"
    );

    // The same files with one unknown field in the PodDisruptionBudget.
    let copy = tmp.path().join("deploy");
    let cp = run({
        let mut c = Command::new("cp");
        c.arg("-r").arg(repo("deploy")).arg(&copy);
        c
    });
    assert!(cp.status.success(), "{}", describe(&cp));
    let pdb = copy.join("kubernetes/pdb.yaml");
    let text = std::fs::read_to_string(&pdb).unwrap();
    let broken = text.replace(
        "  minAvailable: 1\n",
        "  minAvailable: 1\n  minAvailabel: 1\n",
    );
    assert_ne!(broken, text);
    std::fs::write(&pdb, broken).unwrap();
    let out = validate(&copy, &venv, tmp.path());
    assert!(!out.status.success(), "{}", describe(&out));
    let all = describe(&out);
    assert!(all.contains("'minAvailabel' was unexpected"), "{all}");
}
