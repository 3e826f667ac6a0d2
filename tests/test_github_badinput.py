"""Bad input, each with the message it must give: API URLs, HTML servers, repo names, redirects, huge logs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from itest_mcp.tools.ci_failures import review_ci_failures
from itest_mcp.tools.errors import ConfigError, GitHubError, InputError
from itest_mcp.tools.fake_github import FakeGitHub, demo_go_log
from itest_mcp.tools.github import (
    GitHubClient,
    GitHubSettings,
    Token,
    check_api_url,
    load_github_settings,
    parse_repo_name,
    resolve_api_url,
)
from itest_mcp.tools.github_validate import validate_github_api
from itest_mcp.tools.repo import open_project


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.mark.parametrize("url", ["ftp://api.github.com", "file:///etc/passwd", "api.github.com", "https://"])
def test_api_url_must_be_http(url: str) -> None:
    with pytest.raises(InputError) as info:
        check_api_url(url, "GITHUB_API_URL")
    message = str(info.value)
    assert "GITHUB_API_URL" in message and repr(url) in message and "https://HOST/api/v3" in message


def test_api_url_with_credentials_is_refused_without_repeating_them() -> None:
    with pytest.raises(InputError) as info:
        check_api_url("https://user:s3cret@ghe.example.com/api/v3")
    assert "s3cret" not in str(info.value) and "credentials" in str(info.value)


def test_api_url_precedence() -> None:
    settings = GitHubSettings(api_url="https://ghe.example.com/api/v3/")
    assert resolve_api_url(None, settings, {}) == ("https://ghe.example.com/api/v3", "[github] api_url")
    env = {"GITHUB_API_URL": "https://other.example.com/api/v3"}
    assert resolve_api_url(None, settings, env)[1] == "GITHUB_API_URL"
    assert resolve_api_url("http://127.0.0.1:9", settings, env) == ("http://127.0.0.1:9", "argument")
    assert resolve_api_url(None, GitHubSettings(), {}) == ("https://api.github.com", "default")


def test_bad_api_url_in_config_names_the_file(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"itest.toml": '[github]\napi_url = "https://ghe.example.com/api/v3"\nmax_concurrency = 500\n'})
    with pytest.raises(ConfigError) as info:
        load_github_settings(open_project(repo))
    assert "itest.toml:3 [github.max_concurrency]" in str(info.value)


@pytest.mark.anyio
async def test_non_github_server_returning_html(make_repo: Callable[..., Path]) -> None:
    project = open_project(make_repo({"README.md": "x\n"}))
    async with FakeGitHub("html") as fake:
        result = await validate_github_api(
            project, env={"GITHUB_API_URL": fake.url, "GITHUB_TOKEN": "ghp_x"}, handling_check=False
        )
        assert not result.ok and not result.api.is_github
        assert any("HTML page" in p and "not a GitHub API server" in p and fake.url in p for p in result.problems)
        assert len(fake.requests) == 1, "an HTML answer is not retried"


@pytest.mark.anyio
async def test_get_json_on_html_says_so(http: httpx.AsyncClient) -> None:
    async with FakeGitHub("html") as fake:
        client = GitHubClient(http, api_url=fake.url, token=Token("ghp_x", "TEST"))
        with pytest.raises(GitHubError, match=r"answered GET /user with an HTML page \(status 200\)"):
            await client.get_json("/user")


@pytest.mark.parametrize("name", ["justaname", "a/b/c", "-x/y", "owner/", "/name", "own er/name", "o/.."])
def test_repo_name_must_be_owner_slash_name(name: str) -> None:
    with pytest.raises(InputError) as info:
        parse_repo_name(name)
    assert repr(name) in str(info.value) and "OWNER/NAME" in str(info.value)


def test_repo_name_accepts_git_suffix() -> None:
    assert parse_repo_name("octo-org/my.service.git") == "octo-org/my.service"


@pytest.mark.anyio
async def test_bad_repo_name_refused_before_any_request(make_repo: Callable[..., Path]) -> None:
    project = open_project(make_repo({"README.md": "x\n"}))
    async with FakeGitHub() as fake:
        with pytest.raises(InputError, match="'octo' is not OWNER/NAME"):
            await validate_github_api(project, repos=["octo"], env={"GITHUB_API_URL": fake.url})
        assert fake.requests == []


@pytest.mark.anyio
async def test_redirect_to_another_host_drops_authorization(http: httpx.AsyncClient) -> None:
    async with FakeGitHub("redirect-cross-host") as fake:
        client = GitHubClient(http, api_url=fake.url, token=Token("ghp_redirect", "TEST"))
        response = await client.request("GET", "/repos/octo/demo")
    assert response.status == 200 and response.auth_dropped
    first, second = fake.requests
    assert first.host.startswith("127.0.0.1") and first.authorization and first.status == 302
    assert second.host.startswith("localhost") and not second.authorization


@pytest.mark.anyio
async def test_same_host_keeps_authorization_and_blob_never_sees_it(http: httpx.AsyncClient) -> None:
    async with FakeGitHub() as fake:
        client = GitHubClient(http, api_url=fake.url, token=Token("ghp_logs", "TEST"))
        response = await client.request("GET", "/repos/octo/demo/actions/jobs/1032/logs", tail_bytes=4096)
    assert response.status == 206 and response.auth_dropped and not response.truncated
    api, blob = fake.requests
    assert api.authorization and api.status == 302
    assert blob.path.startswith("/_blobs/") and not blob.authorization and blob.status == 206


def _big_log(size: int) -> str:
    filler = "2024-05-01T10:00:00.0000000Z ok  \texample.com/demo/pkg/" + "x" * 60 + "\t0.01s\n"
    return filler * (size // len(filler)) + demo_go_log()


@pytest.mark.anyio
@pytest.mark.parametrize("honour_range", [True, False])
async def test_ten_megabyte_log_is_bounded(http: httpx.AsyncClient, honour_range: bool) -> None:
    """Range (tail first) when the blob store honours it; a bounded streaming tail when it does not."""
    async with FakeGitHub(honour_range=honour_range) as fake:
        fake.set_log(1032, _big_log(10 * 1024 * 1024))
        client = GitHubClient(http, api_url=fake.url, token=Token("ghp_big", "TEST"))
        response = await client.request(
            "GET", "/repos/octo/demo/actions/jobs/1032/logs", tail_bytes=64 * 1024, stream_cap=64 * 1024 * 1024
        )
    assert len(response.body) <= 64 * 1024
    assert response.truncated and response.total_size is not None and response.total_size > 10 * 1024 * 1024
    assert b"--- FAIL: TestAPIClientDefaultBranch" in response.body
    blob = fake.requests[-1]
    assert blob.range == "bytes=-65536"
    assert blob.status == (206 if honour_range else 200)


@pytest.mark.anyio
async def test_review_with_a_ten_megabyte_log_stays_small(demo_repo: Path, http: httpx.AsyncClient) -> None:
    async with FakeGitHub() as fake:
        fake.set_log(1032, _big_log(10 * 1024 * 1024))
        client = GitHubClient(http, api_url=fake.url, token=Token("ghp_big", "TEST"))
        result = await review_ci_failures(open_project(demo_repo), client, branch="main", repo="octo/demo")
    job = next(j for r in result.runs for j in r.failed_jobs if j.id == 1032)
    assert job.log.truncated and job.log.bytes_read <= 256 * 1024
    assert job.log.note is not None and "only the last" in job.log.note
    assert {t.name for t in job.failing_tests} >= {"TestAPIClientDefaultBranch", "TestConcurrentSync"}
    assert len(result.model_dump_json()) < 30_000


@pytest.mark.anyio
async def test_branch_that_looks_like_a_flag(demo_repo: Path, http: httpx.AsyncClient) -> None:
    async with FakeGitHub() as fake:
        client = GitHubClient(http, api_url=fake.url, token=Token("ghp_x", "TEST"))
        with pytest.raises(InputError, match="branch '--all' starts with '-'"):
            await review_ci_failures(open_project(demo_repo), client, branch="--all", repo="octo/demo")
        with pytest.raises(InputError, match="not a valid git branch name"):
            await review_ci_failures(open_project(demo_repo), client, branch="a..b", repo="octo/demo")
        assert fake.requests == []
