"""Coverage recorded before a source file was edited is not applied to the edited file's line numbers."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import commit_all, git

from itest_mcp.tools.coverage import find_coverage_gaps
from itest_mcp.tools.models import Artifacts, PhaseRun
from itest_mcp.tools.repo import open_project

GO_SRC = "package app\n\nfunc A(x int) int {\n\tif x > 0 {\n\t\treturn 1\n\t}\n\treturn 2\n}\n"
# Line 4's condition ran, its body (line 5) did not: the profile of `go test` on A(0).
PROFILE = (
    "mode: set\nexample.com/app/a.go:3.20,4.11 1 1\nexample.com/app/a.go:4.11,6.3 1 0\n"
    "example.com/app/a.go:7.2,7.10 1 1\n"
)
SHIFTED = (
    "package app\n\n// one\n// two\n// three\nfunc A(x int) int {\n\tif x > 0 {\n\t\treturn 1\n\t}\n\treturn 2\n}\n"
)


def _repo(make_repo) -> Path:
    return make_repo({"go.mod": "module example.com/app\n", "a.go": GO_SRC, "b.go": "package app\n"})


def test_a_file_edited_after_the_coverage_file_was_written_is_stale(make_repo) -> None:
    repo = _repo(make_repo)
    prof = repo / ".itest" / "c.out"
    prof.parent.mkdir(exist_ok=True)
    prof.write_text(PROFILE)
    written = prof.stat().st_mtime_ns
    (repo / "a.go").write_text(SHIFTED)
    os.utime(repo / "a.go", ns=(written + 10**9, written + 10**9))
    result = find_coverage_gaps(open_project(repo), [".itest/c.out"], base="HEAD", scenarios=False)
    row = next(c for c in result.changed_files if c.path == "a.go")
    # Before: the old profile marked lines 4-6 of the edited file, which are now comments and `func`.
    assert row.status == "stale" and row.uncovered_ranges == [] and row.measured == 0
    assert result.patch.stale_files == ["a.go"] and result.patch.measured == 0
    assert any(n.startswith("a.go: stale coverage") and "modified after .itest/c.out" in n for n in result.notes)
    assert next(f for f in result.files if f.path == "a.go").stale
    assert result.top_gaps[0].kind == "stale-coverage"


def test_a_clean_run_compares_files_with_its_commit_not_their_mtimes(make_repo) -> None:
    repo = _repo(make_repo)
    run_dir = repo / ".itest" / "runs" / "20260101T000000Z-all-abcd"
    run_dir.mkdir(parents=True)
    (run_dir / "coverage.out").write_text(PROFILE + "example.com/app/b.go:1.1,1.2 1 1\n")
    head = git(repo, "rev-parse", "HEAD").strip()
    rel = run_dir.relative_to(repo)
    run = PhaseRun(
        run_id=run_dir.name, phase="all", argv=["go", "test"], commit=head, dirty=False, status="passed",
        started_at="2026-01-01T00:00:00Z",
        artifacts=Artifacts(run_dir=str(rel), coverage=[str(rel / "coverage.out")]),
    )  # fmt: skip
    (run_dir / "run.json").write_text(run.model_dump_json())
    written = (run_dir / "coverage.out").stat().st_mtime_ns
    # b.go is only touched (a checkout): same content as the run's commit, so not stale.
    os.utime(repo / "b.go", ns=(written + 10**9, written + 10**9))
    # a.go is edited and committed, but its mtime predates the profile: only the commit comparison sees it.
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "a.go").write_text(SHIFTED)
    commit_all(repo, "comments")
    os.utime(repo / "a.go", ns=(written - 10**9, written - 10**9))
    result = find_coverage_gaps(open_project(repo), base="main", scenarios=False)
    assert result.patch.stale_files == ["a.go"]
    assert [c.status for c in result.changed_files] == ["stale"]
    stale_notes = [n for n in result.notes if "stale coverage" in n]
    assert len(stale_notes) == 1 and f"differs from commit {head[:12]}" in stale_notes[0]
    assert {f.path: f.stale for f in result.files} == {"a.go": True, "b.go": False}
