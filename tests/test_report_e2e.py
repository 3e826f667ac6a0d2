"""End to end: real demo phases through run_phase, recorded in history, then the report on them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from itest_mcp.tools import flaky, history
from itest_mcp.tools.repo import open_project
from itest_mcp.tools.report import build_report
from itest_mcp.tools.report_causes import Cause
from itest_mcp.tools.report_markdown import render_markdown
from itest_mcp.tools.runner import RunOptions, run_phase

pytestmark = pytest.mark.slow


@pytest.mark.anyio
async def test_demo_phases_to_report(demo_repo: Path) -> None:
    project = open_project(demo_repo)
    phases = ["python-integration"] + (["api-client"] if shutil.which("go") else [])
    runs = []
    for name in phases:
        run = await run_phase(project, name, RunOptions(rerun_failures=1))
        history.record_run(project, run)
        runs.append(run)
    report = build_report(project, [r.run_id for r in runs])
    by_test = {f.test: f for f in report.findings.failures}
    py = by_test["test_default_branch_is_main"]
    assert py.cause is Cause.ASSERTION and py.location == "tests/integration/test_repo_client.py:110"
    assert "'master' == 'main'" in py.message and py.attempts == 2
    if "api-client" in phases:
        go = by_test["TestAPIClientDefaultBranch"]
        assert go.cause is Cause.ASSERTION and go.location is not None
        assert go.location.startswith("test/integration/api_client_test.go:")
    md = render_markdown(report)
    for run in runs:
        assert f"`{run.run_id}`" in md
    assert report.summary.totals.tests == sum(r.report.totals.tests for r in runs)
    # history saw the same runs and attempts
    view = flaky.test_history(project, "test_default_branch_is_main")
    assert view.test is not None and [a.value for a in view.test.entries[0].attempts] == ["failed", "failed"]
