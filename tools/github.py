"""A GitHub REST client that handles tokens, rate limits and failures the way GitHub documents them.

The `httpx.AsyncClient` is passed in, so tests point it at the fake on 127.0.0.1.
Retry policy (docs.github.com, "Rate limits for the REST API" and "Best practices"):

- `retry-after` present → wait that many seconds;
- `x-ratelimit-remaining: 0` → wait until `x-ratelimit-reset` (primary limit);
- a secondary limit without `retry-after` → wait at least a minute, then back off
  exponentially, and give up after `max_attempts`;
- 5xx and connection errors → retried with jittered exponential backoff;
- 401, 403 (not rate limited), 404, 422 → never retried.

Every wait is capped by the caller's deadline: a wait that would pass it fails at
once with a message saying how long GitHub asked to wait. Every wait is recorded
in `GitHubClient.waits`. At most `max_concurrency` requests are in flight.
Redirects are followed by hand, and `Authorization` goes only to the origin that
received it (log downloads redirect to blob storage on another host).

The token lives in a `Token` object whose repr hides it; it is placed only in the
request header and scrubbed from any server text we repeat.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import anyio
from pydantic import Field, field_validator

from . import __version__
from .config import load_raw_config, validate_section
from .errors import (
    DeadlineError,
    GitHubAuthError,
    GitHubError,
    InputError,
    RateLimitError,
    TokenError,
)
from .models import Model
from .process import run_capture, which
from .repo import Project

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncIterator

    import httpx

log = logging.getLogger("itest_mcp.github")

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
REPO_NAME = re.compile(r"^(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/(?P<name>[A-Za-z0-9._-]{1,100})$")
MAX_JSON_BYTES = 32 * 1024 * 1024
MAX_REDIRECTS = 5


# -- settings ---------------------------------------------------------------------------


class GitHubSettings(Model):
    """The `[github]` section of itest.toml."""

    api_url: str | None = None
    """API base; GitHub Enterprise: https://HOST/api/v3. GITHUB_API_URL overrides it."""
    token_env: str | None = None
    """An environment variable to read the token from before GITHUB_TOKEN and GH_TOKEN."""
    repo: str | None = None
    """OWNER/NAME for review_ci_failures when the `origin` remote is not on GitHub."""
    repos: list[str] = Field(default_factory=list)
    """Repositories validate_github_api checks access to."""
    max_concurrency: int = Field(default=8, ge=1, le=100)
    timeout: float = Field(default=120.0, gt=0, le=3600)
    """Seconds a tool call may spend, waits included."""
    log_tail_bytes: int = Field(default=256 * 1024, ge=1024, le=16 * 1024 * 1024)
    integration_jobs: str = "(?i)integration|e2e"
    """Regex: a CI job whose name matches is an integration job."""

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        return None if value is None else parse_repo_name(value)

    @field_validator("repos")
    @classmethod
    def _repos(cls, value: list[str]) -> list[str]:
        return [parse_repo_name(v) for v in value]

    @field_validator("token_env")
    @classmethod
    def _token_env(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"token_env {value!r} is not an environment variable name")
        return value

    @field_validator("integration_jobs")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"integration_jobs {value!r} is not a regular expression: {exc}") from exc
        return value


def load_github_settings(project: Project) -> GitHubSettings:
    """The project's `[github]` settings (defaults when absent); errors name file, key and line."""
    raw = load_raw_config(project)
    return validate_section(raw, ("github",), raw.section("github"), GitHubSettings)


def parse_repo_name(value: str) -> str:
    """Check an OWNER/NAME repository name and return it (a `.git` suffix is dropped)."""
    text = value.strip()
    if text.endswith(".git"):
        text = text[:-4]
    if not REPO_NAME.match(text) or text.split("/")[1] in (".", ".."):
        raise InputError(
            f"repository {value!r} is not OWNER/NAME; write it like 'octo-org/my-service' "
            "(owner: letters, digits, '-'; name: letters, digits, '.', '_', '-')"
        )
    return text


def resolve_api_url(explicit: str | None, settings: GitHubSettings, env: Mapping[str, str]) -> tuple[str, str]:
    """The API base URL and where it came from: argument, GITHUB_API_URL, [github] api_url, or the default."""
    for value, source in (
        (explicit, "argument"),
        (env.get("GITHUB_API_URL"), "GITHUB_API_URL"),
        (settings.api_url, "[github] api_url"),
    ):
        if value:
            return check_api_url(value, source), source
    return DEFAULT_API_URL, "default"


def check_api_url(value: str, source: str = "api_url") -> str:
    """Refuse an API URL that is not plain http(s)://host[:port][/path]."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError as exc:
        raise InputError(f"{source} {value!r} is not a URL ({exc})") from exc
    del port
    hint = "use https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server"
    if parts.scheme not in ("http", "https"):
        raise InputError(f"{source} {value!r} is not an http(s) URL; {hint}")
    if not parts.hostname:
        raise InputError(f"{source} {value!r} has no host; {hint}")
    if parts.username or parts.password:
        raise InputError(f"{source} has credentials in the URL; remove them and set GITHUB_TOKEN instead")
    if parts.query or parts.fragment:
        raise InputError(f"{source} {value!r} has a query or fragment; give only the base URL; {hint}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def web_host(api_url: str) -> str:
    """The web host `gh` knows the API by: api.github.com → github.com; GHE keeps its host."""
    host = urlsplit(api_url).hostname or "github.com"
    return "github.com" if host == "api.github.com" else host


# -- tokens ---------------------------------------------------------------------------------


class TokenKind(StrEnum):
    CLASSIC = "classic personal access token"
    FINE_GRAINED = "fine-grained personal access token"
    APP_INSTALLATION = "GitHub App installation token"
    OAUTH = "OAuth app token"
    USER_TO_SERVER = "GitHub App user-to-server token"
    REFRESH = "GitHub App refresh token"
    LEGACY = "classic token (40-hex pre-2021 format)"
    UNKNOWN = "unknown format"


_PREFIXES: tuple[tuple[str, TokenKind], ...] = (
    ("github_pat_", TokenKind.FINE_GRAINED),
    ("ghp_", TokenKind.CLASSIC),
    ("ghs_", TokenKind.APP_INSTALLATION),
    ("gho_", TokenKind.OAUTH),
    ("ghu_", TokenKind.USER_TO_SERVER),
    ("ghr_", TokenKind.REFRESH),
)


def token_kind(value: str) -> tuple[TokenKind, str | None]:
    """The kind of a token and its public prefix, read from the prefix only."""
    for prefix, kind in _PREFIXES:
        if value.startswith(prefix):
            return kind, prefix
    if re.fullmatch(r"[0-9a-f]{40}", value):
        return TokenKind.LEGACY, None
    return TokenKind.UNKNOWN, None


class Token:
    """A token with where it came from; str/repr never show the value."""

    __slots__ = ("_value", "source", "kind", "prefix")

    def __init__(self, value: str, source: str) -> None:
        check_token(value, source)
        self._value = value
        self.source = source
        self.kind, self.prefix = token_kind(value)

    def __repr__(self) -> str:
        return f"Token(source={self.source!r}, kind={self.kind.value!r})"

    __str__ = __repr__

    def authorization(self) -> str:
        """The Authorization header value (the only place the value leaves this object)."""
        return f"Bearer {self._value}"

    def scrub(self, text: str) -> str:
        """`text` with the token replaced by '***' (servers can echo what they were sent)."""
        return text.replace(self._value, "***") if self._value and self._value in text else text


def check_token(value: str, source: str) -> None:
    """Refuse a token that cannot be sent as-is: empty, whitespace, control or non-ASCII characters."""
    if not value:
        raise TokenError(f"the token from {source} is empty; set it to a GitHub token or unset it")
    for index, char in enumerate(value):
        problem = None
        if char in "\r\n":
            problem = "a line break"
        elif char.isspace():
            problem = "whitespace"
        elif ord(char) < 32 or ord(char) == 127:
            problem = "a control character"
        elif ord(char) > 126:
            problem = "a non-ASCII character"
        if problem:
            raise TokenError(
                f"the token from {source} contains {problem} at position {index + 1} of {len(value)}; "
                "it was not sent. Store the token without quotes, spaces or a trailing newline "
                '(e.g. export GITHUB_TOKEN="$(gh auth token)")'
            )
    if len(value) > 512:
        raise TokenError(f"the token from {source} is {len(value)} characters long, too long for a GitHub token")


class TokenInfo(Model):
    """What may be said about a token: where it came from and its kind, never its value."""

    found: bool
    source: str | None = None
    kind: TokenKind | None = None
    prefix: str | None = None

    def describe(self) -> str:
        if not self.found:
            return "none found (unauthenticated: 60 core requests per hour)"
        return f"{self.kind.value if self.kind else 'unknown'} from {self.source}"


def token_info(token: Token | None) -> TokenInfo:
    """The safe description of `token`."""
    if token is None:
        return TokenInfo(found=False)
    return TokenInfo(found=True, source=token.source, kind=token.kind, prefix=token.prefix)


@dataclass
class TokenDiscovery:
    """The token found (or not) and what was tried, in order."""

    token: Token | None
    tried: list[str] = field(default_factory=list)


def discover_token(
    settings: GitHubSettings,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str = ".",
    api_url: str = DEFAULT_API_URL,
    use_gh: bool = True,
) -> TokenDiscovery:
    """Find a token: the configured env var, GITHUB_TOKEN, GH_TOKEN, then `gh auth token` when gh exists."""
    environ = os.environ if env is None else env
    names = [n for n in (settings.token_env, "GITHUB_TOKEN", "GH_TOKEN") if n]
    tried: list[str] = []
    for name in dict.fromkeys(names):
        value = environ.get(name)
        if value is None:
            tried.append(f"{name}: not set")
            continue
        if value == "":
            tried.append(f"{name}: set but empty, skipped")
            continue
        return TokenDiscovery(Token(value, name), tried)
    if not use_gh:
        tried.append("gh: not tried")
        return TokenDiscovery(None, tried)
    gh = which("gh") if env is None else _which_in(environ.get("PATH", ""), "gh")
    if gh is None:
        tried.append("gh: not on PATH")
        return TokenDiscovery(None, tried)
    host = web_host(api_url)
    result = run_capture([gh, "auth", "token", "--hostname", host], cwd=cwd, timeout=15, env=dict(environ))
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1][:200] if result.stderr.strip() else f"exit {result.returncode}"
        tried.append(f"gh auth token --hostname {host}: {reason}")
        return TokenDiscovery(None, tried)
    # gh prints the token and a newline; anything else inside it is malformed.
    value = result.stdout.removesuffix("\n").removesuffix("\r")
    if not value:
        tried.append(f"gh auth token --hostname {host}: printed nothing")
        return TokenDiscovery(None, tried)
    return TokenDiscovery(Token(value, f"gh auth token ({host})"), tried)


def _which_in(path: str, program: str) -> str | None:
    import shutil

    return shutil.which(program, path=path)


# -- classification and policy ---------------------------------------------------------------


class Classification(StrEnum):
    OK = "ok"
    REDIRECT = "redirect"
    AUTH = "auth"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not-found"
    VALIDATION = "validation"
    CLIENT_ERROR = "client-error"
    PRIMARY_RATE_LIMIT = "primary-rate-limit"
    SECONDARY_RATE_LIMIT = "secondary-rate-limit"
    SERVER_ERROR = "server-error"
    CONNECTION_ERROR = "connection-error"
    TIMEOUT = "timeout"
    NOT_GITHUB = "not-github"


RETRYABLE = {
    Classification.PRIMARY_RATE_LIMIT,
    Classification.SECONDARY_RATE_LIMIT,
    Classification.SERVER_ERROR,
    Classification.CONNECTION_ERROR,
    Classification.TIMEOUT,
}
RATE_LIMITS = {Classification.PRIMARY_RATE_LIMIT, Classification.SECONDARY_RATE_LIMIT}


def classify(status: int, headers: Mapping[str, str], body: bytes | str = b"") -> Classification:
    """Classify a response the way GitHub's rate-limit documentation describes it."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if status in (403, 429):
        if headers.get("x-ratelimit-remaining") == "0":
            return Classification.PRIMARY_RATE_LIMIT
        if "retry-after" in headers or "secondary rate limit" in text.lower() or status == 429:
            return Classification.SECONDARY_RATE_LIMIT
        return Classification.FORBIDDEN
    if status >= 500:
        return Classification.SERVER_ERROR
    if status == 401:
        return Classification.AUTH
    if status == 404:
        return Classification.NOT_FOUND
    if status == 422:
        return Classification.VALIDATION
    if status in (301, 302, 303, 307, 308):
        return Classification.REDIRECT
    if status >= 400:
        return Classification.CLIENT_ERROR
    ctype = headers.get("content-type", "")
    if "html" in ctype or text.lstrip()[:1] == "<":
        return Classification.NOT_GITHUB
    return Classification.OK


class RetryPolicy(Model):
    """How the client retries and waits; defaults follow GitHub's documentation."""

    max_attempts: int = Field(default=5, ge=1, le=20)
    secondary_min_wait_s: float = Field(default=60.0, ge=0)
    """GitHub: without retry-after, wait at least one minute. Tests pass a smaller value explicitly."""
    secondary_backoff_factor: float = Field(default=2.0, ge=1)
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=32.0, ge=0)
    reset_margin_s: float = Field(default=1.0, ge=0)
    """Added to a primary-limit wait: x-ratelimit-reset has one-second resolution."""
    max_wait_s: float = Field(default=900.0, gt=0)
    """Even without a deadline no single wait is longer (GitHub's resets are at most an hour)."""
    max_concurrency: int = Field(default=8, ge=1, le=100)
    request_timeout_s: float = Field(default=30.0, gt=0)
    seed: int | None = None
    """Seeds the backoff jitter (tests); None draws from the system."""


class WaitRecord(Model):
    """One wait the client made (or refused to make because of the deadline)."""

    method: str
    path: str
    attempt: int
    reason: Classification
    status: int | None = None
    basis: str
    """"retry-after", "x-ratelimit-reset", "secondary-minimum", "backoff" or "shared-block"."""
    planned_s: float
    waited_s: float
    refused: bool = False
    """True when the wait would have passed the deadline and the request failed instead."""


@dataclass
class GitHubResponse:
    """A final response: status, safe headers, body, and how we got it."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: bytes
    url: str
    classification: Classification
    attempts: int
    elapsed_s: float
    waits: list[WaitRecord]
    auth_dropped: bool = False
    """An Authorization header was withheld from a redirect to another origin."""
    total_size: int | None = None
    tls_version: str | None = None
    truncated: bool = False

    def json(self) -> Any:
        import json

        return json.loads(self.body)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and self.classification is Classification.OK

    def message(self) -> str:
        """GitHub's `message` field (bounded), or a short body excerpt."""
        try:
            data = self.json()
            if isinstance(data, dict) and isinstance(data.get("message"), str):
                return str(data["message"])[:300]
        except ValueError:
            pass
        return self.body[:200].decode("utf-8", "replace").strip()


SAFE_HEADERS = (
    "content-type",
    "content-range",
    "content-length",
    "date",
    "location",
    "retry-after",
    "x-github-request-id",
    "x-github-media-type",
    "x-github-api-version-selected",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
    "x-oauth-scopes",
    "x-accepted-oauth-scopes",
    "x-accepted-github-permissions",
    "x-fake-server-ms",
)
_SAFE = frozenset(SAFE_HEADERS)


@dataclass
class _Attempt:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str
    auth_dropped: bool
    total_size: int | None
    tls_version: str | None
    truncated: bool


# -- client -------------------------------------------------------------------------------------


class GitHubClient:
    """GitHub REST calls with GitHub's retry rules, a deadline on every wait, and a concurrency cap."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_url: str = DEFAULT_API_URL,
        token: Token | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.api_url = check_api_url(api_url)
        self.token = token
        self.policy = policy or RetryPolicy()
        self.waits: list[WaitRecord] = []
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._sleep = sleep or anyio.sleep
        self._clock = clock
        self._limiter: anyio.CapacityLimiter | None = None
        self._blocked_until = 0.0
        self._blocked_reason = Classification.SECONDARY_RATE_LIMIT
        self._rng = random.Random(self.policy.seed)

    def scrub(self, text: str) -> str:
        """Remove the token from server-provided text before it goes anywhere."""
        return self.token.scrub(text) if self.token else text

    def deadline_in(self, seconds: float) -> float:
        """An absolute deadline `seconds` from now, on the client's clock."""
        return self._clock() + seconds

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.api_url + (path if path.startswith("/") else "/" + path)

    async def get_json(
        self, path: str, *, params: Mapping[str, str | int] | None = None, deadline: float | None = None
    ) -> Any:
        """GET `path` and return its JSON; any final non-2xx raises a GitHubError saying what to do."""
        response = await self.request("GET", path, params=params, deadline=deadline)
        if not response.ok:
            raise self.error_for(response)
        try:
            return response.json()
        except ValueError as exc:
            raise GitHubError(
                f"{self.api_url} answered GET {path} with a body that is not JSON; "
                "check GITHUB_API_URL / [github] api_url"
            ) from exc

    def error_for(self, r: GitHubResponse) -> GitHubError:
        """The exception for a final unsuccessful response."""
        who = f"the token from {self.token.source} ({self.token.kind.value})" if self.token else "an anonymous client"
        msg = self.scrub(r.message())
        where = f"{r.method} {r.path}"
        cls = r.classification
        if cls is Classification.NOT_GITHUB:
            return GitHubError(
                f"{self.api_url} answered {where} with an HTML page (status {r.status}), not GitHub's JSON API; "
                "it is not a GitHub API server. Set GITHUB_API_URL or [github] api_url to https://api.github.com "
                "or, for GitHub Enterprise Server, https://HOST/api/v3"
            )
        if cls is Classification.AUTH:
            if self.token is None:
                return GitHubAuthError(
                    f"{where} needs authentication (401 {msg}); set GITHUB_TOKEN or run gh auth login"
                )
            return GitHubAuthError(
                f"GitHub refused {who} on {where} (401 {msg}); the token is invalid, expired or revoked — "
                "create a new one or run `gh auth login`"
            )
        if cls is Classification.FORBIDDEN:
            need = r.headers.get("x-accepted-oauth-scopes") or r.headers.get("x-accepted-github-permissions")
            hint = f" (the endpoint accepts: {need})" if need else ""
            return GitHubAuthError(
                f"GitHub denied {where} to {who} (403 {msg}){hint}; grant the token that permission or use another"
            )
        if cls is Classification.NOT_FOUND:
            return GitHubError(
                f"{where} answered 404 {msg}: it does not exist, or {who} cannot see it "
                "(GitHub answers 404, not 403, for private resources without access)"
            )
        return GitHubError(f"{where} answered {r.status} {msg}")

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        deadline: float | None = None,
        headers: Mapping[str, str] | None = None,
        tail_bytes: int | None = None,
        stream_cap: int = 64 * 1024 * 1024,
    ) -> GitHubResponse:
        """Send one logical request with GitHub's retry rules; returns the final response (any status)."""
        started = self._clock()
        own_waits: list[WaitRecord] = []
        attempt = 0
        secondary_without_retry_after = 0
        url = self._url(path)
        while True:
            attempt += 1
            await self._wait_shared_block(method, path, attempt, deadline, own_waits)
            remaining = None if deadline is None else deadline - self._clock()
            if remaining is not None and remaining <= 0:
                raise DeadlineError(
                    f"{method} {path}: the deadline passed before attempt {attempt}; give the call more time"
                )
            timeout = (
                self.policy.request_timeout_s if remaining is None else min(self.policy.request_timeout_s, remaining)
            )
            result: _Attempt | None = None
            failure: str = ""
            try:
                result = await self._attempt(method, url, params, headers, timeout, tail_bytes, stream_cap)
                cls = classify(result.status, result.headers, result.body[:4096] if tail_bytes is None else b"")
                if tail_bytes is not None and cls is Classification.NOT_GITHUB:
                    cls = Classification.OK  # a log is text/plain; HTML detection is for the JSON API
            except _TimeoutError as exc:
                cls, failure = Classification.TIMEOUT, str(exc)
            except _TransportError as exc:
                cls, failure = Classification.CONNECTION_ERROR, str(exc)
            status = result.status if result else None
            log.debug("%s %s attempt %d → %s %s", method, path, attempt, status, cls.value)
            if cls not in RETRYABLE:
                assert result is not None
                return GitHubResponse(
                    method=method,
                    path=path,
                    status=result.status,
                    headers=result.headers,
                    body=result.body,
                    url=result.url,
                    classification=cls,
                    attempts=attempt,
                    elapsed_s=self._clock() - started,
                    waits=own_waits,
                    auth_dropped=result.auth_dropped,
                    total_size=result.total_size,
                    tls_version=result.tls_version,
                    truncated=result.truncated,
                )
            hdrs = result.headers if result else {}
            if cls is Classification.TIMEOUT and deadline is not None and self._clock() >= deadline - 0.01:
                raise DeadlineError(
                    f"{method} {path}: no complete answer before the deadline (attempt {attempt} had {timeout:.1f} s); "
                    "GitHub or the network is slow — give the call more time"
                )
            if attempt >= self.policy.max_attempts:
                raise self._exhausted(method, path, cls, status, attempt, failure, hdrs)
            planned, basis = self._plan_wait(cls, hdrs, attempt, secondary_without_retry_after)
            if cls is Classification.SECONDARY_RATE_LIMIT and basis == "secondary-minimum":
                secondary_without_retry_after += 1
            await self._wait(method, path, attempt, cls, status, basis, planned, deadline, own_waits, hdrs)

    def _plan_wait(
        self, cls: Classification, headers: Mapping[str, str], attempt: int, secondary_streak: int
    ) -> tuple[float, str]:
        p = self.policy
        retry_after = _number(headers.get("retry-after"))
        if cls in RATE_LIMITS and retry_after is not None:
            return max(0.0, retry_after), "retry-after"
        if cls is Classification.PRIMARY_RATE_LIMIT:
            reset = _number(headers.get("x-ratelimit-reset"))
            if reset is not None:
                return max(0.0, reset - time.time()) + p.reset_margin_s, "x-ratelimit-reset"
            return p.secondary_min_wait_s, "secondary-minimum"
        if cls is Classification.SECONDARY_RATE_LIMIT:
            return p.secondary_min_wait_s * p.secondary_backoff_factor**secondary_streak, "secondary-minimum"
        # 5xx, connection errors, timeouts: exponential backoff with "equal jitter" so
        # clients that failed together do not retry together.
        ceiling = min(p.backoff_max_s, p.backoff_base_s * 2 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2), "backoff"

    async def _wait(
        self,
        method: str,
        path: str,
        attempt: int,
        cls: Classification,
        status: int | None,
        basis: str,
        planned: float,
        deadline: float | None,
        own_waits: list[WaitRecord],
        headers: Mapping[str, str],
    ) -> None:
        now = self._clock()
        record = WaitRecord(
            method=method,
            path=path,
            attempt=attempt,
            reason=cls,
            status=status,
            basis=basis,
            planned_s=round(planned, 3),
            waited_s=0.0,
        )
        too_long = planned > self.policy.max_wait_s
        if too_long or (deadline is not None and now + planned > deadline):
            record.refused = True
            own_waits.append(record)
            self.waits.append(record)
            left = "no deadline" if deadline is None else f"{max(0.0, deadline - now):.1f} s left before the deadline"
            if too_long:
                left = f"longer than the {self.policy.max_wait_s:.0f} s maximum wait"
            retry_at = datetime.fromtimestamp(time.time() + planned, UTC).strftime("%H:%M:%S UTC")
            what = {
                Classification.PRIMARY_RATE_LIMIT: "GitHub's primary rate limit",
                Classification.SECONDARY_RATE_LIMIT: "GitHub's secondary rate limit",
            }.get(cls, f"a {cls.value}" + (f" ({status})" if status else ""))
            resource = headers.get("x-ratelimit-resource")
            res = f" on the {resource} resource" if resource and cls in RATE_LIMITS else ""
            message = (
                f"{what}{res} on {method} {path} asks to wait {planned:.1f} s ({basis}), but there is {left}; "
                f"not waiting. Try again after {retry_at} or give the call a longer timeout"
            )
            log.info("%s", message)
            if cls in RATE_LIMITS:
                raise RateLimitError(message)
            raise DeadlineError(message)
        if cls in RATE_LIMITS:
            # GitHub: stop making requests until the limit lifts, so every request of this client waits.
            self._blocked_until = max(self._blocked_until, now + planned)
            self._blocked_reason = cls
        log.info(
            "%s %s: %s, waiting %.2f s (%s) before attempt %d", method, path, cls.value, planned, basis, attempt + 1
        )
        await self._sleep(planned)
        record.waited_s = round(self._clock() - now, 3)
        own_waits.append(record)
        self.waits.append(record)

    async def _wait_shared_block(
        self, method: str, path: str, attempt: int, deadline: float | None, own_waits: list[WaitRecord]
    ) -> None:
        now = self._clock()
        if self._blocked_until <= now:
            return
        planned = self._blocked_until - now
        if deadline is not None and now + planned > deadline:
            raise RateLimitError(
                f"{method} {path}: another request hit GitHub's rate limit and requests pause for {planned:.1f} s, "
                f"but only {max(0.0, deadline - now):.1f} s remain before the deadline; try again later"
            )
        await self._sleep(planned)
        record = WaitRecord(
            method=method,
            path=path,
            attempt=attempt,
            reason=self._blocked_reason,
            basis="shared-block",
            planned_s=round(planned, 3),
            waited_s=round(self._clock() - now, 3),
        )
        own_waits.append(record)
        self.waits.append(record)

    def _exhausted(
        self,
        method: str,
        path: str,
        cls: Classification,
        status: int | None,
        attempts: int,
        failure: str,
        headers: Mapping[str, str],
    ) -> GitHubError:
        where = f"{method} {path}"
        if cls in RATE_LIMITS:
            return RateLimitError(
                f"{where}: still rate limited ({cls.value}, {status}) after {attempts} attempts; "
                "wait a few minutes and try again, or lower the concurrency ([github] max_concurrency)"
            )
        detail = f"answered {status}" if status else f"failed ({cls.value}: {self.scrub(failure)[:200]})"
        return GitHubError(
            f"{where} {detail} on all {attempts} attempts; GitHub or the network is having trouble — "
            "check https://www.githubstatus.com or the API URL and try again"
        )

    async def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, str | int] | None,
        extra_headers: Mapping[str, str] | None,
        timeout: float,
        tail_bytes: int | None,
        stream_cap: int,
    ) -> _Attempt:
        import httpx

        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.policy.max_concurrency)
        origin = _origin(url)
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"itest-mcp/{__version__}",
        }
        headers.update(extra_headers or {})
        if tail_bytes is not None:
            headers["Range"] = f"bytes=-{tail_bytes}"
        auth_dropped = False
        limiter = self._limiter
        try:
            # A free slot is taken without a trip through the event loop: with 16 requests in flight every
            # extra yield queues this request behind the others' callbacks (measured +5-10 ms median at cap 16).
            limiter.acquire_nowait()
        except anyio.WouldBlock:
            await limiter.acquire()
        self.in_flight += 1
        self.requests += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            current = url
            query = params
            with anyio.fail_after(timeout) if timeout else _null():
                for _hop in range(MAX_REDIRECTS + 1):
                    send_headers = dict(headers)
                    same_origin = _origin(current) == origin
                    if self.token is not None:
                        if same_origin:
                            send_headers["Authorization"] = self.token.authorization()
                        else:
                            auth_dropped = True
                    request = self.http.build_request(
                        method, current, params=query, headers=send_headers, timeout=httpx.Timeout(timeout)
                    )
                    response = await self.http.send(request, stream=True, follow_redirects=False)
                    try:
                        if response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                            target = urljoin(str(response.url), response.headers["location"])
                            if urlsplit(target).scheme not in ("http", "https"):
                                raise GitHubError(
                                    f"{method} {urlsplit(url).path} redirected to a non-http(s) URL; refusing"
                                )
                            current, query = target, None
                            continue
                        body, total, truncated = await _read_body(response, tail_bytes, stream_cap)
                        return _Attempt(
                            status=response.status_code,
                            headers={k: v for k, v in response.headers.items() if k in _SAFE},
                            body=body,
                            url=_strip_query(str(response.url)),
                            auth_dropped=auth_dropped,
                            total_size=total,
                            tls_version=_tls_version(response) if current.startswith("https:") else None,
                            truncated=truncated,
                        )
                    finally:
                        await response.aclose()
                raise GitHubError(f"{method} {urlsplit(url).path} redirected more than {MAX_REDIRECTS} times")
        except TimeoutError as exc:
            raise _TimeoutError(f"no complete answer within {timeout:.1f} s") from exc
        except httpx.TimeoutException as exc:
            raise _TimeoutError(f"no complete answer within {timeout:.1f} s ({type(exc).__name__})") from exc
        except httpx.ConnectError as exc:
            if "SSL" in str(exc).upper() or "CERTIFICATE" in str(exc).upper():
                # A certificate problem does not go away by retrying.
                host = urlsplit(url).hostname
                raise GitHubError(
                    f"TLS handshake with {host} failed ({exc}); check the URL, the system's CA certificates "
                    "or SSL_CERT_FILE (GitHub Enterprise with a private CA needs it)"
                ) from exc
            raise _TransportError(f"{type(exc).__name__}: {exc}") from exc
        except httpx.TransportError as exc:
            raise _TransportError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self.in_flight -= 1
            limiter.release()


class _TimeoutError(Exception):
    pass


class _TransportError(Exception):
    pass


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


async def _read_body(
    response: httpx.Response, tail_bytes: int | None, stream_cap: int
) -> tuple[bytes, int | None, bool]:
    """Read a body bounded: JSON up to MAX_JSON_BYTES; a log keeps only its last `tail_bytes`."""
    total: int | None = None
    content_range = response.headers.get("content-range", "")
    m = re.match(r"bytes \d+-\d+/(\d+)", content_range)
    if m:
        total = int(m.group(1))
    elif "content-length" in response.headers and response.status_code == 200:
        total = int(response.headers["content-length"])
    buf = bytearray()
    read = 0
    truncated = False
    limit = MAX_JSON_BYTES if tail_bytes is None else tail_bytes
    async for chunk in response.aiter_bytes():
        read += len(chunk)
        buf += chunk
        if tail_bytes is None:
            if len(buf) > limit:
                raise GitHubError(f"response to {response.request.url.path} exceeds {limit // (1024 * 1024)} MB")
        elif len(buf) > 2 * limit:
            del buf[: len(buf) - limit]
        if read >= stream_cap:
            truncated = True
            break
    if tail_bytes is not None and len(buf) > tail_bytes:
        del buf[: len(buf) - tail_bytes]
    if total is not None and len(buf) < total:
        truncated = True
    return bytes(buf), total, truncated


def _tls_version(response: httpx.Response) -> str | None:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    try:
        ssl_object = stream.get_extra_info("ssl_object")
    except Exception:  # noqa: BLE001 - any transport may not know the key
        return None
    return str(ssl_object.version()) if ssl_object is not None else None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def _strip_query(url: str) -> str:
    """A URL without its query (signed blob URLs carry credentials in it)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


# -- session --------------------------------------------------------------------------------


def tls_trust(environ: Mapping[str, str]) -> ssl.SSLContext:
    """The CAs a session trusts, read from the same environment as its token and URL.

    SSL_CERT_FILE / SSL_CERT_DIR when set (a GitHub Enterprise server with a private CA); otherwise
    certifi's bundle (httpx's default) plus the system's store, so a company CA installed system-wide
    is trusted too.
    """
    import ssl

    cafile = environ.get("SSL_CERT_FILE") or None
    capath = environ.get("SSL_CERT_DIR") or None
    if cafile and os.path.isdir(cafile):
        raise GitHubError(
            f"SSL_CERT_FILE={cafile!r} is a folder; point SSL_CERT_FILE at a PEM file of CA certificates, "
            "or use SSL_CERT_DIR for a folder of them"
        )
    if capath and not os.path.isdir(capath):
        # OpenSSL ignores a capath that does not exist, and every verification would then fail obscurely.
        raise GitHubError(
            f"SSL_CERT_DIR={capath!r} is not a folder; point it at a folder of CA certificates (c_rehash layout), "
            "or unset it"
        )
    if cafile or capath:
        try:
            return ssl.create_default_context(cafile=cafile, capath=capath)
        except (OSError, ssl.SSLError) as exc:
            named = f"SSL_CERT_FILE={cafile!r}" if cafile else f"SSL_CERT_DIR={capath!r}"
            raise GitHubError(
                f"{named} cannot be loaded ({exc}); point it at a PEM file of CA certificates, or unset it"
            ) from exc
    import certifi

    context = ssl.create_default_context(cafile=certifi.where())
    context.load_default_certs()
    return context


@dataclass
class GitHubSession:
    """What a tool needs to talk to GitHub: settings, the client, where the token and URL came from."""

    settings: GitHubSettings
    client: GitHubClient
    api_url_source: str
    token_tried: list[str]
    deadline: float

    @property
    def token(self) -> Token | None:
        return self.client.token


@asynccontextmanager
async def github_session(
    project: Project,
    *,
    api_url: str | None = None,
    timeout_s: float | None = None,
    policy: RetryPolicy | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[GitHubSession]:
    """Open an httpx client against the configured API with the discovered token (bounded by the deadline)."""
    import httpx

    settings = load_github_settings(project)
    environ = os.environ if env is None else env
    url, source = resolve_api_url(api_url, settings, environ)
    found = discover_token(settings, env=env, cwd=project.root, api_url=url)
    pol = policy or RetryPolicy(max_concurrency=settings.max_concurrency)
    limits = httpx.Limits(max_connections=pol.max_concurrency + 2, max_keepalive_connections=pol.max_concurrency)
    verify = tls_trust(environ) if urlsplit(url).scheme == "https" else True
    async with httpx.AsyncClient(limits=limits, follow_redirects=False, trust_env=True, verify=verify) as http:
        client = GitHubClient(http, api_url=url, token=found.token, policy=pol)
        deadline = client.deadline_in(timeout_s if timeout_s is not None else settings.timeout)
        yield GitHubSession(settings, client, source, found.tried, deadline)
