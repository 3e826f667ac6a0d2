"""Fault proxy overhead with no faults, side by side with a direct connection (issue 9 "Bars").

Bars: added latency per request < 1 ms median on loopback, and throughput for
10,000 small HTTP requests within 2x of a direct connection.

    python bench/bench_faults.py [--requests 10000] [--concurrency 8]

The client is a minimal keep-alive HTTP/1.1 client on anyio sockets (httpx would
dominate the figures with its own overhead) and the upstream is the proxy module's
own JSON server. As in a fault run, where the client is the phase's process, the
load generator and the upstream run in a child process and the proxy alone in this
one; both paths (direct and proxied) are measured from the same child, interleaved.
A second, informational line measures everything in one event loop, where the
proxy's socket work necessarily adds to the client's and the upstream's.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import time

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

from itest_mcp.tools.fault_profiles import Profile, Upstream
from itest_mcp.tools.faults import FaultProxy, Message, json_upstream, read_body, read_head
from itest_mcp.tools.process import run_capture

REQUEST = b"GET /repos/octo/demo HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n\r\n"


async def client(port: int, n: int, latencies: list[float]) -> None:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        reader = BufferedByteReceiveStream(stream)
        for _ in range(n):
            t = time.perf_counter()
            await stream.send(REQUEST)
            first, headers = await read_head(reader)
            msg = Message(first, headers)
            await read_body(reader, msg, response=True, no_body=False)
            latencies.append(time.perf_counter() - t)
            assert first.startswith(b"HTTP/1.1 200"), first


async def sequential(port: int, n: int) -> list[float]:
    latencies: list[float] = []
    await client(port, n, latencies)
    return latencies


async def throughput(port: int, n: int, concurrency: int) -> float:
    latencies: list[float] = []
    per = n // concurrency
    t = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(client, port, per, latencies)
    return len(latencies) / (time.perf_counter() - t)


async def measure(direct_port: int, proxy_port: int, requests: int, concurrency: int, samples: int) -> dict[str, float]:
    """Latency medians and throughput, direct and through the proxy."""
    await sequential(direct_port, 200)  # warm-up both paths
    await sequential(proxy_port, 200)
    direct, proxied = [], []
    for _ in range(5):  # interleave so both paths see the same machine load
        direct += await sequential(direct_port, samples // 5)
        proxied += await sequential(proxy_port, samples // 5)
    return {
        "direct_ms": statistics.median(direct) * 1000,
        "proxied_ms": statistics.median(proxied) * 1000,
        "direct_rps": await throughput(direct_port, requests, concurrency),
        "proxied_rps": await throughput(proxy_port, requests, concurrency),
    }


async def load_role(upstream_port: int, proxy_port: int, requests: int, concurrency: int, samples: int) -> int:
    """The child: serve the upstream and drive both paths from here."""
    async with json_upstream(port=upstream_port):
        figures = await measure(upstream_port, proxy_port, requests, concurrency, samples)
    print(json.dumps(figures))
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def show(title: str, f: dict[str, float], requests: int, concurrency: int, samples: int) -> tuple[float, float]:
    added = f["proxied_ms"] - f["direct_ms"]
    ratio = f["direct_rps"] / f["proxied_rps"]
    print(title)
    print(f"  latency, {samples} sequential keep-alive requests each (median):")
    print(f"    direct  {f['direct_ms']:8.3f} ms   proxied {f['proxied_ms']:8.3f} ms   added {added:6.3f} ms")
    print(f"  throughput, {requests} requests on {concurrency} keep-alive connections:")
    print(f"    direct  {f['direct_rps']:8.0f} req/s proxied {f['proxied_rps']:8.0f} req/s  ratio {ratio:.2f}x")
    return added, ratio


async def main(requests: int, concurrency: int, samples: int) -> int:
    upstream_port = free_port()
    async with FaultProxy(Upstream(port=upstream_port), Profile(name="none")) as proxy:
        argv = [
            sys.executable,
            __file__,
            "--role",
            "load",
            "--upstream-port",
            str(upstream_port),
            "--proxy-port",
            str(proxy.port),
            "--requests",
            str(requests),
            "--concurrency",
            str(concurrency),
            "--latency-samples",
            str(samples),
        ]
        done = await anyio.to_thread.run_sync(lambda: run_capture(argv, cwd=".", timeout=300))
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 2
        recorded = len(proxy.log.requests)
    added, ratio = show(
        "proxy in its own process (as in a fault run):", json.loads(done.stdout), requests, concurrency, samples
    )
    async with json_upstream() as up, FaultProxy(up, Profile(name="none")) as proxy:
        same = await measure(up.port, proxy.port, requests, concurrency, samples)
    show("informational — client, proxy and upstream in one event loop:", same, requests, concurrency, samples)
    print(
        f"bars: added latency {added:.3f} ms < 1 ms: {'PASS' if added < 1.0 else 'FAIL'}; "
        f"throughput direct/proxied {ratio:.2f}x <= 2x: {'PASS' if ratio <= 2.0 else 'FAIL'}"
    )
    print(f"(the proxy recorded {recorded} requests)")
    return 0 if added < 1.0 and ratio <= 2.0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-samples", type=int, default=2_000)
    parser.add_argument("--role", choices=["main", "load"], default="main", help=argparse.SUPPRESS)
    parser.add_argument("--upstream-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--proxy-port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "load":
        code = anyio.run(
            load_role, args.upstream_port, args.proxy_port, args.requests, args.concurrency, args.latency_samples
        )
    else:
        code = anyio.run(main, args.requests, args.concurrency, args.latency_samples)
    raise SystemExit(code)
