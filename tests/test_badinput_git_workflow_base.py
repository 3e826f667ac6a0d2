"""`workflow --base REV` with a REV that is not a commit stops before anything runs (exit 2, the REV named);
the run-everything fallback is only for the default base."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from itest_mcp.server.cli import main
from itest_mcp.tools.repo import open_project

FILES = {
    "pyproject.toml": '[project]\nname = "wf"\nversion = "0"\n',
    "tests/test_one.py": "def test_one() -> None:\n    assert True\n",
}


def test_explicit_base_that_is_not_a_commit_stops_the_workflow(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(FILES)
    assert main(["--repo", str(repo), "workflow", "--base", "nosuch"]) == 2
    captured = capsys.readouterr()
    assert "'nosuch' is not a commit" in captured.err
    assert "every available phase" not in captured.err + captured.out
    assert "… running" not in captured.err  # no phase started
    reports = open_project(repo).reports_dir
    assert not reports.exists() or not any(reports.iterdir())
