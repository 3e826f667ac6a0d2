"""find_coverage_gaps end to end: real go test / coverage.py output on the demo, diff-cover agreement, MCP, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import commit_all, git
from helpers_coverage import snapshot

from itest_mcp.server.app import create_app
from itest_mcp.server.cli import main as cli_main
from itest_mcp.tools.coverage import find_coverage_gaps
from itest_mcp.tools.covgo import read_go_profile
from itest_mcp.tools.covmap import PathMatcher
from itest_mcp.tools.errors import NotFoundError
from itest_mcp.tools.repo import open_project

pytestmark = pytest.mark.slow
NEEDS_GO = pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")


def _go_cover(repo: Path, out: Path) -> None:
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    # Some demo tests fail on purpose; the profile is written anyway.
    subprocess.run(
        ["go", "test", "-tags=integration", f"-coverprofile={out}", "-coverpkg=./...", "./..."],
        cwd=repo, env=env, capture_output=True, timeout=240, check=False,
    )  # fmt: skip
    assert out.is_file() and out.read_text().startswith("mode: set")


def _py_cover(repo: Path, xml: Path) -> None:
    env = {**os.environ, "COVERAGE_FILE": str(xml.with_suffix(".data"))}
    subprocess.run(
        [sys.executable, "-m", "coverage", "run", "--source=demo_client", "-m", "pytest", "-q",
         "-p", "no:cacheprovider", "-W", "ignore"],
        cwd=repo, env=env, capture_output=True, timeout=240, check=False,
    )  # fmt: skip
    subprocess.run([sys.executable, "-m", "coverage", "xml", "-o", str(xml)], cwd=repo, env=env, check=True,
                   capture_output=True)  # fmt: skip


def _edit_client(repo: Path) -> None:
    src = repo / "demo_client" / "client.py"
    text = src.read_text()
    text = text.replace(
        "    def get_repo(self, owner: str, name: str) -> dict:",
        "    def list_tags(self, owner: str, name: str) -> list:\n"
        "        path = '/repos/{}/{}/tags'.format(owner, name)\n"
        "        if not owner:\n"
        "            raise ValueError('owner')\n"
        "        return self._get_json(path)\n\n"
        "    def get_repo(self, owner: str, name: str) -> dict:",
    )
    text = text.replace("        self.backoff = backoff\n", "        self.backoff = backoff\n        self.calls = 0\n")
    src.write_text(text)


def test_python_patch_coverage_equals_diff_cover(demo_repo: Path, tmp_path: Path) -> None:
    git(demo_repo, "checkout", "-q", "-b", "feature")
    _edit_client(demo_repo)
    commit_all(demo_repo, "client: list_tags")
    xml = tmp_path / "coverage.xml"
    _py_cover(demo_repo, xml)
    report = tmp_path / "dc.json"
    subprocess.run(
        ["diff-cover", str(xml), "--compare-branch=main", f"--json-report={report}"],
        cwd=demo_repo, capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    dc = json.loads(report.read_text())
    inside = demo_repo / ".itest" / "coverage.xml"
    inside.parent.mkdir(exist_ok=True)
    shutil.copy(xml, inside)
    result = find_coverage_gaps(open_project(demo_repo), [".itest/coverage.xml"], base="main", scenarios=False)
    assert dc["total_num_lines"] > 0
    assert result.patch.measured == dc["total_num_lines"]
    assert result.patch.uncovered == dc["total_num_violations"]
    ours = {c.path: c for c in result.changed_files if c.measured}
    for path, stats in dc["src_stats"].items():
        uncovered = [ln for r in ours[path].uncovered_ranges for ln in range(r.start, r.end + 1)]
        assert uncovered == stats["violation_lines"]
        assert ours[path].covered == len(stats["covered_lines"])
    assert int(result.patch.percent or 0) == int(dc["total_percent_covered"])


@NEEDS_GO
def test_go_profile_from_the_demo(demo_repo: Path) -> None:
    git(demo_repo, "checkout", "-q", "-b", "feature")
    client = demo_repo / "internal" / "ghclient" / "client.go"
    client.write_text(client.read_text().replace(
        "func nextLink(link string) string {\n",
        "func nextLink(link string) string {\n\tif strings.TrimSpace(link) == \"\" {\n\t\treturn \"\"\n\t}\n",
    ))  # fmt: skip
    commit_all(demo_repo, "nextLink: empty header")
    out = demo_repo / ".itest" / "cov.out"
    out.parent.mkdir(exist_ok=True)
    _go_cover(demo_repo, out)
    # The compiled profile reader reads a real profile exactly as the Python reader does.
    assert snapshot(read_go_profile(out, native=True)) == snapshot(read_go_profile(out, native=False))
    result = find_coverage_gaps(open_project(demo_repo), [".itest/cov.out"], base="main")
    assert result.inputs[0].format == "go" and result.inputs[0].mode == "set"
    assert {f.path for f in result.files} >= {"internal/ghclient/client.go", "internal/reposync/sync.go"}
    assert result.unmatched == []
    changed = {c.path: c for c in result.changed_files}
    assert changed["internal/ghclient/client.go"].measured >= 1
    assert result.patch.percent is not None
    # go tool cover's own total for the same profile.
    func = subprocess.run(["go", "tool", "cover", f"-func={out}"], cwd=demo_repo, capture_output=True, text=True)
    go_total = float(func.stdout.strip().splitlines()[-1].split()[-1].rstrip("%"))
    assert abs((result.totals.percent or 0) - go_total) < 0.051
    names = {f.name for f in result.uncovered_functions}
    assert "untilReset" in names  # the 403 rate-limit path: never exercised by the demo suite
    top = next(f for f in result.uncovered_functions if f.name == "untilReset")
    assert "ratelimit" in top.reasons
    scen = {(s.suite, s.scenario): s for s in result.scenarios}
    timeout = scen[("go", "connection-timeout")]
    assert timeout.exercised and timeout.evidence[0].test == "TestNetworkEdgeCases/connection_timeout"
    assert timeout.evidence[0].file == "test/integration/network_edge_cases_test.go"
    exhaustion = scen[("go", "retry-exhaustion")]
    assert not exhaustion.exercised and exhaustion.suggestion is not None
    assert exhaustion.suggestion.file == "test/integration/network_edge_cases_test.go"
    assert exhaustion.suggestion.function == "(*Client).do"
    assert scen[("python", "auth-failure")].exercised is False
    assert result.top_gaps and result.top_gaps[0].rank == 1


def test_foreign_paths_match_by_suffix_and_misses_are_listed(make_repo) -> None:
    repo = make_repo({"go.mod": "module example.com/app\n", "pkg/net/client.go": "package net\n",
                      "pkg/util/strings.go": "package util\n", "cmd/app/main.go": "package main\n"})  # fmt: skip
    m = PathMatcher(repo)
    assert m.match("example.com/app/pkg/net/client.go") == "pkg/net/client.go"
    assert m.match("/home/runner/work/app/app/pkg/util/strings.go") == "pkg/util/strings.go"
    assert m.match("client.go", ["/home/runner/work/app/app/pkg/net"]) == "pkg/net/client.go"
    assert m.match("/elsewhere/lib/strings.go") is None
    miss = m.describe_miss("github.com/other/lib/pkg/net/clients.go", "cov.out")
    assert "outside this project's modules (example.com/app)" in miss.reason
    assert miss.candidates[0] == "pkg/net/client.go"


def test_unmatched_paths_reach_the_result(make_repo) -> None:
    repo = make_repo(
        {"go.mod": "module example.com/app\n", "pkg/a.go": "package pkg\n\nfunc A() int {\n\treturn 1\n}\n"}
    )
    prof = repo / ".itest" / "c.out"
    prof.parent.mkdir()
    prof.write_text("mode: set\nexample.com/app/pkg/a.go:3.14,5.2 1 1\nexample.com/app/pkg/gone.go:3.1,4.2 1 0\n")
    result = find_coverage_gaps(open_project(repo), [".itest/c.out"], base="HEAD", scenarios=False)
    assert [u.name for u in result.unmatched] == ["example.com/app/pkg/gone.go"]
    assert result.unmatched[0].candidates == ["pkg/a.go"]
    assert any("match no repository file" in n for n in result.notes)
    assert result.totals.measured == 1 and result.totals.covered == 1


def test_default_input_is_the_latest_run_with_coverage(make_repo) -> None:
    repo = make_repo({"go.mod": "module example.com/app\n", "a.go": "package app\n\nfunc A() int {\n\treturn 1\n}\n"})
    project = open_project(repo)
    with pytest.raises(NotFoundError, match="no run under .itest/runs produced coverage"):
        find_coverage_gaps(project, scenarios=False)
    runs = repo / ".itest" / "runs"
    for rid, hit in (("20240101-000000-aaaa", 0), ("20240102-000000-bbbb", 1), ("20240103-000000-cccc", None)):
        (runs / rid).mkdir(parents=True)
        if hit is not None:
            (runs / rid / "coverage.out").write_text(f"mode: set\nexample.com/app/a.go:3.14,5.2 1 {hit}\n")
    result = find_coverage_gaps(project, scenarios=False)
    assert result.run_id == "20240102-000000-bbbb" and result.totals.covered == 1
    assert find_coverage_gaps(project, run_id="20240101-000000-aaaa", scenarios=False).totals.covered == 0


def test_unmeasured_changed_files_are_counted_and_listed(make_repo) -> None:
    repo = make_repo({"go.mod": "module example.com/app\n", "a.go": "package app\n\nfunc A() int {\n\treturn 1\n}\n"})
    (repo / "b.go").write_text("package app\n\nfunc B() int {\n\treturn 2\n}\n")
    (repo / "b_test.go").write_text("package app\n")
    (repo / "a.go").write_text("package app\n\nfunc A() int {\n\treturn 3\n}\n")
    prof = repo / ".itest" / "c.out"
    prof.parent.mkdir(exist_ok=True)
    prof.write_text("mode: set\nexample.com/app/a.go:3.14,5.2 1 1\n")
    project = open_project(repo)
    res = find_coverage_gaps(project, [".itest/c.out"], base="HEAD", scenarios=False)
    assert res.patch.unmeasured_files == ["b.go"]
    assert res.patch.measured == 1 and res.patch.percent == 100.0
    assert res.patch.percent_with_unmeasured == 16.67  # 1 covered of 1 measured + 5 added lines in b.go
    off = find_coverage_gaps(project, [".itest/c.out"], base="HEAD", scenarios=False, count_unmeasured=False)
    assert off.patch.percent_with_unmeasured == 100.0


@pytest.mark.anyio
async def test_mcp_tool_and_cli(make_repo, capsys: pytest.CaptureFixture[str]) -> None:
    from mcp import Client

    repo = make_repo({"go.mod": "module example.com/app\n", "a.go": "package app\n\nfunc A() int {\n\treturn 1\n}\n"})
    (repo / "bad.out").write_text("garbage\x00\x01 not coverage")
    good = repo / "c.out"
    good.write_text("mode: set\nexample.com/app/a.go:3.14,5.2 1 0\n")
    app = create_app(repo)
    async with Client(app) as c:
        ok = await c.call_tool("find_coverage_gaps", {"files": ["c.out"], "base": "HEAD"})
        assert not ok.is_error and ok.structured_content is not None
        assert ok.structured_content["totals"]["measured"] == 1
        bad = await c.call_tool("find_coverage_gaps", {"files": ["bad.out"]})
        assert bad.is_error and "no known coverage format" in bad.content[0].text  # type: ignore[union-attr]
    assert cli_main(["--repo", str(repo), "coverage", "c.out", "--base", "HEAD", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["covered"] == 0
    assert cli_main(["--repo", str(repo), "coverage", "bad.out"]) == 2
    assert "bad.out" in capsys.readouterr().err


@pytest.mark.anyio
async def test_latest_coverage_result_and_parse_failure_are_kept_for_the_report(make_repo) -> None:
    from mcp import Client

    from itest_mcp.tools.repo import open_project
    from itest_mcp.tools.results_store import ERROR_KEY, load_latest

    repo = make_repo({"go.mod": "module example.com/app\n", "a.go": "package app\n\nfunc A() int {\n\treturn 1\n}\n"})
    (repo / "c.out").write_text("mode: set\nexample.com/app/a.go:3.14,5.2 1 0\n")
    (repo / "bad.out").write_text("garbage\x00\x01 not coverage")
    project = open_project(repo)
    async with Client(create_app(repo)) as c:
        ok = await c.call_tool("find_coverage_gaps", {"files": ["c.out"], "base": "HEAD"})
        kept = load_latest(project, "coverage")
        assert kept is not None and kept["totals"] == ok.structured_content["totals"]  # type: ignore[index]
        bad = await c.call_tool("find_coverage_gaps", {"files": ["bad.out"]})
        assert bad.is_error
    failure = load_latest(project, "coverage")
    assert failure is not None and "no known coverage format" in failure[ERROR_KEY]
    assert failure["_source"] == "bad.out"
