"""run_phase through the real MCP client: progress, resources, cancel leaves no process, and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

from itest_mcp.server.app import create_app
from itest_mcp.server.cli import main

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
HANG = Path(__file__).resolve().parent / "fixtures" / "run" / "gomod" / "hang"

pytestmark = pytest.mark.slow


def _git_init(path: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "GIT_CONFIG_NOSYSTEM": "1"}  # fmt: skip
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("srv") / "demo"
    shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns(".itest", "__pycache__", ".pytest_cache"))
    _git_init(target)
    return target


def _pids_with_env(prefix: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as handle:
                    if f"ITEST_RUN_DIR={prefix}".encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.anyio
async def test_run_phase_tool_progress_and_resources(demo: Path) -> None:
    app = create_app(demo)
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async with Client(app) as client:
        result = await client.call_tool(
            "run_phase", {"phase": "api-client", "race": False}, progress_callback=on_progress
        )
        assert not result.is_error
        data = result.structured_content
        assert data is not None and data["status"] == "failed"
        assert data["report"]["failures"][0]["location"] == {"file": "test/integration/api_client_test.go", "line": 98}
        assert any(total == 4 and done >= 1 for done, total, _ in progress)
        values = [done for done, _, _ in progress]
        assert all(b > a for a, b in zip(values, values[1:], strict=False)), values  # MCP: progress increases
        run_id = data["run_id"]
        page = await client.read_resource(f"itest://runs/{run_id}/log?offset=0&limit=100")
        body = json.loads(page.contents[0].text)  # type: ignore[union-attr]
        assert body["offset"] == 0 and body["next_offset"] == 100 and not body["eof"]
        assert body["text"].startswith("$ go test -json")
        junit = await client.read_resource(f"itest://runs/{run_id}/junit")
        assert "TestAPIClientDefaultBranch" in junit.contents[0].text  # type: ignore[union-attr]
        bad = await client.call_tool("run_phase", {"phase": "api-client", "test": "-bad"})
        assert bad.is_error and "starts with '-'" in bad.content[0].text  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_cancel_through_client_leaves_no_process(tmp_path: Path) -> None:
    project = tmp_path / "hang"
    shutil.copytree(HANG, project)
    (project / "itest.toml").write_text('[phases.hang]\nrunner = "go"\nrace = false\n', encoding="utf-8")
    _git_init(project)
    prefix = str(project / ".itest" / "runs")
    app = create_app(project)
    async with Client(app) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, "run_phase", {"phase": "hang"})
            deadline = time.monotonic() + 30
            # Wait until the hanging test binary runs (go and the binary both carry ITEST_RUN_DIR).
            while len(_pids_with_env(prefix)) < 2 and time.monotonic() < deadline:
                await anyio.sleep(0.1)
            assert _pids_with_env(prefix), "the phase never started"
            await anyio.sleep(0.5)
            tg.cancel_scope.cancel()
    stop = time.monotonic() + 3
    while _pids_with_env(prefix) and time.monotonic() < stop:
        await anyio.sleep(0.05)
    assert _pids_with_env(prefix) == []
    runs = list((project / ".itest" / "runs").iterdir())
    assert json.loads((runs[0] / "run.json").read_text())["status"] == "cancelled"


def test_cli_run_json_and_table(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--repo", str(demo), "run", "api-client", "--no-race", "--test", "TestAPIClientDefaultBranch", "--json"]
    )
    assert code == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "failed" and data["report"]["totals"]["failed"] == 1
    code = main(["--repo", str(demo), "run", "nope"])
    assert code == 2
    assert "unknown phase 'nope'" in capsys.readouterr().err
    code = main(["--repo", str(demo), "run", "api-client", "--no-race", "--test", "TestAPIClientGetRepo"])
    out = capsys.readouterr().out
    assert code == 0 and "api-client" in out and "passed" in out
