# shellcheck shell=bash
# Shared by the scripts that start servers on 127.0.0.1.

# A free TCP port on 127.0.0.1 (not listening now, not handed out before).
# Ports come from below the kernel's ephemeral range (Linux default
# 32768-60999): a server started late in the run must not find its port
# taken by one of the many outgoing connections made before it.
USED_PORTS=" "
free_port() { # variable name: sets it (no subshell, so USED_PORTS keeps count)
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 12000))
        [[ "$USED_PORTS" == *" $port "* ]] && continue
        if ! ss -Htln "sport = :$port" | grep -q .; then
            USED_PORTS+="$port "
            printf -v "$1" '%s' "$port"
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

wait_ok() { # url [tries of 0.1 s, default 100]: until it answers 2xx
    for _ in $(seq 1 "${2:-100}"); do
        curl -fs -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    echo "error: $1 did not answer 2xx" >&2
    return 1
}
