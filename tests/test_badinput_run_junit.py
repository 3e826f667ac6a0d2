"""Bad JUnit input on the way into a run and into `itest-mcp junit`: a clear message or a note, never a lost run."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from itest_mcp.tools.history import connect, recent_runs
from itest_mcp.tools.junit import parse_junit_files, parse_junit_paths
from itest_mcp.tools.models import CountsSource, RunStatus
from itest_mcp.tools.repo import open_project
from itest_mcp.tools.runner import run_phase

SUITE_COUNTS_ONLY = '<testsuite name="s" tests="3" errors="3"></testsuite>'
SUITES_COUNTS_ONLY = '<testsuites tests="2" failures="1"></testsuites>'

WRITER = f"""\
from pathlib import Path
Path("reports").mkdir(exist_ok=True)
Path("reports/suite.xml").write_text({SUITE_COUNTS_ONLY!r})
Path("reports/suites.xml").write_text({SUITES_COUNTS_ONLY!r})
raise SystemExit(1)
"""


def _phase_repo(make_repo: Callable[..., Path], writer: str, junit: str = "reports/*.xml") -> Path:
    python = sys.executable.replace("\\", "\\\\")
    config = f'[phases.cmd]\nrunner = "command"\nargv = ["{python}", "writer.py"]\njunit = "{junit}"\n'
    return make_repo({"itest.toml": config, "writer.py": writer})


def test_a_root_with_counts_and_no_testcases_is_read_from_its_counts(tmp_path: Path) -> None:
    (tmp_path / "suite.xml").write_text(SUITE_COUNTS_ONLY, encoding="utf-8")
    (tmp_path / "suites.xml").write_text(SUITES_COUNTS_ONLY, encoding="utf-8")
    parsed = parse_junit_files([tmp_path / "suite.xml", tmp_path / "suites.xml"], root=tmp_path)
    assert parsed.errors == []
    totals = parsed.report.totals
    assert (totals.tests, totals.errors, totals.failed, totals.passed) == (5, 3, 1, 1)
    notes = {f.path: f.notes for f in parsed.files}
    assert any("declares 3 tests but lists no testcases" in n for n in notes["suite.xml"])
    assert any("declares 2 tests but lists no testcases" in n for n in notes["suites.xml"])


def test_a_command_phase_whose_junit_root_has_only_counts_keeps_its_run(make_repo: Callable[..., Path]) -> None:
    project = open_project(_phase_repo(make_repo, WRITER))
    result = anyio.run(lambda: run_phase(project, "cmd"))
    assert result.report.source is CountsSource.JUNIT
    assert result.report.totals.tests == 5 and result.report.totals.errors == 3
    assert result.status is RunStatus.FAILED and result.exit_code == 1
    run_json = project.root / result.artifacts.run_dir / "run.json"
    assert json.loads(run_json.read_text(encoding="utf-8"))["run_id"] == result.run_id
    with connect(project) as conn:
        assert [r.run_id for r in recent_runs(conn)] == [result.run_id]


def test_junit_paths_read_a_counts_only_root(make_repo: Callable[..., Path]) -> None:
    project = open_project(make_repo({"reports/suite.xml": SUITE_COUNTS_ONLY}))
    parsed = parse_junit_paths(project, ["reports/suite.xml"])
    assert parsed.errors == [] and parsed.report.totals.errors == 3


@pytest.mark.timeout(20)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_refused_not_waited_on(make_repo: Callable[..., Path]) -> None:
    root = make_repo({"j/good.xml": SUITE_COUNTS_ONLY})
    os.mkfifo(root / "j" / "fifo.xml")  # nobody writes to it: opening it for reading would block for ever
    parsed = parse_junit_paths(open_project(root), ["j/fifo.xml", "j/good.xml", "j"])
    assert parsed.errors == [
        "j/fifo.xml: is a named pipe (FIFO), not a regular file; pass the JUnit XML file a test runner wrote",
        "j: is a folder, not a file; pass a glob like 'j/*.xml'",
    ]
    assert parsed.report.totals.errors == 3
