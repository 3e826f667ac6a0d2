"""review_ci_failures: log parsing (golden), repository discovery, phase mapping, the integration-only view."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from conftest import FIXTURES, git

from itest_mcp.tools.ci_failures import (
    parse_job_log,
    parse_remote_url,
    recent_integration_failures,
    render_ci,
    resolve_repo,
    review_ci_failures,
)
from itest_mcp.tools.errors import InputError
from itest_mcp.tools.fake_github import FakeGitHub
from itest_mcp.tools.github import GitHubClient, GitHubSettings, Token
from itest_mcp.tools.repo import open_project

LOGS = sorted((FIXTURES / "github").glob("*.log"))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.mark.parametrize("log", LOGS, ids=[p.stem for p in LOGS])
def test_parse_job_log_golden(log: Path) -> None:
    expected = json.loads(log.with_suffix(".expected.json").read_text(encoding="utf-8"))
    got = [t.model_dump(exclude={"phases"}) for t in parse_job_log(log.read_text(encoding="utf-8"))]
    assert got == expected


def test_golden_files_cover_every_pattern() -> None:
    kinds = {
        (t["framework"], t["kind"])
        for log in LOGS
        for t in json.loads(log.with_suffix(".expected.json").read_text(encoding="utf-8"))
    }
    wanted = {("go", "failure"), ("go", "panic"), ("go", "data-race"), ("pytest", "failure"), ("pytest", "error")}
    assert kinds >= wanted


def test_truncated_tail_drops_the_partial_first_line() -> None:
    text = "AIL: TestCut (0.00s)\n--- FAIL: TestWhole (0.00s)\n"
    assert [t.name for t in parse_job_log(text, truncated=True)] == ["TestWhole"]


def test_failing_subtest_replaces_its_parent() -> None:
    text = "--- FAIL: TestA (0.1s)\n    --- FAIL: TestA/b (0.1s)\n        a_test.go:9: boom\nFAIL\tex.com/p\t0.1s\n"
    tests = parse_job_log(text)
    assert [(t.name, t.package, t.message) for t in tests] == [("TestA/b", "ex.com/p", "a_test.go:9: boom")]


def test_gotestsum_format() -> None:
    tests = parse_job_log("=== FAIL: example.com/demo/x TestThing (0.00s)\n    x_test.go:3: nope\n")
    assert [(t.name, t.package, t.message) for t in tests] == [("TestThing", "example.com/demo/x", "x_test.go:3: nope")]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/octo/demo.git", ("github.com", "octo/demo")),
        ("https://x-access-token:abc@github.com/octo/demo", ("github.com", "octo/demo")),
        ("git@github.com:octo/demo.git", ("github.com", "octo/demo")),
        ("ssh://git@ghe.example.com:2222/team/svc.git", ("ghe.example.com", "team/svc")),
        ("/srv/git/demo.git", None),
        ("https://github.com/onlyowner", None),
    ],
)
def test_parse_remote_url(url: str, expected: tuple[str, str] | None) -> None:
    assert parse_remote_url(url) == expected


def test_repo_from_origin_remote(demo_repo: Path) -> None:
    git(demo_repo, "remote", "add", "origin", "git@github.com:octo/demo.git")
    assert resolve_repo(open_project(demo_repo), None, GitHubSettings()) == ("octo/demo", "origin remote (github.com)")
    assert resolve_repo(open_project(demo_repo), None, GitHubSettings(repo="a/b")) == ("a/b", "[github] repo")


def test_no_origin_says_what_to_do(demo_repo: Path) -> None:
    with pytest.raises(InputError) as info:
        resolve_repo(open_project(demo_repo), None, GitHubSettings())
    assert "--repo-name OWNER/NAME" in str(info.value) and "[github] repo" in str(info.value)


def test_remote_that_is_not_github_hides_credentials(demo_repo: Path) -> None:
    git(demo_repo, "remote", "add", "origin", "https://user:hunter2@example.com/x")
    with pytest.raises(InputError) as info:
        resolve_repo(open_project(demo_repo), None, GitHubSettings())
    assert "hunter2" not in str(info.value) and "not a GitHub OWNER/NAME URL" in str(info.value)


@pytest.mark.anyio
async def test_review_maps_failures_to_phases(demo_repo: Path, http: httpx.AsyncClient) -> None:
    git(demo_repo, "remote", "add", "origin", "https://github.com/octo/demo.git")
    async with FakeGitHub() as fake:
        client = GitHubClient(http, api_url=fake.url, token=Token("ghp_ci", "TEST"))
        result = await review_ci_failures(open_project(demo_repo), client, limit=5)
    assert result.repo == "octo/demo" and result.branch == "main"
    assert [r.id for r in result.runs] == [103, 101]
    run = result.runs[0]
    assert [j.name for j in run.failed_jobs] == ["integration (go)", "integration (python)"]
    go_job = run.failed_jobs[0]
    assert [s.name for s in go_job.failed_steps] == ["Run integration tests"]
    by_name = {t.name: t for t in go_job.failing_tests}
    assert by_name["TestAPIClientDefaultBranch"].phases[0] == "api-client"
    assert by_name["TestConcurrentSync"].kind == "data-race" and by_name["TestConcurrentSync"].phases[0] == "race"
    assert by_name["TestNetworkEdgeCases/retry_after_503"].kind == "panic"
    assert "all" in by_name["TestAPIClientDefaultBranch"].phases
    py = run.failed_jobs[1].failing_tests[0]
    assert (py.name, py.phases, py.message) == (
        "test_default_branch_is_main",
        ["python-integration"],
        "AssertionError: assert 'master' == 'main'",
    )
    hits = {h.phase: h.tests for h in result.phases}
    assert hits["race"] == ["TestConcurrentSync"] and hits["python-integration"] == ["test_default_branch_is_main"]
    assert result.runs[1].failed_jobs[0].failing_tests == []
    text = render_ci(result)
    assert "TestConcurrentSync  → race, all" in text and "phases hit:" in text


@pytest.mark.anyio
async def test_recent_integration_failures_keeps_only_integration_jobs(
    demo_repo: Path, http: httpx.AsyncClient
) -> None:
    git(demo_repo, "remote", "add", "origin", "https://github.com/octo/demo.git")
    async with FakeGitHub() as fake:
        client = GitHubClient(http, api_url=fake.url, token=Token("ghp_ci", "TEST"))
        result = await recent_integration_failures(open_project(demo_repo), client, branch="feature", limit=3)
        assert [r.id for r in result.runs] == [201]
        main = await recent_integration_failures(open_project(demo_repo), client, branch="main", limit=5)
    assert [r.id for r in main.runs] == [103], "the Nightly build-only failure is not an integration failure"
    assert all(j.integration for r in main.runs for j in r.failed_jobs)


@pytest.mark.anyio
async def test_without_token_logs_are_noted_not_fatal(make_repo: Callable[..., Path], http: httpx.AsyncClient) -> None:
    project = open_project(make_repo({"itest.toml": '[github]\nrepo = "octo/demo"\n'}))
    async with FakeGitHub() as fake:
        client = GitHubClient(http, api_url=fake.url, token=None)
        result = await review_ci_failures(project, client, branch="main")
    assert result.repo_source == "[github] repo" and not result.token.found
    assert any("no GitHub token" in n for n in result.notes)
    notes = [j.log.note for r in result.runs for j in r.failed_jobs]
    assert notes and all(n and "actions:read" in n for n in notes)


@pytest.mark.anyio
async def test_no_failed_runs(demo_repo: Path, http: httpx.AsyncClient) -> None:
    async with FakeGitHub() as fake:
        client = GitHubClient(http, api_url=fake.url, token=Token("ghp_ci", "TEST"))
        result = await review_ci_failures(open_project(demo_repo), client, branch="nope", repo="octo/demo")
    assert result.runs == [] and result.notes == ["no failed workflow runs on branch 'nope' of octo/demo"]


@pytest.mark.anyio
async def test_limit_out_of_range(demo_repo: Path, http: httpx.AsyncClient) -> None:
    client = GitHubClient(http, api_url="http://127.0.0.1:9", token=None)
    with pytest.raises(InputError, match="limit 0 is out of range"):
        await review_ci_failures(open_project(demo_repo), client, limit=0, repo="octo/demo")
