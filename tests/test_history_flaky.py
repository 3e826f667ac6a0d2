"""Flaky, broken, failing and slow tests over history; test_history; the `history` and `flaky` CLI."""

from __future__ import annotations

import json

import pytest
from helpers_history import factory

from itest_mcp.server.cli import main
from itest_mcp.tools import flaky, history
from itest_mcp.tools.errors import NotFoundError
from itest_mcp.tools.flaky import TestStatus
from itest_mcp.tools.models import Outcome
from itest_mcp.tools.repo import Project, open_project

PASS, FAIL = Outcome.PASSED, Outcome.FAILED


@pytest.fixture
def project(make_repo) -> Project:  # type: ignore[no-untyped-def]
    return open_project(make_repo({"README.md": "x\n"}))


def _record(project: Project, index: int, tests: list, **kwargs: object) -> None:  # type: ignore[type-arg]
    run = factory.make_run(index, tests, **kwargs)
    history.write_run_folder(project, run)
    history.record_run(project, run)


def test_flaky_broken_failing_and_rates(project: Project) -> None:
    for i in range(6):
        tests = [
            factory.make_test("TestSteady", duration=0.05),
            # fails then passes on a rerun inside the same run, in runs 2 and 4
            factory.make_test(
                "TestRerun",
                Outcome.FLAKY if i in (2, 4) else PASS,
                attempts=[(FAIL, 0.1, "timeout waiting"), (PASS, 0.1, None)] if i in (2, 4) else None,
            ),
            # alternates on the same commit with a clean tree
            factory.make_test("TestSameCommit", FAIL if i % 2 else PASS, message="got 1 want 2" if i % 2 else None),
            # fails in every run from run 2 on
            factory.make_test("TestBroken", FAIL if i >= 2 else PASS, message="want main" if i >= 2 else None),
            # fails only in the latest run, the first on a new commit
            factory.make_test("TestNewFailure", FAIL if i == 5 else PASS, message="new" if i == 5 else None),
        ]
        _record(project, i, tests, commit=("b" if i == 5 else "a") * 40)
    report = flaky.flaky_tests(project, window=20)
    assert report.runs_considered == 6 and report.tests_seen == 5 and report.phases == ["integration"]
    by_name = {s.name: s for s in (*report.flaky, *report.broken, *report.failing)}
    assert "TestSteady" not in by_name

    rerun = by_name["TestRerun"]
    assert rerun.status is TestStatus.FLAKY and rerun.rerun_passes == 2
    assert rerun.runs_with_failure == 2 and rerun.failure_rate == pytest.approx(2 / 6, abs=1e-3)
    assert "passed on a rerun in 2 run(s)" in rerun.evidence

    same = by_name["TestSameCommit"]
    assert same.status is TestStatus.FLAKY and same.failed_runs == 3 and same.failure_rate == 0.5
    assert "on the same commit aaaaaaaaaaaa with a clean tree" in same.evidence

    broken = by_name["TestBroken"]
    assert broken.status is TestStatus.BROKEN and broken.failed_runs == 4
    assert f"failed in each of its last 4 run(s), since {factory.run_id_at(2)}" == broken.evidence

    new = by_name["TestNewFailure"]
    assert new.status is TestStatus.FAILING and new.last_outcome is Outcome.FAILED
    assert new.last_run_id == factory.run_id_at(5) and new.failure_rate == pytest.approx(1 / 6, abs=1e-3)

    assert [p.run_id for p in report.trend] == [factory.run_id_at(i) for i in range(6)]
    assert report.trend[2].flaky == 1 and report.trend[2].flaky_rate == pytest.approx(0.2)


def test_alternating_on_a_dirty_tree_or_different_commits_is_not_flaky(project: Project) -> None:
    for i in range(4):
        result = FAIL if i % 2 else PASS
        commit = ("a" if i < 2 else "b") * 40
        tests = [factory.make_test("TestDirty", result, message="x" if i % 2 else None)]
        _record(project, i, tests, dirty=True, commit=commit)
    report = flaky.flaky_tests(project)
    assert report.flaky == []
    assert [s.name for s in report.failing] == ["TestDirty"]
    assert report.failing[0].status is TestStatus.FAILING


def test_window_limits_the_runs_considered(project: Project) -> None:
    for i in range(8):
        test = factory.make_test("TestOld", FAIL if i < 3 else PASS, message="old" if i < 3 else None)
        _record(project, i, [test], commit=f"{i:x}" * 40)  # a new commit each run: not flaky, fixed
    wide = flaky.flaky_tests(project, window=8)
    assert [s.name for s in wide.failing] == ["TestOld"] and wide.failing[0].status is TestStatus.RECOVERED
    narrow = flaky.flaky_tests(project, window=5)
    assert narrow.runs_considered == 5 and narrow.failing == [] and narrow.flaky == []


def test_slow_regression_needs_ratio_and_half_a_second(project: Project) -> None:
    durations = {
        "TestRegressed": [1.0, 1.1, 0.9, 1.0, 2.0],  # 2.0 > 1.5 × 1.0 and 1.0 s slower: regression
        "TestDoubledButFast": [0.3, 0.3, 0.3, 0.3, 0.7],  # 2.3× but only 0.4 s slower: not one
        "TestSlowButSteady": [3.0, 3.1, 2.9, 3.0, 3.2],  # slow, not slower
    }
    for i in range(5):
        _record(project, i, [factory.make_test(name, duration=d[i]) for name, d in durations.items()])
    report = flaky.flaky_tests(project)
    assert [s.name for s in report.slow] == ["TestRegressed"]
    slow = report.slow[0]
    assert slow.duration_s == 2.0 and slow.median_s == 1.0 and slow.ratio == 2.0
    assert slow.slower_by_s == 1.0 and slow.samples == 4 and slow.run_id == factory.run_id_at(4)


def test_history_of_one_test(project: Project) -> None:
    for i in range(4):
        tests = [
            factory.make_test("TestA", duration=0.5 + i),
            factory.make_test("TestB", FAIL if i == 3 else PASS, message="boom" if i == 3 else None),
        ]
        _record(project, i, tests)
    view = flaky.test_history(project, "TestB")
    assert view.test is not None
    entries = view.test.entries
    assert [e.run_id for e in entries] == [factory.run_id_at(i) for i in (3, 2, 1, 0)]
    assert entries[0].outcome is Outcome.FAILED and entries[0].message_sha256 is not None
    assert entries[1].outcome is Outcome.PASSED and entries[1].message_sha256 is None
    assert view.test.stats is not None and view.test.stats.status is TestStatus.FAILING
    full_key = view.test.key
    assert flaky.test_history(project, full_key).test.key == full_key  # type: ignore[union-attr]
    assert len(flaky.test_history(project, "TestA", limit=2).test.entries) == 2  # type: ignore[union-attr]


def test_unknown_test_names_similar_ones(project: Project) -> None:
    _record(project, 0, [factory.make_test("TestAPIClientGetRepo"), factory.make_test("TestAPIClientNotFound")])
    with pytest.raises(NotFoundError) as info:
        flaky.test_history(project, "APIClient")
    message = str(info.value)
    assert "no test 'APIClient' in history (2 tests recorded); similar:" in message
    assert "::TestAPIClientGetRepo" in message and "::TestAPIClientNotFound" in message


def test_cli_history_with_no_runs_says_what_to_run_first(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--repo", str(project.root), "history"]) == 0
    out = capsys.readouterr().out
    assert "no runs recorded yet: run a phase first" in out and "itest-mcp run <phase>" in out


def test_cli_history_and_flaky(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        tests = [
            factory.make_test("TestRerun", Outcome.FLAKY, attempts=[(FAIL, 0.1, "x"), (PASS, 0.1, None)]),
        ]
        history.write_run_folder(project, factory.make_run(i, tests))  # not recorded: the CLI imports them
    assert main(["--repo", str(project.root), "history"]) == 0
    out = capsys.readouterr().out
    assert "recorded 3 run folder(s) into history" in out and factory.run_id_at(2) in out
    assert main(["--repo", str(project.root), "history", "TestRerun", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["test"]["stats"]["status"] == "flaky" and len(data["test"]["entries"]) == 3
    assert main(["--repo", str(project.root), "flaky"]) == 0
    out = capsys.readouterr().out
    assert "flaky: 1" in out and "100% of 3 run(s)" in out
    assert main(["--repo", str(project.root), "history", "NoSuchTest"]) == 2
    assert "no test 'NoSuchTest' in history" in capsys.readouterr().err
