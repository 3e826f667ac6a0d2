"""A fake GitHub REST API on 127.0.0.1 that misbehaves the ways GitHub documents.

Serves `/rate_limit`, `/user`, `/installation/repositories`, `/repos/{o}/{r}`,
`/repos/{o}/{r}/branches`, `/repos/{o}/{r}/actions/runs`,
`/repos/{o}/{r}/actions/runs/{id}/jobs` and `/repos/{o}/{r}/actions/jobs/{id}/logs`
(which, like GitHub, answers 302 to a signed blob URL on another host — here
`localhost` instead of `127.0.0.1` — that honours `Range` and refuses requests
carrying `Authorization`).

Scenarios (see `SCENARIOS`) are selected per run (`FakeGitHub(scenario=...)`,
`set_scenario`, `itest-mcp fake-github --scenario S`) and per token: a token
ending in `__<scenario>` (for example `ghp_mytoken__secondary-429`) or one
registered with `add_token` uses that scenario. Failing scenarios fail the first
`fail_times` requests of each (scenario, token) and then succeed, so a client
that retries correctly finishes; `flaky-5xx` instead fails by a schedule drawn
from `random.Random(seed)`, the same on every run with the same seed.

Why the standard library's `ThreadingHTTPServer` rather than starlette+uvicorn:
the fake must drop connections before and in the middle of a response and stall
one response without stalling others. With raw sockets that is `shutdown()` on
the handler's socket and a `time.sleep` in its own thread; under an ASGI server
the transport is hidden behind the protocol and a mid-body drop needs private
uvicorn internals. It also runs in a background thread of a synchronous test or
an async one alike (no second event loop to manage), starts in about a
millisecond, and adds nothing to itest-mcp's import time. A thread per
connection is no limit for loopback tests (the benchmark keeps 16 connections).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    import ssl

SCENARIOS: dict[str, str] = {
    "ok": "everything works",
    "bad-token": "401 Bad credentials on every authenticated request",
    "forbidden": "403 'Resource not accessible by personal access token' (a token without the scope)",
    "not-found": "404 Not Found (a private repository the token cannot see)",
    "unprocessable": "422 Validation Failed",
    "primary-403": "primary rate limit: 403 with x-ratelimit-remaining: 0 until x-ratelimit-reset",
    "primary-429": "primary rate limit: 429 with x-ratelimit-remaining: 0 until x-ratelimit-reset",
    "secondary-retry-after": "secondary rate limit: 403 with retry-after",
    "secondary-429": "secondary rate limit: 429 with retry-after",
    "secondary-no-retry-after": "secondary rate limit: 403 with the documented message and no retry-after",
    "server-error": "500, 502, 503 in turn for the first fail_times requests",
    "flaky-5xx": "500/502/503 at error_rate by a schedule seeded with seed",
    "slow": "every response delayed by slow_s",
    "drop": "the connection is closed without a response (odd requests) or mid-body (even ones)",
    "html": "a non-GitHub web server: 200 text/html for every path",
    "redirect-cross-host": "API paths answer 302 to the same path on another host (localhost)",
}

DOCS = "https://docs.github.com/rest"
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {rid}."
)
SECONDARY_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
PRIMARY_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"

_SCENARIO_SUFFIX = re.compile(r"__([a-z0-9-]+)$")
_LOG_TIME = "2024-05-01T10:00:{:02d}.0000000Z "


@dataclass
class TokenSpec:
    """How the fake treats one token."""

    scenario: str | None = None
    login: str = "octocat"
    scopes: str = "repo, workflow"
    repos: set[str] | None = None
    """Full names the token can see; None: all of the fake's repositories."""


@dataclass
class RequestRecord:
    """One request as the fake saw it (never the token, only whether one was sent)."""

    method: str
    host: str
    path: str
    query: str
    scenario: str
    authorization: bool
    token_id: str
    range: str | None
    started: float
    status: int = 0
    """0 when the connection was dropped."""
    duration_s: float = 0.0
    early: bool = False
    """A retry that came before the wait the fake asked for had passed."""
    token_kind: str = ""
    """The token's prefix family (ghp, github_pat, ghs, ...), never the token."""


@dataclass
class _Counter:
    count: int = 0
    not_before: float = 0.0
    window_end: float = 0.0


def _log_line(i: int, text: str) -> str:
    return _LOG_TIME.format(i % 60) + text + "\n"


def demo_go_log() -> str:
    """A Go integration job log: an assertion failure, a data race and a panic."""
    lines = [
        "##[group]Run go test -race -tags=integration ./test/integration",
        "go test -race -tags=integration ./test/integration",
        "##[endgroup]",
        "=== RUN   TestAPIClientGetRepo",
        "--- PASS: TestAPIClientGetRepo (0.01s)",
        "=== RUN   TestAPIClientDefaultBranch",
        '    api_client_test.go:42: default branch = "master", want "main"',
        "--- FAIL: TestAPIClientDefaultBranch (0.01s)",
        "=== RUN   TestConcurrentSync",
        "==================",
        "WARNING: DATA RACE",
        "Read at 0x00c0000a4018 by goroutine 9:",
        "  example.com/demo/internal/reposync.(*Syncer).Sync.func1()",
        "      /home/runner/work/demo/demo/internal/reposync/sync.go:31 +0x64",
        "Previous write at 0x00c0000a4018 by goroutine 8:",
        "  example.com/demo/internal/reposync.(*Syncer).Sync.func1()",
        "      /home/runner/work/demo/demo/internal/reposync/sync.go:31 +0x7c",
        "==================",
        "    testing.go:1465: race detected during execution of test",
        "--- FAIL: TestConcurrentSync (0.02s)",
        "=== RUN   TestNetworkEdgeCases",
        "=== RUN   TestNetworkEdgeCases/retry_after_503",
        "panic: runtime error: invalid memory address or nil pointer dereference [recovered]",
        "\tpanic: runtime error: invalid memory address or nil pointer dereference",
        "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x5d2f1a]",
        "",
        "goroutine 23 [running]:",
        "example.com/demo/test/integration.TestNetworkEdgeCases.func2(0xc000183860)",
        "\t/home/runner/work/demo/demo/test/integration/network_edge_cases_test.go:77 +0x3a",
        "FAIL\texample.com/demo/test/integration\t0.412s",
        "FAIL",
        "##[error]Process completed with exit code 1.",
    ]
    return "".join(_log_line(i, line) for i, line in enumerate(lines))


def demo_pytest_log() -> str:
    """A pytest integration job log with one failing test in the short summary."""
    lines = [
        "##[group]Run python -m pytest -m integration tests/integration",
        "============================= test session starts ==============================",
        "collected 4 items",
        "",
        "tests/integration/test_repo_client.py ...F                               [100%]",
        "",
        "=================================== FAILURES ===================================",
        "_________________________ test_default_branch_is_main __________________________",
        '>       assert repo.default_branch == "main"',
        "E       AssertionError: assert 'master' == 'main'",
        "=========================== short test summary info ============================",
        "FAILED tests/integration/test_repo_client.py::test_default_branch_is_main - "
        "AssertionError: assert 'master' == 'main'",
        "========================= 1 failed, 3 passed in 0.21s ==========================",
        "##[error]Process completed with exit code 1.",
    ]
    return "".join(_log_line(i, line) for i, line in enumerate(lines))


def _default_runs(owner: str, repo: str) -> list[dict[str, Any]]:
    base = f"https://github.com/{owner}/{repo}/actions/runs"

    def run(rid: int, num: int, branch: str, conclusion: str, name: str = "CI") -> dict[str, Any]:
        return {
            "id": rid,
            "name": name,
            "display_title": f"commit {num}",
            "run_number": num,
            "run_attempt": 1,
            "event": "push",
            "head_branch": branch,
            "head_sha": hashlib.sha1(str(rid).encode()).hexdigest(),
            "status": "completed",
            "conclusion": conclusion,
            "created_at": f"2024-05-0{num % 9 + 1}T10:00:00Z",
            "html_url": f"{base}/{rid}",
            "path": ".github/workflows/ci.yml",
        }

    return [
        run(103, 3, "main", "failure"),
        run(102, 2, "main", "success"),
        run(101, 1, "main", "failure", name="Nightly"),
        run(201, 4, "feature", "failure"),
    ]


def _default_jobs(owner: str, repo: str) -> dict[int, list[dict[str, Any]]]:
    def job(jid: int, rid: int, name: str, conclusion: str, failed_step: str | None) -> dict[str, Any]:
        steps = [
            {"number": 1, "name": "Set up job", "status": "completed", "conclusion": "success"},
            {"number": 2, "name": "Checkout", "status": "completed", "conclusion": "success"},
        ]
        if failed_step:
            steps.append({"number": 3, "name": failed_step, "status": "completed", "conclusion": "failure"})
        return {
            "id": jid,
            "run_id": rid,
            "name": name,
            "status": "completed",
            "conclusion": conclusion,
            "started_at": "2024-05-01T10:00:00Z",
            "completed_at": "2024-05-01T10:03:00Z",
            "html_url": f"https://github.com/{owner}/{repo}/actions/runs/{rid}/job/{jid}",
            "steps": steps,
        }

    return {
        103: [
            job(1031, 103, "lint", "success", None),
            job(1032, 103, "integration (go)", "failure", "Run integration tests"),
            job(1033, 103, "integration (python)", "failure", "Run pytest"),
        ],
        102: [job(1021, 102, "integration (go)", "success", None)],
        101: [job(1011, 101, "build", "failure", "Build")],
        201: [job(2011, 201, "integration (python)", "failure", "Run pytest")],
    }


def _default_logs() -> dict[int, str]:
    build = "".join(
        _log_line(i, line)
        for i, line in enumerate(["##[group]Run go build ./...", "main.go:3:2: undefined: x", "##[error]exit 1"])
    )
    return {1032: demo_go_log(), 1033: demo_pytest_log(), 1011: build, 2011: demo_pytest_log(), 1031: "", 1021: ""}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default backlog of 5 drops SYNs under 16+ concurrent connects (a 1 s retransmit stall).
    request_queue_size = 256
    fake: FakeGitHub


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; with Nagle on, delayed ACKs add ~40 ms to each.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        """Silent: a request line on stderr is noise in the tests and the CLI."""

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    def do_HEAD(self) -> None:
        self.server.fake._handle(self)


class FakeGitHub:
    """A scripted GitHub REST API on 127.0.0.1; use as a (sync or async) context manager or call start()/stop()."""

    def __init__(
        self,
        scenario: str = "ok",
        *,
        seed: int = 0,
        port: int = 0,
        fail_times: int = 1,
        retry_after_s: int = 1,
        reset_s: int = 1,
        slow_s: float = 0.5,
        error_rate: float = 0.3,
        honour_range: bool = True,
        owner: str = "octo",
        repo: str = "demo",
        private: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`tls`: a server-side SSL context (certificate loaded) to serve https instead of http."""
        _check_scenario(scenario)
        self.scenario = scenario
        self.seed = seed
        self.fail_times = fail_times
        self.retry_after_s = retry_after_s
        self.reset_s = reset_s
        self.slow_s = slow_s
        self.error_rate = error_rate
        self.honour_range = honour_range
        self.owner = owner
        self.repo = repo
        self.private = private
        self.tokens: dict[str, TokenSpec] = {}
        self.runs = _default_runs(owner, repo)
        self.jobs = _default_jobs(owner, repo)
        self.logs: dict[int, bytes] = {k: v.encode() for k, v in _default_logs().items()}
        self.requests: list[RequestRecord] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, str], _Counter] = {}
        self._used: dict[str, int] = {}
        self._port = port
        self._tls = tls
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake GitHub is not started; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def scheme(self) -> str:
        return "https" if self._tls is not None else "http"

    @property
    def url(self) -> str:
        """The API base URL (http://127.0.0.1:PORT, or https:// when serving TLS)."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def other_host_url(self) -> str:
        """The same server under another host name: where log blobs and cross-host redirects point."""
        return f"{self.scheme}://localhost:{self.port}"

    def start(self) -> FakeGitHub:
        """Bind 127.0.0.1 and serve in a background thread."""
        if self._server is None:
            self._server = self._bind()
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-github", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve in the calling thread until interrupted (the CLI's foreground mode); `on_ready` gets the URL."""
        self._server = self._bind()
        if on_ready is not None:
            on_ready(self.url)
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def _bind(self) -> _Server:
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.fake = self
        if self._tls is not None:
            # Accepted connections are TLS; a client that rejects the certificate fails the handshake in
            # accept(), which the server drops (an OSError) and keeps serving.
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        return server

    def stop(self) -> None:
        """Stop serving and close the socket."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeGitHub:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        import anyio.to_thread

        await anyio.to_thread.run_sync(self.stop)

    # -- scripting ------------------------------------------------------------------------

    def set_scenario(self, scenario: str) -> None:
        """Switch the run's scenario and forget every failure counter."""
        _check_scenario(scenario)
        with self._lock:
            self.scenario = scenario
            self._counters.clear()

    def add_token(self, token: str, spec: TokenSpec | None = None, **fields: Any) -> None:
        """Register how `token` is treated (scenario, login, scopes, visible repos)."""
        if spec is not None and fields:
            raise TypeError("pass a TokenSpec or keyword fields, not both")
        if spec is None:
            spec = TokenSpec(**fields)
        if spec.scenario is not None:
            _check_scenario(spec.scenario)
        self.tokens[token] = spec

    def set_log(self, job_id: int, text: str | bytes) -> None:
        """Replace the log of `job_id`."""
        self.logs[job_id] = text.encode() if isinstance(text, str) else text

    def records(self, token_suffix: str | None = None) -> list[RequestRecord]:
        """A copy of the request log (optionally only requests whose scenario came from that token suffix)."""
        with self._lock:
            items = list(self.requests)
        return [r for r in items if token_suffix is None or r.scenario == token_suffix]

    # -- serving --------------------------------------------------------------------------

    def _spec_for(self, token: str | None) -> tuple[TokenSpec | None, str]:
        if token is None:
            return None, self.scenario
        spec = self.tokens.get(token)
        if spec is None:
            spec = TokenSpec()
        match = _SCENARIO_SUFFIX.search(token)
        scenario = spec.scenario or (match.group(1) if match and match.group(1) in SCENARIOS else None)
        return spec, scenario or self.scenario

    def _handle(self, h: _Handler) -> None:
        started = time.monotonic()
        parts = urlsplit(h.path)
        auth = h.headers.get("Authorization")
        token: str | None = None
        if auth:
            kind, _, value = auth.partition(" ")
            token = value.strip() if kind.lower() in ("bearer", "token") else auth
        spec, scenario = self._spec_for(token)
        token_id = hashlib.sha256(token.encode()).hexdigest()[:12] if token else "anonymous"
        record = RequestRecord(
            method=h.command,
            host=h.headers.get("Host", ""),
            path=parts.path,
            query=parts.query,
            scenario=scenario,
            authorization=auth is not None,
            token_id=token_id,
            range=h.headers.get("Range"),
            started=started,
            token_kind=_prefix_family(token),
        )
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.requests.append(record)
            self._used[token_id] = self._used.get(token_id, 0) + 1
        try:
            self._dispatch(h, record, spec, scenario, parts.path, parse_qs(parts.query))
        except (BrokenPipeError, ConnectionResetError):
            record.status = record.status or 0
        finally:
            record.duration_s = time.monotonic() - started
            with self._lock:
                self.in_flight -= 1

    def _dispatch(
        self,
        h: _Handler,
        rec: RequestRecord,
        spec: TokenSpec | None,
        scenario: str,
        path: str,
        query: dict[str, list[str]],
    ) -> None:
        if path.startswith("/_blobs/jobs/"):
            self._blob(h, rec, path)
            return
        counter_key = (scenario, rec.token_id)
        with self._lock:
            counter = self._counters.setdefault(counter_key, _Counter())
            counter.count += 1
            n = counter.count
        anonymous = spec is None
        now = time.time()

        if scenario == "slow":
            time.sleep(self.slow_s)
        elif scenario == "html":
            page = b"<!DOCTYPE html><html><head><title>Welcome</title></head><body>It works!</body></html>"
            self._raw(h, rec, 200, page, {"Content-Type": "text/html; charset=utf-8"})
            return
        elif scenario == "redirect-cross-host" and "redirected=1" not in rec.query:
            target = f"{self.other_host_url}{path}?{rec.query + '&' if rec.query else ''}redirected=1"
            self._raw(h, rec, 302, b"", {"Location": target})
            return
        elif scenario == "drop" and n <= self.fail_times:
            self._drop(h, rec, mid_body=n % 2 == 0)
            return
        elif scenario == "server-error" and n <= self.fail_times:
            status = (500, 502, 503)[(n - 1) % 3]
            self._json(h, rec, status, {"message": "Server Error"}, spec)
            return
        elif scenario == "flaky-5xx":
            rng = random.Random(f"{self.seed}:{rec.token_id}:{n}")
            if rng.random() < self.error_rate:
                self._json(h, rec, rng.choice((500, 502, 503)), {"message": "Server Error"}, spec)
                return
        elif scenario in ("primary-403", "primary-429"):
            with self._lock:
                if counter.window_end == 0.0:
                    counter.window_end = float(math.ceil(now + self.reset_s))
                limited = now < counter.window_end
            if limited:
                rec.early = n > 1
                status = 403 if scenario == "primary-403" else 429
                body = {"message": "API rate limit exceeded for user ID 1.", "documentation_url": PRIMARY_DOCS}
                self._json(h, rec, status, body, spec, remaining=0, reset=int(counter.window_end))
                return
        elif scenario in ("secondary-retry-after", "secondary-429", "secondary-no-retry-after"):
            with self._lock:
                early = n > 1 and time.monotonic() < counter.not_before
                limited = n <= self.fail_times or early
                if limited and not early:
                    counter.not_before = time.monotonic() + (
                        self.retry_after_s if scenario != "secondary-no-retry-after" else 0
                    )
            if limited:
                rec.early = early
                status = 429 if scenario == "secondary-429" else 403
                rid = f"FAKE:{n:04d}"
                body = {"message": SECONDARY_MESSAGE.format(rid=rid), "documentation_url": SECONDARY_DOCS}
                extra = {} if scenario == "secondary-no-retry-after" else {"retry-after": str(self.retry_after_s)}
                self._json(h, rec, status, body, spec, extra=extra)
                return
        elif scenario == "bad-token" and not anonymous:
            self._json(h, rec, 401, {"message": "Bad credentials", "documentation_url": DOCS}, spec)
            return
        elif scenario == "forbidden" and path != "/rate_limit":
            body = {"message": "Resource not accessible by personal access token", "documentation_url": DOCS}
            self._json(h, rec, 403, body, spec, extra={"x-accepted-github-permissions": "actions=read"})
            return
        elif scenario == "not-found" and path != "/rate_limit":
            self._json(h, rec, 404, {"message": "Not Found", "documentation_url": DOCS}, spec)
            return
        elif scenario == "unprocessable" and path != "/rate_limit":
            self._json(h, rec, 422, {"message": "Validation Failed", "errors": [], "documentation_url": DOCS}, spec)
            return
        self._route(h, rec, spec, path, query)

    def _route(
        self, h: _Handler, rec: RequestRecord, spec: TokenSpec | None, path: str, query: dict[str, list[str]]
    ) -> None:
        full = f"{self.owner}/{self.repo}"
        token = _token_kind(spec, rec)
        if path == "/rate_limit":
            self._json(h, rec, 200, self._rate_limit_body(spec), spec)
            return
        if path == "/user":
            if spec is None:
                self._json(h, rec, 401, {"message": "Requires authentication", "documentation_url": DOCS}, spec)
            elif token == "ghs":
                body = {"message": "Resource not accessible by integration", "documentation_url": DOCS}
                self._json(h, rec, 403, body, spec)
            else:
                user = {"login": spec.login, "id": 1, "type": "User", "name": spec.login.title()}
                self._json(h, rec, 200, user, spec)
            return
        if path == "/installation/repositories":
            if token != "ghs":
                self._json(h, rec, 403, {"message": "This endpoint needs an installation token"}, spec)
            else:
                repo = self._repo_body(spec)
                self._json(h, rec, 200, {"total_count": 1, "repositories": [repo]}, spec)
            return
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if not m or f"{m.group(1)}/{m.group(2)}".lower() != full.lower() or not self._visible(spec):
            self._json(h, rec, 404, {"message": "Not Found", "documentation_url": DOCS}, spec)
            return
        rest = m.group(3) or ""
        if rest == "":
            self._json(h, rec, 200, self._repo_body(spec), spec)
        elif rest == "/branches":
            sha = self.runs[0]["head_sha"] if self.runs else "0" * 40
            self._json(h, rec, 200, [{"name": "main", "commit": {"sha": sha}, "protected": False}], spec)
        elif rest == "/actions/runs":
            self._json(h, rec, 200, self._runs_body(query), spec)
        elif (jm := re.fullmatch(r"/actions/runs/(\d+)/jobs", rest)) is not None:
            jobs = self.jobs.get(int(jm.group(1)))
            if jobs is None:
                self._json(h, rec, 404, {"message": "Not Found"}, spec)
            else:
                self._json(h, rec, 200, {"total_count": len(jobs), "jobs": jobs}, spec)
        elif (lm := re.fullmatch(r"/actions/jobs/(\d+)/logs", rest)) is not None:
            if spec is None:
                # GitHub needs a token for logs even on public repositories.
                self._json(h, rec, 403, {"message": "Must have admin rights to Repository."}, spec)
            elif int(lm.group(1)) not in self.logs:
                self._json(h, rec, 404, {"message": "Not Found"}, spec)
            else:
                sig = hashlib.sha256(f"{self.seed}:{lm.group(1)}".encode()).hexdigest()[:16]
                location = f"{self.other_host_url}/_blobs/jobs/{lm.group(1)}?sig={sig}"
                self._raw(h, rec, 302, b"", {"Location": location})
        else:
            self._json(h, rec, 404, {"message": "Not Found", "documentation_url": DOCS}, spec)

    def _visible(self, spec: TokenSpec | None) -> bool:
        if spec is None:
            return not self.private
        return spec.repos is None or f"{self.owner}/{self.repo}" in spec.repos

    def _repo_body(self, spec: TokenSpec | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": 42,
            "name": self.repo,
            "full_name": f"{self.owner}/{self.repo}",
            "private": self.private,
            "default_branch": "main",
            "html_url": f"https://github.com/{self.owner}/{self.repo}",
        }
        if spec is not None:
            body["permissions"] = {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True}
        return body

    def _runs_body(self, query: dict[str, list[str]]) -> dict[str, Any]:
        runs = list(self.runs)
        if "branch" in query:
            runs = [r for r in runs if r["head_branch"] == query["branch"][0]]
        if "status" in query:
            wanted = query["status"][0]
            runs = [r for r in runs if wanted in (r["conclusion"], r["status"])]
        per_page = min(100, int(query.get("per_page", ["30"])[0] or 30))
        page = max(1, int(query.get("page", ["1"])[0] or 1))
        return {"total_count": len(runs), "workflow_runs": runs[(page - 1) * per_page : page * per_page]}

    def _rate_limit_body(self, spec: TokenSpec | None) -> dict[str, Any]:
        reset = int(time.time()) + 3600
        if spec is None:
            core, search, graphql = 60, 10, 0
        else:
            core, search, graphql = 5000, 30, 5000

        def res(limit: int) -> dict[str, int]:
            return {"limit": limit, "used": 1 if limit else 0, "remaining": max(0, limit - 1), "reset": reset}

        resources = {"core": res(core), "search": res(search), "graphql": res(graphql)}
        return {"resources": resources, "rate": resources["core"]}

    def _blob(self, h: _Handler, rec: RequestRecord, path: str) -> None:
        if rec.authorization:
            # Signed blob URLs reject a bearer token (and must never see one).
            self._raw(h, rec, 400, b"Authorization header is not allowed on a signed URL", {})
            return
        job_id = int(path.rsplit("/", 1)[1]) if path.rsplit("/", 1)[1].isdigit() else -1
        data = self.logs.get(job_id)
        if data is None:
            self._raw(h, rec, 404, b"BlobNotFound", {})
            return
        headers = {"Content-Type": "text/plain; charset=utf-8", "Accept-Ranges": "bytes"}
        wanted = _parse_range(rec.range, len(data)) if self.honour_range else None
        if wanted is None:
            self._raw(h, rec, 200, data, headers)
            return
        start, end = wanted
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        self._raw(h, rec, 206, data[start : end + 1], headers)

    # -- writing --------------------------------------------------------------------------

    def _json(
        self,
        h: _Handler,
        rec: RequestRecord,
        status: int,
        body: Any,
        spec: TokenSpec | None,
        *,
        remaining: int | None = None,
        reset: int | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        limit = 60 if spec is None else 5000
        used = min(limit, self._used.get(rec.token_id, 0))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "x-github-media-type": "github.v3; format=json",
            "x-github-api-version-selected": "2022-11-28",
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - used) if remaining is None else remaining),
            "x-ratelimit-used": str(used),
            "x-ratelimit-reset": str(reset if reset is not None else int(time.time()) + 3600),
            "x-ratelimit-resource": "core",
        }
        if spec is not None and _token_kind(spec, rec) in ("ghp", "gho", "legacy"):
            headers["x-oauth-scopes"] = spec.scopes
            headers["x-accepted-oauth-scopes"] = "repo"
        headers.update(extra or {})
        self._raw(h, rec, status, json.dumps(body).encode(), headers)

    def _raw(self, h: _Handler, rec: RequestRecord, status: int, body: bytes, headers: dict[str, str]) -> None:
        rec.status = status
        h.send_response(status)
        h.send_header("x-github-request-id", f"FAKE:{len(self.requests):06d}")
        # The fake's own handling time, so a benchmark can subtract the server from the client's latency.
        h.send_header("x-fake-server-ms", f"{(time.monotonic() - rec.started) * 1000:.3f}")
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)
        h.wfile.flush()

    def _drop(self, h: _Handler, rec: RequestRecord, *, mid_body: bool) -> None:
        rec.status = 0
        if mid_body:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "1000")
            h.end_headers()
            h.wfile.write(b'{"login": "oct')
            h.wfile.flush()
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _token_kind(spec: TokenSpec | None, rec: RequestRecord) -> str:
    """The prefix family of the request's token ("" when anonymous)."""
    return "" if spec is None else rec.token_kind


def _prefix_family(token: str | None) -> str:
    if not token:
        return ""
    for prefix in ("github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"):
        if token.startswith(prefix):
            return prefix.rstrip("_")
    return "legacy" if re.fullmatch(r"[0-9a-f]{40}", token) else "other"


def _check_scenario(name: str) -> None:
    if name not in SCENARIOS:
        raise ValueError(f"unknown fake GitHub scenario {name!r}; known: {', '.join(SCENARIOS)}")


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (first, last) byte of a single `bytes=` range, or None to send the whole body."""
    if not header or size == 0:
        return None
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):
        length = int(m.group(2))
        return max(0, size - length), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size:
        return None
    return start, min(end, size - 1)


def start_fake_github(scenario: str = "ok", *, seed: int = 0, port: int = 0, **options: Any) -> FakeGitHub:
    """Start a fake GitHub on 127.0.0.1 (port 0 picks a free one); stop it with .stop() or a with-block."""
    return FakeGitHub(scenario, seed=seed, port=port, **options).start()
