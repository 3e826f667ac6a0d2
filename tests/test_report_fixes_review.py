"""Report defects a review of the demo found: a race reported as an assertion after merging runs, a stale
assessment turned into fixes, a flaky test as an Immediate fix, flakiness inferred from a timeout-killed run,
a parent and its subtest both among the slowest tests, a GitHub line whose count disagrees with its findings."""

from __future__ import annotations

import pytest
from helpers_history import NOW, factory

from itest_mcp.tools import history
from itest_mcp.tools.models import CountsSource, DataRace, Failure, Location, Model, Outcome
from itest_mcp.tools.repo import Project, open_project
from itest_mcp.tools.report import build_report
from itest_mcp.tools.report_markdown import render_markdown
from itest_mcp.tools.results_store import save_latest

FAIL = Outcome.FAILED
PKG = "example.com/demo/test/integration"


@pytest.fixture
def project(make_repo) -> Project:  # type: ignore[no-untyped-def]
    return open_project(make_repo({"README.md": "x\n"}))


def test_a_race_seen_in_a_json_run_stays_a_race_when_a_text_run_saw_the_same_failure(project: Project) -> None:
    # A Makefile command phase: counts from plain `go test` text, three tests, no race information.
    text_run = factory.make_run(
        0,
        [factory.make_test("TestConcurrentSync", FAIL, message="failed"), factory.make_test("TestA")],
        phase="test-integration",
    )
    text_run.report.source = CountsSource.TEXT
    text_run.report.failures = [Failure(test="TestConcurrentSync", classname=PKG, message="failed", excerpt="")]
    # The `all` phase: go test -json with -race, eleven tests, the race attributed to the test.
    wide_tests = [factory.make_test("TestConcurrentSync", FAIL, message="race detected during execution of test")]
    wide_tests += [factory.make_test(f"TestOk{i}") for i in range(10)]
    wide = factory.make_run(1, wide_tests, phase="all")
    where = [Location(file="internal/reposync/sync.go", line=42)]
    wide.report.races = [DataRace(test="TestConcurrentSync", package=PKG, locations=where)]
    for run in (text_run, wide):
        history.write_run_folder(project, run)

    result = build_report(project, [text_run.run_id, wide.run_id], now=NOW, save=False)

    (finding,) = result.findings.failures
    assert finding.cause.value == "data race" and finding.run_id == wide.run_id
    assert finding.location == "internal/reposync/sync.go:42"
    assert finding.phases == ["test-integration", "all"]
    assert finding.also_failed_in == [text_run.run_id]
    assert result.findings.causes == {"data race": 1}
    (fix,) = [r for r in result.recommendations if r.category == "fix"]
    assert fix.text.startswith("Fix the data race in TestConcurrentSync at internal/reposync/sync.go:42")
    assert "By cause: data race 1." in render_markdown(result)


class _Assessment(Model):
    head: str
    recommended: list[dict[str, object]]


def test_an_assessment_of_another_commit_recommends_nothing(project: Project) -> None:
    run = factory.make_run(0, [factory.make_test("TestA")], phase="all")
    history.write_run_folder(project, run)
    assert run.commit is not None

    save_latest(project, "assess", _Assessment(head="f" * 40, recommended=[{"name": "api-client"}]))
    result = build_report(project, [run.run_id], now=NOW, save=False)
    titles = [f.title for f in result.findings.environment]
    assert not any("was recommended by assess_changes" in t for t in titles)
    assert not any(r.text.startswith("Run phase") for r in result.recommendations)
    (stale,) = [t for t in titles if "assess_changes" in t]
    assert stale.startswith(
        f"the latest assess_changes result is for commit ffffffffffff, not the reported runs' commit {run.commit[:12]}"
    )

    # the same assessment of the runs' own commit still asks for the phase
    save_latest(project, "assess", _Assessment(head=run.commit, recommended=[{"name": "api-client"}]))
    result = build_report(project, [run.run_id], now=NOW, save=False)
    assert [r.text for r in result.recommendations if r.text.startswith("Run phase")] == [
        "Run phase api-client (`itest-mcp run api-client`)"
    ]


def test_a_flaky_test_is_a_reliability_item_only_and_says_what_happened(project: Project) -> None:
    def flaky(outcome: Outcome = Outcome.FLAKY):  # type: ignore[no-untyped-def]
        message = "eventual consistency: repo not visible yet (attempt 1)"
        tries = [(FAIL, 0.01, message), (Outcome.PASSED, 0.01, None)] if outcome is Outcome.FLAKY else None
        return factory.make_test(
            "TestFlakyEventualConsistency", outcome, attempts=tries, message=message, file="flaky_test.go", line=32
        )

    runs = [
        factory.make_run(0, [flaky(FAIL)], phase="flaky"),
        factory.make_run(1, [flaky()], phase="flaky"),
        factory.make_run(2, [flaky(), factory.make_test("TestA")], phase="all"),
    ]
    for run in runs:
        history.write_run_folder(project, run)
    result = build_report(project, [r.run_id for r in runs], now=NOW, save=False)

    assert [f.test for f in result.findings.failures] == ["TestFlakyEventualConsistency"]  # it did fail
    assert not [r for r in result.recommendations if r.category == "fix"]
    (rec,) = [r for r in result.recommendations if r.category == "reliability"]
    assert rec.text == (
        "Stabilise TestFlakyEventualConsistency at flaky_test.go:32: it failed on its first attempt in 3 of 3 run(s); "
        "passed on a rerun in 2"
    )
    assert rec.evidence.startswith("failed, then passed on a rerun in 2 run(s)")
    assert f"its failure, phase flaky, run {runs[0].run_id}: “eventual consistency" in rec.evidence


def test_slowest_tests_show_a_subtest_under_its_parent_not_beside_it(project: Project) -> None:
    tests = [
        factory.make_test("TestNetworkEdgeCases", duration=1.14),
        factory.make_test("TestNetworkEdgeCases/connection_timeout", duration=1.00),
        factory.make_test("TestNetworkEdgeCases/ok", duration=0.05),
        factory.make_test("TestSlowPagination", duration=1.51),
    ]
    run = factory.make_run(0, tests, phase="all", duration=3.7)
    history.write_run_folder(project, run)
    result = build_report(project, [run.run_id], now=NOW, save=False)

    slowest = result.summary.slowest
    assert [e.name for e in slowest] == ["TestSlowPagination", "TestNetworkEdgeCases"]
    assert slowest[1].subtest == "TestNetworkEdgeCases/connection_timeout took 1.00 s of it (88%)"
    md = render_markdown(result)
    assert (
        f"2. `TestNetworkEdgeCases` (all, `{run.run_id}`): 1.14 s, 31% of the phase; its subtest "
        "TestNetworkEdgeCases/connection_timeout took 1.00 s of it (88%)"
    ) in md
    assert "`TestNetworkEdgeCases/connection_timeout` (" not in md


class _Validation(Model):
    ok: bool
    api: dict[str, object]
    token: dict[str, object]
    problems: list[str]
    rate_limits: list[dict[str, object]] = []


def test_the_github_line_counts_the_findings_it_points_to_and_claims_no_limit_it_never_read(project: Project) -> None:
    run = factory.make_run(0, [factory.make_test("TestA")])
    history.write_run_folder(project, run)
    error = "GET /rate_limit failed (connection-error: ConnectError: Name or service not known) on all 3 attempts"
    unreachable = _Validation(
        ok=False,
        api={"url": "https://api.github.com", "reachable": False, "error": error},
        token={"found": False},
        problems=[f"the API at https://api.github.com is not usable: {error}"],
    )
    save_latest(project, "github", unreachable)
    result = build_report(project, [run.run_id], now=NOW, save=False)
    github = [f.title for f in result.findings.environment if f.source == "validate_github_api"]
    assert github == [f"api.github.com unreachable: {error}", "GitHub API check failed: no GitHub token was found"]
    assert result.summary.github is not None
    assert result.summary.github.endswith("— 2 problem(s), listed under Critical Findings")
    assert "core requests per hour" not in render_markdown(result)

    # an API that answered states its own limit
    save_latest(
        project,
        "github",
        _Validation(
            ok=False,
            api={"url": "https://api.github.com", "reachable": True, "status": 200},
            token={"found": False},
            problems=[],
            rate_limits=[{"resource": "core", "limit": 60, "remaining": 59}],
        ),
    )
    result = build_report(project, [run.run_id], now=NOW, save=False)
    github = [f.title for f in result.findings.environment if f.source == "validate_github_api"]
    assert github == ["GitHub API check failed: no GitHub token was found (unauthenticated: 60 core requests per hour)"]
    assert result.summary.github is not None and result.summary.github.endswith(
        "— 1 problem(s), listed under Critical Findings"
    )
