"""`validate_github_api` and `review_ci_failures` (MCP and CLI), and `itest-mcp fake-github`."""

from __future__ import annotations

import argparse
import sys
from typing import Annotated

import anyio
from mcp.server import MCPServer
from pydantic import Field

from itest_mcp.server.errors import tool_errors
from itest_mcp.server.latest import remember
from itest_mcp.server.state import ServerState
from itest_mcp.tools.ci_failures import CiFailures
from itest_mcp.tools.github_validate import GitHubValidation
from itest_mcp.tools.repo import Project


def register(app: MCPServer, state: ServerState) -> None:
    @app.tool(name="validate_github_api", title="Validate GitHub API access")
    async def validate_github_api_tool(
        repos: Annotated[
            list[str] | None,
            Field(description="OWNER/NAME repositories to check access to (default: [github] repos in itest.toml)"),
        ] = None,
        api_url: Annotated[
            str | None,
            Field(description="API base URL (default: GITHUB_API_URL, [github] api_url, https://api.github.com)"),
        ] = None,
        handling_check: Annotated[
            bool, Field(description="also run our client against a local fake GitHub's failure scenarios (~3 s)")
        ] = True,
        timeout_s: Annotated[
            float | None, Field(description="seconds the whole check may take, waits included", gt=0, le=3600)
        ] = None,
    ) -> GitHubValidation:
        """Check GitHub API reachability, TLS, latency, token kind, identity, scopes, repo access, rate limits and retry handling."""  # noqa: E501
        with tool_errors():
            return await _validate(
                state.project(), repos=repos, api_url=api_url, handling_check=handling_check, timeout_s=timeout_s
            )

    @app.tool(name="review_ci_failures", title="Review CI failures")
    async def review_ci_failures_tool(
        branch: Annotated[
            str | None, Field(description="branch whose failed runs to review (default: the checked-out branch)")
        ] = None,
        limit: Annotated[int, Field(description="how many recent failed runs", ge=1, le=50)] = 5,
        repo_name: Annotated[
            str | None,
            Field(description="OWNER/NAME on GitHub (default: [github] repo, then the origin remote)"),
        ] = None,
        timeout_s: Annotated[
            float | None, Field(description="seconds the review may take, waits included", gt=0, le=3600)
        ] = None,
    ) -> CiFailures:
        """List recent failed GitHub Actions runs with failed jobs, steps and failing tests mapped to our phases."""
        with tool_errors():
            return await _review(state.project(), branch=branch, limit=limit, repo=repo_name, timeout_s=timeout_s)


async def _validate(
    project: Project, *, repos: list[str] | None, api_url: str | None, handling_check: bool, timeout_s: float | None
) -> GitHubValidation:
    """Validate GitHub access and keep the result for build_report (both edges go through here)."""
    from itest_mcp.tools.github_validate import validate_github_api

    result = await validate_github_api(
        project, repos=repos, api_url=api_url, handling_check=handling_check, timeout_s=timeout_s
    )
    remember(project, "github", result)
    return result


async def _review(
    project: Project, *, branch: str | None, limit: int, repo: str | None, timeout_s: float | None
) -> CiFailures:
    from itest_mcp.tools.ci_failures import review_ci_failures
    from itest_mcp.tools.github import github_session

    async with github_session(project, timeout_s=timeout_s) as session:
        return await review_ci_failures(
            project,
            session.client,
            branch=branch,
            limit=limit,
            repo=repo,
            settings=session.settings,
            deadline=session.deadline,
            api_url_source=session.api_url_source,
        )


def add_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gh = sub.add_parser(
        "github",
        help="validate GitHub API access (token, scopes, repos, rate limits, retry handling)",
        description="Validate GitHub API access. Note: the global --repo is the project folder; "
        "give GitHub repositories with --repo-name OWNER/NAME.",
    )
    gh.add_argument(
        "--repo-name",
        action="append",
        default=[],
        metavar="OWNER/NAME",
        help="a GitHub repository to check access to (repeatable; --repo is the project folder)",
    )
    gh.add_argument("--api-url", default=None, help="API base URL (default: GITHUB_API_URL or [github] api_url)")
    gh.add_argument("--no-handling-check", action="store_true", help="skip the retry-handling check")
    gh.add_argument("--timeout", type=float, default=None, help="seconds the check may take, waits included")
    gh.add_argument("--json", action="store_true", help="print the model as JSON")
    gh.set_defaults(handler=_cli_github)

    ci = sub.add_parser(
        "ci",
        help="review recent failed GitHub Actions runs and the failing tests in their logs",
        description="Review recent failed GitHub Actions runs. OWNER/NAME comes from --repo-name, "
        "[github] repo, or the origin remote (the global --repo is the project folder).",
    )
    ci.add_argument("--branch", default=None, help="branch (default: the checked-out branch)")
    ci.add_argument("--limit", type=int, default=5, help="how many recent failed runs (1-50, default 5)")
    ci.add_argument("--repo-name", default=None, metavar="OWNER/NAME", help="the GitHub repository")
    ci.add_argument("--timeout", type=float, default=None, help="seconds the review may take, waits included")
    ci.add_argument("--json", action="store_true", help="print the model as JSON")
    ci.set_defaults(handler=_cli_ci)

    fake = sub.add_parser(
        "fake-github",
        help="serve a fake GitHub API on 127.0.0.1 for your own integration tests (foreground)",
        description="Serve a fake GitHub REST API on 127.0.0.1 until interrupted. A token ending in "
        "'__<scenario>' (e.g. ghp_x__secondary-429) selects that scenario for its requests.",
    )
    fake.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one, printed)")
    fake.add_argument("--scenario", default="ok", help="default scenario; see --list-scenarios")
    fake.add_argument("--seed", type=int, default=0, help="seed of the flaky-5xx schedule")
    fake.add_argument("--retry-after", type=int, default=1, help="retry-after / reset seconds the fake sends")
    fake.add_argument("--list-scenarios", action="store_true", help="print the scenarios and exit")
    fake.set_defaults(handler=_cli_fake, needs_project=False)


def _cli_github(args: argparse.Namespace, project: Project) -> int:
    from itest_mcp.tools.github_validate import render_validation

    result = anyio.run(
        lambda: _validate(
            project,
            repos=args.repo_name,
            api_url=args.api_url,
            handling_check=not args.no_handling_check,
            timeout_s=args.timeout,
        )
    )
    print(result.model_dump_json(indent=2) if args.json else render_validation(result))
    return 0 if result.ok else 1


def _cli_ci(args: argparse.Namespace, project: Project) -> int:
    from itest_mcp.tools.ci_failures import render_ci

    result = anyio.run(
        lambda: _review(project, branch=args.branch, limit=args.limit, repo=args.repo_name, timeout_s=args.timeout)
    )
    print(result.model_dump_json(indent=2) if args.json else render_ci(result))
    return 0


def _cli_fake(args: argparse.Namespace, project: Project | None) -> int:
    from itest_mcp.tools.errors import InputError
    from itest_mcp.tools.fake_github import SCENARIOS, FakeGitHub

    del project
    if args.list_scenarios:
        for name, what in SCENARIOS.items():
            print(f"{name:26} {what}")
        return 0
    if args.scenario not in SCENARIOS:
        raise InputError(f"unknown scenario {args.scenario!r}; known: {', '.join(SCENARIOS)}")
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port} is not a port number (0-65535)")
    fake = FakeGitHub(
        args.scenario, seed=args.seed, port=args.port, retry_after_s=args.retry_after, reset_s=args.retry_after
    )

    def ready(url: str) -> None:
        print(f"fake GitHub on {url} (scenario {args.scenario}); Ctrl-C stops it", flush=True)
        print(f"  export GITHUB_API_URL={url}", flush=True)

    try:
        fake.serve_forever(on_ready=ready)
    except OSError as exc:
        print(f"itest-mcp: error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0
