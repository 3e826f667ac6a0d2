"""`validate_github_api`: can this machine use the GitHub API the way the code under test needs?

Reports reachability, TLS and latency; the token (source and kind from its prefix,
never its value); the user or app behind it; OAuth scopes; access and permissions
per repository; rate limits per resource with reset times; and a handling check
that runs our own client against the fake GitHub's failure scenarios on
127.0.0.1 and reports, per scenario, how the response was classified, whether it
was retried and how long the client waited.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import anyio
from pydantic import Field

from .errors import GitHubError, ItestError
from .github import (
    Classification,
    GitHubClient,
    GitHubResponse,
    RetryPolicy,
    Token,
    TokenInfo,
    TokenKind,
    WaitRecord,
    github_session,
    parse_repo_name,
    token_info,
)
from .models import Model
from .repo import Project

LATENCY_SAMPLES = 3
PRIMARY_RESOURCES = ("core", "search", "graphql")


class ApiCheck(Model):
    """Reachability of the API base URL."""

    url: str
    source: str
    reachable: bool = False
    is_github: bool = False
    status: int | None = None
    tls: str = ""
    latency_ms: float | None = None
    """Median of a few GET /rate_limit round trips (that endpoint costs no quota)."""
    api_version: str | None = None
    error: str | None = None


class Identity(Model):
    """Who the token authenticates as."""

    login: str | None = None
    type: str | None = None
    """"User", "Bot", or "app installation"."""
    installation_repos: int | None = None
    error: str | None = None


class RepoAccess(Model):
    """What the token may do on one repository."""

    repo: str
    accessible: bool
    status: int | None = None
    private: bool | None = None
    default_branch: str | None = None
    permissions: dict[str, bool] = Field(default_factory=dict)
    actions_readable: bool | None = None
    """Whether workflow runs can be listed (review_ci_failures needs it)."""
    message: str = ""


class RateResource(Model):
    """One rate-limit resource."""

    resource: str
    limit: int
    remaining: int
    used: int
    reset_at: str
    """ISO 8601 UTC."""
    reset_in_s: float


class HandlingCase(Model):
    """How our client handled one of the fake GitHub's scenarios."""

    scenario: str
    expected: str
    classified_as: str
    attempts: int
    retried: bool
    waited_s: float
    wait_basis: str | None = None
    expected_wait_s: float | None = None
    passed: bool
    detail: str = ""


class GitHubValidation(Model):
    """Everything validate_github_api found; `problems` lists what needs fixing."""

    ok: bool
    api: ApiCheck
    token: TokenInfo
    token_tried: list[str] = Field(default_factory=list)
    identity: Identity | None = None
    scopes: list[str] | None = None
    scopes_note: str | None = None
    repos: list[RepoAccess] = Field(default_factory=list)
    rate_limits: list[RateResource] = Field(default_factory=list)
    handling: list[HandlingCase] = Field(default_factory=list)
    handling_note: str | None = None
    waits: list[WaitRecord] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


async def validate_github_api(
    project: Project,
    *,
    repos: list[str] | None = None,
    api_url: str | None = None,
    handling_check: bool = True,
    timeout_s: float | None = None,
    env: Mapping[str, str] | None = None,
    policy: RetryPolicy | None = None,
) -> GitHubValidation:
    """Check reachability, TLS, latency, token, identity, scopes, repo access, rate limits and failure handling."""
    wanted = [parse_repo_name(r) for r in repos or []]
    async with github_session(project, api_url=api_url, timeout_s=timeout_s, env=env, policy=policy) as session:
        client = session.client
        deadline = session.deadline
        if not wanted:
            wanted = list(session.settings.repos)
        result = GitHubValidation(
            ok=False,
            api=ApiCheck(url=client.api_url, source=session.api_url_source),
            token=token_info(client.token),
            token_tried=session.token_tried,
        )
        rate_body = await _check_api(client, result, deadline)
        if result.api.reachable and result.api.is_github:
            if rate_body is not None:
                result.rate_limits = _rate_resources(rate_body)
            if client.token is None:
                tried = "; ".join(session.token_tried)
                result.problems.append(
                    f"no GitHub token found (tried {tried}); unauthenticated clients get "
                    f"{_core_limit(result)} core requests per hour — set GITHUB_TOKEN or run `gh auth login`"
                )
            else:
                await _check_identity(client, result, deadline)
            for name in wanted:
                result.repos.append(await _check_repo(client, name, deadline))
        for access in result.repos:
            if not access.accessible:
                result.problems.append(f"repository {access.repo}: {access.message}")
        if handling_check:
            result.handling = await run_handling_check()
            result.handling_note = (
                "ran our client against the fake GitHub on 127.0.0.1 with waits scaled down "
                "(secondary-limit minimum 0.5 s instead of GitHub's 60 s, retry-after 1 s)"
            )
            for case in result.handling:
                if not case.passed:
                    result.problems.append(f"handling check {case.scenario}: {case.detail}")
        result.waits = list(client.waits)
        result.ok = not result.problems
        return result


async def _check_api(client: GitHubClient, result: GitHubValidation, deadline: float) -> dict[str, Any] | None:
    latencies: list[float] = []
    body: dict[str, Any] | None = None
    response: GitHubResponse | None = None
    for _ in range(LATENCY_SAMPLES):
        try:
            started = time.perf_counter()
            response = await client.request("GET", "/rate_limit", deadline=deadline)
            if response.attempts == 1:
                latencies.append((time.perf_counter() - started) * 1000)
        except ItestError as exc:
            result.api.error = str(exc)
            result.problems.append(f"the API at {client.api_url} is not usable: {exc}")
            return None
        if not response.ok:
            break
    assert response is not None
    api = result.api
    api.reachable = True
    api.status = response.status
    api.latency_ms = round(statistics.median(latencies), 2) if latencies else None
    api.api_version = response.headers.get("x-github-api-version-selected")
    if client.api_url.startswith("https://"):
        api.tls = response.tls_version or "https (version not reported)"
    else:
        api.tls = "not used (plain http: fine on loopback, never for a real token)"
        if not _is_loopback(client.api_url):
            result.problems.append(f"{client.api_url} is plain http: the token would cross the network unencrypted")
    if response.classification is Classification.NOT_GITHUB:
        api.error = client.error_for(response).args[0]
        result.problems.append(api.error)
        return None
    try:
        data = response.json()
    except ValueError:
        data = None
    api.is_github = isinstance(data, dict) and "resources" in data
    if not api.is_github:
        if response.ok or "x-github-request-id" not in response.headers:
            api.error = (
                f"{client.api_url}/rate_limit answered {response.status} without GitHub's rate-limit JSON; "
                "this does not look like a GitHub API (GitHub Enterprise Server: https://HOST/api/v3)"
            )
        else:
            api.is_github = True
            api.error = client.error_for(response).args[0]
        result.problems.append(api.error)
        return None
    body = data
    if client.token is not None and "x-oauth-scopes" in response.headers:
        result.scopes = [s.strip() for s in response.headers["x-oauth-scopes"].split(",") if s.strip()]
    return body


def _rate_resources(body: dict[str, Any]) -> list[RateResource]:
    resources = body.get("resources")
    if not isinstance(resources, dict):
        return []
    now = time.time()
    names = [n for n in PRIMARY_RESOURCES if n in resources] + sorted(
        n for n in resources if n not in PRIMARY_RESOURCES
    )
    out = []
    for name in names:
        item = resources[name]
        if not isinstance(item, dict):
            continue
        reset = float(item.get("reset", 0) or 0)
        out.append(
            RateResource(
                resource=name,
                limit=int(item.get("limit", 0)),
                remaining=int(item.get("remaining", 0)),
                used=int(item.get("used", 0)),
                reset_at=datetime.fromtimestamp(reset, UTC).isoformat(timespec="seconds"),
                reset_in_s=round(max(0.0, reset - now), 1),
            )
        )
    return out


def _core_limit(result: GitHubValidation) -> int:
    for item in result.rate_limits:
        if item.resource == "core":
            return item.limit
    return 60


async def _check_identity(client: GitHubClient, result: GitHubValidation, deadline: float) -> None:
    token = client.token
    assert token is not None
    if token.kind in (TokenKind.FINE_GRAINED, TokenKind.APP_INSTALLATION, TokenKind.USER_TO_SERVER):
        result.scopes_note = "fine-grained and GitHub App tokens carry no OAuth scopes; see per-repository access"
    elif result.scopes is None:
        result.scopes_note = "GitHub sent no x-oauth-scopes header"
    try:
        response = await client.request("GET", "/user", deadline=deadline)
    except GitHubError as exc:
        result.identity = Identity(error=str(exc))
        result.problems.append(f"identity not checked: {exc}")
        return
    if response.ok:
        data = response.json()
        result.identity = Identity(login=str(data.get("login")), type=str(data.get("type", "User")))
        if "x-oauth-scopes" in response.headers and result.scopes is None:
            result.scopes = [s.strip() for s in response.headers["x-oauth-scopes"].split(",") if s.strip()]
        return
    if response.status == 403 and token.kind is TokenKind.APP_INSTALLATION:
        try:
            data = await client.get_json("/installation/repositories", params={"per_page": 1}, deadline=deadline)
            count = int(data.get("total_count", 0)) if isinstance(data, dict) else None
            result.identity = Identity(type="app installation", installation_repos=count)
        except GitHubError as exc:
            result.identity = Identity(type="app installation", error=str(exc))
        return
    error = str(client.error_for(response))
    result.identity = Identity(error=error)
    result.problems.append(error)


async def _check_repo(client: GitHubClient, name: str, deadline: float) -> RepoAccess:
    try:
        response = await client.request("GET", f"/repos/{name}", deadline=deadline)
    except GitHubError as exc:
        return RepoAccess(repo=name, accessible=False, message=str(exc))
    if not response.ok:
        return RepoAccess(repo=name, accessible=False, status=response.status, message=str(client.error_for(response)))
    data = response.json()
    perms = data.get("permissions") if isinstance(data, dict) else None
    access = RepoAccess(
        repo=name,
        accessible=True,
        status=response.status,
        private=bool(data.get("private")) if isinstance(data, dict) else None,
        default_branch=data.get("default_branch") if isinstance(data, dict) else None,
        permissions={k: bool(v) for k, v in perms.items()} if isinstance(perms, dict) else {},
    )
    try:
        runs = await client.request("GET", f"/repos/{name}/actions/runs", params={"per_page": 1}, deadline=deadline)
        access.actions_readable = runs.ok
        if not runs.ok:
            access.message = f"workflow runs not readable ({runs.status}); review_ci_failures needs actions:read"
    except GitHubError as exc:
        access.message = f"workflow runs not checked: {exc}"
    return access


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


# -- the handling check -------------------------------------------------------------------------


class _Case(Model):
    scenario: str
    path: str
    expected: Classification
    retried: bool
    basis: str | None = None
    expected_wait_s: float | None = None
    deadline_s: float = 15.0
    token: str = ""


HANDLING_CASES: tuple[_Case, ...] = (
    _Case(scenario="ok", path="/user", expected=Classification.OK, retried=False),
    _Case(scenario="bad-token", path="/user", expected=Classification.AUTH, retried=False),
    _Case(scenario="forbidden", path="/repos/octo/demo", expected=Classification.FORBIDDEN, retried=False),
    _Case(scenario="not-found", path="/repos/octo/demo", expected=Classification.NOT_FOUND, retried=False),
    _Case(scenario="unprocessable", path="/repos/octo/demo", expected=Classification.VALIDATION, retried=False),
    _Case(
        scenario="primary-403",
        path="/user",
        expected=Classification.PRIMARY_RATE_LIMIT,
        retried=True,
        basis="x-ratelimit-reset",
    ),
    _Case(
        scenario="primary-429",
        path="/user",
        expected=Classification.PRIMARY_RATE_LIMIT,
        retried=True,
        basis="x-ratelimit-reset",
    ),
    _Case(
        scenario="secondary-retry-after",
        path="/user",
        expected=Classification.SECONDARY_RATE_LIMIT,
        retried=True,
        basis="retry-after",
        expected_wait_s=1.0,
    ),
    _Case(
        scenario="secondary-429",
        path="/user",
        expected=Classification.SECONDARY_RATE_LIMIT,
        retried=True,
        basis="retry-after",
        expected_wait_s=1.0,
    ),
    _Case(
        scenario="secondary-no-retry-after",
        path="/user",
        expected=Classification.SECONDARY_RATE_LIMIT,
        retried=True,
        basis="secondary-minimum",
        expected_wait_s=0.5,
    ),
    _Case(scenario="server-error", path="/user", expected=Classification.SERVER_ERROR, retried=True, basis="backoff"),
    _Case(scenario="drop", path="/user", expected=Classification.CONNECTION_ERROR, retried=True, basis="backoff"),
    _Case(scenario="slow", path="/user", expected=Classification.OK, retried=False),
    _Case(scenario="html", path="/user", expected=Classification.NOT_GITHUB, retried=False),
    _Case(scenario="redirect-cross-host", path="/repos/octo/demo", expected=Classification.OK, retried=False),
    _Case(
        scenario="secondary-429",
        path="/user",
        expected=Classification.SECONDARY_RATE_LIMIT,
        retried=False,
        deadline_s=0.5,
        token="ghp_itestdeadline__secondary-429",
    ),
)


def handling_policy() -> RetryPolicy:
    """The check's policy: GitHub's rules with the waits scaled down so the check takes seconds."""
    return RetryPolicy(
        max_attempts=4,
        secondary_min_wait_s=0.5,
        backoff_base_s=0.05,
        backoff_max_s=0.2,
        reset_margin_s=0.1,
        request_timeout_s=5.0,
        seed=7,
    )


async def run_handling_check(cases: tuple[_Case, ...] = HANDLING_CASES) -> list[HandlingCase]:
    """Run our client against each fake GitHub scenario (concurrently) and judge what it did."""
    import httpx

    from .fake_github import FakeGitHub

    results: list[HandlingCase | None] = [None] * len(cases)
    async with FakeGitHub("ok", seed=7, fail_times=1, retry_after_s=1, reset_s=1, slow_s=0.2) as fake:
        async with httpx.AsyncClient(trust_env=False) as http:

            async def one(index: int, case: _Case) -> None:
                results[index] = await _run_case(http, fake, case)

            async with anyio.create_task_group() as tg:
                for index, case in enumerate(cases):
                    tg.start_soon(one, index, case)
    return [r for r in results if r is not None]


async def _run_case(http: Any, fake: Any, case: _Case) -> HandlingCase:
    token_value = case.token or f"ghp_itestcheck__{case.scenario}"
    token = Token(token_value, "handling check")
    client = GitHubClient(http, api_url=fake.url, token=token, policy=handling_policy())
    token_id = hashlib.sha256(token_value.encode()).hexdigest()[:12]
    name = case.scenario if not case.token else f"deadline shorter than retry-after ({case.scenario})"
    expected = f"{case.expected.value}, " + ("retried" if case.retried else "not retried")
    if case.deadline_s < 1:
        expected = f"{case.expected.value}, fails at once (deadline {case.deadline_s} s < retry-after 1 s)"
    started = time.monotonic()
    try:
        response = await client.request("GET", case.path, deadline=client.deadline_in(case.deadline_s))
    except ItestError as exc:
        elapsed = time.monotonic() - started
        waits = client.waits
        classified = waits[0].reason.value if waits else "error"
        refused = bool(waits and waits[-1].refused)
        passed = case.deadline_s < 1 and refused and classified == case.expected.value and elapsed < 0.4
        return HandlingCase(
            scenario=name,
            expected=expected,
            classified_as=classified,
            attempts=len([w for w in waits if not w.refused]) + 1,
            retried=any(not w.refused for w in waits),
            waited_s=round(sum(w.waited_s for w in waits), 3),
            passed=passed,
            detail=(
                f"failed fast after {elapsed:.2f} s: {exc}"
                if passed
                else f"unexpected error after {elapsed:.2f} s: {type(exc).__name__}: {exc}"
            ),
        )
    elapsed = time.monotonic() - started
    waits = [w for w in response.waits if w.basis != "shared-block"]
    classified = waits[0].reason if waits else response.classification
    waited = round(sum(w.waited_s for w in response.waits), 3)
    problems: list[str] = []
    if classified is not case.expected:
        problems.append(f"classified as {classified.value}, expected {case.expected.value}")
    if case.deadline_s < 1:
        problems.append("the deadline was shorter than retry-after, but the request did not fail fast")
    if case.retried != (response.attempts > 1):
        problems.append(f"{'not ' if case.retried else ''}retried ({response.attempts} attempts)")
    if case.retried and not response.ok:
        problems.append(f"final status {response.status} after retrying")
    basis = waits[0].basis if waits else None
    if case.basis and basis != case.basis:
        problems.append(f"waited on {basis}, expected {case.basis}")
    if case.expected_wait_s is not None and waits:
        first = waits[0].waited_s
        if first < case.expected_wait_s or first > case.expected_wait_s * 1.05 + 0.05:
            problems.append(f"waited {first:.2f} s, expected {case.expected_wait_s:.2f} s")
    early = [r for r in fake.records() if r.token_id == token_id and r.early]
    if early:
        problems.append(f"{len(early)} retries came before the wait GitHub asked for")
    if case.scenario == "redirect-cross-host":
        leaked = [r for r in fake.records() if r.token_id != "anonymous" and r.host.startswith("localhost")]
        if leaked or not response.auth_dropped:
            problems.append("the Authorization header followed a redirect to another host")
    if case.scenario == "slow" and elapsed < 0.2:
        problems.append(f"answered in {elapsed:.2f} s, faster than the fake's delay")
    detail = "; ".join(problems) or f"final {response.status} after {response.attempts} attempt(s) in {elapsed:.2f} s"
    if case.scenario == "redirect-cross-host" and not problems:
        detail += "; Authorization withheld from the other host"
    return HandlingCase(
        scenario=name,
        expected=expected,
        classified_as=classified.value,
        attempts=response.attempts,
        retried=response.attempts > 1,
        waited_s=waited,
        wait_basis=basis,
        expected_wait_s=case.expected_wait_s,
        passed=not problems,
        detail=detail,
    )


def render_validation(v: GitHubValidation) -> str:
    """The validation as terminal text."""
    lines = [f"GitHub API: {v.api.url} ({v.api.source})"]
    if v.api.reachable:
        lines.append(f"  reachable: HTTP {v.api.status}, latency {v.api.latency_ms} ms, TLS {v.api.tls}")
    if v.api.error:
        lines.append(f"  error: {v.api.error}")
    lines.append(f"token: {v.token.describe()}")
    if not v.token.found and v.token_tried:
        lines.append(f"  tried: {'; '.join(v.token_tried)}")
    if v.identity:
        who = v.identity.login or v.identity.type or "?"
        lines.append(
            f"identity: {who} ({v.identity.type})" if not v.identity.error else f"identity: {v.identity.error}"
        )
    if v.scopes is not None:
        lines.append(f"scopes: {', '.join(v.scopes) or '(none)'}")
    if v.scopes_note:
        lines.append(f"scopes: {v.scopes_note}")
    for repo in v.repos:
        if repo.accessible:
            perms = ", ".join(k for k, val in repo.permissions.items() if val) or "read (public)"
            actions = {True: "readable", False: "NOT readable", None: "?"}[repo.actions_readable]
            lines.append(f"repo {repo.repo}: accessible, {perms}; actions runs {actions}")
        else:
            lines.append(f"repo {repo.repo}: NOT accessible — {repo.message}")
    for rate in v.rate_limits:
        lines.append(
            f"rate {rate.resource}: {rate.remaining}/{rate.limit} left, "
            f"resets {rate.reset_at} (in {rate.reset_in_s:.0f} s)"
        )
    if v.handling:
        lines.append("handling check:" + (f" ({v.handling_note})" if v.handling_note else ""))
        for case in v.handling:
            mark = "ok  " if case.passed else "FAIL"
            lines.append(
                f"  {mark} {case.scenario}: {case.classified_as}, "
                f"{case.attempts} attempt(s), waited {case.waited_s:.2f} s"
            )
            if not case.passed:
                lines.append(f"       {case.detail}")
    for note in v.notes:
        lines.append(f"note: {note}")
    for problem in v.problems:
        lines.append(f"problem: {problem}")
    lines.append("result: ok" if v.ok else f"result: {len(v.problems)} problem(s)")
    return "\n".join(lines)
