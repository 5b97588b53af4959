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
#      divided by the requests wrk counted) and of the origin;
#   5. 1 GiB downloads one at a time: direct, through nginx, through Yatagarasu
#      (median MB/s of 3 each, and Yatagarasu's CPU time per GiB);
#   6. 8 concurrent 1 GiB downloads through Yatagarasu with its RSS sampled every
#      100 ms (peak VmRSS, VmHWM, RSS before);
#   7. Yatagarasu restarted with `logging.level: info` (access log to a file),
#      wrk (c) again, to show what the access log costs;
#   8. prints a Markdown table (and writes it to RESULTS.md when given).
#
# CPU pinning (2-core machines): wrk and curl run on core 0 (`taskset -c 0`),
# every server (origin nginx, proxy nginx, Yatagarasu) on core 1 (`taskset -c 1`).
# nginx runs `master_process off; worker_processes 1`; Yatagarasu's tokio
# runtime sizes itself from the CPU affinity mask, so it gets 1 worker thread.
# Note that in (b) and (c) the origin shares core 1 with the proxy.
#
# Knobs (environment): DURATION (wrk seconds, default 10), CONNECTIONS (32),
# BIG (size of the big object for `head -c`, default 1G), PARALLEL (8),
# DOWNLOADS (single-stream downloads per target, median reported; 3),
# SKIP_BUILD=1 (use the existing release binary), INFO_RUN=0 (skip step 7).
# Needs: cargo, nginx, wrk, curl, taskset. Runs in about 2 minutes.

set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
BIG=${BIG:-1G}
PARALLEL=${PARALLEL:-8}
DOWNLOADS=${DOWNLOADS:-3}
SKIP_BUILD=${SKIP_BUILD:-0}
INFO_RUN=${INFO_RUN:-1}
OUT=${1:-}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
[[ -n "$OUT" && "$OUT" != /* ]] && OUT="$PWD/$OUT"

for tool in nginx wrk curl taskset cargo; do
    command -v "$tool" >/dev/null || {
        echo "error: $tool is not installed (apt-get install -y wrk nginx-light curl util-linux)" >&2
        exit 1
    }
done

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
# A free TCP port on 127.0.0.1 (not listening now, not handed out before).
USED_PORTS=" "
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 40000))
        [[ "$USED_PORTS" == *" $port "* ]] && continue
        if ! ss -Htln "sport = :$port" | grep -q .; then
            USED_PORTS+="$port "
            echo "$port"
            return 0
        fi
    done
    echo "error: no free port found" >&2
    return 1
}

wait_http() { # url
    for _ in $(seq 1 100); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    echo "error: $1 did not come up" >&2
    return 1
}

cpu_ticks() { # pid -> utime+stime (clock ticks), fields 14 and 15 of /proc/PID/stat
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }       # drop "pid (comm) "; what is left starts at field 3
    # shellcheck disable=SC2086
    set -- $stat
    echo $((${12} + ${13}))
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
measure_wrk() { # label url pid...
    local label=$1 url=$2
    shift 2
    local pid before=() after=() out parsed reqs i
    # Warm-up (connections, pools, caches); not measured.
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d2s "$url" >/dev/null
    for pid in "$@"; do before+=("$(cpu_ticks "$pid")"); done
    out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url")
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
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN="$TARGET_DIR/release/yatagarasu"
[[ -x "$BIN" ]] || { echo "error: $BIN not found" >&2; exit 1; }

# ---------------------------------------------------------------- data
TMP=$(mktemp -d "${TMPDIR:-/tmp}/yatagarasu-bench.XXXXXX")
ROOT="$TMP/root"
mkdir -p "$ROOT/bench-bucket" "$TMP/origin" "$TMP/nginx-proxy"
head -c 1024 /dev/urandom >"$ROOT/bench-bucket/1k.bin"
log "writing the $BIG object"
head -c "$BIG" /dev/urandom >"$ROOT/bench-bucket/1g.bin"
BIG_BYTES=$(stat -c %s "$ROOT/bench-bucket/1g.bin")

ORIGIN_PORT=$(free_port)
NGINX_PORT=$(free_port)
PROXY_PORT=$(free_port)
METRICS_PORT=$(free_port)

# ---------------------------------------------------------------- origin nginx
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
  server { listen 127.0.0.1:$ORIGIN_PORT; root $ROOT; location / { } } }
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
write_config() { # level
    cat >"$TMP/yatagarasu.yaml" <<EOF
server:
  address: "127.0.0.1:$PROXY_PORT"
admin:
  enabled: true
  address: "127.0.0.1:0"
metrics:
  enabled: true
  address: "127.0.0.1:$METRICS_PORT"
logging:
  level: $1
  format: json
buckets:
  - name: bench
    path_prefix: /bench
    s3:
      bucket: bench-bucket
      region: us-east-1
      endpoint: "http://127.0.0.1:$ORIGIN_PORT"
      force_path_style: true
      access_key: AKIDBENCHMARK
      secret_key: bench-secret-key-not-checked-by-nginx
EOF
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
    code=$(curl -s -o "$TMP/check.bin" -w '%{http_code}' "$url")
    if [[ "$code" != 200 ]] || ! cmp -s "$TMP/check.bin" "$ROOT/bench-bucket/1k.bin"; then
        echo "error: $url answered $code or different bytes" >&2
        exit 1
    fi
done
YATA_WORKERS=$( (grep -lx 'tokio-rt-worker' /proc/"$YATA_PID"/task/*/comm 2>/dev/null || true) | wc -l)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- 1 KiB
log "wrk: ${DURATION}s, 1 thread, $CONNECTIONS connections"
res=$(measure_wrk direct "$DIRECT_URL/1k.bin" "$ORIGIN_PID")
read -r A_RPS A_P99 _ A_ERR A_ORIGIN_CPU <<<"$res"
res=$(measure_wrk nginx "$NGINX_URL/1k.bin" "$NGINX_PID" "$ORIGIN_PID")
read -r B_RPS B_P99 _ B_ERR B_CPU B_ORIGIN_CPU <<<"$res"
res=$(measure_wrk yatagarasu "$YATA_URL/1k.bin" "$YATA_PID" "$ORIGIN_PID")
read -r C_RPS C_P99 _ C_ERR C_CPU C_ORIGIN_CPU <<<"$res"

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
log "$PARALLEL concurrent downloads through yatagarasu"
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

# ---------------------------------------------------------------- report
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$REPO" diff --quiet HEAD -- src 2>/dev/null || COMMIT+=" (+ uncommitted src changes)"
pf() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == "ge") ? (v + 0 >= t + 0) : (v + 0 <= t + 0); print ok ? "pass" : "FAIL" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }

REPORT=$(
    cat <<EOF
### Load test ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))

Commit $COMMIT. Load average before / after: $LOAD_BEFORE / $LOAD_AFTER.
wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency on core $CLIENT_CPU; servers (origin, nginx proxy, yatagarasu) on core $SERVER_CPU.
nginx: 1 worker, no master; yatagarasu: $YATA_WORKERS tokio worker thread(s), logging warn, metrics on.
CPU/req = (utime+stime of the process over the wrk run) / requests.

| 1 KiB GET | req/s | p99 (ms) | proxy CPU µs/req | origin CPU µs/req | errors |
|---|---:|---:|---:|---:|---:|
| (a) direct origin | $A_RPS | $A_P99 | – | $A_ORIGIN_CPU | $A_ERR |
| (b) nginx proxy_pass | $B_RPS | $B_P99 | $B_CPU | $B_ORIGIN_CPU | $B_ERR |
| (c) yatagarasu (warn) | $C_RPS | $C_P99 | $C_CPU | $C_ORIGIN_CPU | $C_ERR |
| (c') yatagarasu (info, access log to file) | $I_RPS | $I_P99 | $I_CPU | – | $I_ERR |

| 1 GiB download (one stream, median of $DOWNLOADS) | MB/s | vs direct |
|---|---:|---:|
| direct origin | $D_DIRECT | 1.00 |
| nginx proxy_pass | $D_NGINX | $(ratio "$D_NGINX" "$D_DIRECT") |
| yatagarasu | $D_YATA | $(ratio "$D_YATA" "$D_DIRECT") |

Yatagarasu CPU per 1 GiB stream: $D_YATA_CPU_MS ms.

| $PARALLEL × 1 GiB through yatagarasu | value |
|---|---:|
| complete | $PAR_OK / $PARALLEL |
| aggregate MB/s | $PAR_MBS |
| VmRSS before (KiB) | $RSS_BEFORE |
| VmRSS peak, sampled every 100 ms (KiB) | $RSS_PEAK |
| VmRSS after (KiB) | $RSS_AFTER |
| VmHWM before / after (KiB) | $HWM_BEFORE / $HWM_AFTER |
| (peak − before) / stream (KiB) | $PER_STREAM_KIB |

| Target | Measured | Result |
|---|---|---|
| 1 KiB req/s ≥ nginx proxy_pass | $C_RPS vs $B_RPS ($(ratio "$C_RPS" "$B_RPS")×) | $(pf "$C_RPS" "$B_RPS" ge) |
| proxy CPU/req ≤ nginx | $C_CPU vs $B_CPU µs | $(pf "$C_CPU" "$B_CPU" le) |
| 1 GiB ≥ 0.6 × direct | $(ratio "$D_YATA" "$D_DIRECT")× | $(pf "$(ratio "$D_YATA" "$D_DIRECT")" 0.6 ge) |
| ≤ 128 KiB RSS per stream | $PER_STREAM_KIB KiB | $(pf "$PER_STREAM_KIB" 128 le) |
| ≤ 64 MiB RSS total | $RSS_PEAK KiB peak | $(pf "$RSS_PEAK" 65536 le) |
EOF
)

echo
echo "$REPORT"
if [[ -n "$OUT" ]]; then
    echo "$REPORT" >"$OUT"
    log "written to $OUT"
fi
