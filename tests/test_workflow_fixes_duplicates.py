"""The workflow runs each test once: `make` phases that only `go test` what a selected Go phase runs are left
out; plain `go test` output without per-test lines is not "no tests"; reruns count only what was rerun."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from itest_mcp.tools.changes import assess_changes
from itest_mcp.tools.make_recipes import go_test_calls
from itest_mcp.tools.models import Artifacts, PhaseRun, TestReport, Totals
from itest_mcp.tools.repo import open_project
from itest_mcp.tools.textparse import PACKAGE_ONLY, TextParser
from itest_mcp.tools.workflow import WorkflowResult, _phases_to_run, _rerun_summary

needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="the demo's phases need the go toolchain")


@needs_go
def test_make_phases_that_rerun_a_go_phase_are_left_out(demo_repo: Path) -> None:
    """A first commit is assessed against the empty tree: every phase is recommended, the Makefile's too."""
    project = open_project(demo_repo)
    assessment = assess_changes(project)
    recommended = [r.phase for r in assessment.recommended]
    assert {"test-integration", "test-integration-network", "all"} <= set(recommended)
    result = WorkflowResult()
    assert _phases_to_run(project, assessment, result) == ["python-integration", "performance", "all"]
    details = [s.detail for s in result.steps if s.name == "phases"]
    assert any(d.startswith("left out test-integration: `make test-integration` only runs go test of "
                            "test/integration, tests that all runs") for d in details), details  # fmt: skip
    # The per-test phase whose -run pattern holds the recipe's is enough too, without `all`.
    result = WorkflowResult()
    only = ["network-edge-cases", "test-integration-network"]
    assert _phases_to_run(project, assessment, result, only=only) == ["network-edge-cases"]
    assert any("left out test-integration-network" in s.detail and "network-edge-cases runs" in s.detail
               for s in result.steps)  # fmt: skip
    # ...but not a per-test phase that runs other tests.
    assert _phases_to_run(project, assessment, WorkflowResult(), only=["race", "test-integration-network"]) == [
        "race",
        "test-integration-network",
    ]


def test_only_plain_go_test_recipes_are_understood(tmp_path: Path) -> None:
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        "plain:\n\t@go test -race -tags=integration,slow -run '^(TestA|TestB)$$' ./test/integration/\n"
        "prereq: build\n\tgo test ./...\n"
        "more:\n\tdocker compose up -d\n\tgo test ./test\n"
        "vars:\n\tgo test $(PKGS)\n"
        "short:\n\tgo test -short ./test\n",
        encoding="utf-8",
    )
    (call,) = go_test_calls(makefile, "plain") or []
    assert (call.packages, call.tags, call.run, call.race) == (
        ("test/integration",),
        frozenset({"integration", "slow"}),
        "^(TestA|TestB)$",
        True,
    )
    for target in ("prereq", "more", "vars", "short", "missing"):
        assert go_test_calls(makefile, target) is None, target


def test_plain_go_test_output_is_a_passed_package_not_no_tests() -> None:
    parser = TextParser()
    for line in ["ok  \texample.com/demo/test/integration\t2.172s", "?   \texample.com/demo/cmd\t[no test files]"]:
        parser.feed(line)
    assert parser.found_anything
    report = parser.report()
    assert report.totals.tests == report.totals.passed == 1
    assert [(t.classname, t.name, t.duration_s) for t in report.tests] == [
        ("example.com/demo/test/integration", PACKAGE_ONLY, 2.172)
    ]
    # With -v the tests themselves are counted and no stand-in is added.
    parser = TextParser()
    for line in ["=== RUN   TestA", "--- PASS: TestA (0.01s)", "PASS", "ok  \texample.com/x\t0.5s"]:
        parser.feed(line)
    assert [t.name for t in parser.report().tests] == ["TestA"]


@needs_go
@pytest.mark.anyio
async def test_a_make_phase_without_v_reports_its_passed_package(demo_repo: Path) -> None:
    from itest_mcp.tools.runner import RunOptions, run_phase

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    run = await run_phase(open_project(demo_repo), "test-integration-network", RunOptions())
    assert run.status.value == "passed"
    assert run.report.totals.tests == run.report.totals.passed == 1
    assert not any("ran no tests" in note for note in run.notes), run.notes


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _run(phase: str, failed: int = 0, flaky: int = 0) -> PhaseRun:
    totals = Totals(tests=failed + flaky + 1, passed=1, failed=failed, flaky=flaky)
    return PhaseRun(
        run_id=f"20260101T000000Z-{phase}-0000", phase=phase, argv=[], status="failed" if failed else "passed",
        started_at="2026-01-01T00:00:00Z", artifacts=Artifacts(run_dir="x"), report=TestReport(totals=totals),
    )  # fmt: skip


def test_rerun_summary_counts_only_the_runs_that_could_rerun(demo_repo: Path) -> None:
    result = WorkflowResult()
    runs = [_run("all", failed=2, flaky=1), _run("test-integration", failed=3)]
    _rerun_summary(open_project(demo_repo), runs, result)
    (step,) = result.steps
    assert step.status == "failed"
    assert step.detail == (
        "each failing test was rerun up to 2 times: 1 passed on a rerun (flaky), 2 failed every attempt; "
        "3 failure(s) in test-integration not rerun: a command phase cannot be rerun test by test"
    )
