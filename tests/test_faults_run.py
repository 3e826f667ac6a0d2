"""Fault runs through the real run engine: Go and Python fixture clients under a profile, the MCP tools and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mcp import Client

from itest_mcp.server.app import create_app
from itest_mcp.server.cli import main
from itest_mcp.tools.errors import ConfigError, FaultError
from itest_mcp.tools.fault_profiles import load_fault_config
from itest_mcp.tools.fault_report import Verdict
from itest_mcp.tools.fault_run import run_phase_with_faults
from itest_mcp.tools.process import which
from itest_mcp.tools.repo import open_project
from itest_mcp.tools.runner import RunOptions

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "faults"
pytestmark = pytest.mark.timeout(120)

RETRY_PROFILE = """
[faults]
env = ["GITHUB_API_URL"]

[faults.profiles.retry-check]
description = "two 503s, then a 429 asking for a 1 s wait"
seed = 11
faults = [
  {kind = "http_status", status = 503, first = 2},
  {kind = "http_status", status = 429, retry_after_s = 1, after = 2, first = 1},
]
"""


def make_project(tmp_path: Path, fixture: str, phases: str, faults: str = RETRY_PROFILE) -> Path:
    from conftest import commit_all, init_repo  # type: ignore[import-not-found]

    root = tmp_path / fixture
    shutil.copytree(FIXTURES / fixture, root)
    (root / "itest.toml").write_text(phases + faults, encoding="utf-8")
    init_repo(root)
    commit_all(root, "fixture")
    return root


GO_PHASE = """
[phases.integration]
runner = "go"
tags = ["integration"]
race = false
packages = ["./..."]
timeout = "90s"
"""


def py_phase(test_file: str) -> str:
    return f"""
[phases.integration]
runner = "pytest"
paths = ["{test_file}"]
timeout = "90s"
"""


needs_go = pytest.mark.skipif(which("go") is None, reason="go is not installed")


@needs_go
@pytest.mark.anyio
async def test_go_clients_told_apart(tmp_path: Path) -> None:
    good_root = make_project(tmp_path, "go_good", GO_PHASE)
    bad_root = make_project(tmp_path, "go_bad", GO_PHASE)
    options = RunOptions(test="TestFetchRepo")
    good = await run_phase_with_faults(open_project(good_root), "integration", "retry-check", options)
    bad = await run_phase_with_faults(open_project(bad_root), "integration", "retry-check", options)

    assert good.phase_run.status.value == "passed" and good.phase_run.fault_profile == "retry-check"
    assert bad.phase_run.status.value == "failed"
    g, b = good.report.figures, bad.report.figures
    assert good.report.verdict is Verdict.SURVIVED and bad.report.verdict is Verdict.FAILED
    assert g.max_attempts == 4 and g.retry_after_honoured == 1 and g.immediate_retries == 0
    assert g.gaps_s[0] >= 0.08 and g.gaps_s[1] >= 1.5 * g.gaps_s[0] and g.gaps_s[2] >= 0.9
    assert b.immediate_retries == 2 and b.gave_up_after == [3] and max(b.gaps_s) < 0.02
    retry = {e.name: e for e in bad.report.edge_cases}["retry mechanisms"]
    assert retry.verdict is Verdict.FAILED and "no backoff" in retry.summary
    assert [i.injected for i in good.report.injections] == [2, 1]
    assert good.report.env["GITHUB_API_URL"] == good.report.proxy_url


@pytest.mark.anyio
async def test_python_clients_told_apart(tmp_path: Path) -> None:
    good_root = make_project(tmp_path, "py_good", py_phase("itest_good.py"))
    bad_root = make_project(tmp_path, "py_bad", py_phase("itest_bad.py"))
    good = await run_phase_with_faults(open_project(good_root), "integration", "retry-check", RunOptions())
    bad = await run_phase_with_faults(open_project(bad_root), "integration", "retry-check", RunOptions())

    assert good.phase_run.status.value == "passed" and bad.phase_run.status.value == "failed"
    assert good.report.verdict is Verdict.SURVIVED and bad.report.verdict is Verdict.FAILED
    assert good.report.figures.retry_after_honoured == 1 and good.report.figures.gaps_s[2] >= 0.9
    assert bad.report.figures.immediate_retries == 2 and bad.report.figures.gave_up_after == [3]
    assert bad.report.phase is not None and bad.report.phase.failed == 1


@pytest.mark.anyio
async def test_phase_that_ignores_the_env_reports_no_traffic(tmp_path: Path) -> None:
    root = make_project(tmp_path, "py_offline", py_phase("itest_offline.py"))
    run = await run_phase_with_faults(open_project(root), "integration", "flaky-network", RunOptions())
    assert run.phase_run.status.value == "passed"
    assert run.report.verdict is Verdict.NO_TRAFFIC and not run.report.traffic
    assert run.report.summary.startswith("no traffic reached the proxy")
    assert "not a pass" in run.report.summary


@pytest.mark.anyio
async def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    root = make_project(tmp_path, "py_offline", py_phase("itest_offline.py"))
    with pytest.raises(
        FaultError,
        match=r"unknown fault profile 'flakey'; known profiles: degraded-api, flaky-network, "
        r"partition, rate-limited, retry-check",
    ):
        await run_phase_with_faults(open_project(root), "integration", "flakey", RunOptions())


@pytest.mark.parametrize(
    ("fault", "key", "message"),
    [
        ('{kind = "latency", latency_ms = -5}', "latency_ms", "greater than or equal to 0 (got -5)"),
        ('{kind = "reset", probability = 1.5}', "probability", "less than or equal to 1 (got 1.5)"),
        ('{kind = "teleport"}', "kind", "Input should be 'latency'"),
    ],
)
def test_impossible_fault_values_name_file_key_and_line(tmp_path: Path, fault: str, key: str, message: str) -> None:
    text = f'[faults]\nupstream = "fake-github"\n\n[faults.profiles.bad]\nfaults = [\n  {fault},\n]\n'
    root = make_project(tmp_path, "py_offline", "", faults=text)
    with pytest.raises(ConfigError) as err:
        load_fault_config(open_project(root))
    assert str(err.value).startswith("itest.toml:")
    assert f"faults.profiles.bad.faults[0].{key}" in str(err.value) and message in str(err.value)


def test_not_loopback_upstream_in_config_is_refused(tmp_path: Path) -> None:
    root = make_project(tmp_path, "py_offline", "", faults='[faults]\nupstream = "api.github.com:443"\n')
    with pytest.raises(ConfigError, match=r"itest.toml:2 \[faults.upstream\].*not a loopback address"):
        load_fault_config(open_project(root))


@pytest.mark.anyio
async def test_mcp_tools(tmp_path: Path) -> None:
    root = make_project(tmp_path, "py_good", py_phase("itest_good.py"))
    async with Client(create_app(root)) as c:
        listing = await c.call_tool("list_fault_profiles", {})
        assert not listing.is_error and listing.structured_content is not None
        names = [p["name"] for p in listing.structured_content["profiles"]]
        assert names[:4] == ["degraded-api", "flaky-network", "partition", "rate-limited"] and "retry-check" in names
        bad = await c.call_tool("run_with_faults", {"phase": "integration", "profile": "nope"})
        assert bad.is_error and "unknown fault profile 'nope'; known profiles:" in bad.content[0].text  # type: ignore[union-attr]
        run = await c.call_tool("run_with_faults", {"phase": "integration", "profile": "rate-limited"})
        assert not run.is_error and run.structured_content is not None
        report = run.structured_content["report"]
        assert run.structured_content["phase_run"]["status"] == "passed"
        assert report["verdict"] == "survived" and report["figures"]["retry_after_honoured"] >= 1


def test_cli_list_and_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_project(tmp_path, "py_bad", py_phase("itest_bad.py"))
    assert main(["--repo", str(root), "faults", "--list"]) == 0
    out = capsys.readouterr().out
    assert "rate-limited  (built-in" in out and "answer 429 retry-after 1" in out
    assert main(["--repo", str(root), "faults", "integration", "--profile", "retry-check", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["report"]["verdict"] == "failed" and data["report"]["figures"]["immediate_retries"] == 2
    assert main(["--repo", str(root), "faults", "integration", "--profile", "nope"]) == 2
    assert "unknown fault profile 'nope'" in capsys.readouterr().err


STALL_PROFILE = """
[faults.profiles.stall-check]
seed = 5
faults = [
  {kind = "stall", stall_s = 3, first = 1},
  {kind = "concurrency_cap", max_concurrent = 2, over_cap = "queue"},
  {kind = "latency", latency_ms = 50, after = 1},
]
"""


@needs_go
@pytest.mark.anyio
async def test_go_clients_under_a_stall_and_a_concurrency_cap(tmp_path: Path) -> None:
    good_root = make_project(tmp_path, "go_good", GO_PHASE, STALL_PROFILE)
    bad_root = make_project(tmp_path, "go_bad", GO_PHASE, STALL_PROFILE)
    options = RunOptions(test="TestFetchRepo|TestConcurrentFetch")
    good = await run_phase_with_faults(open_project(good_root), "integration", "stall-check", options)
    bad = await run_phase_with_faults(open_project(bad_root), "integration", "stall-check", options)

    good_cases = {e.name: e for e in good.report.edge_cases}
    bad_cases = {e.name: e for e in bad.report.edge_cases}
    assert good_cases["connection timeouts"].verdict is Verdict.SURVIVED
    assert 0.8 <= good.report.figures.client_timeout_after_s[0] < 2.0
    assert bad_cases["connection timeouts"].verdict is Verdict.FAILED
    assert bad.report.figures.waited_full_stall == 1
    for run in (good, bad):
        assert run.report.figures.max_in_flight >= 2 and run.report.figures.queued >= 1
        assert {e.name: e for e in run.report.edge_cases}["concurrent request handling"].verdict is Verdict.SURVIVED
