"""The MCP tools and CLI subcommands of the GitHub area, and `itest-mcp fake-github` as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import git
from mcp import Client

from itest_mcp.server.app import create_app
from itest_mcp.server.cli import main
from itest_mcp.tools.fake_github import FakeGitHub


@pytest.mark.anyio
async def test_mcp_tools(demo_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git(demo_repo, "remote", "add", "origin", "git@github.com:octo/demo.git")
    async with FakeGitHub() as fake:
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        monkeypatch.setenv("GITHUB_TOKEN", "ghp_mcp")
        async with Client(create_app(demo_repo)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert {"validate_github_api", "review_ci_failures"} <= set(tools)
            assert tools["review_ci_failures"].output_schema is not None
            validated = await client.call_tool("validate_github_api", {"repos": ["octo/demo"], "handling_check": False})
            reviewed = await client.call_tool("review_ci_failures", {"branch": "main", "limit": 2})
            bad = await client.call_tool("validate_github_api", {"repos": ["not-a-repo"]})
    assert not validated.is_error and validated.structured_content["ok"] is True
    assert validated.structured_content["token"]["kind"] == "classic personal access token"
    assert not reviewed.is_error and reviewed.structured_content["repo"] == "octo/demo"
    assert [r["id"] for r in reviewed.structured_content["runs"]] == [103, 101]
    assert bad.is_error and "'not-a-repo' is not OWNER/NAME" in str(bad.content)


def test_cli_ci_text_and_json(
    demo_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeGitHub() as fake:
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        monkeypatch.setenv("GITHUB_TOKEN", "ghp_cli")
        assert main(["--repo", str(demo_repo), "ci", "--repo-name", "octo/demo", "--branch", "main"]) == 0
        text = capsys.readouterr().out
        assert "run 103 #3 CI [main]" in text and "TestConcurrentSync  → race" in text
        assert main(["--repo", str(demo_repo), "ci", "--repo-name", "octo/demo", "--json", "--limit", "1"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert len(data["runs"]) == 1 and data["branch"] == "main"
        assert main(["--repo", str(demo_repo), "ci", "--repo-name", "octo"]) == 2
        assert "'octo' is not OWNER/NAME" in capsys.readouterr().err
        monkeypatch.setenv("GITHUB_API_URL", "ftp://example.com")
        assert main(["--repo", str(demo_repo), "github", "--no-handling-check"]) == 2
        assert "GITHUB_API_URL 'ftp://example.com' is not an http(s) URL" in capsys.readouterr().err


def test_cli_github_help_explains_repo_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["github", "--help"])
    out = capsys.readouterr().out
    assert "--repo-name OWNER/NAME" in out and "--repo is the project folder" in out


def test_fake_github_cli_serves_in_the_foreground(demo_repo: Path) -> None:
    argv = [sys.executable, "-m", "itest_mcp.server", "--repo", str(demo_repo), "fake-github", "--scenario", "html"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ}) as proc:
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            assert line.startswith("fake GitHub on http://127.0.0.1:"), line
            url = line.split()[3]
            response = httpx.get(url + "/user", timeout=5)
            assert response.status_code == 200 and "text/html" in response.headers["content-type"]
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=10)
    assert proc.returncode == 130


def test_fake_github_cli_refuses_unknown_scenario(demo_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--repo", str(demo_repo), "fake-github", "--scenario", "nope"]) == 2
    assert "unknown scenario 'nope'" in capsys.readouterr().err
