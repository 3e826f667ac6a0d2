"""The fault proxy and its report, driven by the fixture Python clients in-process (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import importlib.util
import socket
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import httpx
import pytest

from itest_mcp.tools.errors import FaultError
from itest_mcp.tools.fault_profiles import BUILTIN_PROFILES, Fault, Profile, parse_upstream
from itest_mcp.tools.fault_report import Verdict, build_report
from itest_mcp.tools.faults import FaultProxy, json_upstream, probe_concurrency

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "faults"
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


def load_client(kind: str) -> ModuleType:
    path = FIXTURES / f"py_{kind}" / f"{kind}_client.py"
    spec = importlib.util.spec_from_file_location(f"faults_{kind}_client", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def profile(*faults: dict[str, Any], seed: int = 0, name: str = "test") -> Profile:
    return Profile(name=name, seed=seed, faults=[Fault.model_validate(f) for f in faults])


async def drive(kind: str, prof: Profile) -> tuple[Any, Any]:
    """Run one fixture client against a proxy with `prof`; return (report, the client's result or error)."""
    client = load_client(kind)
    async with json_upstream() as up, FaultProxy(up, prof) as proxy:
        try:
            result: Any = await anyio.to_thread.run_sync(client.get_repo, proxy.url)
        except RuntimeError as exc:
            result = exc
    return build_report(proxy.log, prof, env={"GITHUB_API_URL": proxy.url}), result


async def test_no_faults_passes_traffic_through_and_records_it() -> None:
    async with json_upstream() as up, FaultProxy(up, profile()) as proxy:
        async with httpx.AsyncClient(base_url=proxy.url, trust_env=False) as c:
            r1 = await c.get("/repos/octo/demo")
            r2 = await c.post("/things", json={"title": "x" * 1000})
    assert r1.status_code == 200 and r1.json()["name"] == "demo"
    assert r2.status_code == 200 and r2.json()["method"] == "POST"
    assert [(r.method, r.path, r.status, r.outcome) for r in proxy.log.requests] == [
        ("GET", "/repos/octo/demo", 200, "ok"),
        ("POST", "/things", 200, "ok"),
    ]
    assert len(proxy.log.connections) == 1 and proxy.log.connections[0].requests == [1, 2]


async def test_status_faults_carry_retry_after_and_rate_limit_headers() -> None:
    prof = profile(
        {"kind": "http_status", "status": 429, "retry_after_s": 2, "first": 1},
        {"kind": "http_status", "status": 403, "ratelimit_reset_s": 30, "after": 1, "first": 1},
        {"kind": "http_status", "status": 504, "after": 2, "first": 1, "headers": {"x-trace": "abc"}},
    )
    async with json_upstream() as up, FaultProxy(up, prof) as proxy:
        async with httpx.AsyncClient(base_url=proxy.url, trust_env=False) as c:
            rs = [await c.get("/repos/octo/demo") for _ in range(4)]
    assert [r.status_code for r in rs] == [429, 403, 504, 200]
    assert rs[0].headers["retry-after"] == "2"
    assert rs[1].headers["x-ratelimit-remaining"] == "0"
    assert int(rs[1].headers["x-ratelimit-reset"]) >= int(time.time()) + 29
    assert rs[2].headers["x-trace"] == "abc"
    assert [i.fault for i in proxy.log.injections] == ["http_status#1", "http_status#2", "http_status#3"]


async def test_bad_json_truncated_and_malformed() -> None:
    prof = profile(
        {"kind": "bad_json", "body_mode": "truncated", "first": 1},
        {"kind": "bad_json", "body_mode": "malformed", "after": 1, "first": 1},
    )
    async with json_upstream() as up, FaultProxy(up, prof) as proxy:
        async with httpx.AsyncClient(base_url=proxy.url, trust_env=False) as c:
            bodies = [(await c.get("/repos/octo/demo")).content for _ in range(3)]
    for broken in bodies[:2]:
        with pytest.raises(ValueError):
            httpx.Response(200, content=broken).json()
    assert httpx.Response(200, content=bodies[2]).json()["name"] == "demo"


async def test_reset_close_after_and_down_break_the_connection() -> None:
    prof = profile(
        {"kind": "down", "first": 1},
        {"kind": "reset", "first": 1},
        {"kind": "close_after", "after_bytes": 10, "after": 1, "first": 1},
    )
    async with json_upstream() as up, FaultProxy(up, prof) as proxy:
        errors = []
        for _ in range(4):
            async with httpx.AsyncClient(base_url=proxy.url, trust_env=False) as c:
                try:
                    errors.append((await c.get("/repos/octo/demo")).status_code)
                except httpx.TransportError as exc:
                    errors.append(type(exc).__name__)
    assert errors[3] == 200 and all(isinstance(e, str) for e in errors[:3])
    assert proxy.log.connections[0].refused
    assert [r.outcome for r in proxy.log.requests] == ["reset", "closed", "ok"]


async def test_latency_jitter_and_bandwidth_slow_the_response() -> None:
    prof = profile(
        {"kind": "latency", "latency_ms": 150, "jitter_ms": 20, "first": 1},
        {"kind": "bandwidth", "rate_kbps": 20, "after": 1, "first": 1},
    )
    big = {"blob": "x" * 10_000}
    async with json_upstream(lambda m, p: (200, big)) as up, FaultProxy(up, prof) as proxy:
        async with httpx.AsyncClient(base_url=proxy.url, trust_env=False) as c:
            times = []
            for _ in range(3):
                t = time.perf_counter()
                assert (await c.get("/x")).json() == big
                times.append(time.perf_counter() - t)
    assert 0.12 <= times[0] < 1.0  # 150 ms ± 20 ms
    assert times[1] >= 0.4  # 10 KB at 20 KB/s
    assert times[2] < 0.1


async def test_slow_headers_and_upstream_latency() -> None:
    prof = profile(
        {"kind": "slow_headers", "interval_ms": 60, "first": 1},
        {"kind": "latency", "latency_ms": 100, "direction": "upstream", "after": 1, "first": 1},
    )
    async with json_upstream() as up, FaultProxy(up, prof) as proxy:
        async with httpx.AsyncClient(base_url=proxy.url, trust_env=False) as c:
            t = time.perf_counter()
            assert (await c.get("/a")).status_code == 200
            slow = time.perf_counter() - t
            t = time.perf_counter()
            assert (await c.get("/b")).status_code == 200
            delayed = time.perf_counter() - t
    assert slow >= 0.18  # at least 3 header lines × 60 ms
    assert delayed >= 0.09
    assert proxy.log.requests[1].faults == ["latency#2"]


async def test_same_seed_same_faults_in_the_same_order() -> None:
    def flaky(seed: int) -> Profile:
        return profile(
            {"kind": "http_status", "status": 503, "probability": 0.4},
            {"kind": "http_status", "status": 502, "probability": 0.3},
            {"kind": "bad_json", "probability": 0.3},
            seed=seed,
        )

    async def sequence(seed: int) -> list[str]:
        async with json_upstream() as up, FaultProxy(up, flaky(seed)) as proxy:
            async with httpx.AsyncClient(base_url=proxy.url, trust_env=False) as c:
                for _ in range(40):
                    await c.get("/repos/octo/demo")
        return [f"{i.fault}@{i.request}" for i in proxy.log.injections]

    first, second, other = await sequence(7), await sequence(7), await sequence(8)
    assert first == second
    assert len(first) >= 10
    assert first != other


async def test_every_nth_and_first_n_schedules() -> None:
    prof = profile(
        {"kind": "http_status", "status": 503, "every": 3}, {"kind": "http_status", "status": 500, "first": 1}
    )
    async with json_upstream() as up, FaultProxy(up, prof) as proxy:
        async with httpx.AsyncClient(base_url=proxy.url, trust_env=False) as c:
            statuses = [(await c.get("/x")).status_code for _ in range(7)]
    assert statuses == [500, 200, 503, 200, 200, 503, 200]


async def test_report_tells_the_careful_python_client_from_the_careless_one() -> None:
    prof = profile(
        {"kind": "http_status", "status": 503, "first": 2},
        {"kind": "http_status", "status": 429, "retry_after_s": 1, "after": 2, "first": 1},
        name="retry-check",
    )
    good, good_result = await drive("good", prof)
    bad, bad_result = await drive("bad", prof)

    assert good_result[1] == 4 and good_result[0]["name"] == "demo"
    assert isinstance(bad_result, RuntimeError) and "gave up after 3" in str(bad_result)

    g, b = good.figures, bad.figures
    assert g.retry_after_asked == 1 and g.retry_after_honoured == 1
    assert g.gaps_s[0] >= 0.08 and g.gaps_s[1] >= 0.15 and g.gaps_s[2] >= 0.9
    assert g.immediate_retries == 0 and g.gave_up_chains == 0
    assert b.immediate_retries == 2 and b.gave_up_chains == 1 and b.gave_up_after == [3]
    assert max(b.gaps_s) < 0.02
    verdicts = {e.name: e.verdict for e in good.edge_cases}
    assert verdicts["retry mechanisms"] is Verdict.SURVIVED
    assert verdicts["intermittent failures"] is Verdict.SURVIVED
    bad_verdicts = {e.name: e for e in bad.edge_cases}
    assert bad_verdicts["retry mechanisms"].verdict is Verdict.FAILED
    assert "no backoff" in bad_verdicts["retry mechanisms"].summary
    assert "gave up after 3" in bad_verdicts["intermittent failures"].summary
    assert good.verdict is Verdict.SURVIVED and bad.verdict is Verdict.FAILED


async def test_report_sees_retry_after_ignored_and_timeouts() -> None:
    ratelimit = profile({"kind": "http_status", "status": 429, "retry_after_s": 1, "first": 1})
    bad, _ = await drive("bad", ratelimit)
    assert bad.figures.retry_after_ignored == 1
    assert "retry-after ignored" in {e.name: e for e in bad.edge_cases}["retry mechanisms"].summary

    stall = profile({"kind": "stall", "stall_s": 3, "first": 1})
    good, good_result = await drive("good", stall)
    timeouts = {e.name: e for e in good.edge_cases}["connection timeouts"]
    assert timeouts.verdict is Verdict.SURVIVED and good_result[1] == 2
    assert 0.8 <= good.figures.client_timeout_after_s[0] < 2.0

    t = time.perf_counter()
    bad, bad_result = await drive("bad", stall)
    assert time.perf_counter() - t >= 2.9  # the careless client sat through the whole stall
    timeouts = {e.name: e for e in bad.edge_cases}["connection timeouts"]
    assert timeouts.verdict is Verdict.FAILED and "no timeout" in timeouts.summary


async def test_concurrency_cap_queues_or_rejects() -> None:
    slow = profile(
        {"kind": "concurrency_cap", "max_concurrent": 2, "over_cap": "queue"},
        {"kind": "latency", "latency_ms": 100},
    )
    async with json_upstream() as up, FaultProxy(up, slow) as proxy:
        probe = await probe_concurrency(proxy, 6)
    assert probe.completed == 6 and probe.errors == 0
    assert probe.queued >= 3 and probe.max_queue_ms >= 90
    report = build_report(proxy.log, slow)
    assert {e.name: e.verdict for e in report.edge_cases}["concurrent request handling"] is Verdict.SURVIVED

    reject = profile(
        {"kind": "concurrency_cap", "max_concurrent": 2, "over_cap": "reject", "status": 503},
        {"kind": "latency", "latency_ms": 100},
    )
    async with json_upstream() as up, FaultProxy(up, reject) as proxy:
        probe = await probe_concurrency(proxy, 6)
    assert probe.statuses.get("200") == 2 and probe.errors == 4
    assert sum(1 for r in proxy.log.requests if r.outcome == "rejected") == 4


async def test_forward_proxy_mode_and_connect_refusal() -> None:
    async with json_upstream() as up, FaultProxy(up, BUILTIN_PROFILES["rate-limited"]) as proxy:
        async with httpx.AsyncClient(proxy=proxy.url, trust_env=False) as c:
            first = await c.get("http://api.github.com/repos/octo/demo")
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as s:
            await s.send(b"CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\n\r\n")
            with anyio.fail_after(5):
                answer = await s.receive()
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    assert proxy.log.requests[0].host == "api.github.com"
    assert answer.startswith(b"HTTP/1.1 403") and b"not a loopback address" in answer


async def test_tcp_mode_relays_bytes_with_faults() -> None:
    prof = Profile(name="tcp", mode="tcp", faults=[Fault(kind="latency", latency_ms=100, first=1)])
    async with json_upstream() as up, FaultProxy(up, prof) as proxy:
        async with httpx.AsyncClient(base_url=proxy.url, trust_env=False) as c:
            t = time.perf_counter()
            r = await c.get("/repos/octo/demo", headers={"connection": "close"})
            elapsed = time.perf_counter() - t
    assert r.json()["name"] == "demo" and elapsed >= 0.09
    conn = proxy.log.connections[0]
    assert conn.tunnel == "tcp" and conn.bytes_up > 0 and conn.bytes_down > 0 and conn.faults == ["latency#1"]


async def test_no_traffic_is_not_survived() -> None:
    prof = BUILTIN_PROFILES["flaky-network"]
    async with json_upstream() as up, FaultProxy(up, prof) as proxy:
        await anyio.sleep(0.05)
    report = build_report(proxy.log, prof, env={"GITHUB_API_URL": proxy.url})
    assert report.verdict is Verdict.NO_TRAFFIC and not report.traffic
    assert "no traffic reached the proxy" in report.summary and "$GITHUB_API_URL" in report.summary
    assert all(e.verdict is Verdict.NO_TRAFFIC for e in report.edge_cases)


async def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(FaultError, match=rf"port {port} on 127.0.0.1 is in use.*use 0 for a free one"):
            async with FaultProxy(parse_upstream("127.0.0.1:1"), profile(), port=port):
                pass


def test_upstream_not_on_loopback_is_refused() -> None:
    with pytest.raises(FaultError, match=r"'api.github.com:443' is refused: 'api.github.com' is not a loopback"):
        parse_upstream("api.github.com:443")
    with pytest.raises(FaultError, match=r"10.0.0.5 is not a loopback address"):
        FaultProxy("10.0.0.5:80", profile())
    with pytest.raises(FaultError, match="not host:port"):
        parse_upstream("https://127.0.0.1")
    assert parse_upstream("http://localhost:8080/").url == "http://127.0.0.1:8080"
