"""A small closed-loop HTTP/1.1 load generator over TLS, with client certificates (P5).

``python -m benchmarks.loadgen --url https://127.0.0.1:PORT/path --ca ca.pem [--cert c.pem
--key k.pem] [--header "Name: value" ...] --connections 16 --duration 5 --warmup 1``

asyncio streams over ``ssl`` (no HTTP library: less client CPU per request), one coroutine per
keep-alive connection, each sending its next request when the previous answer is read (no
pipelining; coordinated omission is not corrected, as with wrk). Requests answered during the
warm-up are not counted. Prints one JSON object: requests, requests/s, p50/p99 latency in ms,
non-2xx answers, errors, and the generator's own CPU time (user + system) over the measured
window, as a share of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import ssl
import statistics
import sys
import time
from typing import Any
from urllib.parse import urlsplit


def build_request(host: str, path: str, headers: list[str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Accept: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def connection(
    host: str,
    port: int,
    context: ssl.SSLContext,
    request: bytes,
    start_at: float,
    stop_at: float,
    latencies: list[float],
    counters: dict[str, int],
) -> None:
    clock = time.perf_counter
    try:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname="localhost"
        )
    except OSError:
        counters["errors"] += 1
        return
    try:
        while True:
            sent = clock()
            if sent >= stop_at:
                break
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            if length:
                await reader.readexactly(length)
            done = clock()
            if sent >= start_at:
                latencies.append(done - sent)
                if not 200 <= status < 300:
                    counters["non_2xx"] += 1
            if b"connection: close" in head.lower():
                counters["closed"] += 1
                break
    except (OSError, asyncio.IncompleteReadError, ValueError):
        counters["errors"] += 1
    finally:
        writer.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 443
    context = ssl.create_default_context(cafile=args.ca)
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    request = build_request(f"{host}:{port}", url.path or "/", args.header or [])
    latencies: list[float] = []
    counters = {"non_2xx": 0, "errors": 0, "closed": 0}
    now = time.perf_counter()
    start_at = now + args.warmup
    stop_at = start_at + args.duration
    tasks = [
        connection(host, port, context, request, start_at, stop_at, latencies, counters)
        for _ in range(args.connections)
    ]
    gather = asyncio.gather(*tasks)
    await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
    usage_start = resource.getrusage(resource.RUSAGE_SELF)
    wall_start = time.perf_counter()
    await gather
    wall = time.perf_counter() - wall_start
    usage_end = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage_end.ru_utime - usage_start.ru_utime) + (usage_end.ru_stime - usage_start.ru_stime)
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0
    return {
        "requests": len(ordered),
        "rps": round(len(ordered) / args.duration, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 3) if ordered else 0.0,
        "p99_ms": round(p99 * 1000, 3),
        "non_2xx": counters["non_2xx"],
        "errors": counters["errors"],
        "closed_by_server": counters["closed"],
        "connections": args.connections,
        "duration_s": args.duration,
        "generator_cpu_percent": round(100 * cpu / wall, 1) if wall else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--header", action="append")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
