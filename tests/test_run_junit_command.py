"""A command phase that leaves JUnit files: counts and failures come from the files its `junit` glob names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import anyio

from itest_mcp.tools.history import connect, recent_runs
from itest_mcp.tools.models import CountsSource, Outcome, RunStatus
from itest_mcp.tools.repo import Project, open_project
from itest_mcp.tools.runner import run_phase

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "run" / "junit_cmd"


def _project(tmp_path: Path) -> Project:
    root = tmp_path / "junit_cmd"
    shutil.copytree(FIXTURE, root)
    python = sys.executable.replace("\\", "\\\\")
    phases = [
        ("tests", '"write_junit.py"'),
        ("broken", '"write_junit.py", "--broken"'),
        ("nofiles", '"write_junit.py", "--no-files"'),
    ]
    config = "".join(
        f'[phases.{name}]\nrunner = "command"\nargv = ["{python}", {args}]\njunit = "reports/junit-*.xml"\n\n'
        for name, args in phases
    )
    (root / "itest.toml").write_text(config, encoding="utf-8")
    # A report left over from an earlier run: it matches the glob but must not count for this one.
    stale = root / "reports" / "junit-stale.xml"
    old = time.time() - 3600
    os.utime(stale, (old, old))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "GIT_CONFIG_NOSYSTEM": "1"}  # fmt: skip
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    os.utime(stale, (old, old))
    return open_project(root)


def test_command_phase_counts_come_from_its_junit_files(tmp_path: Path) -> None:
    project = _project(tmp_path)
    result = anyio.run(lambda: run_phase(project, "tests"))
    report = result.report
    assert report.source is CountsSource.JUNIT
    assert result.status is RunStatus.FAILED and result.exit_code == 1
    totals = report.totals
    assert (totals.tests, totals.passed, totals.failed, totals.skipped, totals.errors) == (5, 3, 1, 1, 0)
    # The failure is the JUnit one (with its file:line), not the text line the command printed.
    assert [(f.classname, f.test) for f in report.failures] == [("api.ClientTest", "test_default_branch")]
    failure = report.failures[0]
    assert "expected main, got master" in failure.message
    assert failure.location is not None and str(failure.location) == "src/api/client_test.py:42"
    names = {t.name for t in report.tests}
    assert "TestTextOnly" not in names and "test_from_yesterday" not in names
    assert {t.name for t in report.tests if t.outcome is Outcome.SKIPPED} == {"test_windows_paths"}
    assert "counts are from 2 JUnit file(s) matching 'reports/junit-*.xml'" in result.notes
    # The run folder's own junit.xml is written from the same report.
    written = (project.root / result.artifacts.junit).read_text(encoding="utf-8")
    assert 'name="test_default_branch"' in written and "test_from_yesterday" not in written


def test_unreadable_junit_file_is_named_and_the_rest_still_count(tmp_path: Path) -> None:
    project = _project(tmp_path)
    result = anyio.run(lambda: run_phase(project, "broken"))
    assert result.report.source is CountsSource.JUNIT
    assert result.report.totals.tests == 5 and result.report.totals.failed == 1
    skipped = [n for n in result.notes if n.startswith("JUnit file skipped:")]
    assert len(skipped) == 1 and "junit-broken.xml" in skipped[0]
    assert "counts are from 2 JUnit file(s) matching 'reports/junit-*.xml'" in result.notes


def test_no_fresh_junit_file_falls_back_to_text_and_says_so(tmp_path: Path) -> None:
    project = _project(tmp_path)
    result = anyio.run(lambda: run_phase(project, "nofiles"))
    assert result.report.source is CountsSource.TEXT
    assert [f.test for f in result.report.failures] == ["TestTextOnly"]
    assert "the junit glob 'reports/junit-*.xml' matched no file written by this run" in result.notes
    assert any("counts are from the command's text output" in n for n in result.notes)
    assert result.status is RunStatus.FAILED


def test_junit_counts_reach_history(tmp_path: Path) -> None:
    project = _project(tmp_path)
    result = anyio.run(lambda: run_phase(project, "tests"))
    with connect(project) as conn:
        rows = recent_runs(conn)
    assert [(r.run_id, r.tests, r.failed, r.skipped) for r in rows] == [(result.run_id, 5, 1, 1)]
