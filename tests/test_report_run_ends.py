"""How the report states a phase that timed out or ended in an error: the limit that was hit, not the wall time
with the kill's grace period; no "exit code 0" for an error go reports with exit 0 (no test matched)."""

from __future__ import annotations

import pytest
from helpers_history import NOW, factory

from itest_mcp.tools import history
from itest_mcp.tools.models import RunStatus
from itest_mcp.tools.repo import Project, open_project
from itest_mcp.tools.report import build_report


@pytest.fixture
def project(make_repo) -> Project:  # type: ignore[no-untyped-def]
    return open_project(make_repo({"README.md": "x\n"}))


def _environment(project: Project, run) -> list[str]:  # type: ignore[no-untyped-def]
    history.write_run_folder(project, run)
    result = build_report(project, [run.run_id], now=NOW, save=False)
    return [f.title for f in result.findings.environment]


def test_a_timeout_names_the_limit_and_the_wall_time_apart(project: Project) -> None:
    run = factory.make_run(0, [factory.make_test("TestSlowPagination")], phase="slow")
    run.status = RunStatus.TIMEOUT
    run.duration_s = 2.04
    run.timeout_s = 1.0
    titles = _environment(project, run)
    assert "phase slow hit its timeout of 1 s (stopped after 2.0 s)" in titles, titles


def test_an_error_with_exit_code_0_says_why_not_the_code(project: Project) -> None:
    run = factory.make_run(0, [], phase="all")
    run.status = RunStatus.ERROR
    run.exit_code = 0
    run.notes = ["no tests matched 'NoSuchTest' in phase 'all'"]
    titles = _environment(project, run)
    assert "phase all ended in an error: no tests matched 'NoSuchTest' in phase 'all'" in titles, titles
    assert not any("exit code 0" in t for t in titles)


def test_an_error_with_a_real_exit_code_keeps_it(project: Project) -> None:
    run = factory.make_run(0, [], phase="all")
    run.status = RunStatus.ERROR
    run.exit_code = 2
    run.notes = []
    assert "phase all ended in an error (exit code 2)" in _environment(project, run)
