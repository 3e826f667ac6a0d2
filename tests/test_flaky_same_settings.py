"""Flakiness from a pass and a failure on the same commit counts only runs made the same way: a failure under a
user's -timeout=1s, or in a run its timeout killed, is not the test flaking."""

from __future__ import annotations

import pytest
from helpers_history import factory

from itest_mcp.tools import flaky, history
from itest_mcp.tools.flaky import TestStatus
from itest_mcp.tools.models import Outcome, PhaseRun, RunStatus
from itest_mcp.tools.repo import Project, open_project

COMMIT = "c" * 40
GO = ["go", "test", "-json", "-race", "-tags=integration", "-count=1"]


@pytest.fixture
def project(make_repo) -> Project:  # type: ignore[no-untyped-def]
    return open_project(make_repo({"README.md": "x\n"}))


def _run(index: int, phase: str, passed: bool, argv: list[str], status: RunStatus | None = None) -> PhaseRun:
    outcome = Outcome.PASSED if passed else Outcome.FAILED
    test = factory.make_test("TestSlowPagination", outcome, message=None if passed else "test timed out after 1s")
    run = factory.make_run(index, [test], phase=phase, commit=COMMIT, status=status)
    run.argv = [arg.replace("<run>", run.run_id) for arg in argv]
    return run


def _stats_of(project: Project, runs: list[PhaseRun]) -> flaky.TestStats:
    for run in runs:
        history.write_run_folder(project, run)
        history.record_run(project, run)
    report = flaky.flaky_tests(project)
    (stats,) = [s for s in (*report.flaky, *report.failing, *report.broken) if s.name == "TestSlowPagination"]
    return stats


def test_a_failure_under_another_timeout_is_not_flakiness(project: Project) -> None:
    narrow = [*GO, "-run=^(TestSlowPagination)$"]
    stats = _stats_of(
        project,
        [
            _run(0, "slow", True, [*narrow, "-timeout=1800s", "./test/integration"]),
            _run(1, "slow", False, [*narrow, "-timeout=1s", "./test/integration"], RunStatus.TIMEOUT),
        ],
    )
    assert stats.status is not TestStatus.FLAKY
    assert "same commit" not in stats.evidence


def test_a_failure_in_a_run_its_timeout_killed_is_not_flakiness_even_with_the_same_argv(project: Project) -> None:
    argv = [*GO, "-timeout=1800s", "./test/integration"]
    stats = _stats_of(project, [_run(0, "slow", True, argv), _run(1, "slow", False, argv, RunStatus.TIMEOUT)])
    assert stats.status is not TestStatus.FLAKY


def test_runs_differing_only_in_test_selection_and_output_paths_still_show_flakiness(project: Project) -> None:
    wide = [*GO, "-coverprofile=/repo/.itest/runs/<run>/coverage.out", "-timeout=1800s", "./test/integration"]
    stats = _stats_of(
        project,
        [
            _run(0, "all", True, wide),
            _run(1, "all", False, [*wide[:-1], "-run", "^(TestSlowPagination)$", wide[-1]]),
        ],
    )
    assert stats.status is TestStatus.FLAKY
    assert stats.evidence.endswith(f"on the same commit {COMMIT[:12]} with a clean tree and the same settings")
