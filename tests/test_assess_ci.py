"""assess_changes lists the branch's recent failed CI integration runs when a token is available."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import commit_all, git
from mcp import Client

from itest_mcp.server.app import create_app
from itest_mcp.tools.assess_ci import attach_ci_failures
from itest_mcp.tools.changes import assess_changes
from itest_mcp.tools.fake_github import FakeGitHub
from itest_mcp.tools.repo import open_project


def _feature_branch(demo_repo: Path) -> Path:
    git(demo_repo, "remote", "add", "origin", "https://github.com/octo/demo.git")
    git(demo_repo, "checkout", "-q", "-b", "feature")
    client = demo_repo / "internal" / "ghclient" / "client.go"
    client.write_text(client.read_text() + "\n// retry budget tweak\n")
    commit_all(demo_repo, "tweak")
    return demo_repo


@pytest.mark.anyio
async def test_failed_integration_runs_are_attached_with_their_tests(demo_repo: Path):
    project = open_project(_feature_branch(demo_repo))
    assessment = assess_changes(project, "main", import_graph=False)
    async with FakeGitHub() as fake:
        env = {"GITHUB_API_URL": fake.url, "GITHUB_TOKEN": "ghp_assesscanary", "PATH": "/nonexistent"}
        result = await attach_ci_failures(project, assessment, branch="feature", env=env, api_url=fake.url)
    assert result.ci_failures, result.notes
    assert all(f.branch == "feature" for f in result.ci_failures)
    tests = [t for f in result.ci_failures for t in f.failing_tests]
    assert tests and all(":" in t for t in tests)
    assert "ghp_assesscanary" not in result.model_dump_json()


@pytest.mark.anyio
async def test_without_token_the_assessment_says_why(demo_repo: Path):
    project = open_project(_feature_branch(demo_repo))
    assessment = assess_changes(project, "main", import_graph=False)
    result = await attach_ci_failures(project, assessment, env={"PATH": "/nonexistent"})
    assert result.ci_failures is None
    assert any(n.startswith("CI failures not looked up: no GitHub token") for n in result.notes)
    assert result.recommended == assessment.recommended


@pytest.mark.anyio
async def test_mcp_tool_with_and_without_ci(demo_repo: Path, monkeypatch: pytest.MonkeyPatch):
    _feature_branch(demo_repo)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin:/usr/local/bin:/usr/local/go/bin")
    async with Client(create_app(demo_repo)) as client:
        with_ci = await client.call_tool("assess_changes", {"base": "main", "import_graph": False})
        without = await client.call_tool(
            "assess_changes", {"base": "main", "import_graph": False, "ci_failures": False}
        )
    assert not with_ci.is_error and not without.is_error
    assert any("CI failures not looked up" in n for n in with_ci.structured_content["notes"])
    assert not any("CI failures" in n for n in without.structured_content["notes"])


@pytest.mark.anyio
async def test_the_latest_assessment_is_kept_for_the_report(demo_repo: Path):
    from itest_mcp.tools.results_store import load_latest

    _feature_branch(demo_repo)
    async with Client(create_app(demo_repo)) as client:
        args = {"base": "main", "import_graph": False, "ci_failures": False}
        result = await client.call_tool("assess_changes", args)
    kept = load_latest(open_project(demo_repo), "assess")
    assert kept is not None
    assert kept["summary"] == result.structured_content["summary"]
