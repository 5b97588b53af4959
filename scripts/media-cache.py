#!/usr/bin/env python3
"""A media player's pattern through the cache: upstream bytes vs bytes served.

Usage: scripts/media-cache.py [BINARY]   (default: target/release/yatagarasu,
       else target/debug/yatagarasu; the byte counts do not depend on the build)

What it does:
  1. writes a 200 MiB object (random bytes) under a temp dir and serves it with
     nginx as the origin (`/<bucket>/<key>`; nginx ignores the signature), with
     an access log of every request's status, Range and body bytes sent;
  2. for each configuration — no cache (what a range miss did before range
     fills: it went to S3 unchanged), the cache without slices, the cache with
     4 MiB slices — starts Yatagarasu and plays the object twice (a second
     viewer, or a replay), each play being:
       - 64 sequential 1 MiB ranges from the start (a player buffering),
       - 16 seeks to random byte offsets (fixed seed), each reading 4
         sequential 1 MiB ranges;
     every answer is checked byte for byte against the file;
  3. prints a Markdown table: bytes served, bytes nginx sent (what S3 would
     bill as transfer), requests nginx received, per play.

Needs nginx and python3 (stdlib only).
"""

import http.client
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

MIB = 1024 * 1024
SIZE = 200 * MIB
BUCKET = "media-bkt"
KEY = "film.mp4"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path, deadline=30):
    start = time.time()
    while time.time() - start < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            c.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing answers on port {port}")


def start_nginx(tmp, root, port, log):
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""master_process off; worker_processes 1; daemon off; pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format bytes '$status $body_bytes_sent $uri "$http_range"';
  access_log {log} bytes; sendfile on; keepalive_requests 1000000;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{port}; root {root}; location / {{ }} }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", tmp])
    wait_http(port, "/")
    return proc


def proxy_config(path, port, origin, cache):
    with open(path, "w") as f:
        f.write(f"""server:
  address: "127.0.0.1:{port}"
  readiness_probe_interval_seconds: 3600
admin:
  address: "127.0.0.1:0"
metrics:
  enabled: true
  address: "127.0.0.1:0"
logging:
  level: warn
  format: json
{cache}buckets:
  - name: media
    path_prefix: /media
    s3:
      bucket: {BUCKET}
      region: us-east-1
      endpoint: "http://127.0.0.1:{origin}"
      force_path_style: true
      access_key: AKIDMEDIA
      secret_key: media-secret-not-checked-by-nginx
""")


def plan():
    """The (first, last) byte ranges of one play."""
    ranges = [(i * MIB, (i + 1) * MIB - 1) for i in range(64)]
    rng = random.Random(7)
    for _ in range(16):
        start = rng.randrange(0, SIZE - 4 * MIB)
        ranges += [(start + i * MIB, start + (i + 1) * MIB - 1) for i in range(4)]
    return ranges


def play(port, data):
    """Plays once; returns the bytes served. Exits on a wrong byte."""
    served = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for first, last in plan():
        conn.request("GET", f"/media/{KEY}", headers={"Range": f"bytes={first}-{last}"})
        r = conn.getresponse()
        body = r.read()
        if r.status != 206 or body != data[first : last + 1]:
            raise SystemExit(f"bytes={first}-{last}: status {r.status}, wrong bytes")
        served += len(body)
    conn.close()
    return served


def origin_totals(log, since):
    """Requests for the object and body bytes nginx logged after line
    `since` (the proxy's readiness probes of the bucket are left out)."""
    with open(log) as f:
        lines = f.read().splitlines()
    mine = [line for line in lines[since:] if KEY in line.split()[2]]
    sent = sum(int(line.split()[1]) for line in mine)
    return len(mine), sent, len(lines)


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else None
    if binary is None:
        for candidate in ("target/release/yatagarasu", "target/debug/yatagarasu"):
            if os.path.exists(candidate):
                binary = candidate
                break
    if binary is None:
        raise SystemExit("build yatagarasu first (cargo build --release)")
    tmp = tempfile.mkdtemp(prefix="media-cache-")
    root = os.path.join(tmp, "root")
    os.makedirs(os.path.join(root, BUCKET))
    data = os.urandom(SIZE)
    with open(os.path.join(root, BUCKET, KEY), "wb") as f:
        f.write(data)
    origin, log = free_port(), os.path.join(tmp, "access.log")
    nginx = start_nginx(tmp, root, origin, log)
    memory = "  memory:\n    max_item_size_mb: 10\n    max_cache_size_mb: 512\n"
    configs = [
        ("no cache (a range miss went to S3 as asked)", ""),
        ("cache, no slices", f"cache:\n  enabled: true\n{memory}"),
        ("cache, 4 MiB slices", f"cache:\n  enabled: true\n  slice_size_mb: 4\n{memory}"),
    ]
    rows, seen = [], 0
    try:
        for name, cache in configs:
            port = free_port()
            config = os.path.join(tmp, "proxy.yaml")
            proxy_config(config, port, origin, cache)
            proxy = subprocess.Popen([binary, "--config", config], stdout=subprocess.DEVNULL)
            try:
                wait_http(port, "/health")
                for n in (1, 2):
                    served = play(port, data)
                    requests, sent, seen = origin_totals(log, seen)
                    rows.append((name, n, served, requests, sent))
            finally:
                proxy.terminate()
                proxy.wait()
    finally:
        nginx.terminate()
        nginx.wait()
        shutil.rmtree(tmp)
    print("| configuration | play | bytes served | origin requests | origin bytes sent | origin / served |")
    print("|---|---|---|---|---|---|")
    for name, n, served, requests, sent in rows:
        print(f"| {name} | {n} | {served / MIB:.0f} MiB | {requests} | {sent / MIB:.1f} MiB | {sent / served:.2f} |")


if __name__ == "__main__":
    main()
