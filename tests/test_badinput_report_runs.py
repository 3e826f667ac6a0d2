"""A corrupt latest run.json is a Critical Finding naming the run and file, never replaced by an older run."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_history import NOW, factory

from itest_mcp.tools import history
from itest_mcp.tools.models import Outcome
from itest_mcp.tools.repo import Project, open_project
from itest_mcp.tools.report import build_report
from itest_mcp.tools.report_markdown import render_markdown


@pytest.fixture
def project(make_repo) -> Project:  # type: ignore[no-untyped-def]
    return open_project(make_repo({"README.md": "x\n"}))


def _two_runs_newer_truncated(project: Project, commit: str | None) -> tuple[str, str]:
    """An older passed run and a newer failed one of the same phase; the newer run.json cut in half."""
    older = factory.make_run(0, [factory.make_test("TestA")], commit=commit or "auto")
    newer = factory.make_run(1, [factory.make_test("TestA", Outcome.FAILED, message="boom")], commit=commit or "auto")
    for run in (older, newer):
        history.write_run_folder(project, run)
    run_file: Path = project.runs_dir / newer.run_id / history.RUN_FILE
    data = run_file.read_bytes()
    run_file.write_bytes(data[: len(data) // 2])
    return older.run_id, newer.run_id


@pytest.mark.parametrize("at_head", [False, True], ids=["latest-per-phase", "current-commit"])
def test_truncated_latest_run_is_a_finding_not_an_older_run(project: Project, at_head: bool) -> None:
    older, newer = _two_runs_newer_truncated(project, project.head_commit() if at_head else None)
    report = build_report(project, now=NOW)
    found = [f for f in report.findings.environment if f.run_id == newer]
    assert len(found) == 1, report.findings.environment
    title = found[0].title
    assert f".itest/runs/{newer}/run.json cannot be read: it looks truncated or corrupt" in title
    assert "rerun its phase" in title and "1 validation error" not in title
    md = render_markdown(report)
    assert newer in md and "looks truncated or corrupt" in md
    if at_head:
        assert report.selection.endswith(", 1 of them unreadable")
    else:
        # The older passed run must not stand in for the newer one of its phase.
        assert older not in report.run_ids
        assert report.summary.totals.passed == 0


def test_history_names_the_truncated_run_file(project: Project) -> None:
    _, newer = _two_runs_newer_truncated(project, None)
    summary = history.import_run_folders(project)
    assert summary.problems and f"{newer}/run.json cannot be read: it looks truncated or corrupt" in summary.problems[0]
    assert "Invalid JSON: EOF while parsing" in summary.problems[0]
