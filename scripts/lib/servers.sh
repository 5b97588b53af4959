# shellcheck shell=bash
# Shared by scripts/chaos.sh and scripts/soak.sh: ports, process handling and
# nginx origins on 127.0.0.1. Source it after setting LOG_TAG; it sets TMP
# (a temp dir removed on exit) and PIDS (processes stopped on exit).

log() { printf '[%s %(%H:%M:%S)T] %s\n' "$LOG_TAG" -1 "$*" >&2; }

PIDS=()
TMP=$(mktemp -d "${TMPDIR:-/tmp}/yatagarasu-$LOG_TAG.XXXXXX")
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ -n "${KEEP_TMP:-}" ]] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port and wait_http
# shellcheck source=scripts/lib/ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

start() { # name command... -> sets STARTED_PID
    "${@:2}" >>"$TMP/$1.log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# An nginx serving ROOT as /<bucket>/<key> (it ignores signatures; the
# integration tests prove them), one process, in its own directory. With
# ACCESS_LOG, every request it answers is a line there (to count what
# reached the origin).
nginx_origin() { # dir port root [access-log]
    mkdir -p "$1"
    cat >"$1/nginx.conf" <<CONF
master_process off; worker_processes 1; daemon off; pid $1/pid; error_log $1/error.log warn;
events { worker_connections 4096; }
http { access_log ${4:-off}; sendfile on; keepalive_requests 1000000;
  client_body_temp_path $1; proxy_temp_path $1; fastcgi_temp_path $1; uwsgi_temp_path $1; scgi_temp_path $1;
  server { listen 127.0.0.1:$2; root $3; location / { } } }
CONF
}

# Forgets a process that is gone (stopped and waited for here), so the
# clean-up never signals a recycled pid.
forget_pid() { # pid
    local kept=() pid
    for pid in "${PIDS[@]}"; do [[ "$pid" == "$1" ]] || kept+=("$pid"); done
    PIDS=("${kept[@]}")
}

# Waits until a child exits (bounded); returns 1 if it is still running.
wait_exit() { # pid seconds
    local deadline=$((SECONDS + $2))
    while kill -0 "$1" 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "error: pid $1 still running after $2 s" >&2; return 1; }
        sleep 0.05
    done
    wait "$1" 2>/dev/null || true
    forget_pid "$1"
}

# Sum of a Prometheus series over the label sets matching a regex (0 when absent).
metric_sum() { # metrics-url name [label-regex]
    curl -s "$1" | awk -v n="$2" -v re="${3:-}" '
        index($0, n) == 1 && (substr($0, length(n) + 1, 1) ~ /[{ ]/) && (re == "" || $0 ~ re) { s += $NF }
        END { printf "%d\n", s }'
}

need_tools() { # tool...
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || {
            echo "error: $tool is not installed (apt-get install -y nginx-light curl python3 iproute2)" >&2
            exit 1
        }
    done
}

# The release binary (built unless SKIP_BUILD=1).
release_binary() {
    if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
        log "cargo build --release"
        cargo build --release --quiet
    fi
    BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/yatagarasu"
    [[ -x "$BIN" ]] || { echo "error: $BIN not found" >&2; exit 1; }
}
