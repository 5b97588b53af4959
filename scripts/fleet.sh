#!/usr/bin/env bash
# Fleet run: three Yatagarasu instances behind a round-robin nginx, sharing a
# Redis cache tier, in front of one nginx origin, all on 127.0.0.1.
#
# Usage: scripts/fleet.sh [RESULTS.md]
#
# Each instance caches in memory, then in the shared Redis (`cache_layers:
# [memory, redis]`); a purge through one instance is broadcast to the others.
# The balancer retries the next instance on a connection error, a timeout,
# 502 or 503 (`proxy_next_upstream`) and skips a failed one for a second
# (`max_fails=1 fail_timeout=1s`): passive health only. Measured, in order:
#   1. cold -> warm: wrk through the balancer over OBJECTS random 1 KiB
#      objects for WARM_SECONDS; every second the fleet's cache hits (by
#      tier) and misses (from each /metrics) and the origin's GETs (its
#      access log); then origin GETs per distinct object requested;
#   2. purge propagation: an object is cached in every instance's memory,
#      changed at the origin, and purged through one instance; the others
#      are polled on keep-alive connections until they serve the new bytes:
#      the time from the purge's answer to each one's first new answer,
#      PURGE_ROUNDS times (the purging instance rotates);
#   3. under wrk through the balancer: a rolling reload (POST /admin/reload,
#      then SIGHUP, one instance at a time, each waited for), then a rolling
#      restart (SIGTERM, wait for the exit after the drain, start, wait for
#      /ready, then wait until the balancer sends it traffic again: passive
#      health skips it for fail_timeout, and not waiting can leave no
#      instance in rotation): the client's failed requests (target 0) and
#      the origin's GETs meanwhile (restarted instances find Redis warm);
#   4. under wrk: one instance killed with SIGKILL, KILL_SECONDS later
#      started again: the client's failed requests, the attempts the
#      balancer retried elsewhere, and the survivors' own 5xx (target 0).
# Failed requests are wrk's non-2xx answers plus its socket errors; the
# balancer's access log ($status, $upstream_status) counts them too.
#
# Redis: REDIS=single (default) starts one redis-server (`cache.redis.
# redis_url`); REDIS=cluster starts three masters, creates the cluster and
# uses `cache.redis.cluster_nodes`.
#
# Knobs: REDIS, OBJECTS (5000), CONNECTIONS (wrk, 4), WARM_SECONDS (20),
# PURGE_ROUNDS (6), SETTLE (seconds of load around each operation, 3),
# KILL_SECONDS (5), SKIP_BUILD=1 (use the existing release binary under
# CARGO_TARGET_DIR), YATAGARASU_BIN (a binary to run instead), KEEP_TMP=1.
# Needs: nginx, wrk, redis-server, redis-cli, curl, python3, ss (and cargo
# unless SKIP_BUILD=1). Exits 1 when a target is missed.

set -euo pipefail
REDIS=${REDIS:-single}
OBJECTS=${OBJECTS:-5000}
CONNECTIONS=${CONNECTIONS:-4}
WARM_SECONDS=${WARM_SECONDS:-20}
PURGE_ROUNDS=${PURGE_ROUNDS:-6}
SETTLE=${SETTLE:-3}
KILL_SECONDS=${KILL_SECONDS:-5}
OUT=${1:-}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
[[ -n "$OUT" && "$OUT" != /* ]] && OUT="$PWD/$OUT"
[[ "$REDIS" == single || "$REDIS" == cluster ]] || { echo "error: REDIS is single or cluster" >&2; exit 2; }
LOG_TAG=fleet
# shellcheck source=scripts/lib/servers.sh
source "$REPO/scripts/lib/servers.sh"
# shellcheck source=scripts/lib/redis.sh
source "$REPO/scripts/lib/redis.sh"
# shellcheck source=scripts/lib/wrk.sh
source "$REPO/scripts/lib/wrk.sh"
need_tools nginx wrk redis-server redis-cli curl python3 ss
if [[ -n "${YATAGARASU_BIN:-}" ]]; then
    BIN=$YATAGARASU_BIN
else
    [[ "${SKIP_BUILD:-0}" == 1 ]] || need_tools cargo
    release_binary
fi
ADMIN_TOKEN=fleet-admin-token
FAILED=0
REPORT="$TMP/report.md"
say() { printf '%s\n' "$*" >>"$REPORT"; }
miss_target() { log "target missed: $*"; FAILED=1; }

# ------------------------------------------------------------------ data
ROOT="$TMP/root"
mkdir -p "$ROOT/fleet"
python3 - "$ROOT/fleet" "$OBJECTS" <<'PY'
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    with open(f"{root}/obj-{i}.bin", "wb") as f:
        f.write(os.urandom(1024))
PY
cat >"$TMP/random.lua" <<LUA
-- A random object of the $OBJECTS per request.
math.randomseed(os.time())
request = function()
    return wrk.format(nil, "/fleet/obj-" .. math.random(0, $((OBJECTS - 1))) .. ".bin")
end
LUA

# ------------------------------------------------------------------ servers
log "redis: $REDIS"
if [[ "$REDIS" == cluster ]]; then
    redis_cluster
    REDIS_KEYS="cluster_nodes: [$(printf '"redis://127.0.0.1:%s", ' "${REDIS_PORTS[@]}" | sed 's/, $//')]"
else
    redis_single
    REDIS_KEYS="redis_url: \"redis://127.0.0.1:${REDIS_PORTS[0]}\""
fi

free_port ORIGIN_PORT
nginx_origin "$TMP/origin" "$ORIGIN_PORT" "$ROOT" "$TMP/origin/access.log"
start origin nginx -c "$TMP/origin/nginx.conf" -p "$TMP/origin"
ORIGIN_LOG="$TMP/origin/access.log"

PORT=() METRICS=() ADMIN=() PID=()
for i in 0 1 2; do
    free_port "PORT[$i]"
    free_port "METRICS[$i]"
    free_port "ADMIN[$i]"
    cat >"$TMP/proxy-$i.yaml" <<YAML
server:
  address: "127.0.0.1:${PORT[$i]}"
  worker_threads: 1
  readiness_probe_interval_seconds: 1
  graceful_shutdown_timeout_seconds: 10
metrics: { enabled: true, address: "127.0.0.1:${METRICS[$i]}" }
admin: { enabled: true, address: "127.0.0.1:${ADMIN[$i]}", token: "$ADMIN_TOKEN" }
logging: { level: warn }
cache:
  enabled: true
  cache_layers: ["memory", "redis"]
  memory: { max_item_size_mb: 4, max_cache_size_mb: 64, default_ttl_seconds: 3600 }
  redis:
    $REDIS_KEYS
    key_prefix: "fleet:"
    ttl_seconds: 3600
buckets:
  - name: fleet
    path_prefix: /fleet
    s3: { bucket: fleet, region: us-east-1, endpoint: "http://127.0.0.1:$ORIGIN_PORT",
          access_key: AKIDFLEET, secret_key: fleet-secret-not-checked-by-nginx }
YAML
    "$BIN" check --config "$TMP/proxy-$i.yaml" >/dev/null || {
        [[ "$REDIS" != cluster ]] || echo "hint: REDIS=cluster needs a binary that knows cache.redis.cluster_nodes" >&2
        exit 1
    }
done

start_instance() { # i: starts it and returns once /ready says 200
    start "proxy-$1" "$BIN" --config "$TMP/proxy-$1.yaml"
    PID[$1]=$STARTED_PID
    wait_ok "http://127.0.0.1:${PORT[$1]}/ready" 150
}
for i in 0 1 2; do start_instance "$i"; done

free_port LB_PORT
LB="$TMP/balancer"
mkdir -p "$LB"
cat >"$LB/nginx.conf" <<CONF
master_process off; worker_processes 1; daemon off; pid $LB/pid; error_log $LB/error.log warn;
events { worker_connections 4096; }
http {
  log_format fleet '\$msec|\$status|\$upstream_status|\$upstream_addr|\$uri';
  access_log $LB/access.log fleet;
  client_body_temp_path $LB; proxy_temp_path $LB; fastcgi_temp_path $LB; uwsgi_temp_path $LB; scgi_temp_path $LB;
  upstream fleet {
    server 127.0.0.1:${PORT[0]} max_fails=1 fail_timeout=1s;
    server 127.0.0.1:${PORT[1]} max_fails=1 fail_timeout=1s;
    server 127.0.0.1:${PORT[2]} max_fails=1 fail_timeout=1s;
    keepalive 32;
  }
  server {
    listen 127.0.0.1:$LB_PORT;
    location / {
      proxy_pass http://fleet;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 1s;
      proxy_read_timeout 10s;
    }
  }
}
CONF
start balancer nginx -c "$LB/nginx.conf" -p "$LB"
wait_ok "http://127.0.0.1:$LB_PORT/ready"
LB_URL="http://127.0.0.1:$LB_PORT"
log "origin :$ORIGIN_PORT, instances :${PORT[0]} :${PORT[1]} :${PORT[2]}, balancer :$LB_PORT"

# ------------------------------------------------------------------ helpers
# The fleet's cache counters: "hits misses memory_hits redis_hits origin_gets".
fleet_counters() {
    local origin i
    origin=$(origin_gets)
    for i in 0 1 2; do curl -s "http://127.0.0.1:${METRICS[$i]}/metrics" || true; done | awk -v o="$origin" '
        /^yatagarasu_cache_requests_total\{/ && /result="hit"/ { h += $NF }
        /^yatagarasu_cache_requests_total\{/ && /result="miss"/ { m += $NF }
        /^yatagarasu_cache_hits_total\{/ && /tier="memory"/ { mh += $NF }
        /^yatagarasu_cache_hits_total\{/ && /tier="redis"/ { rh += $NF }
        END { printf "%d %d %d %d %d\n", h, m, mh, rh, o }'
}

lb_lines() { wc -l <"$LB/access.log"; }
origin_gets() { grep -c 'GET /fleet/obj-' "$ORIGIN_LOG" || true; }

# Balancer log lines after FROM: "requests client_5xx retried_attempts".
lb_counts() { # from-line
    tail -n +"$(($1 + 1))" "$LB/access.log" | awk -F'|' '
        { n++ } $2 >= 500 { bad++ }
        { k = split($3, a, ","); retried += k - 1 }
        END { printf "%d %d %d\n", n, bad, retried }'
}

start_wrk() { # label seconds: wrk through the balancer, in the background
    wrk -t1 -c"$CONNECTIONS" -d"$2s" --latency -s "$TMP/random.lua" "$LB_URL/" >"$TMP/wrk-$1.txt" 2>&1 &
    WRK_PID=$!
    PIDS+=("$WRK_PID")
}

admin_post() { # i path
    curl -fsS -X POST -H "Authorization: Bearer $ADMIN_TOKEN" -H "X-Yatagarasu-Admin: 1" \
        "http://127.0.0.1:${ADMIN[$1]}$2"
}

ms_since() { # start (EPOCHREALTIME) -> whole milliseconds
    awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }'
}

wrk_result() { # label -> WRK_FAILED, and WRK_LINE (wrk's counts in words)
    local c
    read -r -a c < <(wrk_counts <"$TMP/wrk-$1.txt")
    WRK_FAILED=$((c[2] + c[3] + c[4] + c[5] + c[6]))
    WRK_LINE="${c[0]} requests (${c[1]} req/s); non-2xx ${c[2]}; socket errors: connect ${c[3]}, read ${c[4]}, write ${c[5]}, timeout ${c[6]}"
}

# ------------------------------------------------------------------ 1. cold -> warm
phase_warm() {
    local lb_from origin_from t0 prev=() cur=() hits misses total ratio
    log "1. cold -> warm: ${WARM_SECONDS}s over $OBJECTS objects"
    lb_from=$(lb_lines)
    origin_from=$(wc -l <"$ORIGIN_LOG")
    read -r -a prev < <(fleet_counters)
    t0=$EPOCHREALTIME
    start_wrk warm "$WARM_SECONDS"
    say ""
    say "## 1. Cold to warm"
    say ""
    say "| second | requests | hit ratio | memory hits | redis hits | misses | origin GETs |"
    say "|---:|---:|---:|---:|---:|---:|---:|"
    while kill -0 "$WRK_PID" 2>/dev/null; do
        sleep 1 # the sampling period, not a wait for an event
        read -r -a cur < <(fleet_counters)
        hits=$((cur[0] - prev[0])) misses=$((cur[1] - prev[1]))
        total=$((hits + misses))
        ratio=$(awk -v h="$hits" -v t="$total" 'BEGIN { printf "%.1f %%", t ? 100 * h / t : 0 }')
        say "| $(ms_since "$t0" | awk '{ printf "%.1f", $1 / 1000 }') | $total | $ratio |" \
            "$((cur[2] - prev[2])) | $((cur[3] - prev[3])) | $misses | $((cur[4] - prev[4])) |"
        prev=("${cur[@]}")
    done
    wait "$WRK_PID" || true
    forget_pid "$WRK_PID"
    say ""
    wrk_result warm
    say "wrk: $WRK_LINE."
    [[ "$WRK_FAILED" == 0 ]] || miss_target "cold -> warm: $WRK_FAILED failed requests"
    # Origin GETs per distinct object the clients asked for.
    local requested per
    requested=$(tail -n +"$((lb_from + 1))" "$LB/access.log" | awk -F'|' '$5 ~ /^\/fleet\/obj-/ { print $5 }' | sort -u | wc -l)
    per=$(tail -n +"$((origin_from + 1))" "$ORIGIN_LOG" | awk -v r="$requested" '
        $7 ~ /^\/fleet\/obj-/ { n++; c[$7]++ }
        END { for (k in c) { d++; if (c[k] > 1) { dup++; extra += c[k] - 1 } }
              printf "%d %d %d %d %.3f", n, d, dup, extra, r ? n / r : 0 }')
    read -r -a per <<<"$per"
    say ""
    say "Distinct objects requested: $requested; origin GETs: ${per[0]} for ${per[1]} distinct objects;" \
        "objects fetched more than once: ${per[2]} (${per[3]} extra GETs);" \
        "**origin GETs per object: ${per[4]}**."
}

# ------------------------------------------------------------------ 2. purge
phase_purge() {
    log "2. purge propagation, $PURGE_ROUNDS rounds"
    local proxies admins
    proxies=$(printf 'http://127.0.0.1:%s,' "${PORT[@]}")
    admins=$(printf 'http://127.0.0.1:%s,' "${ADMIN[@]}")
    say ""
    say "## 2. Purge through one instance, seen by the others"
    say ""
    python3 - "${proxies%,}" "${admins%,}" "$ADMIN_TOKEN" "$ROOT/fleet" "$PURGE_ROUNDS" >>"$REPORT" <<'PY' ||
# Each round: cache /fleet/purge-<round>.bin in every instance's memory, change it at
# the origin, purge it through instance r % 3, then poll the other two on
# open keep-alive connections until they answer the new bytes.
import http.client, json, os, sys, threading, time
from urllib.parse import urlsplit
proxies, admins = sys.argv[1].split(","), sys.argv[2].split(",")
token, root, rounds = sys.argv[3], sys.argv[4], int(sys.argv[5])
LIMIT = 2.0

def conn(url):
    u = urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=5)

def get(c, path):
    c.request("GET", path)
    r = c.getresponse()
    return r.read(), r.getheader("x-cache", "")

def put(name, data):
    tmp = f"{root}/.{name}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, f"{root}/{name}")

def warm(c, path, data):
    for _ in range(400):
        body, marker = get(c, path)
        if body == data and marker == "HIT memory":
            return
        time.sleep(0.005)
    sys.exit(f"an instance never cached {path} in memory")

def poll(c, path, data, go, out, i):
    go.wait()
    t0, polls = go.t0, 0
    while time.monotonic() - t0 < LIMIT:
        body, marker = get(c, path)
        polls += 1
        if body == data:
            out[i] = ((time.monotonic() - t0) * 1000, marker, polls)
            return
    out[i] = (None, "", polls)

rows, worst = [], 0.0
for r in range(rounds):
    # A new object for every purge: the previous one is cached everywhere.
    name, old, new = f"purge-{r}.bin", os.urandom(1500), os.urandom(1500)
    path = f"/fleet/{name}"
    put(name, old)
    conns = [conn(p) for p in proxies]
    for c in conns:
        warm(c, path, old)
    put(name, new)
    purger = r % 3
    go, out = threading.Event(), {}
    threads = [threading.Thread(target=poll, args=(conns[i], path, new, go, out, i)) for i in range(3) if i != purger]
    for t in threads:
        t.start()
    a = conn(admins[purger])
    sent = time.monotonic()
    a.request("POST", f"/admin/cache/purge/fleet/{name}",
              headers={"Authorization": f"Bearer {token}", "X-Yatagarasu-Admin": "1"})
    answer = a.getresponse()
    doc = json.loads(answer.read())
    go.t0 = time.monotonic()
    go.set()
    for t in threads:
        t.join()
    cells = []
    for i in sorted(out):
        ms, marker, polls = out[i]
        if ms is None:
            cells.append(f"not within {LIMIT:.0f} s")
            worst = float("inf")
        else:
            cells.append(f"{ms:.1f} ms ({marker}, poll {polls})")
            worst = max(worst, ms)
    rows.append(f"| {r + 1} | {purger} | {(go.t0 - sent) * 1000:.1f} ms | {doc.get('broadcast')} | " + " | ".join(cells) + " |")
    for c in conns + [a]:
        c.close()
print("| round | purged through | purge answer took | broadcast | first other instance | second other instance |")
print("|---:|---:|---:|---|---|---|")
print("\n".join(rows))
print()
print(f"**Slowest instance to serve the new bytes after the purge's answer: {worst:.1f} ms** (target < 100 ms).")
sys.exit(0 if worst < 100 else 3)
PY
        miss_target "purge propagation"
}

# ------------------------------------------------------------------ 3. rolling reload and restart
phase_roll() {
    local lb_from origin_from i t gen ops=() lb=()
    log "3. rolling reload and restart under load"
    lb_from=$(lb_lines)
    origin_from=$(origin_gets)
    start_wrk roll 600
    sleep "$SETTLE" # load before the first operation
    for i in 0 1 2; do
        t=$EPOCHREALTIME
        admin_post "$i" /admin/reload >/dev/null
        ops+=("| $i | POST /admin/reload | answered after $(ms_since "$t") ms |")
    done
    for i in 0 1 2; do
        t=$EPOCHREALTIME
        gen=$(metric_sum "http://127.0.0.1:${METRICS[$i]}/metrics" yatagarasu_config_generation)
        kill -HUP "${PID[$i]}"
        wait_generation "$i" "$gen"
        ops+=("| $i | SIGHUP | generation $gen → $((gen + 1)) after $(ms_since "$t") ms |")
    done
    for i in 0 1 2; do
        t=$EPOCHREALTIME
        kill -TERM "${PID[$i]}"
        wait_exit "${PID[$i]}" 30
        ops+=("| $i | SIGTERM | drained and exited after $(ms_since "$t") ms |")
        t=$EPOCHREALTIME
        start_instance "$i"
        ops+=("| $i | start | /ready 200 after $(ms_since "$t") ms |")
        t=$EPOCHREALTIME
        wait_serving "$i"
        ops+=("| $i | back in the balancer | served 10 requests after $(ms_since "$t") ms |")
    done
    sleep "$SETTLE" # load after the last operation
    wrk_stop "$WRK_PID"
    read -r -a lb < <(lb_counts "$lb_from")
    say ""
    say "## 3. Rolling reload and rolling restart under load"
    say ""
    say "| instance | operation | outcome |"
    say "|---:|---|---|"
    printf '%s\n' "${ops[@]}" >>"$REPORT"
    say ""
    wrk_result roll
    say "wrk: $WRK_LINE."
    say "Balancer: ${lb[0]} requests, ${lb[1]} answered 5xx to the client, ${lb[2]} attempts retried on another instance."
    say "Origin GETs meanwhile: $(($(origin_gets) - origin_from)) (restarted instances start with an empty memory tier and find the objects in Redis)."
    say ""
    say "**Failed requests: $WRK_FAILED** (target 0)."
    [[ "$WRK_FAILED" == 0 && "${lb[1]}" == 0 ]] || miss_target "rolling: $WRK_FAILED failed requests"
}

# Waits until the balancer sends instance I traffic again (bounded, 10 s):
# nginx skips an instance for fail_timeout after a failed attempt, so a
# rolling step that does not wait for this can leave no live instance.
wait_serving() { # i
    local url="http://127.0.0.1:${METRICS[$1]}/metrics" before
    before=$(metric_sum "$url" yatagarasu_http_requests_total 'bucket="fleet"')
    for _ in $(seq 1 200); do
        (($(metric_sum "$url" yatagarasu_http_requests_total 'bucket="fleet"') >= before + 10)) && return 0
        sleep 0.05
    done
    echo "error: the balancer sends instance $1 no traffic" >&2
    return 1
}

wait_generation() { # i old-generation: until /metrics shows a newer one (bounded, 10 s)
    local url="http://127.0.0.1:${METRICS[$1]}/metrics"
    for _ in $(seq 1 200); do
        (($(metric_sum "$url" yatagarasu_config_generation) > $2)) && return 0
        sleep 0.05
    done
    echo "error: instance $1 did not reload" >&2
    return 1
}

# ------------------------------------------------------------------ 4. SIGKILL
phase_kill() {
    local lb_from origin_from survivors_before=() survivors_after=() lb=() i t
    log "4. one instance killed under load"
    lb_from=$(lb_lines)
    origin_from=$(origin_gets)
    for i in 0 1; do
        survivors_before+=("$(metric_sum "http://127.0.0.1:${METRICS[$i]}/metrics" yatagarasu_http_requests_total 'status="5')")
    done
    start_wrk kill 600
    sleep "$SETTLE" # load before the kill
    kill -KILL "${PID[2]}"
    wait_exit "${PID[2]}" 5
    t=$EPOCHREALTIME
    sleep "$KILL_SECONDS" # load on the two survivors
    start_instance 2
    local back
    back=$(ms_since "$t")
    wait_serving 2
    sleep "$SETTLE" # load after the restart
    wrk_stop "$WRK_PID"
    for i in 0 1; do
        survivors_after+=("$(metric_sum "http://127.0.0.1:${METRICS[$i]}/metrics" yatagarasu_http_requests_total 'status="5')")
    done
    read -r -a lb < <(lb_counts "$lb_from")
    local survivor_5xx=$((survivors_after[0] - survivors_before[0] + survivors_after[1] - survivors_before[1]))
    say ""
    say "## 4. One instance killed with SIGKILL under load"
    say ""
    say "Instance 2 killed, started again $KILL_SECONDS s later (ready after $back ms from the kill)."
    say ""
    wrk_result kill
    say "wrk: $WRK_LINE."
    say "Balancer: ${lb[0]} requests, ${lb[1]} answered 5xx to the client," \
        "**${lb[2]} attempts failed on an instance and were retried on another** (the balancer's errors)."
    say "Origin GETs meanwhile: $(($(origin_gets) - origin_from))."
    say "Survivors' own 5xx (yatagarasu_http_requests_total{status=~\"5..\"}, instances 0 and 1): **$survivor_5xx**."
    say ""
    say "**Client-visible errors: $WRK_FAILED.**"
    [[ "$survivor_5xx" == 0 ]] || miss_target "SIGKILL: the survivors answered $survivor_5xx 5xx"
}

say "# Fleet: 3 instances, round-robin nginx, shared Redis ($REDIS), one origin"
say ""
say "Run: \`REDIS=$REDIS OBJECTS=$OBJECTS CONNECTIONS=$CONNECTIONS WARM_SECONDS=$WARM_SECONDS" \
    "PURGE_ROUNDS=$PURGE_ROUNDS SETTLE=$SETTLE KILL_SECONDS=$KILL_SECONDS scripts/fleet.sh\`" \
    "at $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start."
say ""
say "Objects: $OBJECTS × 1 KiB; wrk -t1 -c$CONNECTIONS through the balancer; each instance \`worker_threads: 1\`."
phase_warm
phase_purge
phase_roll
phase_kill
cat "$REPORT"
[[ -z "$OUT" ]] || cp "$REPORT" "$OUT"
exit "$FAILED"
