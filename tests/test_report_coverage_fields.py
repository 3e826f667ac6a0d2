"""The report reads find_coverage_gaps' unit-aware totals, its never/partly executed split and its stale files
from the stored result (written by the real tool), and still reads results stored before those fields existed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from helpers_history import NOW, factory
from pydantic import RootModel
from test_coverage_fixes_units import COBERTURA, EDITED, GO_SRC, PROFILE

from itest_mcp.tools import history
from itest_mcp.tools.coverage import find_coverage_gaps
from itest_mcp.tools.repo import Project, open_project
from itest_mcp.tools.report import build_report
from itest_mcp.tools.report_html import render_html
from itest_mcp.tools.report_markdown import render_markdown
from itest_mcp.tools.report_model import Report
from itest_mcp.tools.results_store import save_latest

SOURCE = "(from `.itest/latest/coverage.json`)"


def _project(make_repo) -> Project:
    """a.go's lines 4-6 changed in the working tree; the Go profile of A(0) (line 4's condition ran, its body
    did not) and a Cobertura report of pkg/m.py, both written after the edit."""
    repo: Path = make_repo({"go.mod": "module example.com/app\n", "a.go": GO_SRC, "pkg/m.py": "x = 1\ny = 2\n"})
    (repo / "a.go").write_text(EDITED)
    (repo / ".itest").mkdir(exist_ok=True)
    (repo / ".itest" / "c.out").write_text(PROFILE)
    (repo / ".itest" / "coverage.xml").write_text(COBERTURA.format(root=repo))
    return open_project(repo)


def _report(project: Project, *files: str) -> Report:
    """The report of one run after find_coverage_gaps stored its result for `files`."""
    save_latest(project, "coverage", find_coverage_gaps(project, list(files), base="HEAD", scenarios=False))
    run = factory.make_run(0, [factory.make_test("TestA")])
    history.write_run_folder(project, run)
    return build_report(project, [run.run_id], now=NOW)


def test_go_totals_say_statements_and_changed_lines_split_never_and_partly_executed(make_repo) -> None:
    md = render_markdown(_report(_project(make_repo), ".itest/c.out"))
    # Before: "2/4 lines over 1 files" for Go statements.
    assert f"Total coverage: 50.0%, 2/4 statements over 1 files {SOURCE}." in md
    assert "Changed lines: 0.0% (0/3 changed lines covered; 1 of the 3 uncovered partly executed)." in md
    # Before: "3 changed line(s) no test executed", though line 4's condition ran.
    assert (
        "- `a.go` lines 4-6 — 2 changed line(s) never executed, 1 partly executed (a branch on the line never ran)"
        in md
    )
    assert "no test executed" not in md
    assert "- `a.go:3` lines 3-9 — function A: 2/6 lines covered (changed)" in md


def test_mixed_units_give_one_total_per_unit_never_a_sum(make_repo) -> None:
    report = _report(_project(make_repo), ".itest/c.out", ".itest/coverage.xml")
    per_unit = "50.0% (1/2 lines over 1 files); 50.0% (2/4 statements over 1 files)"
    # Before: no total at all (the result's overall percent is null when units mix).
    assert report.coverage.total_percent is None
    assert f"Total coverage: {per_unit} {SOURCE}." in render_markdown(report)
    assert f"<p>Total coverage: {per_unit} (from <code>.itest/latest/coverage.json</code>).</p>" in render_html(report)


def test_stale_coverage_is_a_finding_not_a_test_to_write(make_repo) -> None:
    project = _project(make_repo)
    written = (project.root / ".itest" / "c.out").stat().st_mtime_ns
    os.utime(project.root / "a.go", ns=(written + 10**9, written + 10**9))  # edited after the profile
    report = _report(project, ".itest/c.out")
    expected = (
        "coverage is stale for a.go (edited after the coverage was recorded); "
        "their 3 changed line(s) are left out of the changed-line figures; rerun the phase with coverage"
    )
    finding = next(f for f in report.findings.environment if f.source == "find_coverage_gaps")
    assert finding.title == expected
    md = render_markdown(report)
    assert f"- {expected}" in md.split("## Coverage Analysis")[1]
    assert not any(g.file == "a.go" for g in report.coverage.gaps)
    # Before: the ranked "stale-coverage" gap became the new test "Cover a.go at a.go".
    assert not any("a.go" in r.text for r in report.recommendations if r.category == "new-test")


def test_results_stored_before_units_and_the_split_still_render(make_repo) -> None:
    project = _project(make_repo)
    data: dict[str, Any] = find_coverage_gaps(project, [".itest/c.out"], base="HEAD", scenarios=False).model_dump(
        mode="json"
    )
    # The shape of a result from before this session's fields.
    for key in ("unit", "by_unit"):
        data["totals"].pop(key)
    for key in ("partly_executed", "unit", "stale_files", "stale_lines"):
        data["patch"].pop(key)
    for row in data["changed_files"]:
        for key in ("never_executed", "partly_executed", "partly_executed_ranges", "unit"):
            row.pop(key)
    for func in data["uncovered_functions"]:
        func.pop("unit")
    save_latest(project, "coverage", RootModel[dict[str, Any]](data))
    run = factory.make_run(0, [factory.make_test("TestA")])
    history.write_run_folder(project, run)
    md = render_markdown(build_report(project, [run.run_id], now=NOW))
    assert f"Total coverage: 50.0%, 2/4 lines over 1 files {SOURCE}." in md
    assert "Changed lines: 0.0% (0/3 changed lines covered)." in md
    assert "- `a.go` lines 4-6 — 3 changed line(s) no test executed" in md
    assert "- `a.go:3` lines 3-9 — function A: 2/6 lines covered (changed)" in md
