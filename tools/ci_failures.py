"""`review_ci_failures`: recent failed GitHub Actions runs, their failed jobs and steps, and the failing tests.

Job logs are untrusted and can be huge: each is fetched tail first (`Range: bytes=-N`
through GitHub's redirect to blob storage; a server that ignores Range is read as a
stream keeping only the last N bytes), and the result keeps a bounded number of
tests with bounded messages. Failing tests are pulled out of the text by
`parse_job_log` (Go `--- FAIL:` lines, gotestsum `=== FAIL:`, `go test -json`,
pytest `FAILED`/`ERROR` summary lines, panics, `WARNING: DATA RACE` blocks) and
mapped to our phases by each phase's `run` regex, test files and paths.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
from pydantic import Field

from .errors import GitHubError, InputError, ItestError, UnsafeArgumentError
from .github import (
    GitHubClient,
    GitHubSettings,
    TokenInfo,
    WaitRecord,
    load_github_settings,
    parse_repo_name,
    token_info,
)
from .models import Model, excerpt
from .phases import Phase, PhaseSet, Runner, load_phases
from .repo import Project

MAX_TESTS_PER_JOB = 50
MESSAGE_LIMIT = 500
EXCERPT_CHARS = 1500
MAX_RUNS = 50

_TIMESTAMP = re.compile(r"^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
_GO_RUN = re.compile(r"^=== (?:RUN|CONT|PAUSE|NAME)\s+(\S+)")
_GO_FAIL = re.compile(r"^(\s*)--- FAIL: (\S+)(?: \(([\d.]+)s\))?")
_GOTESTSUM_FAIL = re.compile(r"^=== FAIL: (\S+) (\S+)(?: \(([\d.]+)s\))?")
_GO_PKG = re.compile(r"^(FAIL|ok)\s+(\S+)\s")
_GO_OUTPUT = re.compile(r"^\s+(\S+\.go):(\d+): (.*)$")
_PYTEST = re.compile(r"^(FAILED|ERROR) (\S+?::\S+|\S+\.py)(?: - (.*))?$")
_PANIC = re.compile(r"^panic: (.*?)(?: \[recovered\])?$")
_RUNNER_PATH = re.compile(r"^(?:/home/runner/work|/Users/runner/work|[A-Z]:\\a)/[^/\\]+/[^/\\]+/")
_RACE_FRAME = re.compile(r"^\s+(\S+\.go):(\d+)")


class FailingTest(Model):
    """One failing test pulled out of a job log, with the phases it belongs to."""

    name: str
    package: str = ""
    file: str | None = None
    framework: str
    """"go" or "pytest"."""
    kind: str = "failure"
    """failure, error, panic or data-race."""
    message: str = ""
    excerpt: str = ""
    phases: list[str] = Field(default_factory=list)


class FailedStep(Model):
    number: int
    name: str
    conclusion: str


class LogInfo(Model):
    """How much of the job log was read."""

    bytes_read: int = 0
    total_bytes: int | None = None
    truncated: bool = False
    """Only the tail was read (the start of the log is not in the result)."""
    note: str | None = None


class FailedJob(Model):
    id: int
    name: str
    conclusion: str
    html_url: str = ""
    integration: bool = False
    failed_steps: list[FailedStep] = Field(default_factory=list)
    failing_tests: list[FailingTest] = Field(default_factory=list)
    tests_omitted: int = 0
    log: LogInfo = Field(default_factory=LogInfo)


class FailedRun(Model):
    id: int
    name: str
    run_number: int | None = None
    attempt: int | None = None
    branch: str | None = None
    head_sha: str = ""
    event: str = ""
    conclusion: str | None = None
    created_at: str | None = None
    html_url: str = ""
    failed_jobs: list[FailedJob] = Field(default_factory=list)


class PhaseHit(Model):
    """A phase of ours with the CI tests that failed in it."""

    phase: str
    tests: list[str]


class CiFailures(Model):
    """Recent failed workflow runs of a repository, with failing tests mapped to our phases."""

    repo: str
    repo_source: str
    branch: str | None
    api_url: str
    token: TokenInfo
    failed_runs_total: int = 0
    runs: list[FailedRun] = Field(default_factory=list)
    phases: list[PhaseHit] = Field(default_factory=list)
    unmapped_tests: list[str] = Field(default_factory=list)
    waits: list[WaitRecord] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


# -- log parsing (pure) ---------------------------------------------------------------------


@dataclass
class _GoFail:
    test: FailingTest
    collecting: bool = True


@dataclass
class _State:
    running: str | None = None
    outputs: dict[str, list[str]] = field(default_factory=dict)
    items: list[FailingTest] = field(default_factory=list)
    pending_pkg: list[FailingTest] = field(default_factory=list)
    last_fail: _GoFail | None = None

    def add_crash(self, kind: str, message: str, block: list[str]) -> None:
        """A panic or data race in the running Go test; its package is filled in when the package line comes."""
        test = FailingTest(
            name=self.running or "(unknown test)", framework="go", kind=kind, message=message, excerpt="\n".join(block)
        )
        self.items.append(test)
        self.pending_pkg.append(test)


def strip_timestamps(text: str) -> list[str]:
    """The log's lines without GitHub's per-line timestamps."""
    return [_TIMESTAMP.sub("", line) for line in text.splitlines()]


def parse_job_log(text: str, *, truncated: bool = False) -> list[FailingTest]:
    """Failing tests in a CI job log (Go, gotestsum, go test -json, pytest, panics, data races)."""
    lines = strip_timestamps(text)
    if truncated and lines:
        lines = lines[1:]  # the tail starts mid-line
    st = _State()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith('{"') and '"Action"' in line:
            _go_json(line, st)
        elif (m := _GO_RUN.match(line)) is not None:
            st.running = m.group(1)
            st.outputs.setdefault(st.running, [])
            st.last_fail = None
        elif (m := _GO_FAIL.match(line)) is not None:
            name = m.group(2)
            prior = [o for o in st.outputs.get(name, []) if _GO_OUTPUT.match(o)]
            test = FailingTest(name=name, framework="go", message=_go_message(prior))
            test.excerpt = "\n".join(st.outputs.get(name, [])[-20:])
            st.items.append(test)
            st.pending_pkg.append(test)
            st.last_fail = _GoFail(test)
        elif (m := _GOTESTSUM_FAIL.match(line)) is not None:
            test = FailingTest(name=m.group(2), package=m.group(1), framework="go")
            st.items.append(test)
            st.last_fail = _GoFail(test)
        elif (m := _GO_PKG.match(line)) is not None:
            for test in st.pending_pkg:
                test.package = test.package or m.group(2)
            st.pending_pkg.clear()
            st.last_fail = None
        elif (m := _PYTEST.match(line)) is not None:
            nodeid = m.group(2)
            file, _, rest = nodeid.partition("::")
            st.items.append(
                FailingTest(
                    name=rest or file,
                    file=file,
                    framework="pytest",
                    kind="failure" if m.group(1) == "FAILED" else "error",
                    message=(m.group(3) or "").strip(),
                    package=file[:-3].replace("/", ".") if file.endswith(".py") else "",
                )
            )
        elif line.startswith("WARNING: DATA RACE"):
            block, i = _until(lines, i, lambda s: s.startswith("=================="), 40)
            frames = [f"{fm.group(1)}:{fm.group(2)}" for b in block if (fm := _RACE_FRAME.match(b))]
            first = next((b.strip() for b in block[1:] if b.strip()), "")
            where = f" at {_RUNNER_PATH.sub('', frames[0])}" if frames else ""
            st.add_crash("data-race", f"data race{where}: {first}", block)
            continue
        elif (m := _PANIC.match(line)) is not None:
            block, i = _until(lines, i, lambda s: s.startswith(("FAIL", "ok ", "##[")), 30, include=False)
            st.add_crash("panic", f"panic: {m.group(1)}", block)
            continue
        elif st.last_fail is not None and st.last_fail.collecting:
            if line.startswith("    ") and line.strip():
                out = _GO_OUTPUT.match(line)
                if out and not st.last_fail.test.message:
                    st.last_fail.test.message = f"{out.group(1)}:{out.group(2)}: {out.group(3)}"
                st.last_fail.test.excerpt = (st.last_fail.test.excerpt + "\n" + line).strip("\n")
            else:
                st.last_fail.collecting = False
        elif st.running is not None and line.startswith("    "):
            st.outputs.setdefault(st.running, []).append(line)
            if len(st.outputs[st.running]) > 200:
                del st.outputs[st.running][:100]
        i += 1
    return _merge(st.items)


def _until(lines: list[str], start: int, stop: Any, limit: int, *, include: bool = True) -> tuple[list[str], int]:
    """Lines from `start` to the one `stop` accepts (kept when `include`), at most `limit`; and the next index."""
    block = [lines[start]]
    j = start + 1
    while j < len(lines) and len(block) < limit:
        if stop(lines[j]):
            if include:
                block.append(lines[j])
                j += 1
            break
        block.append(lines[j])
        j += 1
    return block, j


def _go_message(outputs: list[str]) -> str:
    for line in outputs:
        m = _GO_OUTPUT.match(line)
        if m and "race detected during execution" not in m.group(3):
            return f"{m.group(1)}:{m.group(2)}: {m.group(3)}"
    return ""


def _go_json(line: str, st: _State) -> None:
    try:
        event = json.loads(line)
    except ValueError:
        return
    if not isinstance(event, dict) or not event.get("Test"):
        return
    name = str(event["Test"])
    if event.get("Action") == "output":
        out = str(event.get("Output", "")).rstrip("\n")
        buf = st.outputs.setdefault(name, [])
        buf.append(out)
        if len(buf) > 200:
            del buf[:100]
    elif event.get("Action") == "fail":
        outputs = st.outputs.get(name, [])
        test = FailingTest(
            name=name,
            package=str(event.get("Package", "")),
            framework="go",
            message=_go_message(outputs),
            excerpt="\n".join(o for o in outputs[-20:] if not o.startswith(("=== ", "--- "))),
        )
        if any("WARNING: DATA RACE" in o for o in outputs):
            test.kind = "data-race"
        elif any(o.startswith("panic: ") for o in outputs):
            test.kind = "panic"
            test.message = next(o for o in outputs if o.startswith("panic: "))
        st.items.append(test)


def _merge(items: list[FailingTest]) -> list[FailingTest]:
    """One entry per test: a race or panic folds into the test's FAIL line; parents of failing subtests go."""
    by_name: dict[tuple[str, str], FailingTest] = {}
    order: list[tuple[str, str]] = []
    for item in items:
        key = (item.framework, item.name)
        seen = by_name.get(key)
        if seen is None:
            by_name[key] = item
            order.append(key)
            continue
        special = item if item.kind in ("data-race", "panic") else seen if seen.kind in ("data-race", "panic") else None
        if special is not None:
            seen.kind = special.kind
            seen.message = special.message or seen.message
            seen.excerpt = special.excerpt or seen.excerpt
        seen.package = seen.package or item.package
        seen.message = seen.message or item.message
    names = {name for fw, name in order if fw == "go"}
    result = []
    for key in order:
        item = by_name[key]
        if item.framework == "go" and item.kind == "failure" and any(n.startswith(item.name + "/") for n in names):
            continue
        item.message = excerpt(item.message.strip(), MESSAGE_LIMIT)
        item.excerpt = excerpt(item.excerpt.strip("\n"), EXCERPT_CHARS)
        result.append(item)
    return result


# -- phase mapping ----------------------------------------------------------------------------


class PhaseMapper:
    """Which of our phases a CI test belongs to (run regex, test files, paths, packages)."""

    def __init__(self, project: Project, phases: PhaseSet) -> None:
        self.project = project
        self.phases = [p for p in phases.phases if p.runner is not Runner.COMMAND]
        self._files: dict[str, str] = {}

    def _read(self, rel: str) -> str:
        if rel not in self._files:
            try:
                path = self.project.resolve_path(rel)
                self._files[rel] = path.read_text(encoding="utf-8", errors="replace")[:2_000_000]
            except (ItestError, OSError):
                self._files[rel] = ""
        return self._files[rel]

    def phases_for(self, test: FailingTest) -> list[str]:
        """Names of the phases that run `test`, most specific (those with a `run` filter) first."""
        hits = [p for p in self.phases if self._matches(p, test)]
        hits.sort(key=lambda p: (p.run is None and p.keyword is None, p.order, p.name))
        return [p.name for p in hits]

    def _matches(self, phase: Phase, test: FailingTest) -> bool:
        if test.framework == "go":
            if phase.runner is not Runner.GO:
                return False
            top = test.name.split("/")[0]
            if phase.run and not _go_run_matches(phase.run, top):
                return False
            if phase.test_files:
                needle = re.compile(rf"^func {re.escape(top)}\(", re.M)
                return any(needle.search(self._read(f)) for f in phase.test_files)
            return _package_matches(phase.packages, test.package)
        if phase.runner is not Runner.PYTEST:
            return False
        if phase.keyword and phase.keyword not in test.name:
            return False
        roots = [p.rstrip("/") for p in (phase.paths or phase.test_files)]
        if not roots or test.file is None:
            return True
        file = test.file.removeprefix("./")
        return any(file == r or file.startswith(r + "/") or r in (".", "") for r in roots)


def _go_run_matches(run: str, top: str) -> bool:
    for pattern in (run, run.split("/")[0]):
        try:
            if re.search(pattern, top):
                return True
        except re.error:
            continue
    return False


def _package_matches(packages: list[str], package: str) -> bool:
    if not package or not packages:
        return True
    for spec in packages:
        rel = spec.removeprefix("./").removesuffix("/...").removesuffix("...").strip("/")
        if rel in ("", "."):
            return True
        if package == rel or package.endswith("/" + rel) or ("/" + rel + "/") in package + "/":
            return True
    return False


# -- repository and branch ----------------------------------------------------------------------


def parse_remote_url(url: str) -> tuple[str, str] | None:
    """(host, OWNER/NAME) from a git remote URL (https, ssh://, scp-like), or None."""
    text = url.strip()
    scp = re.fullmatch(r"[\w.-]+@([\w.-]+):(?!/)(.+)", text)
    if scp:
        host, path = scp.group(1), scp.group(2)
    else:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https", "ssh", "git") or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
    pieces = [p for p in path.strip("/").removesuffix(".git").split("/") if p]
    if len(pieces) < 2:
        return None
    try:
        return host, parse_repo_name("/".join(pieces[-2:]))
    except InputError:
        return None


def resolve_repo(project: Project, explicit: str | None, settings: GitHubSettings) -> tuple[str, str]:
    """OWNER/NAME and its source: the argument, [github] repo, or the `origin` remote."""
    if explicit:
        return parse_repo_name(explicit), "argument"
    if settings.repo:
        return settings.repo, "[github] repo"
    try:
        url = project.git("remote", "get-url", "origin", timeout=15).strip()
    except ItestError as exc:
        raise InputError(
            f"cannot tell which GitHub repository this is: {exc}; pass --repo-name OWNER/NAME "
            'or set [github] repo = "OWNER/NAME" in itest.toml'
        ) from exc
    parsed = parse_remote_url(url)
    if parsed is None:
        shown = re.sub(r"//[^@/]*@", "//", url)  # never repeat credentials embedded in a remote URL
        raise InputError(
            f"the origin remote {shown!r} is not a GitHub OWNER/NAME URL; pass --repo-name OWNER/NAME "
            "or set [github] repo in itest.toml"
        )
    return parsed[1], f"origin remote ({parsed[0]})"


def current_branch(project: Project) -> str | None:
    """The checked-out branch, or None when HEAD is detached or unborn."""
    try:
        name = project.git("rev-parse", "--abbrev-ref", "HEAD", timeout=15, check=True).strip()
    except ItestError:
        return None
    return None if not name or name == "HEAD" else name


def check_branch(branch: str) -> str:
    """Refuse a branch that looks like a flag or holds characters git forbids in ref names."""
    if branch.startswith("-"):
        raise UnsafeArgumentError("branch", branch)
    if not branch or re.search(r"[\x00-\x20~^:?*\[\\\x7f]|\.\.|@\{", branch):
        raise InputError(f"branch {branch!r} is not a valid git branch name; give a name like 'main' or 'feature/x'")
    return branch


# -- fetching ---------------------------------------------------------------------------------------


async def review_ci_failures(
    project: Project,
    client: GitHubClient,
    *,
    branch: str | None = None,
    limit: int = 5,
    repo: str | None = None,
    settings: GitHubSettings | None = None,
    deadline: float | None = None,
    integration_only: bool = False,
    api_url_source: str = "",
) -> CiFailures:
    """Recent failed workflow runs with their failed jobs, steps and failing tests mapped to our phases."""
    if not 1 <= limit <= MAX_RUNS:
        raise InputError(f"limit {limit} is out of range; ask for 1 to {MAX_RUNS} runs")
    settings = settings or load_github_settings(project)
    full_name, repo_source = resolve_repo(project, repo, settings)
    if branch is not None:
        branch = check_branch(branch)
    else:
        branch = current_branch(project)
    if deadline is None:
        deadline = client.deadline_in(settings.timeout)
    phase_set = load_phases(project)
    mapper = PhaseMapper(project, phase_set)
    integration_re = re.compile(settings.integration_jobs)
    notes: list[str] = []
    if client.token is None:
        notes.append("no GitHub token found: public runs are listed, but job logs need a token with actions:read")
    waits_before = len(client.waits)

    params: dict[str, str | int] = {"status": "failure", "per_page": limit, "exclude_pull_requests": "true"}
    if branch:
        params["branch"] = branch
    data = await client.get_json(f"/repos/{full_name}/actions/runs", params=params, deadline=deadline)
    if not isinstance(data, dict) or not isinstance(data.get("workflow_runs"), list):
        raise GitHubError(f"GET /repos/{full_name}/actions/runs did not return workflow_runs; is this GitHub's API?")
    raw_runs = [r for r in data["workflow_runs"] if isinstance(r, dict)][:limit]
    runs = [_run_model(r) for r in raw_runs]

    async def fill_run(run: FailedRun) -> None:
        try:
            jobs = await client.get_json(
                f"/repos/{full_name}/actions/runs/{run.id}/jobs",
                params={"filter": "latest", "per_page": 100},
                deadline=deadline,
            )
        except GitHubError as exc:
            notes.append(f"run {run.id}: jobs not read: {exc}")
            return
        for job in jobs.get("jobs", []) if isinstance(jobs, dict) else []:
            if not isinstance(job, dict) or job.get("conclusion") not in ("failure", "timed_out"):
                continue
            run.failed_jobs.append(_job_model(job, integration_re))

        async def fill_job(job: FailedJob) -> None:
            await _fill_job_log(client, full_name, job, mapper, settings, deadline)

        async with anyio.create_task_group() as tg:
            for job in run.failed_jobs:
                tg.start_soon(fill_job, job)

    async with anyio.create_task_group() as tg:
        for run in runs:
            tg.start_soon(fill_run, run)

    if integration_only:
        for run in runs:
            run.failed_jobs = [j for j in run.failed_jobs if j.integration or any(t.phases for t in j.failing_tests)]
        runs = [r for r in runs if r.failed_jobs]

    hits: dict[str, list[str]] = {}
    unmapped: list[str] = []
    for run in runs:
        for job in run.failed_jobs:
            for test in job.failing_tests:
                for phase in test.phases:
                    if test.name not in hits.setdefault(phase, []):
                        hits[phase].append(test.name)
                if not test.phases and test.name not in unmapped:
                    unmapped.append(test.name)
    order = {p.name: i for i, p in enumerate(phase_set.phases)}
    phase_hits = [PhaseHit(phase=k, tests=v) for k, v in sorted(hits.items(), key=lambda kv: order.get(kv[0], 0))]
    if not runs:
        where = f"branch {branch!r}" if branch else "any branch"
        notes.append(f"no failed workflow runs on {where} of {full_name}")
    return CiFailures(
        repo=full_name,
        repo_source=repo_source,
        branch=branch,
        api_url=client.api_url + (f" ({api_url_source})" if api_url_source else ""),
        token=token_info(client.token),
        failed_runs_total=int(data.get("total_count", len(runs)) or 0),
        runs=runs,
        phases=phase_hits,
        unmapped_tests=unmapped[:100],
        waits=client.waits[waits_before:],
        notes=notes,
    )


async def recent_integration_failures(
    project: Project, client: GitHubClient, *, branch: str | None, limit: int
) -> CiFailures:
    """Failed runs of `branch` whose failed jobs are integration jobs or ran tests of our phases."""
    return await review_ci_failures(project, client, branch=branch, limit=limit, integration_only=True)


async def _fill_job_log(
    client: GitHubClient,
    full_name: str,
    job: FailedJob,
    mapper: PhaseMapper,
    settings: GitHubSettings,
    deadline: float | None,
) -> None:
    path = f"/repos/{full_name}/actions/jobs/{job.id}/logs"
    try:
        response = await client.request("GET", path, deadline=deadline, tail_bytes=settings.log_tail_bytes)
    except GitHubError as exc:
        job.log.note = f"log not read: {exc}"
        return
    if response.status in (404, 410):
        job.log.note = "log not available (expired or deleted; GitHub keeps logs 90 days by default)"
        return
    if response.status in (401, 403):
        job.log.note = f"log not readable ({response.status}): the token needs actions:read on {full_name}"
        return
    if response.status == 416:  # a Range on an empty log
        job.log.note = "the log is empty"
        return
    if not 200 <= response.status < 300:
        job.log.note = f"log download answered {response.status}"
        return
    job.log = LogInfo(bytes_read=len(response.body), total_bytes=response.total_size, truncated=response.truncated)
    if response.truncated:
        kept = len(response.body) // 1024
        job.log.note = f"only the last {kept} KiB were read; the full log is at {job.html_url or 'the job page'}"
    text = client.scrub(response.body.decode("utf-8", errors="replace"))
    tests = parse_job_log(text, truncated=response.truncated)
    for test in tests:
        test.phases = mapper.phases_for(test)
    job.failing_tests = tests[:MAX_TESTS_PER_JOB]
    job.tests_omitted = max(0, len(tests) - MAX_TESTS_PER_JOB)
    if not job.integration and any(t.phases for t in job.failing_tests):
        job.integration = any(_is_integration_phase(mapper, p) for t in job.failing_tests for p in t.phases)


def _is_integration_phase(mapper: PhaseMapper, name: str) -> bool:
    for phase in mapper.phases:
        if phase.name == name:
            text = " ".join([phase.name, *phase.tags, *phase.packages, *phase.paths, phase.markers or ""])
            return "integration" in text.lower()
    return False


def _run_model(r: dict[str, Any]) -> FailedRun:
    return FailedRun(
        id=int(r.get("id", 0)),
        name=str(r.get("name") or r.get("display_title") or ""),
        run_number=r.get("run_number") if isinstance(r.get("run_number"), int) else None,
        attempt=r.get("run_attempt") if isinstance(r.get("run_attempt"), int) else None,
        branch=r.get("head_branch") if isinstance(r.get("head_branch"), str) else None,
        head_sha=str(r.get("head_sha") or ""),
        event=str(r.get("event") or ""),
        conclusion=r.get("conclusion") if isinstance(r.get("conclusion"), str) else None,
        created_at=r.get("created_at") if isinstance(r.get("created_at"), str) else None,
        html_url=str(r.get("html_url") or ""),
    )


def _job_model(job: dict[str, Any], integration_re: re.Pattern[str]) -> FailedJob:
    steps = [
        FailedStep(number=int(s.get("number", 0)), name=str(s.get("name", "")), conclusion=str(s.get("conclusion")))
        for s in job.get("steps") or []
        if isinstance(s, dict) and s.get("conclusion") in ("failure", "timed_out", "cancelled")
    ]
    name = str(job.get("name", ""))
    return FailedJob(
        id=int(job.get("id", 0)),
        name=name,
        conclusion=str(job.get("conclusion")),
        html_url=str(job.get("html_url") or ""),
        integration=bool(integration_re.search(name)) or any(integration_re.search(s.name) for s in steps),
        failed_steps=steps,
    )


def render_ci(result: CiFailures) -> str:
    """The review as terminal text."""
    lines = [f"repo:   {result.repo}  ({result.repo_source})", f"branch: {result.branch or 'all branches'}"]
    lines.append(f"token:  {result.token.describe()}")
    lines.append(f"failed runs: {result.failed_runs_total} on GitHub, {len(result.runs)} shown")
    for run in result.runs:
        lines.append("")
        lines.append(f"run {run.id} #{run.run_number} {run.name} [{run.branch}] {run.head_sha[:8]}  {run.html_url}")
        for job in run.failed_jobs:
            tag = " (integration)" if job.integration else ""
            lines.append(f"  job {job.name}{tag}: {job.conclusion}")
            for step in job.failed_steps:
                lines.append(f"    step {step.number} {step.name}: {step.conclusion}")
            for test in job.failing_tests:
                phases = f"  → {', '.join(test.phases)}" if test.phases else ""
                lines.append(f"    {test.kind}: {test.name}{phases}")
                if test.message:
                    lines.append(f"      {test.message.splitlines()[0][:200]}")
            if job.tests_omitted:
                lines.append(f"    … {job.tests_omitted} more failing tests")
            if job.log.note:
                lines.append(f"    log: {job.log.note}")
    if result.phases:
        lines.append("")
        lines.append("phases hit:")
        for hit in result.phases:
            lines.append(f"  {hit.phase}: {', '.join(hit.tests)}")
    for wait in result.waits:
        lines.append(f"waited {wait.waited_s:.1f} s on {wait.method} {wait.path} ({wait.reason.value}, {wait.basis})")
    for note in result.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)
