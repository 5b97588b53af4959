#!/usr/bin/env bash
# Soak run: mixed load for DURATION with a configuration reload every 10 s.
#
# Usage: scripts/soak.sh DURATION [RESULTS.json]      (DURATION: 60s, 30m, 1h)
#
# One nginx origin; Yatagarasu with four buckets:
#   /cached  — memory cache (64 MiB): hot objects (hits) and a fresh
#              ?versionId per request (misses that fill the cache and evict);
#   /plain   — no cache: byte ranges of a 1 MiB object, and 404s;
#   /private — JWT (HS256) required: requests carry a valid token;
#   /limited — `s3.rate_limit` of 20 requests/s: its 429s are intended.
# scripts/loadmix.py checks every status and body (SHA-256). Every 10 s the
# configuration file is changed (the /limited rate alternates 20 and 21) and
# SIGHUP reloads it. The proxy's VmRSS is sampled every REPORT_EVERY seconds.
#
# Reports: requests, failures (target 0; the 429s of /limited are counted
# apart), reloads, RSS samples and the RSS drift after WARMUP seconds
# (target ≤ 5 %).
#
# Knobs: WORKERS (32), REPORT_EVERY (60), WARMUP (a fifth of the run, at
# most 300 s), SKIP_BUILD=1, KEEP_TMP=1. Needs: cargo, nginx, curl, python3, ss.

set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 DURATION [RESULTS.json]" >&2; exit 2; }
case $1 in
    *h) SECONDS_TOTAL=$((${1%h} * 3600)) ;;
    *m) SECONDS_TOTAL=$((${1%m} * 60)) ;;
    *s) SECONDS_TOTAL=${1%s} ;;
    *) SECONDS_TOTAL=$1 ;;
esac
OUT=${2:-}
WORKERS=${WORKERS:-32}
REPORT_EVERY=${REPORT_EVERY:-60}
WARMUP=${WARMUP:-$((SECONDS_TOTAL / 5 < 300 ? SECONDS_TOTAL / 5 : 300))}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
[[ -n "$OUT" && "$OUT" != /* ]] && OUT="$PWD/$OUT"
LOG_TAG=soak
# shellcheck source=scripts/lib/servers.sh
source "$REPO/scripts/lib/servers.sh"
need_tools nginx curl python3 ss cargo
release_binary

# ------------------------------------------------------------------ data and plan
ROOT="$TMP/root"
mkdir -p "$ROOT/soak"
SECRET="soak-hs256-secret-0123456789abcdef"
python3 - "$ROOT/soak" "$SECRET" >"$TMP/plan.json" <<'PY'
import base64, hashlib, hmac, json, os, sys, time
root, secret = sys.argv[1], sys.argv[2].encode()
def put(name, data):
    with open(f"{root}/{name}", "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()
def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
def token(sub):
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": sub, "exp": int(time.time()) + 86400}).encode())
    sig = b64(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"
plan = []
for i in range(8):
    digest = put(f"hot-{i}.bin", os.urandom(4096))
    plan.append({"name": f"hit-{i}", "weight": 5, "path": f"/cached/hot-{i}.bin", "expect": {"200": digest}})
miss = put("miss.bin", os.urandom(1024))
plan.append({"name": "miss", "weight": 10, "path": "/cached/miss.bin?versionId={n}", "n": "counter",
             "expect": {"200": miss}})
big = os.urandom(1 << 20)
put("big.bin", big)
for start, end in ((0, 0), (1000, 66535), (524288, 1048575), (999999, 1000999)):
    plan.append({"name": f"range-{start}", "weight": 5, "path": "/plain/big.bin", "range": [start, end],
                 "expect": {"206": hashlib.sha256(big[start:end + 1]).hexdigest()}})
plan.append({"name": "not-found", "weight": 5, "path": "/plain/missing-{n}.bin", "n": 1000,
             "expect": {"404": None}})
private = put("private.bin", os.urandom(2048))
for user in ("alice", "bob"):
    plan.append({"name": f"private-{user}", "weight": 5, "path": "/private/private.bin",
                 "headers": {"Authorization": f"Bearer {token(user)}"}, "expect": {"200": private}})
limited = put("limited.bin", os.urandom(512))
plan.append({"name": "limited", "weight": 10, "path": "/limited/limited.bin", "expect": {"200": limited},
             "allowed": [429]})
json.dump(plan, sys.stdout)
PY

# ------------------------------------------------------------------ servers
free_port ORIGIN_PORT
free_port PROXY_PORT
free_port METRICS_PORT
nginx_origin "$TMP/origin" "$ORIGIN_PORT" "$ROOT"
write_config() { # rate of /limited
    local s3="{ bucket: soak, region: us-east-1, endpoint: \"http://127.0.0.1:$ORIGIN_PORT\", access_key: AKIDSOAK, secret_key: soak-secret-not-checked-by-nginx"
    cat >"$TMP/yatagarasu.yaml.new" <<YAML
server:
  address: "127.0.0.1:$PROXY_PORT"
metrics:
  enabled: true
  address: "127.0.0.1:$METRICS_PORT"
logging:
  level: warn
jwt:
  algorithm: HS256
  secret: "$SECRET"
cache:
  enabled: true
  cache_layers: ["memory"]
  memory: { max_item_size_mb: 4, max_cache_size_mb: 64, default_ttl_seconds: 3600 }
buckets:
  - { name: cached, path_prefix: /cached, s3: $s3 } }
  - { name: plain, path_prefix: /plain, s3: $s3 }, cache: { enabled: false } }
  - { name: private, path_prefix: /private, s3: $s3 }, auth: { enabled: true } }
  - { name: limited, path_prefix: /limited, cache: { enabled: false },
      s3: $s3, rate_limit: { requests_per_second: $1, burst: $1 } } }
YAML
    mv "$TMP/yatagarasu.yaml.new" "$TMP/yatagarasu.yaml"
}
write_config 20
"$BIN" check --config "$TMP/yatagarasu.yaml" >/dev/null
start origin nginx -c "$TMP/origin/nginx.conf" -p "$TMP/origin"
start yatagarasu "$BIN" --config "$TMP/yatagarasu.yaml"
PROXY_PID=$STARTED_PID
wait_http "http://127.0.0.1:$PROXY_PORT/cached/hot-0.bin"
wait_http "http://127.0.0.1:$METRICS_PORT/metrics"

# ------------------------------------------------------------------ run
log "mixed load for ${SECONDS_TOTAL}s ($WORKERS workers), a reload every 10 s"
python3 "$REPO/scripts/loadmix.py" --base "http://127.0.0.1:$PROXY_PORT" --plan "$TMP/plan.json" \
    --seconds "$SECONDS_TOTAL" --workers "$WORKERS" --pid "$PROXY_PID" --report-every "$REPORT_EVERY" \
    --source-ips 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5 >"$TMP/load.json" &
LOAD_PID=$!
rate=20
while kill -0 "$LOAD_PID" 2>/dev/null; do
    sleep 10
    kill -0 "$LOAD_PID" 2>/dev/null || break
    rate=$((rate == 20 ? 21 : 20))
    write_config "$rate"
    kill -HUP "$PROXY_PID"
done
wait "$LOAD_PID"

# ------------------------------------------------------------------ report
M="http://127.0.0.1:$METRICS_PORT/metrics"
python3 - "$TMP/load.json" "$WARMUP" \
    "$(metric_sum "$M" yatagarasu_config_reloads_total 'result="success"')" \
    "$(metric_sum "$M" yatagarasu_config_reloads_total 'result="failure"')" >"$TMP/result.json" <<'PY'
import json, sys
load = json.load(open(sys.argv[1]))
warmup = int(sys.argv[2])
samples = [s for s in load["rss_samples"] if s["rss_kib"]]
after = [s for s in samples if s["second"] >= warmup]
if len(after) >= 2:
    base, last = after[0]["rss_kib"], after[-1]["rss_kib"]
    load["rss_drift_after_warmup"] = round((last - base) / base, 4)
load.update({"warmup_seconds": warmup, "reloads": {"success": int(sys.argv[3]), "failure": int(sys.argv[4])}})
json.dump(load, sys.stdout, indent=1)
PY
cat "$TMP/result.json"
[[ -n "$OUT" ]] && cp "$TMP/result.json" "$OUT"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["failed"] == 0 else 1)' "$TMP/result.json"
