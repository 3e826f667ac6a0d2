"""run_phase through the real MCP client: progress, resources, cancel leaves no process, and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import pytest
from helpers_run import demo_copy, hang_project, processes_with_run_dir
from mcp import Client

from itest_mcp.server.app import create_app
from itest_mcp.server.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_copy(tmp_path_factory.mktemp("srv") / "demo")


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
    project = hang_project(tmp_path)
    prefix = str(project / ".itest" / "runs")
    app = create_app(project)
    async with Client(app) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, "run_phase", {"phase": "hang"})
            deadline = time.monotonic() + 30
            # Wait until the hanging test binary runs (go and the binary both carry ITEST_RUN_DIR).
            while len(processes_with_run_dir(prefix)) < 2 and time.monotonic() < deadline:
                await anyio.sleep(0.1)
            assert processes_with_run_dir(prefix), "the phase never started"
            await anyio.sleep(0.5)
            tg.cancel_scope.cancel()
    stop = time.monotonic() + 3
    while processes_with_run_dir(prefix) and time.monotonic() < stop:
        await anyio.sleep(0.05)
    assert processes_with_run_dir(prefix) == []
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


@pytest.mark.anyio
async def test_run_phases_tool_stops_at_the_first_failure_and_checks_names_first(demo: Path) -> None:
    async with Client(create_app(demo)) as client:
        result = await client.call_tool("run_phases", {"phases": ["api-client", "performance"], "race": False})
        assert not result.is_error
        data = result.structured_content
        assert data is not None and data["status"] == "failed"
        assert [r["phase"] for r in data["runs"]] == ["api-client"]
        assert data["not_run"] == ["performance"]

        unknown = await client.call_tool("run_phases", {"phases": ["performance", "nope"]})
        assert unknown.is_error
        text = unknown.content[0].text  # type: ignore[union-attr]
        assert "unknown phase 'nope'" in text and "api-client" in text
        empty = await client.call_tool("run_phases", {"phases": []})
        assert empty.is_error and "no phases given" in empty.content[0].text  # type: ignore[union-attr]
