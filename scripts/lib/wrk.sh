# shellcheck shell=bash
# wrk's summary, read back. wrk prints it at the end of -d, and also when
# stopped with SIGINT (so a run can last exactly as long as an operation).

# wrk output (stdin) -> "requests req_per_s non2xx connect read write timeout"
wrk_counts() {
    awk '
        / requests in / { reqs = $1 }
        /Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ {
            for (i = 1; i < NF; i++) {
                v = $(i + 1); sub(",", "", v)
                if ($i == "connect") c = v; else if ($i == "read") r = v
                else if ($i == "write") w = v; else if ($i == "timeout") t = v
            }
        }
        END { printf "%d %.0f %d %d %d %d %d\n", reqs, rps, non2xx, c, r, w, t }
    '
}

# Stops a background wrk with SIGINT and waits for its summary.
wrk_stop() { # pid
    kill -INT "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget_pid "$1"
}
