"""The assessed range reads once through: no label repeated inside its own reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import commit_all, git

from itest_mcp.server.tool_assess import render_assessment
from itest_mcp.tools.changes import assess_changes
from itest_mcp.tools.repo import open_project


def _range_line(repo: Path, base: str | None = None) -> tuple[str, str]:
    assessment = assess_changes(open_project(repo), base, import_graph=False)
    lines = render_assessment(assessment).splitlines()
    return lines[0], next(line for line in lines if line.startswith("range: "))


def test_uncommitted_changes_on_the_default_branch_tip(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.py": "x = 1\n"})
    (repo / "a.py").write_text("x = 2\n", encoding="utf-8")
    summary, line = _range_line(repo)
    assert line == "range: the uncommitted changes on HEAD (main)"
    assert summary.startswith("1 file changed (+1/-1) in the uncommitted changes on HEAD (main);")
    assert _range_line(repo, "HEAD")[1] == "range: the uncommitted changes on HEAD (main), against HEAD as given"


def test_a_branch_range_names_its_merge_base_once(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.py": "x = 1\n"})
    fork = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "-b", "work")
    (repo / "b.py").write_text("y = 1\n", encoding="utf-8")
    commit_all(repo, "work")
    _, line = _range_line(repo)
    assert line == f"range: merge-base with main ({fork[:12]}) .. HEAD (work) + working tree"
