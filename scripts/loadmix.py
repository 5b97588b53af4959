#!/usr/bin/env python3
"""Load client for scripts/chaos.sh and scripts/soak.sh: keep-alive HTTP/1.1
workers that check every answer's status and bytes.

Usage: loadmix.py --base http://127.0.0.1:PORT --plan PLAN.json --seconds N
                  [--workers 32] [--source-ips 127.0.0.2,127.0.0.3]
                  [--report-every 60] [--pid PROXY_PID]

PLAN.json is a list of request kinds, each
  {"name": "hit", "weight": 5, "path": "/cached/hot-{n}.bin", "n": 8,
   "headers": {"Authorization": "Bearer ..."}, "range": [start, end] | null,
   "expect": {"200": "sha256-hex or null"}, "allowed": [429]}
`{n}` becomes a number below `n` (or a counter when "n" is "counter");
`expect` maps each accepted status to the sha256 of the exact body (null:
any body). A status listed in `allowed` is counted apart (intended refusals,
such as 429 from a rate limit), not as a failure. Anything else — another
status, other bytes, a connection that breaks — is a failure.

Prints one JSON object at the end: requests, failures (by reason), per-kind
counts, allowed refusals, and (with --pid) the proxy's VmRSS every
--report-every seconds.
"""

import argparse
import asyncio
import hashlib
import json
import random
import sys
import time
from urllib.parse import urlsplit


class Stats:
    def __init__(self):
        self.requests = 0
        self.ok = 0
        self.allowed = {}
        self.failures = {}
        self.kinds = {}
        self.wrong_bytes = 0
        self.samples = []

    def fail(self, reason):
        self.failures[reason] = self.failures.get(reason, 0) + 1


async def read_response(reader):
    """Reads one response; returns (status, headers, body)."""
    line = await reader.readline()
    if not line:
        raise ConnectionError("closed before the status line")
    parts = line.decode("latin-1").split(" ", 2)
    status = int(parts[1])
    headers = {}
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed in the headers")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            body += await reader.readexactly(size)
            await reader.readline()
    else:
        body = b""
    return status, headers, body


def render(kind, counter):
    n = kind.get("n")
    if n == "counter":
        value = counter
    elif n:
        value = random.randrange(int(n))
    else:
        value = 0
    return kind["path"].replace("{n}", str(value))


async def worker(args, plan, weights, stats, deadline, source_ip, counter):
    host, port = args.host, args.port
    reader = writer = None
    while time.monotonic() < deadline:
        kind = random.choices(plan, weights)[0]
        counter[0] += 1
        path = render(kind, counter[0])
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}"]
        for name, value in kind.get("headers", {}).items():
            lines.append(f"{name}: {value}")
        if kind.get("range"):
            start, end = kind["range"]
            lines.append(f"Range: bytes={start}-{end}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        stats.requests += 1
        stats.kinds[kind["name"]] = stats.kinds.get(kind["name"], 0) + 1
        try:
            if writer is None:
                local = (source_ip, 0) if source_ip else None
                reader, writer = await asyncio.open_connection(host, port, local_addr=local)
            writer.write(request)
            status, headers, body = await asyncio.wait_for(read_response(reader), 30)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as e:
            stats.fail(f"{kind['name']}: {type(e).__name__}")
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        expect = kind["expect"]
        if str(status) in expect:
            digest = expect[str(status)]
            if digest is not None and hashlib.sha256(body).hexdigest() != digest:
                stats.wrong_bytes += 1
                stats.fail(f"{kind['name']}: wrong bytes")
            else:
                stats.ok += 1
        elif status in kind.get("allowed", []):
            key = f"{kind['name']}: {status}"
            stats.allowed[key] = stats.allowed.get(key, 0) + 1
        else:
            stats.fail(f"{kind['name']}: status {status}")
        if headers.get("connection", "").lower() == "close":
            writer.close()
            reader = writer = None


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


async def sampler(args, stats, deadline, started):
    while True:
        stats.samples.append(
            {"second": round(time.monotonic() - started), "rss_kib": rss_kib(args.pid), "requests": stats.requests}
        )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        await asyncio.sleep(min(args.report_every, remaining))


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--source-ips", default="")
    parser.add_argument("--report-every", type=float, default=60)
    parser.add_argument("--pid", type=int)
    args = parser.parse_args()
    url = urlsplit(args.base)
    args.host, args.port = url.hostname, url.port
    with open(args.plan) as f:
        plan = json.load(f)
    weights = [k.get("weight", 1) for k in plan]
    stats = Stats()
    started = time.monotonic()
    deadline = started + args.seconds
    ips = [ip for ip in args.source_ips.split(",") if ip] or [None]
    counter = [0]
    tasks = [
        worker(args, plan, weights, stats, deadline, ips[i % len(ips)], counter) for i in range(args.workers)
    ]
    if args.pid:
        tasks.append(sampler(args, stats, deadline, started))
    await asyncio.gather(*tasks)
    failed = sum(stats.failures.values())
    print(
        json.dumps(
            {
                "seconds": round(time.monotonic() - started, 1),
                "requests": stats.requests,
                "ok": stats.ok,
                "failed": failed,
                "failure_rate": failed / stats.requests if stats.requests else 0,
                "wrong_bytes": stats.wrong_bytes,
                "failures": stats.failures,
                "allowed_refusals": stats.allowed,
                "kinds": stats.kinds,
                "rss_samples": stats.samples,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
