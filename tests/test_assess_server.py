"""assess_changes through the MCP client and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from itest_mcp.server.app import create_app
from itest_mcp.server.cli import main


@pytest.mark.anyio
async def test_mcp_tool_returns_structured_assessment(demo_repo: Path) -> None:
    with (demo_repo / "internal/reposync/sync.go").open("a", encoding="utf-8") as handle:
        handle.write("\nfunc helper() int { return 1 }\n")
    async with Client(create_app(demo_repo)) as client:
        result = await client.call_tool("assess_changes", {"import_graph": True})
        assert not result.is_error
        data = result.structured_content
        assert data is not None
        assert [f["path"] for f in data["files"]] == ["internal/reposync/sync.go"]
        assert "race" in [r["phase"] for r in data["recommended"]]


@pytest.mark.anyio
async def test_mcp_tool_bad_base_is_a_clear_tool_error(demo_repo: Path) -> None:
    async with Client(create_app(demo_repo)) as client:
        result = await client.call_tool("assess_changes", {"base": "mian"})
        assert result.is_error
        text = result.content[0].text  # type: ignore[union-attr]
        assert "'mian' is not a commit" in text and "main" in text


def test_cli_text_and_json(demo_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (demo_repo / "README.md").write_text("changed\n", encoding="utf-8")
    assert main(["--repo", str(demo_repo), "assess"]) == 0
    out = capsys.readouterr().out
    assert "docs-only change: no phase needs to run" in out
    assert "run: nothing" in out
    assert main(["--repo", str(demo_repo), "assess", "--json", "--no-worktree", "main"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["files"] == [] and data["summary"].startswith("no changes")


def test_cli_bad_input_exits_2(demo_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--repo", str(demo_repo), "assess", "--head=-rf"]) == 2
    assert "head '-rf' starts with '-'" in capsys.readouterr().err
