#!/usr/bin/env bash
# Chaos run: load through a bucket with two replicas while the primary is
# killed (SIGKILL) and restarted several times.
#
# Usage: scripts/chaos.sh [RESULTS.json]
#
# Two nginx origins serve the same objects (the primary and the backup
# replica); Yatagarasu serves them at /ha with retries and a circuit breaker.
# scripts/loadmix.py keeps WORKERS keep-alive clients busy for DURATION
# seconds and checks the status and the SHA-256 of every body. Meanwhile the
# primary is killed KILLS times (evenly spread) and restarted DOWN seconds
# later. Reports requests, failures (target < 0.1 %), wrong bytes (target 0),
# failovers and breaker transitions from /metrics.
#
# Knobs: DURATION (60), KILLS (3), DOWN (5), WORKERS (32), OBJECTS (64),
# SKIP_BUILD=1 (use the existing release binary), KEEP_TMP=1.
# Needs: cargo, nginx, curl, python3, ss.

set -euo pipefail
DURATION=${DURATION:-60}
KILLS=${KILLS:-3}
DOWN=${DOWN:-5}
WORKERS=${WORKERS:-32}
OBJECTS=${OBJECTS:-64}
OUT=${1:-}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
[[ -n "$OUT" && "$OUT" != /* ]] && OUT="$PWD/$OUT"
LOG_TAG=chaos
# shellcheck source=scripts/lib/servers.sh
source "$REPO/scripts/lib/servers.sh"
need_tools nginx curl python3 ss cargo
release_binary

# ------------------------------------------------------------------ data
ROOT="$TMP/root"
mkdir -p "$ROOT/primary" "$ROOT/backup"
python3 - "$ROOT" "$OBJECTS" >"$TMP/plan.json" <<'PY'
import hashlib, json, os, sys
root, count = sys.argv[1], int(sys.argv[2])
plan = []
for i in range(count):
    data = os.urandom(1024 * (1 + i % 64))
    for bucket in ("primary", "backup"):
        with open(f"{root}/{bucket}/obj-{i}.bin", "wb") as f:
            f.write(data)
    plan.append({"name": f"obj-{i}", "path": f"/ha/obj-{i}.bin",
                 "expect": {"200": hashlib.sha256(data).hexdigest()}})
json.dump(plan, sys.stdout)
PY

# ------------------------------------------------------------------ servers
free_port PRIMARY_PORT
free_port BACKUP_PORT
free_port PROXY_PORT
free_port METRICS_PORT
nginx_origin "$TMP/primary" "$PRIMARY_PORT" "$ROOT"
nginx_origin "$TMP/backup" "$BACKUP_PORT" "$ROOT"
cat >"$TMP/yatagarasu.yaml" <<YAML
server:
  address: "127.0.0.1:$PROXY_PORT"
  readiness_probe_interval_seconds: 1
metrics:
  enabled: true
  address: "127.0.0.1:$METRICS_PORT"
logging:
  level: warn
buckets:
  - name: ha
    path_prefix: /ha
    s3:
      bucket: primary
      region: us-east-1
      endpoint: "http://127.0.0.1:$PRIMARY_PORT"
      access_key: AKIDCHAOSPRIMARY
      secret_key: chaos-secret-not-checked-by-nginx
      retry: { max_attempts: 2, initial_backoff_ms: 10, max_backoff_ms: 100, budget_percent: 20 }
      circuit_breaker: { failure_threshold: 5, success_threshold: 2, timeout_seconds: 2, half_open_max_requests: 1 }
      replicas:
        - { name: primary, bucket: primary, region: us-east-1, endpoint: "http://127.0.0.1:$PRIMARY_PORT",
            access_key: AKIDCHAOSPRIMARY, secret_key: chaos-secret-not-checked-by-nginx, priority: 1, timeout: 2 }
        - { name: backup, bucket: backup, region: us-east-1, endpoint: "http://127.0.0.1:$BACKUP_PORT",
            access_key: AKIDCHAOSBACKUP, secret_key: chaos-secret-not-checked-by-nginx, priority: 2, timeout: 2 }
YAML
"$BIN" check --config "$TMP/yatagarasu.yaml" >/dev/null

start primary nginx -c "$TMP/primary/nginx.conf" -p "$TMP/primary"
PRIMARY_PID=$STARTED_PID
start backup nginx -c "$TMP/backup/nginx.conf" -p "$TMP/backup"
start yatagarasu "$BIN" --config "$TMP/yatagarasu.yaml"
PROXY_PID=$STARTED_PID
wait_http "http://127.0.0.1:$PROXY_PORT/ha/obj-0.bin"
wait_http "http://127.0.0.1:$METRICS_PORT/metrics"

# ------------------------------------------------------------------ run
log "load for ${DURATION}s with $WORKERS workers; the primary is killed $KILLS times for ${DOWN}s"
python3 "$REPO/scripts/loadmix.py" --base "http://127.0.0.1:$PROXY_PORT" --plan "$TMP/plan.json" \
    --seconds "$DURATION" --workers "$WORKERS" --pid "$PROXY_PID" --report-every 10 >"$TMP/load.json" &
LOAD_PID=$!
gap=$((DURATION / (KILLS + 1)))
for k in $(seq 1 "$KILLS"); do
    sleep "$((gap - (k == 1 ? 0 : DOWN)))"
    log "kill -9 primary ($k/$KILLS)"
    kill -9 "$PRIMARY_PID"
    wait "$PRIMARY_PID" 2>/dev/null || true
    sleep "$DOWN"
    log "restart primary"
    start primary nginx -c "$TMP/primary/nginx.conf" -p "$TMP/primary"
    PRIMARY_PID=$STARTED_PID
done
wait "$LOAD_PID"

# ------------------------------------------------------------------ report
M="http://127.0.0.1:$METRICS_PORT/metrics"
python3 - "$TMP/load.json" \
    "$(metric_sum "$M" yatagarasu_replica_failovers_total)" \
    "$(metric_sum "$M" yatagarasu_circuit_breaker_transitions_total 'to="open"')" \
    "$(metric_sum "$M" yatagarasu_circuit_breaker_transitions_total 'to="half_open"')" \
    "$(metric_sum "$M" yatagarasu_circuit_breaker_transitions_total 'to="closed"')" \
    "$(metric_sum "$M" yatagarasu_upstream_retries_total)" \
    "$KILLS" "$DOWN" >"$TMP/result.json" <<'PY'
import json, sys
load = json.load(open(sys.argv[1]))
load.pop("rss_samples", None)
load.update({
    "primary_kills": int(sys.argv[7]), "down_seconds": int(sys.argv[8]),
    "failovers": int(sys.argv[2]),
    "breaker_transitions": {"open": int(sys.argv[3]), "half_open": int(sys.argv[4]), "closed": int(sys.argv[5])},
    "retries": int(sys.argv[6]),
})
json.dump(load, sys.stdout, indent=1)
PY
cat "$TMP/result.json"
[[ -n "$OUT" ]] && cp "$TMP/result.json" "$OUT"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["failure_rate"] < 0.001 and r["wrong_bytes"] == 0 else 1)' "$TMP/result.json"
