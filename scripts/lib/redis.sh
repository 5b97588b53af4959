# shellcheck shell=bash
# Redis on 127.0.0.1 for the scripts: one server, or a 3-master cluster.
# Source it after scripts/lib/servers.sh (uses start, free_port, log, TMP).
# Both set REDIS_PORTS (the ports, in order) and REDIS_PIDS.

# Waits until redis-cli's ARGS on PORT print a line matching REGEX (bounded, 10 s).
redis_wait() { # port regex args...
    local rport=$1 regex=$2
    shift 2
    for _ in $(seq 1 200); do
        redis-cli -p "$rport" "$@" 2>/dev/null | grep -q "$regex" && return 0
        sleep 0.05
    done
    echo "error: redis on port $rport never answered $* with $regex" >&2
    return 1
}

# One redis-server, no persistence.
redis_single() {
    local rport
    free_port rport
    mkdir -p "$TMP/redis-$rport"
    start "redis-$rport" redis-server --port "$rport" --bind 127.0.0.1 --dir "$TMP/redis-$rport" \
        --save '' --appendonly no
    REDIS_PORTS=("$rport")
    REDIS_PIDS=("$STARTED_PID")
    redis_wait "$rport" PONG ping
}

# Three masters (no replicas), the hash slots split between them; returns
# once every node says cluster_state:ok.
redis_cluster() {
    local rport nodes=()
    REDIS_PORTS=()
    REDIS_PIDS=()
    for _ in 1 2 3; do
        free_port rport
        mkdir -p "$TMP/redis-$rport"
        start "redis-$rport" redis-server --port "$rport" --bind 127.0.0.1 --dir "$TMP/redis-$rport" \
            --cluster-enabled yes --cluster-config-file "nodes-$rport.conf" --save '' --appendonly no
        REDIS_PORTS+=("$rport")
        REDIS_PIDS+=("$STARTED_PID")
        nodes+=("127.0.0.1:$rport")
    done
    for rport in "${REDIS_PORTS[@]}"; do redis_wait "$rport" PONG ping; done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >>"$TMP/redis-cluster.log" 2>&1
    for rport in "${REDIS_PORTS[@]}"; do redis_wait "$rport" 'cluster_state:ok' cluster info; done
}
