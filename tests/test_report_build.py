"""build_report: the four sections, cause classes, run selection, bad input, unreadable results, MCP and CLI."""

from __future__ import annotations

import json
import re

import pytest
from helpers_history import NOW, factory

from itest_mcp.server.app import create_app
from itest_mcp.server.cli import main
from itest_mcp.tools import history, report
from itest_mcp.tools.errors import NotFoundError
from itest_mcp.tools.models import DataRace, Failure, Location, Model, Outcome, RunStatus
from itest_mcp.tools.repo import Project, open_project
from itest_mcp.tools.report import build_report
from itest_mcp.tools.report_causes import Cause, classify
from itest_mcp.tools.report_markdown import render_markdown
from itest_mcp.tools.results_store import save_error, save_latest

PASS, FAIL = Outcome.PASSED, Outcome.FAILED


@pytest.fixture
def project(make_repo) -> Project:  # type: ignore[no-untyped-def]
    return open_project(make_repo({"README.md": "x\n"}))


def _demo_like_run(index: int, *, coverage: list[str] | None = None):  # type: ignore[no-untyped-def]
    tests = [
        factory.make_test("TestAPIClientGetRepo", duration=0.05),
        factory.make_test(
            "TestAPIClientDefaultBranch",
            FAIL,
            message='api_test.go:61: default branch = "master", want "main"',
            file="test/integration/api_test.go",
            line=61,
        ),
        factory.make_test(
            "TestFlakyEventualConsistency",
            Outcome.FLAKY,
            attempts=[(FAIL, 0.1, "eventual consistency: got 0 items"), (PASS, 0.1, None)],
        ),
        factory.make_test("TestSlowPagination", duration=1.52),
        factory.make_test(
            "TestConcurrentSync", FAIL, message="testing.go:1465: race detected during execution of test"
        ),
    ]
    failures = [
        Failure(
            test="TestAPIClientDefaultBranch",
            classname="example.com/demo/test/integration",
            message='api_test.go:61: default branch = "master", want "main"',
            location=Location(file="test/integration/api_test.go", line=61),
            excerpt='=== RUN   TestAPIClientDefaultBranch\n    api_test.go:61: default branch = "master", want "main"',
            kind="assertion",
        ),
        Failure(
            test="TestConcurrentSync",
            classname="example.com/demo/test/integration",
            message="testing.go:1465: race detected during execution of test",
            kind="assertion",
        ),
    ]
    run = factory.make_run(index, tests, failures=failures, coverage=coverage, duration=3.7)
    run.report.races = [
        DataRace(
            test="TestConcurrentSync",
            package="example.com/demo/internal/reposync",
            locations=[Location(file="internal/reposync/sync.go", line=42)],
            excerpt="WARNING: DATA RACE\nWrite at 0x00c by goroutine 8:\n  reposync.(*Syncer).Fetch()\n  sync.go:42",
        )
    ]
    return run


def _sections(markdown: str) -> list[str]:
    return re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)


def test_report_has_exactly_the_four_sections_backed_by_data(project: Project) -> None:
    run = _demo_like_run(0)
    history.write_run_folder(project, run)
    result = build_report(project, [run.run_id], now=NOW)
    md = render_markdown(result)
    assert _sections(md) == ["Test Execution Summary", "Critical Findings", "Coverage Analysis", "Recommendations"]
    # summary: the run, its counts and time
    assert f"| integration | `{run.run_id}` | failed | 5 | 2 | 2 | 0 | 0 | 1 | 3.70 s |" in md
    assert "Total: 1 run(s) in 3.70 s; 5 tests — 2 passed, 2 failed, 0 errors, 0 skipped, 1 flaky" in md
    assert "pass rate 60.0%" in md
    # findings with cause classes and file:line
    causes = {f.test: f.cause for f in result.findings.failures}
    assert causes == {"TestAPIClientDefaultBranch": Cause.ASSERTION, "TestConcurrentSync": Cause.DATA_RACE}
    assert "**TestAPIClientDefaultBranch** — assertion at `test/integration/api_test.go:61`" in md
    assert "(at internal/reposync/sync.go:42)" in md
    assert "TestSlowPagination took 1.52 s in phase integration, 41% of the phase's 3.70 s" in md
    # recommendations, each with its evidence
    fix = [r for r in result.recommendations if r.category == "fix"]
    assert fix[0].text.startswith("Fix TestAPIClientDefaultBranch at test/integration/api_test.go:61")
    assert "Fix the data race in TestConcurrentSync" in fix[1].text
    reliability = [r for r in result.recommendations if r.category == "reliability"]
    assert reliability and "TestFlakyEventualConsistency" in reliability[0].text
    assert "New integration tests (0)" in md and "no coverage result to derive new tests from" in md
    # saved under .itest/reports and served as the latest report
    assert result.files.markdown == f".itest/reports/{result.report_id}.md"
    assert (project.root / result.files.markdown).read_text(encoding="utf-8") == md
    assert report.latest_report_markdown(project) == md
    saved = json.loads((project.root / str(result.files.json_path)).read_text(encoding="utf-8"))
    assert saved["run_ids"] == [run.run_id] and saved["report_id"] == "report-20250201T093000-000000"


@pytest.mark.parametrize(
    ("message", "excerpt", "kind", "cause"),
    [
        ('default branch = "master", want "main"', "", "assertion", Cause.ASSERTION),
        ("AssertionError: assert 'master' == 'main'", "", None, Cause.ASSERTION),
        ("test timed out after 30s", "", None, Cause.TIMEOUT),
        ("", "panic: runtime error: index out of range\ngoroutine 7 [running]:", None, Cause.PANIC),
        ("race detected during execution of test", "WARNING: DATA RACE", "assertion", Cause.DATA_RACE),
        ("", "", "data-race", Cause.DATA_RACE),
        ("./client.go:12:2: undefined: fetchAll", "", None, Cause.BUILD),
        (
            'Get "http://127.0.0.1:9/x": dial tcp 127.0.0.1:9: connect: connection refused',
            "",
            "assertion",
            Cause.NETWORK,
        ),
        ("GET /user: 401 Bad credentials", "", "assertion", Cause.AUTH),
        ("GET /repos/o/r: 403 API rate limit exceeded", "", "assertion", Cause.RATE_LIMIT),
        ('exec: "docker": executable file not found in $PATH', "", None, Cause.ENVIRONMENT),
        ("", "", None, Cause.UNCLASSIFIED),
    ],
)
def test_cause_classes(message: str, excerpt: str, kind: str | None, cause: Cause) -> None:
    failure = Failure(test="TestX", message=message, excerpt=excerpt, kind=kind)
    got, evidence = classify(failure)
    assert got is cause
    assert evidence  # every class says which data it came from


def test_unknown_run_id_lists_recent_runs(project: Project) -> None:
    for i in range(3):
        history.write_run_folder(project, factory.make_run(i, [factory.make_test("TestA")]))
    with pytest.raises(NotFoundError) as info:
        build_report(project, ["20990101T000000Z-integration-beef"], now=NOW)
    message = str(info.value)
    assert "run '20990101T000000Z-integration-beef' not found in .itest/runs" in message
    assert f"recent runs (newest first): {factory.run_id_at(2)}, {factory.run_id_at(1)}, {factory.run_id_at(0)}" in (
        message
    )


def test_no_runs_yet_says_what_to_run_first(project: Project) -> None:
    with pytest.raises(NotFoundError) as info:
        build_report(project, now=NOW)
    message = str(info.value)
    assert "no test runs yet in .itest/runs; run a phase first (`itest-mcp run <phase>`" in message
    assert "itest-mcp workflow" in message


def test_coverage_file_that_fails_to_parse_is_a_critical_finding(project: Project) -> None:
    run = _demo_like_run(0, coverage=[f".itest/runs/{factory.run_id_at(0)}/coverage.out"])
    folder = history.write_run_folder(project, run)
    (folder / "coverage.out").write_text("example.com/demo/x.go:1.1,2.2 1 1\n", encoding="utf-8")
    result = build_report(project, [run.run_id], now=NOW)
    md = render_markdown(result)
    critical = md.split("## Critical Findings")[1].split("## Coverage Analysis")[0]
    assert f"coverage file .itest/runs/{run.run_id}/coverage.out failed to parse" in critical
    assert "has no 'mode:' line" in critical
    assert _sections(md)[2] == "Coverage Analysis"


def test_recorded_coverage_parse_error_and_unreadable_results_are_findings(project: Project) -> None:
    run = _demo_like_run(0)
    history.write_run_folder(project, run)
    save_error(project, "coverage", "cobertura.xml:3: mismatched tag", source="cobertura.xml")
    latest = project.state_dir / "latest"
    (latest / "github.json").write_text("{truncated", encoding="utf-8")
    result = build_report(project, [run.run_id], now=NOW)
    titles = [f.title for f in result.findings.environment]
    assert any(
        t.startswith("the latest coverage file (cobertura.xml) failed to parse: cobertura.xml:3: mismatched tag")
        for t in titles
    )
    assert any(
        "the latest validate_github_api result cannot be read: .itest/latest/github.json is not valid JSON" in t
        for t in titles
    )
    md = render_markdown(result)
    assert "failed to parse" in md.split("## Coverage Analysis")[1].split("## Recommendations")[0]


class _Coverage(Model):
    totals: dict[str, int | float]
    patch: dict[str, int | float]
    files: list[dict[str, object]]
    changed_files: list[dict[str, object]]
    scenarios: list[dict[str, object]]


def test_coverage_result_feeds_analysis_and_new_test_recommendations(project: Project) -> None:
    run = _demo_like_run(0)
    history.write_run_folder(project, run)
    save_latest(
        project,
        "coverage",
        _Coverage(
            totals={"percent": 71.4, "covered": 50, "measured": 70, "files": 3},
            patch={"percent": 40.0, "covered": 4, "measured": 10},
            files=[
                {"path": "internal/ghclient/client.go", "measured": 40, "covered": 38, "percent": 95.0},
                {"path": "internal/reposync/sync.go", "measured": 30, "covered": 12, "percent": 40.0},
            ],
            changed_files=[
                {"path": "internal/reposync/sync.go", "uncovered": 6, "uncovered_ranges": [{"start": 10, "end": 15}]}
            ],
            scenarios=[
                {
                    "scenario": "rate-limit-secondary",
                    "title": "secondary rate limit (403 + retry-after)",
                    "suite": "go",
                    "exercised": False,
                    "suggestion": {"test": "TestSecondaryRateLimit", "file": "test/integration/network_test.go"},
                }
            ],
        ),
    )
    result = build_report(project, [run.run_id], now=NOW)
    c = result.coverage
    assert c.total_percent == 71.4 and c.changed_lines_percent == 40.0
    assert [a.name for a in c.well_covered] == ["internal/ghclient/client.go"]
    assert c.gaps[0].file == "internal/reposync/sync.go" and c.gaps[0].lines == "10-15"
    assert c.unexercised == ["go: secondary rate limit (403 + retry-after)"]
    new_tests = [r for r in result.recommendations if r.category == "new-test"]
    assert new_tests[0].text.startswith("Add TestSecondaryRateLimit in test/integration/network_test.go")
    md = render_markdown(result)
    assert "Total coverage: 71.4%, 50/70 lines over 3 files" in md
    assert "- `internal/reposync/sync.go` lines 10-15 — 6 changed line(s) no test executed" in md


def test_default_selection_is_runs_since_the_last_report(project: Project) -> None:
    head = project.head_commit()
    history.write_run_folder(project, factory.make_run(0, [factory.make_test("TestA")]))  # another commit
    for i in (1, 2):
        history.write_run_folder(project, factory.make_run(i, [factory.make_test("TestA")], commit=head))
    first = build_report(project, now=NOW)
    assert first.run_ids == [factory.run_id_at(1), factory.run_id_at(2)]
    assert first.selection == f"the 2 run(s) of the current commit {head[:12]}"  # type: ignore[index]
    history.write_run_folder(project, factory.make_run(3, [factory.make_test("TestA")]))
    second = build_report(project, now=NOW.replace(minute=31))
    assert second.run_ids == [factory.run_id_at(3)]
    assert second.selection == f"the 1 run(s) since the last report {first.report_id}"


def test_timeout_and_notes_are_environment_findings(project: Project) -> None:
    run = factory.make_run(
        0,
        [factory.make_test("TestA")],
        status=RunStatus.TIMEOUT,
        notes=["'magex' is not on PATH, so this phase cannot run here"],
        duration=30.0,
    )
    history.write_run_folder(project, run)
    result = build_report(project, [run.run_id], now=NOW)
    titles = [f.title for f in result.findings.environment]
    assert "phase integration hit its timeout (stopped after 30.0 s)" in titles
    assert "phase integration: 'magex' is not on PATH, so this phase cannot run here" in titles


@pytest.mark.anyio
async def test_mcp_tools_resource_and_prompt(project: Project) -> None:
    from mcp import Client

    for i in range(3):
        history.write_run_folder(project, _demo_like_run(i))
    app = create_app(project.root)
    async with Client(app) as client:
        r = await client.call_tool("build_report", {"runs": [factory.run_id_at(2)], "format": "html"})
        assert not r.is_error, r.content
        data = r.structured_content
        assert data is not None and data["run_ids"] == [factory.run_id_at(2)]
        assert data["files"]["html"].endswith(".html") and (project.root / data["files"]["html"]).is_file()
        r = await client.call_tool("build_report", {"runs": ["20990101T000000Z-x-beef"]})
        assert r.is_error and "not found in .itest/runs; recent runs (newest first)" in str(r.content)
        resource = await client.read_resource("itest://reports/latest")
        text = resource.contents[0].text  # type: ignore[union-attr]
        assert text.startswith("# Integration test report") and "## Recommendations" in text
        r = await client.call_tool("flaky_tests", {})
        assert not r.is_error and r.structured_content is not None
        assert [s["name"] for s in r.structured_content["flaky"]] == ["TestFlakyEventualConsistency"]
        assert [s["name"] for s in r.structured_content["broken"]] == [
            "TestAPIClientDefaultBranch",
            "TestConcurrentSync",
        ]
        r = await client.call_tool("test_history", {"test": "TestSlowPagination"})
        assert not r.is_error and r.structured_content is not None
        assert len(r.structured_content["test"]["entries"]) == 3
        prompt = await client.get_prompt("integration_test_workflow", {"focus": "the GitHub client"})
        body = prompt.messages[0].content.text  # type: ignore[union-attr]
        assert "Focus: the GitHub client." in body
        for step in ("assess_changes", "run_phase", "rerun_failures=2", "find_coverage_gaps", "validate_github_api"):
            assert step in body
        assert body.index("assess_changes") < body.index("find_coverage_gaps") < body.index("build_report")
        plain = await client.get_prompt("integration_test_workflow", {})
        assert "Focus:" not in plain.messages[0].content.text  # type: ignore[union-attr]


def test_cli_report_formats_and_out(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    run = _demo_like_run(0)
    history.write_run_folder(project, run)
    assert main(["--repo", str(project.root), "report", "--runs", run.run_id]) == 0
    assert _sections(capsys.readouterr().out)[0] == "Test Execution Summary"
    assert main(["--repo", str(project.root), "report", "--runs", run.run_id, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["totals"]["failed"] == 2 and data["findings"]["causes"] == {"assertion": 1, "data race": 1}
    assert (
        main(["--repo", str(project.root), "report", "--runs", run.run_id, "--format", "html", "--out", "r.html"]) == 0
    )
    assert "wrote r.html" in capsys.readouterr().out
    assert (project.root / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert main(["--repo", str(project.root), "report", "--out", "../outside.md"]) == 2
    assert "is outside the project root" in capsys.readouterr().err
    assert main(["--repo", str(project.root), "report", "--runs", "nope"]) == 2
    assert f"run 'nope' not found in .itest/runs; recent runs (newest first): {run.run_id}" in capsys.readouterr().err
    assert main(["--repo", str(project.root), "report", "--runs", "../etc"]) == 2
    assert "run id '../etc' is not a run id" in capsys.readouterr().err
