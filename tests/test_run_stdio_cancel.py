"""Cancel and disconnect over real stdio: the server is `python -m itest_mcp.server`, the client is the SDK's.

A phase whose test hangs runs `go test` in its own session (go plus the test binary);
cancelling the call, or the client going away mid-call, must leave none of them
behind. Processes are found by scanning /proc for this run folder's ITEST_RUN_DIR.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

HANG = Path(__file__).resolve().parent / "fixtures" / "run" / "gomod" / "hang"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")]


def _hang_project(tmp_path: Path) -> Path:
    project = tmp_path / "hang"
    shutil.copytree(HANG, project)
    (project / "itest.toml").write_text('[phases.hang]\nrunner = "go"\nrace = false\n', encoding="utf-8")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "GIT_CONFIG_NOSYSTEM": "1"}  # fmt: skip
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *args], cwd=project, env=env, check=True, capture_output=True)
    return project


def _server(project: Path) -> StdioServerParameters:
    # The whole environment: go needs HOME/GOCACHE/GOPATH, which the SDK's default environment may drop.
    return StdioServerParameters(
        command=sys.executable, args=["-m", "itest_mcp.server", "--repo", str(project)], env=dict(os.environ)
    )


def _run_pids(project: Path) -> list[int]:
    """Live processes started for a run of `project` (go and its test binaries carry ITEST_RUN_DIR)."""
    marker = f"ITEST_RUN_DIR={project / '.itest' / 'runs'}".encode()
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read()
            with open(f"/proc/{entry}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ and state != b"Z":
            found.append(int(entry))
    return found


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
    project = _hang_project(tmp_path)
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
    project = _hang_project(tmp_path)
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
