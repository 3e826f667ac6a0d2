"""The report says each thing once: a test failing in two phases, a slow test and its subtest, notes that
restate failures, new-test ideas from two sources, an unreachable GitHub API."""

from __future__ import annotations

import re
import socket
import time

import pytest
from helpers_history import NOW, factory

from itest_mcp.tools import history
from itest_mcp.tools.github_validate import validate_github_api
from itest_mcp.tools.models import DataRace, Location, Model, Outcome
from itest_mcp.tools.phases import Phase, Runner
from itest_mcp.tools.repo import Project, open_project
from itest_mcp.tools.report import build_report
from itest_mcp.tools.report_markdown import render_markdown
from itest_mcp.tools.report_sections import phase_covers
from itest_mcp.tools.results_store import save_latest
from itest_mcp.tools.workflow import GITHUB_POLICY

FAIL = Outcome.FAILED
PKG = "example.com/demo/test/integration"


@pytest.fixture
def project(make_repo) -> Project:  # type: ignore[no-untyped-def]
    return open_project(make_repo({"README.md": "x\n"}))


def _failing(name: str = "TestAPIClientDefaultBranch", classname: str = PKG):  # type: ignore[no-untyped-def]
    return factory.make_test(
        name,
        FAIL,
        classname=classname,
        message='api_client_test.go:98: default branch = "master", want "main"',
        file="test/integration/api_client_test.go",
        line=98,
    )


def _section(md: str, start: str, end: str) -> str:
    return md.split(start, 1)[1].split(end, 1)[0]


def test_a_test_failing_in_two_phases_is_one_finding_and_one_fix(project: Project) -> None:
    narrow = factory.make_run(0, [_failing(), factory.make_test("TestAPIClientGetRepo")], phase="api-client")
    wide_tests = [_failing(), _failing("TestConcurrentSync")] + [factory.make_test(f"TestOk{i}") for i in range(6)]
    wide = factory.make_run(1, wide_tests, phase="all")
    wide.report.races = [DataRace(test="TestConcurrentSync", package="example.com/demo/internal/reposync")]
    # the same name in another package is another test
    other = factory.make_run(2, [_failing(classname="example.com/demo/other")], phase="other")
    for run in (narrow, wide, other):
        history.write_run_folder(project, run)
    result = build_report(project, [narrow.run_id, wide.run_id, other.run_id], now=NOW)

    same = [f for f in result.findings.failures if f.test == "TestAPIClientDefaultBranch"]
    assert [f.classname for f in same] == [PKG, "example.com/demo/other"]
    merged = same[0]
    assert merged.phases == ["api-client", "all"] and merged.seen_in == [narrow.run_id, wide.run_id]
    assert merged.run_id == narrow.run_id  # the data of the most specific run (fewest tests)
    assert merged.also_failed_in == [wide.run_id]
    assert result.findings.causes == {"assertion": 2, "data race": 1}

    md = render_markdown(result)
    failures = _section(md, "### Failures", "### Performance")
    assert failures.count("**TestAPIClientDefaultBranch**") == 2  # this package and the other one
    assert f"seen in phases api-client, all (runs `{narrow.run_id}`, `{wide.run_id}`)" in failures
    assert failures.count("**TestConcurrentSync**") == 1
    fixes = [r for r in result.recommendations if r.category == "fix"]
    ours = [r for r in fixes if "TestAPIClientDefaultBranch" in r.text and f"runs {narrow.run_id}" in r.evidence]
    assert len(ours) == 1
    assert f"seen in phases api-client, all (runs {narrow.run_id}, {wide.run_id})" in ours[0].evidence
    assert len(fixes) == 3


def test_performance_keeps_the_explaining_subtest_once_and_states_the_rule(project: Project) -> None:
    def edge() -> list:  # type: ignore[type-arg]
        return [
            factory.make_test("TestNetworkEdgeCases", duration=1.14),
            factory.make_test("TestNetworkEdgeCases/rate_limit_429_retry_after", duration=1.00),
            factory.make_test("TestNetworkEdgeCases/connection_timeout", duration=0.10),
        ]

    runs = [
        factory.make_run(0, edge(), phase="network-edge-cases", duration=3.29),
        factory.make_run(1, [factory.make_test("TestSlowPagination", duration=1.51)], phase="slow", duration=4.11),
        factory.make_run(
            2, [factory.make_test("TestSlowPagination", duration=1.51), *edge()], phase="all", duration=4.5
        ),
        # over 1 s but 12% of its phase; 80% of its phase but under 1 s: neither is worth a "speed up"
        factory.make_run(
            3,
            [factory.make_test("TestBigPhase", duration=1.2), factory.make_test("TestRest", duration=8.0)],
            phase="big",
            duration=10.0,
        ),
        factory.make_run(4, [factory.make_test("TestShort", duration=0.8)], phase="tiny", duration=1.0),
    ]
    for run in runs:
        history.write_run_folder(project, run)
    result = build_report(project, [r.run_id for r in runs], now=NOW)

    perf = result.findings.performance
    assert [(f.test, f.phase) for f in perf] == [
        ("TestRest", "big"),
        ("TestSlowPagination", "slow"),
        ("TestNetworkEdgeCases/rate_limit_429_retry_after", "network-edge-cases"),
    ]
    sub = perf[2]
    assert sub.title == (
        "TestNetworkEdgeCases/rate_limit_429_retry_after took 1.00 s in phase network-edge-cases, "
        "30% of the phase's 3.29 s"
    )
    assert "it accounts for 88% of TestNetworkEdgeCases's 1.14 s" in sub.detail
    assert "also over the threshold in phase(s) all" in sub.detail
    assert "also over the threshold in phase(s) all" in perf[1].detail  # 1.51 s is 34% of all's 4.5 s
    speed_up = [r.text for r in result.recommendations if r.category == "performance"]
    assert len(speed_up) == 3 and not any("TestBigPhase" in t or "TestShort" in t for t in speed_up)
    assert sum("TestNetworkEdgeCases" in t for t in speed_up) == 1
    md = render_markdown(result)
    assert "Rule: a test is listed when it took at least 1 s and at least 25% of its phase's wall time" in md
    slowest = [e.name for e in result.summary.slowest]
    assert slowest.count("TestSlowPagination") == 1 and slowest.count("TestNetworkEdgeCases") == 1


def test_a_slowdown_from_history_is_reported_below_the_threshold(project: Project) -> None:
    for i, duration in enumerate([0.1, 0.1, 0.1, 0.1, 0.8]):
        run = factory.make_run(i, [factory.make_test("TestGotSlower", duration=duration)], duration=6.0)
        history.write_run_folder(project, run)
        history.record_run(project, run)
    result = build_report(project, [factory.run_id_at(4)], now=NOW)
    (finding,) = result.findings.performance
    assert finding.title.startswith("TestGotSlower slowed down: 0.80 s in") and "8.0× its median 0.10 s" in (
        finding.title
    )
    (rec,) = [r for r in result.recommendations if r.category == "performance"]
    assert rec.text == "Find what slowed down TestGotSlower"


def test_environment_keeps_only_environment_notes(project: Project) -> None:
    notes = [
        "the phase exited 0 but ran no tests; check its filter, tags and paths",
        "data race detected in TestConcurrentSync",
        "build failed in example.com/demo/x at x.go:3: undefined: y",
        "coverage.py is not installed in /usr/bin/python3; `pip install coverage` there for coverage",
    ]
    run = factory.make_run(0, [_failing("TestConcurrentSync")], phase="race", notes=notes)
    run.report.races = [DataRace(test="TestConcurrentSync", locations=[Location(file="sync.go", line=42)])]
    history.write_run_folder(project, run)
    result = build_report(project, [run.run_id], now=NOW)
    titles = [f.title for f in result.findings.environment]
    assert titles == [f"phase race: {notes[3]}"]
    assert [f.cause.value for f in result.findings.failures] == ["data race"]
    env = _section(render_markdown(result), "### Environment and configuration", "## Coverage Analysis")
    assert "data race" not in env


class _Gaps(Model):
    scenarios: list[dict[str, object]]
    top_gaps: list[dict[str, object]]


def test_new_test_ideas_merge_by_suite_and_test_keeping_the_richer_text(project: Project) -> None:
    run = factory.make_run(0, [factory.make_test("TestA")])
    history.write_run_folder(project, run)
    how_go = "cancel the context while the request is in flight and assert context.Canceled"
    save_latest(
        project,
        "coverage",
        _Gaps(
            scenarios=[
                {
                    "scenario": "context-cancellation",
                    "title": "context cancellation",
                    "suite": suite,
                    "exercised": False,
                    "suggestion": {
                        "test": test,
                        "file": file,
                        "how": how_go + ("; exercise sleep (internal/ghclient/client.go:247)" if suite == "go" else ""),
                    },
                }
                for suite, test, file in (
                    ("go", "TestNetworkEdgeCases/context_cancellation", "test/integration/network_edge_cases_test.go"),
                    ("python", "test_context_cancellation", "tests/integration/test_repo_client.py"),
                )
            ],
            top_gaps=[
                {"rank": 1, "kind": "uncovered-function", "what": "retryAfter", "where": "c.go:218", "why": "http"},
                {
                    "rank": 2,
                    "kind": "missing-scenario",
                    "what": "context cancellation (go): write TestNetworkEdgeCases/context_cancellation",
                    "where": "test/integration/network_edge_cases_test.go",
                    "why": how_go,
                },
            ],
        ),
    )
    result = build_report(project, [run.run_id], now=NOW)
    ideas = [r for r in result.recommendations if r.category == "new-test"]
    assert [r.text.split(" ")[1] for r in ideas] == [
        "retryAfter",
        "TestNetworkEdgeCases/context_cancellation",
        "test_context_cancellation",
    ]
    go = ideas[1]
    assert go.text == (
        "Add TestNetworkEdgeCases/context_cancellation in test/integration/network_edge_cases_test.go to exercise "
        f"“go: context cancellation”: {how_go}; exercise sleep (internal/ghclient/client.go:247)"
    )
    assert go.evidence.startswith("ranked gap #2 (missing-scenario); no go test exercises this scenario")
    md = render_markdown(result)
    assert md.count("context_cancellation in test/integration") == 1


def _phase(name: str, files: list[str], **fields: object) -> Phase:
    base: dict[str, object] = {"packages": ["./test/integration"], "tags": ["integration"]}
    return Phase.model_validate({**base, **fields, "name": name, "runner": Runner.GO, "test_files": files})


def test_phase_covers_only_a_phase_it_runs_the_same_way() -> None:
    wide = _phase("all", ["a_test.go", "b_test.go"])
    narrow = _phase("a", ["a_test.go"], run="^(TestA)$")
    assert phase_covers(wide, narrow) and not phase_covers(narrow, wide)
    assert not phase_covers(wide, _phase("c", ["c_test.go"]))  # a file `all` does not run
    assert not phase_covers(wide, _phase("perf", ["a_test.go"], tags=["integration", "performance"]))
    assert not phase_covers(_phase("all", ["a_test.go"], race=False), narrow)  # narrow runs with -race
    assert not phase_covers(_phase("all", ["a_test.go"], run="^TestB$"), narrow)
    assert not phase_covers(wide, _phase("a", ["a_test.go"], env={"DEMO": "1"}))
    assert not phase_covers(wide, _phase("a", [], run="^TestA$"))  # files unknown: cannot tell


def _silent_server() -> socket.socket:
    # Accepts connections (the kernel's backlog) and never answers: what a black-holed API looks like.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    return server


@pytest.mark.anyio
async def test_github_step_budget_bounds_a_silent_api_and_the_report_says_unreachable(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    run = factory.make_run(0, [factory.make_test("TestA")])
    history.write_run_folder(project, run)
    with _silent_server() as server:
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        started = time.monotonic()
        validation = await validate_github_api(
            project, api_url=url, timeout_s=1.5, policy=GITHUB_POLICY, handling_check=False
        )
        elapsed = time.monotonic() - started
    assert elapsed < 4.0, f"the 1.5 s budget took {elapsed:.1f} s"
    assert not validation.api.reachable and validation.api.error
    save_latest(project, "github", validation, meta={"timeout_s": 1.5})
    result = build_report(project, [run.run_id], now=NOW)
    titles = [f.title for f in result.findings.environment]
    host = url.removeprefix("http://")
    unreachable = [t for t in titles if t.startswith(f"{host} unreachable: ")]
    assert len(unreachable) == 1 and unreachable[0].endswith("(gave up after the workflow's 1.5 s GitHub timeout)")
    assert not any("is not usable" in t for t in titles)  # said once, naming the host
    assert result.summary.github is not None and re.search(
        rf"against {re.escape(url)} with no token; unreachable", (result.summary.github)
    )
