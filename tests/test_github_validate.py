"""validate_github_api against the fake: token kinds, identity, scopes, repos, rate limits, the handling check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from itest_mcp.tools.fake_github import FakeGitHub
from itest_mcp.tools.github import TokenKind
from itest_mcp.tools.github_validate import render_validation, run_handling_check, validate_github_api
from itest_mcp.tools.repo import Project, open_project


@pytest.fixture
def project(make_repo: Callable[..., Path]) -> Project:
    return open_project(make_repo({"itest.toml": '[github]\nrepos = ["octo/demo"]\n'}))


@pytest.mark.anyio
async def test_classic_token_full_report(project: Project, tmp_path: Path) -> None:
    async with FakeGitHub() as fake:
        env = {"GITHUB_API_URL": fake.url, "GITHUB_TOKEN": "ghp_valid", "PATH": str(tmp_path)}
        result = await validate_github_api(project, env=env, handling_check=False)
    assert result.ok, result.problems
    assert result.api.reachable and result.api.is_github and result.api.status == 200
    assert result.api.latency_ms is not None and result.api.latency_ms < 500
    assert result.api.tls.startswith("not used (plain http")
    assert result.token.kind is TokenKind.CLASSIC and result.token.source == "GITHUB_TOKEN"
    assert result.identity is not None and result.identity.login == "octocat"
    assert result.scopes == ["repo", "workflow"]
    (repo,) = result.repos
    assert repo.repo == "octo/demo" and repo.accessible and repo.permissions["push"] and repo.actions_readable
    assert [r.resource for r in result.rate_limits] == ["core", "search", "graphql"]
    assert result.rate_limits[0].limit == 5000 and result.rate_limits[0].reset_in_s > 3000
    text = render_validation(result)
    assert "classic personal access token from GITHUB_TOKEN" in text and "result: ok" in text


@pytest.mark.anyio
async def test_without_a_token_reports_unauthenticated_limits(project: Project, tmp_path: Path) -> None:
    async with FakeGitHub() as fake:
        env = {"GITHUB_API_URL": fake.url, "PATH": str(tmp_path)}
        result = await validate_github_api(project, env=env, handling_check=False)
    assert not result.token.found and result.identity is None
    assert result.token_tried[-1] == "gh: not on PATH"
    assert result.rate_limits[0].resource == "core" and result.rate_limits[0].limit == 60
    assert any("no GitHub token found" in p and "60 core requests per hour" in p for p in result.problems)
    assert result.repos[0].accessible and result.repos[0].permissions == {}


@pytest.mark.anyio
async def test_fine_grained_token_has_no_scopes(project: Project) -> None:
    async with FakeGitHub() as fake:
        env = {"GITHUB_API_URL": fake.url, "GITHUB_TOKEN": "github_pat_11ABC_xyz"}
        result = await validate_github_api(project, env=env, handling_check=False)
    assert result.token.kind is TokenKind.FINE_GRAINED and result.scopes is None
    assert result.scopes_note is not None and "no OAuth scopes" in result.scopes_note


@pytest.mark.anyio
async def test_app_installation_token(project: Project) -> None:
    async with FakeGitHub() as fake:
        env = {"GITHUB_API_URL": fake.url, "GITHUB_TOKEN": "ghs_installation"}
        result = await validate_github_api(project, env=env, handling_check=False)
    assert result.ok, result.problems
    assert result.identity is not None and result.identity.type == "app installation"
    assert result.identity.installation_repos == 1


@pytest.mark.anyio
async def test_bad_token_and_invisible_repo(project: Project) -> None:
    async with FakeGitHub() as fake:
        fake.add_token("ghp_norepo", repos=set())
        env = {"GITHUB_API_URL": fake.url, "GITHUB_TOKEN": "ghp_norepo"}
        result = await validate_github_api(project, env=env, handling_check=False)
        assert not result.repos[0].accessible and result.repos[0].status == 404
        assert any("octo/demo" in p and "cannot see it" in p for p in result.problems)
        env["GITHUB_TOKEN"] = "ghp_revoked__bad-token"
        result = await validate_github_api(project, env=env, handling_check=False)
    assert result.identity is not None and result.identity.error is not None
    assert "401 Bad credentials" in result.identity.error and "gh auth login" in result.identity.error


@pytest.mark.anyio
async def test_unreachable_api(project: Project) -> None:
    result = await validate_github_api(
        project,
        env={"GITHUB_API_URL": "http://127.0.0.1:9", "GITHUB_TOKEN": "ghp_x"},
        handling_check=False,
        timeout_s=3,
    )
    assert not result.ok and not result.api.reachable
    assert result.api.error is not None and "/rate_limit" in result.api.error


@pytest.mark.anyio
async def test_handling_check_passes_every_scenario() -> None:
    cases = await run_handling_check()
    failed = [(c.scenario, c.detail) for c in cases if not c.passed]
    assert failed == []
    by_name = {c.scenario: c for c in cases}
    assert by_name["secondary-retry-after"].waited_s == pytest.approx(1.0, abs=0.06)
    assert by_name["bad-token"].attempts == 1 and not by_name["bad-token"].retried
    assert by_name["drop"].classified_as == "connection-error" and by_name["drop"].retried
    deadline = by_name["deadline shorter than retry-after (secondary-429)"]
    assert "failed fast" in deadline.detail and deadline.waited_s == 0
    assert len(cases) == 16
