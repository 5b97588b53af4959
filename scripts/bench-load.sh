#!/usr/bin/env bash
# Load benchmark: Yatagarasu against nginx (direct and proxy_pass), all on 127.0.0.1.
#
# Usage: scripts/bench-load.sh [RESULTS.md]
#
# What it does, in one run (so every number is comparable with the others):
#   1. cargo build --release, then uses target/release/yatagarasu;
#   2. makes a temp dir with <root>/bench-bucket/{1k.bin,1g.bin};
#   3. starts nginx as the origin (static files, `/<bucket>/<key>`), nginx as the
#      proxy_pass baseline (upstream keepalive), and Yatagarasu (`/bench` ->
#      bucket `bench-bucket` at the origin, path-style, signed requests);
#   4. wrk -t1 -c32 -d10s --latency against (a) the origin directly, (b) nginx
#      proxy_pass, (c) Yatagarasu: req/s, p99, CPU µs per request of the proxy
#      process (utime+stime from /proc/PID/stat, fields 14+15, over the run,
#      divided by the requests wrk counted) and of the origin; then (g)
#      examples/bare_forward.rs, a forwarder made only of the parts the design
#      fixes (hyper-util's server and legacy pooled client, tokio, mimalloc)
#      with no layers at all: the floor any proxy built from them sits on;
#      then (h) Yatagarasu again with every protection layer configured and
#      never triggered (trusted proxies, global, per-address and per-bucket
#      rate limits far above the load, an IP allowlist of 100 CIDR ranges and
#      a blocklist, a closed circuit breaker, a retry policy): what they cost;
#   5. 1 GiB downloads one at a time: direct, through nginx, through Yatagarasu
#      (median MB/s of 3 each, and Yatagarasu's CPU time per GiB);
#   6. 8 concurrent 1 GiB downloads through a freshly restarted Yatagarasu (so
#      earlier steps' allocations do not hide the streams' own) with its RSS
#      sampled every 100 ms (peak VmRSS, VmHWM, RSS before);
#   7. Yatagarasu restarted with `logging.level: info` (access log to a file),
#      wrk (c) again, to show what the access log costs;
#   8. cache (CACHE_RUN=1): Yatagarasu is restarted with the memory cache
#      (`/cached` -> the same bucket), the second GET of /cached/1k.bin must say
#      `X-Cache: HIT memory` with the exact bytes, then wrk as in step 4 against
#      (d) the cached 1 KiB object (hits), (e) the same object with a new
#      `?versionId=N` on every request (a Lua script: every request is a new
#      cache key, so a real miss that goes to the origin and fills the cache),
#      (f) examples/bare_hyper.rs answering the same 1 KiB from memory (the
#      ceiling). The /metrics counters are checked after each run: (d) only
#      hits, (e) only misses, one upstream request per miss;
#   9. cold burst: BURST connections to Yatagarasu opened first, then one
#      `GET /cached/burst/1k.bin` (not cached yet) sent on each at once by a
#      small asyncio client; every answer must be 200 with the right bytes.
#      The requests that reached the origin are counted in nginx's access log
#      for /bench-bucket/burst/ (independently of the proxy), next to the
#      proxy's yatagarasu_cache_coalesced_total and
#      yatagarasu_upstream_requests_total deltas;
#  10. prints a Markdown table (and writes it to RESULTS.md when given).
#
# CPU pinning (2-core machines): wrk and curl run on core 0 (`taskset -c 0`),
# every server (origin nginx, proxy nginx, Yatagarasu) on core 1 (`taskset -c 1`).
# nginx runs `master_process off; worker_processes 1`; Yatagarasu sizes its
# runtime from the CPU affinity mask: one CPU, so tokio's current-thread
# scheduler (`server.worker_threads` defaults to the CPUs available).
# Note that in (b), (c) and (e) the origin shares core 1 with the proxy.
#
# Knobs (environment): DURATION (wrk seconds, default 10), CONNECTIONS (32),
# BIG (size of the big object for `head -c`, default 1G), PARALLEL (8),
# DOWNLOADS (single-stream downloads per target, median reported; 3),
# SKIP_BUILD=1 (use the existing release binary and the bare_forward and
# bare_hyper examples),
# INFO_RUN=0 (skip step 7), CACHE_RUN=0 (skip steps 8 and 9: no bare_hyper
# build, no python3 needed), BURST (connections in the cold burst, 1000),
# READ_BUFFER (Yatagarasu's `upstream.read_buffer_bytes`; unset = its default),
# PAIRS (extra back-to-back (c), (h) pairs for the protection layers' cost, 3).
# The fd limit is raised (ulimit -n, up to 65536 or the hard limit) for the
# burst; the servers inherit it.
# Needs: cargo, nginx, wrk, curl, taskset (and python3 3.7+ for the burst).
# Runs in about 4 minutes.

set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
BIG=${BIG:-1G}
PARALLEL=${PARALLEL:-8}
DOWNLOADS=${DOWNLOADS:-3}
SKIP_BUILD=${SKIP_BUILD:-0}
INFO_RUN=${INFO_RUN:-1}
CACHE_RUN=${CACHE_RUN:-1}
BURST=${BURST:-1000}
READ_BUFFER=${READ_BUFFER:-}
PAIRS=${PAIRS:-3}
OUT=${1:-}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
[[ -n "$OUT" && "$OUT" != /* ]] && OUT="$PWD/$OUT"

TOOLS=(nginx wrk curl taskset cargo)
[[ "$CACHE_RUN" == 1 ]] && TOOLS+=(python3 sha256sum)
for tool in "${TOOLS[@]}"; do
    command -v "$tool" >/dev/null || {
        echo "error: $tool is not installed (apt-get install -y wrk nginx-light curl util-linux python3)" >&2
        exit 1
    }
done

# The cold burst holds BURST client connections (and the proxy as many); the
# servers started below inherit this limit.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [[ "$CACHE_RUN" == 1 && $(ulimit -n) != unlimited && $(ulimit -n) -lt $((BURST + 256)) ]]; then
    echo "error: the fd limit ($(ulimit -n)) is too low for BURST=$BURST" >&2
    exit 1
fi

CLIENT_CPU=0
SERVER_CPU=1
if [[ $(nproc --all) -lt 2 ]]; then
    echo "warning: fewer than 2 CPUs; client and servers share core 0" >&2
    SERVER_CPU=0
fi
HZ=$(getconf CLK_TCK)

log() { printf '[bench-load %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# ---------------------------------------------------------------- cleanup
PIDS=()
TMP=""
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    [[ -n "$TMP" && -d "$TMP" ]] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers
# free_port and wait_http
# shellcheck source=scripts/lib/ports.sh
source "$REPO/scripts/lib/ports.sh"

cpu_ticks() { # pid -> utime+stime (clock ticks), fields 14 and 15 of /proc/PID/stat
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }       # drop "pid (comm) "; what is left starts at field 3
    # shellcheck disable=SC2086
    set -- $stat
    echo $((${12} + ${13}))
}

runtime_of() { # pid -> the tokio scheduler the process runs, for the report
    local workers
    workers=$( (grep -lx 'tokio-rt-worker' /proc/"$1"/task/*/comm 2>/dev/null || true) | wc -l)
    if ((workers == 0)); then
        echo "current-thread tokio scheduler"
    else
        echo "$workers tokio worker thread(s)"
    fi
}

rss_kib() { # pid field(VmRSS|VmHWM) -> KiB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# wrk output -> "req_per_s p99_ms requests errors"
parse_wrk() {
    awk '
        /Requests\/sec:/ { rps = $2 }
        /^ +99%/ {
            v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
            p99 = (unit == "us") ? v / 1000 : (unit == "s") ? v * 1000 : (unit == "m") ? v * 60000 : v
        }
        / requests in / { reqs = $1 }
        /Non-2xx or 3xx responses:/ { errs += $NF }
        /Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { x = $i; sub(",", "", x); errs += x } }
        END { printf "%s %.3f %s %d\n", rps, p99, reqs, errs }
    '
}

# Runs wrk against url while measuring the CPU of the given pids.
# Prints "rps p99_ms requests errors cpu_us_per_req(pid1) cpu_us_per_req(pid2) ...".
# With WRK_SCRIPT set (environment), both wrk runs use that Lua script (-s) and
# pass it one argument, "<label>-warmup" or "<label>", to tell the runs apart.
# The outputs are kept in $TMP/wrk-<label>-warmup.txt and $TMP/wrk-<label>.txt.
measure_wrk() { # label url pid...
    local label=$1 url=$2
    shift 2
    local pid before=() after=() out parsed reqs i script=() warm_args=() run_args=()
    if [[ -n "${WRK_SCRIPT:-}" ]]; then
        script=(-s "$WRK_SCRIPT")
        warm_args=(-- "$label-warmup")
        run_args=(-- "$label")
    fi
    # Warm-up (connections, pools, caches); not measured.
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d2s "${script[@]}" "$url" "${warm_args[@]}" \
        >"$TMP/wrk-$label-warmup.txt"
    for pid in "$@"; do before+=("$(cpu_ticks "$pid")"); done
    out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
        "${script[@]}" "$url" "${run_args[@]}")
    for pid in "$@"; do after+=("$(cpu_ticks "$pid")"); done
    echo "$out" >"$TMP/wrk-$label.txt"
    parsed=$(echo "$out" | parse_wrk)
    reqs=$(echo "$parsed" | awk '{ print $3 }')
    for i in "${!before[@]}"; do
        parsed+=" $(awk -v a="${after[$i]}" -v b="${before[$i]}" -v hz="$HZ" -v n="$reqs" \
            'BEGIN { printf "%.2f", (a - b) * 1e6 / hz / n }')"
    done
    log "wrk $label: $parsed"
    echo "$parsed"
}

check_1k() { # url: exits unless it answers 200 with the 1 KiB object's bytes
    local code
    code=$(curl -s -o "$TMP/check.bin" -w '%{http_code}' "$1")
    if [[ "$code" != 200 ]] || ! cmp -s "$TMP/check.bin" "$ROOT/bench-bucket/1k.bin"; then
        echo "error: $1 answered $code or different bytes" >&2
        exit 1
    fi
}

download() { # url -> "MB/s bytes http_code" (median speed of DOWNLOADS runs; last size/code)
    local i
    for i in $(seq 1 "$DOWNLOADS"); do
        taskset -c "$CLIENT_CPU" curl -s -o /dev/null --max-time 120 \
            -w '%{speed_download} %{size_download} %{http_code}\n' "$1"
    done | sort -n | awk '{ s[NR] = $1; b = $2; c = $3; if ($2 != '"$BIG_BYTES"' || $3 != 200) bad = $2 "/" $3 }
        END { printf "%.0f %s %s\n", s[int((NR + 1) / 2)] / 1e6, bad ? bad : b, bad ? "" : c }'
}

# ---------------------------------------------------------------- build
if [[ "$SKIP_BUILD" != 1 ]]; then
    log "cargo build --release"
    cargo build --release --quiet
    log "cargo build --release --example bare_forward"
    cargo build --release --quiet --example bare_forward
    if [[ "$CACHE_RUN" == 1 ]]; then
        log "cargo build --release --example bare_hyper"
        cargo build --release --quiet --example bare_hyper
    fi
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN="$TARGET_DIR/release/yatagarasu"
BARE_BIN="$TARGET_DIR/release/examples/bare_hyper"
FLOOR_BIN="$TARGET_DIR/release/examples/bare_forward"
[[ -x "$BIN" ]] || { echo "error: $BIN not found" >&2; exit 1; }
[[ -x "$FLOOR_BIN" ]] || { echo "error: $FLOOR_BIN not found" >&2; exit 1; }
[[ "$CACHE_RUN" != 1 || -x "$BARE_BIN" ]] || { echo "error: $BARE_BIN not found" >&2; exit 1; }

# ---------------------------------------------------------------- data
TMP=$(mktemp -d "${TMPDIR:-/tmp}/yatagarasu-bench.XXXXXX")
ROOT="$TMP/root"
mkdir -p "$ROOT/bench-bucket/burst" "$TMP/origin" "$TMP/nginx-proxy"
head -c 1024 /dev/urandom >"$ROOT/bench-bucket/1k.bin"
head -c 1024 /dev/urandom >"$ROOT/bench-bucket/burst/1k.bin"
log "writing the $BIG object"
head -c "$BIG" /dev/urandom >"$ROOT/bench-bucket/1g.bin"
BIG_BYTES=$(stat -c %s "$ROOT/bench-bucket/1g.bin")

free_port ORIGIN_PORT
free_port NGINX_PORT
free_port PROXY_PORT
free_port METRICS_PORT
free_port CACHE_PORT
free_port CACHE_METRICS_PORT
free_port BARE_PORT
free_port FLOOR_PORT
free_port PROTECTED_PORT
free_port PROTECTED_METRICS_PORT

# ---------------------------------------------------------------- origin nginx
# Only /bench-bucket/burst/ is logged: the cold burst counts the requests that
# reached the origin there, independently of the proxy's own counters.
common_conf() { # dir
    cat <<EOF
master_process off; worker_processes 1; daemon off; pid $1/pid; error_log $1/error.log warn;
events { worker_connections 4096; }
EOF
}
temp_paths() { # dir
    echo "client_body_temp_path $1; proxy_temp_path $1; fastcgi_temp_path $1; uwsgi_temp_path $1; scgi_temp_path $1;"
}
{
    common_conf "$TMP/origin"
    cat <<EOF
http { access_log off; sendfile on; keepalive_requests 1000000;
  $(temp_paths "$TMP/origin")
  server { listen 127.0.0.1:$ORIGIN_PORT; root $ROOT; location / { }
    location /bench-bucket/burst/ { access_log $TMP/origin/burst.log; } } }
EOF
} >"$TMP/origin/nginx.conf"

# ---------------------------------------------------------------- proxy nginx
# The 1 KiB test uses nginx's defaults; proxy_max_temp_file_size 0 keeps the
# 1 GiB download streaming through memory buffers instead of spooling to disk
# (it does not change small responses).
{
    common_conf "$TMP/nginx-proxy"
    cat <<EOF
http { access_log off; sendfile on; keepalive_requests 1000000;
  $(temp_paths "$TMP/nginx-proxy")
  upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 64; }
  server { listen 127.0.0.1:$NGINX_PORT;
    location /bench/ { proxy_pass http://origin/bench-bucket/; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_max_temp_file_size 0; } } }
EOF
} >"$TMP/nginx-proxy/nginx.conf"

# ---------------------------------------------------------------- yatagarasu
# proxy_config FILE PORT METRICS_PORT LEVEL BUCKET [EXTRA_YAML]: a Yatagarasu
# config with one bucket `/BUCKET` -> `bench-bucket` at the origin; EXTRA_YAML
# (top-level sections, ending in a newline) goes before `buckets:`.
proxy_config() {
    cat >"$1" <<EOF
server:
  address: "127.0.0.1:$2"
admin:
  enabled: true
  address: "127.0.0.1:0"
metrics:
  enabled: true
  address: "127.0.0.1:$3"
logging:
  level: $4
  format: json
${6:-}buckets:
  - name: $5
    path_prefix: /$5
    s3:
      bucket: bench-bucket
      region: us-east-1
      endpoint: "http://127.0.0.1:$ORIGIN_PORT"
      force_path_style: true
      access_key: AKIDBENCHMARK
      secret_key: bench-secret-key-not-checked-by-nginx
EOF
}

# protected_config FILE PORT METRICS_PORT: the bucket `/protected` with every
# protection layer configured at limits the load never reaches.
protected_config() {
    local allow i
    proxy_config "$1" "$2" "$3" warn protected
    allow=$(for i in $(seq 0 98); do printf '"10.%d.0.0/16", ' "$i"; done)
    sed -i '/^server:$/a\
  trusted_proxies: ["10.0.0.0/8", "192.0.2.0/24"]\
  rate_limit:\
    enabled: true\
    global: { requests_per_second: 1000000, burst: 1000000 }\
    per_ip: { requests_per_second: 1000000, burst: 1000000 }' "$1"
    cat >>"$1" <<EOF
      rate_limit: { requests_per_second: 1000000, burst: 1000000 }
      retry: { max_attempts: 3, initial_backoff_ms: 50, max_backoff_ms: 1000, budget_percent: 10 }
      circuit_breaker: { failure_threshold: 5, success_threshold: 2, timeout_seconds: 30, half_open_max_requests: 1 }
    ip_filter:
      allowlist: [${allow}"127.0.0.0/8"]
      blocklist: ["192.168.66.0/24"]
EOF
}

write_config() { # level
    local upstream=""
    if [[ -n "$READ_BUFFER" ]]; then
        upstream=$'upstream:\n  read_buffer_bytes: '"$READ_BUFFER"$'\n'
    fi
    proxy_config "$TMP/yatagarasu.yaml" "$PROXY_PORT" "$METRICS_PORT" "$1" bench "$upstream"
}

start() { # name command... -> sets STARTED_PID
    taskset -c "$SERVER_CPU" "${@:2}" >"$TMP/$1.log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

stop() { # pid
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

log "starting origin nginx :$ORIGIN_PORT, proxy nginx :$NGINX_PORT, yatagarasu :$PROXY_PORT"
start origin nginx -c "$TMP/origin/nginx.conf" -p "$TMP/origin"
ORIGIN_PID=$STARTED_PID
start nginx-proxy nginx -c "$TMP/nginx-proxy/nginx.conf" -p "$TMP/nginx-proxy"
NGINX_PID=$STARTED_PID
write_config warn
start yatagarasu "$BIN" --config "$TMP/yatagarasu.yaml"
YATA_PID=$STARTED_PID

DIRECT_URL="http://127.0.0.1:$ORIGIN_PORT/bench-bucket"
NGINX_URL="http://127.0.0.1:$NGINX_PORT/bench"
YATA_URL="http://127.0.0.1:$PROXY_PORT/bench"
wait_http "$DIRECT_URL/1k.bin"
wait_http "$NGINX_URL/1k.bin"
wait_http "$YATA_URL/1k.bin"
for url in "$DIRECT_URL/1k.bin" "$NGINX_URL/1k.bin" "$YATA_URL/1k.bin"; do
    check_1k "$url"
done
YATA_WORKERS=$(runtime_of "$YATA_PID")
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- 1 KiB
log "wrk: ${DURATION}s, 1 thread, $CONNECTIONS connections"
res=$(measure_wrk direct "$DIRECT_URL/1k.bin" "$ORIGIN_PID")
read -r A_RPS A_P99 _ A_ERR A_ORIGIN_CPU <<<"$res"
res=$(measure_wrk nginx "$NGINX_URL/1k.bin" "$NGINX_PID" "$ORIGIN_PID")
read -r B_RPS B_P99 _ B_ERR B_CPU B_ORIGIN_CPU <<<"$res"
res=$(measure_wrk yatagarasu "$YATA_URL/1k.bin" "$YATA_PID" "$ORIGIN_PID")
read -r C_RPS C_P99 _ C_ERR C_CPU C_ORIGIN_CPU <<<"$res"
# (g) the floor: the same origin through the required parts alone.
start bare-forward "$FLOOR_BIN" "127.0.0.1:$FLOOR_PORT" "http://127.0.0.1:$ORIGIN_PORT"
FLOOR_PID=$STARTED_PID
FLOOR_URL="http://127.0.0.1:$FLOOR_PORT/bench-bucket"
wait_http "$FLOOR_URL/1k.bin" || { cat "$TMP/bare-forward.log" >&2; exit 1; }
check_1k "$FLOOR_URL/1k.bin"
res=$(measure_wrk bare-forward "$FLOOR_URL/1k.bin" "$FLOOR_PID" "$ORIGIN_PID")
read -r G_RPS G_P99 _ G_ERR G_CPU G_ORIGIN_CPU <<<"$res"
stop "$FLOOR_PID"
# (h) every protection layer configured, none triggered.
protected_config "$TMP/protected.yaml" "$PROTECTED_PORT" "$PROTECTED_METRICS_PORT"
start yatagarasu-protected "$BIN" --config "$TMP/protected.yaml"
PROTECTED_PID=$STARTED_PID
PROTECTED_URL="http://127.0.0.1:$PROTECTED_PORT/protected"
wait_http "$PROTECTED_URL/1k.bin" || { cat "$TMP/yatagarasu-protected.log" >&2; exit 1; }
check_1k "$PROTECTED_URL/1k.bin"
res=$(measure_wrk protected "$PROTECTED_URL/1k.bin" "$PROTECTED_PID" "$ORIGIN_PID")
read -r P_RPS P_P99 _ P_ERR P_CPU P_ORIGIN_CPU <<<"$res"
# One (h) against one (c) measured a minute apart is within the run-to-run
# noise of a shared machine (differences of +6 and +17 µs were seen while
# whole-process instruction counts differ by 7 %): PAIRS more (c), (h) runs
# back to back, and the median of their differences.
PAIR_DIFFS=()
for i in $(seq 1 "$PAIRS"); do
    pair_c=$(measure_wrk "pair$i-c" "$YATA_URL/1k.bin" "$YATA_PID" | awk '{ print $5 }')
    pair_h=$(measure_wrk "pair$i-h" "$PROTECTED_URL/1k.bin" "$PROTECTED_PID" | awk '{ print $5 }')
    PAIR_DIFFS+=("$(awk -v h="$pair_h" -v c="$pair_c" 'BEGIN { printf "%+.2f", h - c }')")
done
P_DIFF_MEDIAN=$(printf '%s\n' "${PAIR_DIFFS[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
# Every layer was there and none refused: nothing rate limited, nothing filtered.
curl -s "http://127.0.0.1:$PROTECTED_METRICS_PORT/metrics" >"$TMP/protected-metrics.txt"
refused=$(awk '/^yatagarasu_(rate_limited|ip_filter_denied)_total/ && $NF > 0' \
    "$TMP/protected-metrics.txt")
if [[ -n "$refused" ]]; then
    echo "error: the protected run refused requests:" >&2
    echo "$refused" >&2
    exit 1
fi
stop "$PROTECTED_PID"

# ---------------------------------------------------------------- 1 GiB, one at a time
log "1 GiB downloads"
download "$DIRECT_URL/1g.bin" >/dev/null # page cache warm-up
res=$(download "$DIRECT_URL/1g.bin")
read -r D_DIRECT D_DIRECT_BYTES D_DIRECT_CODE <<<"$res"
res=$(download "$NGINX_URL/1g.bin")
read -r D_NGINX D_NGINX_BYTES D_NGINX_CODE <<<"$res"
t0=$(cpu_ticks "$YATA_PID")
res=$(download "$YATA_URL/1g.bin")
read -r D_YATA D_YATA_BYTES D_YATA_CODE <<<"$res"
t1=$(cpu_ticks "$YATA_PID")
D_YATA_CPU_MS=$(((t1 - t0) * 1000 / HZ / DOWNLOADS))
for pair in "$D_DIRECT_BYTES/$D_DIRECT_CODE" "$D_NGINX_BYTES/$D_NGINX_CODE" "$D_YATA_BYTES/$D_YATA_CODE"; do
    [[ "$pair" == "$BIG_BYTES/200" ]] || { echo "error: a download was incomplete ($pair)" >&2; exit 1; }
done
log "1 GiB: direct $D_DIRECT MB/s, nginx $D_NGINX MB/s, yatagarasu $D_YATA MB/s ($D_YATA_CPU_MS ms CPU)"

# ---------------------------------------------------------------- 8 × 1 GiB concurrently
log "$PARALLEL concurrent downloads through yatagarasu (restarted: a fresh process)"
# The earlier steps grew the process (allocator pages kept for reuse), which
# would hide what the streams themselves need; measure on a fresh process
# that has served one small GET.
stop "$YATA_PID"
start yatagarasu-parallel "$BIN" --config "$TMP/yatagarasu.yaml"
YATA_PID=$STARTED_PID
wait_http "$YATA_URL/1k.bin"
RSS_BEFORE=$(rss_kib "$YATA_PID" VmRSS)
HWM_BEFORE=$(rss_kib "$YATA_PID" VmHWM)
CURLS=()
start_ns=$(date +%s%N)
for i in $(seq 1 "$PARALLEL"); do
    taskset -c "$CLIENT_CPU" curl -s -o /dev/null --max-time 240 \
        -w '%{size_download} %{http_code}\n' "$YATA_URL/1g.bin" >"$TMP/par-$i.txt" &
    CURLS+=($!)
    PIDS+=($!)
done
RSS_PEAK=$RSS_BEFORE
while :; do
    alive=0
    for pid in "${CURLS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    rss=$(rss_kib "$YATA_PID" VmRSS)
    ((rss > RSS_PEAK)) && RSS_PEAK=$rss
    ((alive)) || break
    sleep 0.1
done
for pid in "${CURLS[@]}"; do wait "$pid" || true; done
end_ns=$(date +%s%N)
HWM_AFTER=$(rss_kib "$YATA_PID" VmHWM)
RSS_AFTER=$(rss_kib "$YATA_PID" VmRSS)
PAR_OK=0
for i in $(seq 1 "$PARALLEL"); do
    [[ "$(cat "$TMP/par-$i.txt")" == "$BIG_BYTES 200" ]] && PAR_OK=$((PAR_OK + 1))
done
PAR_MBS=$(awk -v b="$BIG_BYTES" -v n="$PARALLEL" -v ns=$((end_ns - start_ns)) \
    'BEGIN { printf "%.0f", b * n / (ns / 1e9) / 1e6 }')
PER_STREAM_KIB=$(((RSS_PEAK - RSS_BEFORE) / PARALLEL))
log "parallel: $PAR_OK/$PARALLEL complete, $PAR_MBS MB/s aggregate, RSS $RSS_BEFORE -> peak $RSS_PEAK KiB (HWM $HWM_AFTER)"

# ---------------------------------------------------------------- logging: info
I_RPS="-" I_P99="-" I_CPU="-" I_ERR=0
if [[ "$INFO_RUN" == 1 ]]; then
    log "restarting yatagarasu with logging.level: info"
    stop "$YATA_PID"
    write_config info
    start yatagarasu-info "$BIN" --config "$TMP/yatagarasu.yaml"
    YATA_PID=$STARTED_PID
    wait_http "$YATA_URL/1k.bin"
    res=$(measure_wrk yatagarasu-info "$YATA_URL/1k.bin" "$YATA_PID" "$ORIGIN_PID")
    read -r I_RPS I_P99 _ I_ERR I_CPU _ <<<"$res"
    LOG_LINES=$(wc -l <"$TMP/yatagarasu-info.log")
    log "info run wrote $LOG_LINES log lines"
fi

# ---------------------------------------------------------------- cache
# Yatagarasu with the memory tier; the cached bucket is the same origin bucket.
write_cache_config() {
    proxy_config "$TMP/yatagarasu-cache.yaml" "$CACHE_PORT" "$CACHE_METRICS_PORT" warn cached \
        'cache:
  enabled: true
  cache_layers: ["memory"]
  memory:
    max_item_size_mb: 8
    max_cache_size_mb: 256
    default_ttl_seconds: 3600
'
}

# Sum of a counter on the cached instance's /metrics over the series whose
# labels match an optional regex (e.g. 'result="miss"'); 0 when absent.
metric() { # name [label-regex]
    curl -s --max-time 5 "http://127.0.0.1:$CACHE_METRICS_PORT/metrics" |
        awk -v name="$1" -v re="${2:-}" '
            /^#/ { next }
            { base = $1; sub(/\{.*/, "", base) }
            base == name && $1 ~ re { sum += $NF }
            END { printf "%d\n", sum }'
}

# One GET; exits unless it is a 200 with exactly the bytes of the file.
# Prints the X-Cache header ("-" when there is none).
checked_get() { # url expected-file
    local code
    code=$(curl -s -o "$TMP/check.bin" -D "$TMP/check.hdr" -w '%{http_code}' "$1")
    if [[ "$code" != 200 ]] || ! cmp -s "$TMP/check.bin" "$2"; then
        echo "error: $1 answered $code or different bytes" >&2
        exit 1
    fi
    awk 'tolower($1) == "x-cache:" { sub(/^[^:]*: */, ""); sub(/\r$/, ""); v = $0 }
        END { print (v == "") ? "-" : v }' "$TMP/check.hdr"
}

wrk_total() { # label -> requests wrk completed in the warm-up and the measured run
    echo $(($(parse_wrk <"$TMP/wrk-$1-warmup.txt" | awk '{ print $3 }') +
        $(parse_wrk <"$TMP/wrk-$1.txt" | awk '{ print $3 }')))
}

# The cold-burst client (Python 3 stdlib): opens N connections, waits until all
# are connected (plus 0.5 s for the proxy to accept them), then writes one GET on
# each (Connection: close) without awaiting in between, reads every response and
# prints the counts of status codes, X-Cache values and bodies whose SHA-256 is
# the expected one ("ok": 200 with the right bytes).
write_burst_client() {
    cat >"$TMP/burst.py" <<'EOF'
import asyncio, collections, hashlib, sys, time

host, port, path, n, expected = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()

async def response(reader):
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = head[0].split(" ", 2)[1]
    headers = {}
    for line in head[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()  # until the server closes
    return status, headers.get("x-cache", "-"), hashlib.sha256(body).hexdigest() == expected

async def exchange(reader, writer):
    try:
        return await asyncio.wait_for(response(reader), 60)
    except Exception as error:
        return "error:" + type(error).__name__, "-", False
    finally:
        writer.close()

async def main():
    opened = await asyncio.gather(*(asyncio.open_connection(host, port) for _ in range(n)),
                                  return_exceptions=True)
    connections = [c for c in opened if not isinstance(c, BaseException)]
    # Connected here means in the listen queue; give the proxy time to accept
    # them all, so that the requests, not the accepts, are the burst.
    await asyncio.sleep(0.5)
    start = time.monotonic()
    for _, writer in connections:  # all at once: nothing is awaited in between
        writer.write(request)
    results = await asyncio.gather(*(exchange(r, w) for r, w in connections))
    elapsed = time.monotonic() - start
    statuses = collections.Counter(s for s, _, _ in results)
    for e in opened:
        if isinstance(e, BaseException):
            statuses["connect-error:" + type(e).__name__] += 1
    caches = collections.Counter(x for _, x, _ in results)
    print("requests", n)
    print("connected", len(connections))
    print("ok", sum(1 for s, _, good in results if s == "200" and good))
    print("statuses", ", ".join(f"{k}×{v}" for k, v in sorted(statuses.items())))
    print("x_cache", ", ".join(f"{k}×{v}" for k, v in caches.most_common()))
    print("seconds", f"{elapsed:.3f}")

asyncio.run(main())
EOF
}

H_RPS="-" H_P99="-" H_CPU="-" H_ORIGIN_CPU="-" H_ERR=0
M_RPS="-" M_P99="-" M_CPU="-" M_ORIGIN_CPU="-" M_ERR=0
F_RPS="-" F_P99="-" F_CPU="-" F_ERR=0
if [[ "$CACHE_RUN" == 1 ]]; then
    log "stopping yatagarasu; starting it with the memory cache on :$CACHE_PORT (metrics :$CACHE_METRICS_PORT)"
    stop "$YATA_PID"
    write_cache_config
    start yatagarasu-cache "$BIN" --config "$TMP/yatagarasu-cache.yaml"
    CACHE_PID=$STARTED_PID
    CACHED_URL="http://127.0.0.1:$CACHE_PORT/cached"
    wait_http "http://127.0.0.1:$CACHE_PORT/health"
    wait_http "http://127.0.0.1:$CACHE_METRICS_PORT/metrics"

    # A hit is a hit: the first GET fills the cache, the second is served from memory.
    first=$(checked_get "$CACHED_URL/1k.bin" "$ROOT/bench-bucket/1k.bin")
    second=$(checked_get "$CACHED_URL/1k.bin" "$ROOT/bench-bucket/1k.bin")
    if [[ "$first" != MISS || "$second" != "HIT memory" ]]; then
        echo "error: GET $CACHED_URL/1k.bin twice: X-Cache '$first' then '$second' (want MISS, HIT memory)" >&2
        exit 1
    fi
    CACHE_WORKERS=$(runtime_of "$CACHE_PID")

    # (d) cached 1 KiB: every request must be a memory hit, none may go upstream.
    log "wrk (d): cached 1 KiB"
    hit0=$(metric yatagarasu_cache_requests_total 'result="hit"')
    miss0=$(metric yatagarasu_cache_requests_total 'result="miss"')
    up0=$(metric yatagarasu_upstream_requests_total)
    res=$(measure_wrk cached-hit "$CACHED_URL/1k.bin" "$CACHE_PID" "$ORIGIN_PID")
    read -r H_RPS H_P99 _ H_ERR H_CPU H_ORIGIN_CPU <<<"$res"
    H_WRK=$(wrk_total cached-hit)
    H_HITS=$(($(metric yatagarasu_cache_requests_total 'result="hit"') - hit0))
    H_MISSES=$(($(metric yatagarasu_cache_requests_total 'result="miss"') - miss0))
    H_UP=$(($(metric yatagarasu_upstream_requests_total) - up0))
    log "(d) wrk completed $H_WRK requests; cache hits +$H_HITS, misses +$H_MISSES, upstream +$H_UP"
    if ((H_HITS < H_WRK || H_MISSES != 0 || H_UP != 0)); then
        echo "error: (d) was not all hits: wrk $H_WRK, hits +$H_HITS, misses +$H_MISSES, upstream +$H_UP" >&2
        exit 1
    fi

    # (e) the same object, a new versionId (so a new cache key) on every request:
    # every request must be a miss that goes upstream and fills the cache.
    log "wrk (e): cache misses (a new versionId per request)"
    cat >"$TMP/miss.lua" <<'EOF'
-- Appends ?versionId=<run>-<thread>-<n>: a new cache key on every request, so
-- each one is a real miss that goes to the origin (nginx ignores the query)
-- and fills the cache. The script argument keeps the ids of the warm-up and
-- the measured run apart.
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("thread_id", threads)
end
local prefix, n = "", 0
function init(args)
    prefix = (args[1] or "run") .. "-" .. tostring(thread_id or 0) .. "-"
end
function request()
    n = n + 1
    return wrk.format(nil, wrk.path .. "?versionId=" .. prefix .. n)
end
EOF
    hit0=$(metric yatagarasu_cache_requests_total 'result="hit"')
    miss0=$(metric yatagarasu_cache_requests_total 'result="miss"')
    up0=$(metric yatagarasu_upstream_requests_total)
    res=$(WRK_SCRIPT="$TMP/miss.lua" measure_wrk cached-miss "$CACHED_URL/1k.bin" "$CACHE_PID" "$ORIGIN_PID")
    read -r M_RPS M_P99 _ M_ERR M_CPU M_ORIGIN_CPU <<<"$res"
    M_WRK=$(wrk_total cached-miss)
    M_HITS=$(($(metric yatagarasu_cache_requests_total 'result="hit"') - hit0))
    M_MISSES=$(($(metric yatagarasu_cache_requests_total 'result="miss"') - miss0))
    M_UP=$(($(metric yatagarasu_upstream_requests_total) - up0))
    log "(e) wrk completed $M_WRK requests; cache misses +$M_MISSES, hits +$M_HITS, upstream +$M_UP"
    if ((M_MISSES < M_WRK || M_UP < M_WRK || M_HITS != 0)); then
        echo "error: (e) was not all misses: wrk $M_WRK, misses +$M_MISSES, hits +$M_HITS, upstream +$M_UP" >&2
        exit 1
    fi
    # And a miss fills the cache: a fresh versionId is a MISS, then a HIT.
    probe="$CACHED_URL/1k.bin?versionId=probe-$RANDOM$RANDOM"
    first=$(checked_get "$probe" "$ROOT/bench-bucket/1k.bin")
    second=$(checked_get "$probe" "$ROOT/bench-bucket/1k.bin")
    if [[ "$first" != MISS || "$second" != "HIT memory" ]]; then
        echo "error: GET $probe twice: X-Cache '$first' then '$second' (want MISS, HIT memory)" >&2
        exit 1
    fi

    # (f) the ceiling: a bare hyper server answering the same bytes, same core.
    log "wrk (f): bare hyper on :$BARE_PORT"
    start bare-hyper "$BARE_BIN" "127.0.0.1:$BARE_PORT" "$ROOT/bench-bucket/1k.bin"
    BARE_PID=$STARTED_PID
    wait_http "http://127.0.0.1:$BARE_PORT/1k.bin"
    checked_get "http://127.0.0.1:$BARE_PORT/1k.bin" "$ROOT/bench-bucket/1k.bin" >/dev/null
    BARE_WORKERS=$(runtime_of "$BARE_PID")
    res=$(measure_wrk bare-hyper "http://127.0.0.1:$BARE_PORT/1k.bin" "$BARE_PID")
    read -r F_RPS F_P99 _ F_ERR F_CPU <<<"$res"
    stop "$BARE_PID"

    # Cold burst: BURST connections, then one GET each for a key nobody asked for yet.
    log "cold burst: $BURST connections, one GET each of /cached/burst/1k.bin"
    write_burst_client
    BURST_SHA=$(sha256sum "$ROOT/bench-bucket/burst/1k.bin" | cut -d' ' -f1)
    origin_lines() { if [[ -f "$TMP/origin/burst.log" ]]; then wc -l <"$TMP/origin/burst.log"; else echo 0; fi; }
    o0=$(origin_lines)
    co0=$(metric yatagarasu_cache_coalesced_total)
    up0=$(metric yatagarasu_upstream_requests_total)
    taskset -c "$CLIENT_CPU" python3 "$TMP/burst.py" 127.0.0.1 "$CACHE_PORT" /cached/burst/1k.bin \
        "$BURST" "$BURST_SHA" >"$TMP/burst.txt"
    sleep 0.5 # nginx writes its log line after the response; let it land
    BURST_ORIGIN=$(($(origin_lines) - o0))
    BURST_COALESCED=$(($(metric yatagarasu_cache_coalesced_total) - co0))
    BURST_UP=$(($(metric yatagarasu_upstream_requests_total) - up0))
    burst_field() { awk -v k="$1" '$1 == k { sub(/^[^ ]+ /, ""); print }' "$TMP/burst.txt"; }
    BURST_CONNECTED=$(burst_field connected)
    BURST_OK=$(burst_field ok)
    BURST_STATUSES=$(burst_field statuses)
    BURST_XCACHE=$(burst_field x_cache)
    BURST_SECONDS=$(burst_field seconds)
    log "burst: $BURST_OK/$BURST ok ($BURST_STATUSES; X-Cache $BURST_XCACHE), origin $BURST_ORIGIN, upstream +$BURST_UP, coalesced +$BURST_COALESCED"
    if [[ "$BURST_OK" != "$BURST" ]]; then
        cat "$TMP/burst.txt" >&2
        echo "error: cold burst: only ${BURST_OK:-0} of $BURST answers were 200 with the right bytes" >&2
        exit 1
    fi
fi

# ---------------------------------------------------------------- report
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$REPO" diff --quiet HEAD -- src 2>/dev/null || COMMIT+=" (+ uncommitted src changes)"
pf() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == "ge") ? (v + 0 >= t + 0) : (v + 0 <= t + 0); print ok ? "pass" : "FAIL" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }

CACHE_TABLES="" CACHE_TARGETS=""
if [[ "$CACHE_RUN" == 1 ]]; then
    CACHE_TABLES=$(
        cat <<EOF
Cache: yatagarasu restarted with \`cache_layers: ["memory"]\` (256 MiB, 8 MiB items, TTL 1 h), bucket \`/cached\` on the same origin;
yatagarasu: $CACHE_WORKERS; bare hyper (examples/bare_hyper.rs): $BARE_WORKERS. Same wrk settings as above.
In (e) every request carries a new \`?versionId=\` (wrk Lua script), so each is a miss that goes to the origin and fills the cache.

| Cached 1 KiB GET | req/s | p99 (ms) | proxy CPU µs/req | origin CPU µs/req | errors |
|---|---:|---:|---:|---:|---:|
| (d) yatagarasu, cache hit (\`X-Cache: HIT memory\`) | $H_RPS | $H_P99 | $H_CPU | $H_ORIGIN_CPU | $H_ERR |
| (e) yatagarasu, cache miss (new versionId per request) | $M_RPS | $M_P99 | $M_CPU | $M_ORIGIN_CPU | $M_ERR |
| (f) bare hyper, static bytes (the ceiling) | $F_RPS | $F_P99 | $F_CPU | – | $F_ERR |

Checked from /metrics (warm-up + measured run): (d) wrk completed $H_WRK, cache hits +$H_HITS, misses +$H_MISSES, upstream requests +$H_UP;
(e) wrk completed $M_WRK, cache misses +$M_MISSES, hits +$M_HITS, upstream requests +$M_UP.

| Cold burst: $BURST connections opened, then one GET each of an uncached key | value |
|---|---:|
| connected | $BURST_CONNECTED |
| 200 with the right bytes (SHA-256) | $BURST_OK / $BURST |
| status codes | $BURST_STATUSES |
| X-Cache | $BURST_XCACHE |
| origin requests (nginx access log of /bench-bucket/burst/) | $BURST_ORIGIN |
| yatagarasu_upstream_requests_total delta | $BURST_UP |
| yatagarasu_cache_coalesced_total delta | $BURST_COALESCED |
| client time, first write to last response (s) | $BURST_SECONDS |
EOF
    )$'\n\n'
    BURST_RESULT=FAIL
    [[ "$BURST_ORIGIN" == 1 ]] && BURST_RESULT=pass
    CACHE_TARGETS=$'\n'"| cached 1 KiB req/s ≥ 0.7 × bare hyper | $H_RPS vs $F_RPS ($(ratio "$H_RPS" "$F_RPS")×) | $(pf "$(ratio "$H_RPS" "$F_RPS")" 0.7 ge) |"
    CACHE_TARGETS+=$'\n'"| cold burst of $BURST → 1 origin request | $BURST_ORIGIN origin request(s), $BURST_UP upstream | $BURST_RESULT |"
fi

REPORT=$(
    cat <<EOF
### Load test ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))

Commit $COMMIT. Load average before / after: $LOAD_BEFORE / $LOAD_AFTER.
wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency on core $CLIENT_CPU; servers (origin, nginx proxy, yatagarasu) on core $SERVER_CPU.
nginx: 1 worker, no master; yatagarasu: $YATA_WORKERS, logging warn, metrics on, upstream.read_buffer_bytes ${READ_BUFFER:-default}.
CPU/req = (utime+stime of the process over the wrk run) / requests.

| 1 KiB GET | req/s | p99 (ms) | proxy CPU µs/req | origin CPU µs/req | errors |
|---|---:|---:|---:|---:|---:|
| (a) direct origin | $A_RPS | $A_P99 | – | $A_ORIGIN_CPU | $A_ERR |
| (b) nginx proxy_pass | $B_RPS | $B_P99 | $B_CPU | $B_ORIGIN_CPU | $B_ERR |
| (c) yatagarasu (warn) | $C_RPS | $C_P99 | $C_CPU | $C_ORIGIN_CPU | $C_ERR |
| (c') yatagarasu (info, access log to file) | $I_RPS | $I_P99 | $I_CPU | – | $I_ERR |
| (g) bare forward: hyper-util server + legacy client, no layers (the floor) | $G_RPS | $G_P99 | $G_CPU | $G_ORIGIN_CPU | $G_ERR |
| (h) yatagarasu (warn), every protection layer configured, none triggered | $P_RPS | $P_P99 | $P_CPU | $P_ORIGIN_CPU | $P_ERR |

Against the floor (g), yatagarasu (c) gets $(ratio "$C_RPS" "$G_RPS")× its req/s and spends
$(awk -v c="$C_CPU" -v g="$G_CPU" 'BEGIN { printf "%.2f", c - g }') µs more CPU per request: what routing, limits, signing, metrics and the
rest of the stack cost. The protection layers (h) add
$(awk -v p="$P_CPU" -v c="$C_CPU" 'BEGIN { printf "%.2f", p - c }') µs of CPU per request to (c); in $PAIRS more (c), (h) pairs run back to back the
differences were ${PAIR_DIFFS[*]} µs, median $P_DIFF_MEDIAN µs. The floor itself gets $(ratio "$G_RPS" "$B_RPS")× nginx's req/s and $(ratio "$G_CPU" "$B_CPU")× its CPU per request.

| 1 GiB download (one stream, median of $DOWNLOADS) | MB/s | vs direct |
|---|---:|---:|
| direct origin | $D_DIRECT | 1.00 |
| nginx proxy_pass | $D_NGINX | $(ratio "$D_NGINX" "$D_DIRECT") |
| yatagarasu | $D_YATA | $(ratio "$D_YATA" "$D_DIRECT") |

Yatagarasu CPU per 1 GiB stream: $D_YATA_CPU_MS ms.

| $PARALLEL × 1 GiB through a freshly started yatagarasu | value |
|---|---:|
| complete | $PAR_OK / $PARALLEL |
| aggregate MB/s | $PAR_MBS |
| VmRSS before (KiB) | $RSS_BEFORE |
| VmRSS peak, sampled every 100 ms (KiB) | $RSS_PEAK |
| VmRSS after (KiB) | $RSS_AFTER |
| VmHWM before / after (KiB) | $HWM_BEFORE / $HWM_AFTER |
| (peak − before) / stream (KiB) | $PER_STREAM_KIB |

A few streams can fit in memory the allocator already holds after start-up
(a figure near 0); PARALLEL=32 outgrows it and gives the figure to quote.

${CACHE_TABLES}| Target | Measured | Result |
|---|---|---|
| 1 KiB req/s ≥ nginx proxy_pass | $C_RPS vs $B_RPS ($(ratio "$C_RPS" "$B_RPS")×) | $(pf "$C_RPS" "$B_RPS" ge) |
| proxy CPU/req ≤ nginx | $C_CPU vs $B_CPU µs | $(pf "$C_CPU" "$B_CPU" le) |
| 1 GiB ≥ 0.6 × direct | $(ratio "$D_YATA" "$D_DIRECT")× | $(pf "$(ratio "$D_YATA" "$D_DIRECT")" 0.6 ge) |
| ≤ 128 KiB RSS per stream | $PER_STREAM_KIB KiB | $(pf "$PER_STREAM_KIB" 128 le) |
| ≤ 64 MiB RSS total | $RSS_PEAK KiB peak | $(pf "$RSS_PEAK" 65536 le) |$CACHE_TARGETS
EOF
)

echo
echo "$REPORT"
if [[ -n "$OUT" ]]; then
    echo "$REPORT" >"$OUT"
    log "written to $OUT"
fi
