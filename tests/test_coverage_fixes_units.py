"""Units of find_coverage_gaps figures: Go totals count statements, line formats lines, never added together;
uncovered changed lines where something ran are "partly executed", not "never executed"."""

from __future__ import annotations

from pathlib import Path

from itest_mcp.server.tool_coverage import render
from itest_mcp.tools.coverage import find_coverage_gaps, join_changes
from itest_mcp.tools.covgo import read_go_profile
from itest_mcp.tools.gitdiff import collect_changes
from itest_mcp.tools.repo import open_project

GO_SRC = "package app\n\nfunc A(x int) int {\n\tif x > 0 {\n\t\treturn 1\n\t}\n\treturn 2\n}\n"
EDITED = GO_SRC.replace("\tif x > 0 {\n\t\treturn 1\n", "\tif x > 1 {\n\t\tx++\n\t\treturn x\n")
# A(0) under `go test`: line 4's condition ran, the body's block (4.11-7.3) did not; three statements in it.
PROFILE = (
    "mode: set\nexample.com/app/a.go:3.20,4.11 1 1\nexample.com/app/a.go:4.11,7.3 2 0\n"
    "example.com/app/a.go:8.2,8.10 1 1\n"
)
COBERTURA = """<?xml version="1.0" ?>
<coverage version="7.4" line-rate="0.5" branch-rate="0" lines-valid="2" lines-covered="1">
  <sources><source>{root}</source></sources>
  <packages><package name="pkg"><classes>
    <class name="m.py" filename="pkg/m.py" line-rate="0.5"><methods/><lines>
      <line number="1" hits="1"/><line number="2" hits="0"/>
    </lines></class>
  </classes></package></packages>
</coverage>
"""


def _repo(make_repo) -> Path:
    repo = make_repo({"go.mod": "module example.com/app\n", "a.go": GO_SRC, "pkg/m.py": "x = 1\ny = 2\n"})
    (repo / "a.go").write_text(EDITED)  # lines 4-6 of the edited file are the changed ones
    (repo / ".itest").mkdir(exist_ok=True)
    (repo / ".itest" / "c.out").write_text(PROFILE)
    (repo / ".itest" / "coverage.xml").write_text(COBERTURA.format(root=repo))
    return repo


def test_partly_executed_lines_are_told_apart_from_never_executed_ones(make_repo) -> None:
    repo = _repo(make_repo)
    result = find_coverage_gaps(open_project(repo), [".itest/c.out"], base="HEAD", scenarios=False)
    row = next(c for c in result.changed_files if c.path == "a.go")
    assert [(r.start, r.end) for r in row.uncovered_ranges] == [(4, 6)] and row.unit == "lines"
    assert [(r.start, r.end) for r in row.partly_executed_ranges] == [(4, 4)]
    assert (row.never_executed, row.partly_executed) == (2, 1)
    assert result.patch.partly_executed == 1
    gap = next(g for g in result.top_gaps if g.kind == "uncovered-changed-lines")
    assert gap.what == "2 changed line(s) never executed, 1 partly executed (a branch on the line never ran)"
    assert "(partly executed: 4)" in render(result)
    # The same answer when the lines are queried from the profile instead of collected while it streamed.
    project = open_project(repo)
    data = read_go_profile(repo / ".itest" / "c.out")
    fd = data.files["example.com/app/a.go"]
    assert fd.changed is None
    rows, patch = join_changes({"a.go": fd}, collect_changes(project, "HEAD").files)
    assert [(r.start, r.end) for r in rows[0].partly_executed_ranges] == [(4, 4)] and patch.partly_executed == 1


def test_go_totals_count_statements_and_are_not_added_to_lines(make_repo) -> None:
    repo = _repo(make_repo)
    project = open_project(repo)
    go = find_coverage_gaps(project, [".itest/c.out"], base="HEAD", scenarios=False)
    assert (go.totals.unit, go.totals.measured, go.totals.covered) == ("statements", 4, 2)
    assert render(go).startswith("coverage: 50.0% (2/4 statements) over 1 files")
    both = find_coverage_gaps(project, [".itest/c.out", ".itest/coverage.xml"], base="HEAD", scenarios=False)
    # Before: 3/6 "lines" (4 statements + 2 lines).
    assert both.totals.unit == "mixed" and both.totals.measured is None and both.totals.percent is None
    assert [(u.unit, u.measured, u.covered, u.files) for u in both.totals.by_unit] == [
        ("lines", 2, 1, 1),
        ("statements", 4, 2, 1),
    ]
    assert "50.0% (1/2 lines) over 1 files; 50.0% (2/4 statements) over 1 files" in render(both)
