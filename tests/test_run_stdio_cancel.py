"""Cancel and disconnect over real stdio: the server is `python -m itest_mcp.server`, the client is the SDK's.

A phase whose test hangs runs `go test` in its own session (go plus the test binary);
cancelling the call, or the client going away mid-call, must leave none of them
behind. Processes are found by scanning /proc for this run folder's ITEST_RUN_DIR.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import anyio
import pytest
from helpers_run import hang_project, processes_with_run_dir
from mcp import Client, StdioServerParameters

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")]


def _server(project: Path) -> StdioServerParameters:
    # The whole environment: go needs HOME/GOCACHE/GOPATH, which the SDK's default environment may drop.
    return StdioServerParameters(
        command=sys.executable, args=["-m", "itest_mcp.server", "--repo", str(project)], env=dict(os.environ)
    )


def _run_pids(project: Path) -> list[int]:
    """Live processes started for a run of `project` (go and its test binaries carry ITEST_RUN_DIR)."""
    return processes_with_run_dir(str(project / ".itest" / "runs"))


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


async def _wait_for_test_binary(project: Path) -> list[int]:
    """Until go and the hanging test binary (`hang.test`, not a compiler) both run; a cold build takes a while."""
    with anyio.fail_after(90):
        while True:
            pids = _run_pids(project)
            if len(pids) >= 2 and any(_comm(pid).endswith(".test") for pid in pids):
                break
            await anyio.sleep(0.05)
    # The binary must be inside TestHang, not still starting up.
    await anyio.sleep(0.3)
    return pids


async def _assert_all_gone(project: Path, within: float = 3.0) -> float:
    start = time.monotonic()
    while _run_pids(project) and time.monotonic() - start < within:
        await anyio.sleep(0.05)
    left = _run_pids(project)
    assert left == [], f"processes of the run still alive {within} s after the cancel: {left}"
    return time.monotonic() - start


def _run_json(project: Path) -> dict[str, object]:
    runs = sorted((project / ".itest" / "runs").iterdir())
    assert len(runs) == 1
    data: dict[str, object] = json.loads((runs[0] / "run.json").read_text(encoding="utf-8"))
    return data


@pytest.mark.anyio
async def test_cancelled_call_kills_the_phase_and_the_server_keeps_serving(tmp_path: Path) -> None:
    project = hang_project(tmp_path)
    outcome: list[bool] = []
    async with Client(_server(project)) as client:
        async with anyio.create_task_group() as tg:
            # The call's own cancel scope with a timeout (what a caller giving up looks like); we cancel it
            # as soon as the hanging test runs, so the test does not depend on how long go takes to build.
            scope = anyio.CancelScope(deadline=anyio.current_time() + 120)

            async def call() -> None:
                with scope:
                    await client.call_tool("run_phase", {"phase": "hang"})
                outcome.append(scope.cancelled_caught)

            tg.start_soon(call)
            assert len(await _wait_for_test_binary(project)) >= 2
            scope.cancel()
        assert outcome == [True]
        await _assert_all_gone(project)
        # The server is alive and serving after the cancel, and the run folder says what happened.
        phases = await client.call_tool("list_phases", {})
        assert not phases.is_error
        with anyio.fail_after(5):
            while not list((project / ".itest" / "runs").glob("*/run.json")):
                await anyio.sleep(0.05)
        data = _run_json(project)
        assert data["status"] == "cancelled"
        assert any("cancelled" in str(note) for note in data["notes"])  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_client_disconnect_mid_call_kills_the_phase(tmp_path: Path) -> None:
    project = hang_project(tmp_path)
    errors: list[BaseException] = []
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            async with Client(_server(project)) as client:

                async def call() -> None:
                    try:
                        await client.call_tool("run_phase", {"phase": "hang"})
                    except Exception as exc:  # noqa: BLE001 - the connection goes away under the call
                        errors.append(exc)

                tg.start_soon(call)
                assert len(await _wait_for_test_binary(project)) >= 2
            # Leaving `async with` closed the server's stdin with the call still in flight; the SDK then
            # gives the server 2 s before killing its process group, which does not reach go's own session.
            tg.cancel_scope.cancel()
    await _assert_all_gone(project)
    # The server went through its own cancel path (not the SDK's kill): the partial result was written.
    assert _run_json(project)["status"] == "cancelled"
