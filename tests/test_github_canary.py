"""A canary token is planted and searched for in every output: results, logs, exceptions, MCP and CLI."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import git
from mcp import Client

from itest_mcp.server.app import create_app
from itest_mcp.tools.ci_failures import review_ci_failures
from itest_mcp.tools.errors import ItestError
from itest_mcp.tools.fake_github import FakeGitHub, TokenSpec
from itest_mcp.tools.github import GitHubClient, RetryPolicy, Token
from itest_mcp.tools.github_validate import validate_github_api
from itest_mcp.tools.repo import open_project

CANARY = "ghp_CANARY7f3e9d2c1b0a99887766554433221100"


def _all_text(exc: BaseException) -> str:
    parts = []
    seen: BaseException | None = exc
    while seen is not None:
        parts += [str(seen), repr(seen), *(str(a) for a in seen.args)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


@pytest.mark.anyio
async def test_canary_never_leaves(demo_repo: Path, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    git(demo_repo, "remote", "add", "origin", "https://github.com/octo/demo.git")
    project = open_project(demo_repo)
    outputs: list[str] = []
    async with FakeGitHub() as fake:
        # A CI log that printed the token (it happens): the review must scrub it.
        fake.set_log(1032, f"--- FAIL: TestLeak (0.00s)\n    leak_test.go:1: token is {CANARY}\n")
        env = {"GITHUB_API_URL": fake.url, "GITHUB_TOKEN": CANARY, "PATH": str(tmp_path)}
        result = await validate_github_api(project, repos=["octo/demo", "octo/missing"], env=env)
        outputs += [result.model_dump_json(), repr(result)]
        assert result.token.found and not result.ok  # octo/missing is a problem, with a message

        async with httpx.AsyncClient(trust_env=False) as http:
            client = GitHubClient(http, api_url=fake.url, token=Token(CANARY, "GITHUB_TOKEN"))
            review = await review_ci_failures(project, client, branch="main")
            outputs.append(review.model_dump_json())
            assert any(t.name == "TestLeak" for r in review.runs for j in r.failed_jobs for t in j.failing_tests)

            # Every failure path: 401, 403, 404, exhausted retries, a refused wait.
            for scenario, path, retry_after in [
                ("bad-token", "/user", 1),
                ("forbidden", "/repos/octo/demo", 1),
                ("not-found", "/repos/octo/demo", 1),
                ("server-error", "/user", 1),
                ("secondary-429", "/user", 30),
            ]:
                fake.set_scenario("ok")
                fake.retry_after_s = retry_after
                fake.fail_times = 5
                fake.add_token(CANARY, TokenSpec(scenario=scenario))
                failing = GitHubClient(
                    http, api_url=fake.url, token=Token(CANARY, "GITHUB_TOKEN"), policy=RetryPolicy(max_attempts=2)
                )
                with pytest.raises(ItestError) as info:
                    await failing.get_json(path, deadline=failing.deadline_in(3))
                outputs.append(_all_text(info.value))
                outputs.append(repr(failing.waits))

    outputs.append(caplog.text)
    outputs += [r.getMessage() + repr(r.args) for r in caplog.records]
    assert caplog.records, "the client should have logged something to search"
    for text in outputs:
        assert CANARY not in text
        assert CANARY[4:] not in text


@pytest.mark.anyio
async def test_canary_over_mcp(demo_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git(demo_repo, "remote", "add", "origin", "https://github.com/octo/demo.git")
    async with FakeGitHub() as fake:
        fake.set_log(1033, f"FAILED tests/integration/test_x.py::test_y - {CANARY}\n")
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        monkeypatch.setenv("GITHUB_TOKEN", CANARY)
        async with Client(create_app(demo_repo)) as client:
            validated = await client.call_tool("validate_github_api", {"handling_check": False})
            reviewed = await client.call_tool("review_ci_failures", {"branch": "main"})
            fake.add_token(CANARY, scenario="bad-token")
            failed = await client.call_tool("review_ci_failures", {"branch": "main"})
    assert not validated.is_error and not reviewed.is_error and failed.is_error
    for result in (validated, reviewed, failed):
        assert CANARY not in str(result.structured_content) + str(result.content)
    assert "401 Bad credentials" in str(failed.content)


def test_canary_in_cli_output(demo_repo: Path, tmp_path: Path) -> None:
    git(demo_repo, "remote", "add", "origin", "https://github.com/octo/demo.git")
    with FakeGitHub() as fake:
        fake.set_log(1032, f"--- FAIL: TestLeak (0.00s)\n    leak_test.go:1: {CANARY}\n")
        env = {**os.environ, "GITHUB_API_URL": fake.url, "GITHUB_TOKEN": CANARY, "PATH": os.environ["PATH"]}
        runs = [
            ["github", "--json", "--no-handling-check", "--repo-name", "octo/demo", "--repo-name", "octo/nope"],
            ["ci", "--branch", "main"],
        ]
        outputs = []
        for args in runs:
            proc = subprocess.run(
                [sys.executable, "-m", "itest_mcp.server", "-v", "--repo", str(demo_repo), *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            outputs.append((args, proc.returncode, proc.stdout, proc.stderr))
        fake.add_token(CANARY, scenario="bad-token")
        proc = subprocess.run(
            [sys.executable, "-m", "itest_mcp.server", "-v", "--repo", str(demo_repo), "ci"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        outputs.append((["ci", "bad-token"], proc.returncode, proc.stdout, proc.stderr))
    codes = [code for _, code, _, _ in outputs]
    assert codes == [1, 0, 2], outputs
    assert '"login": "octocat"' in outputs[0][2]
    assert "TestLeak" in outputs[1][2] and "401 Bad credentials" in outputs[2][3]
    assert any("DEBUG" in err for _, _, _, err in outputs), "run with -v so debug logs are searched too"
    for _args, _code, out, err in outputs:
        assert CANARY not in out and CANARY not in err
