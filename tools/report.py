"""`build_report`: the four-section report from run folders, history and the other tools' latest results.

Sections, always these four and in this order: Test Execution Summary, Critical
Findings, Coverage Analysis, Recommendations. Every line is derived from data a
run, history or a tool left behind (run ids, durations, counts, file:line,
messages); a section with nothing to report says so with the numbers behind it.
A result the report cannot read (a corrupt latest result, a coverage file that
does not parse, a locked history) becomes a finding, never a failed report.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections import Counter
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from .errors import HistoryError, ItestError, NotFoundError, ParseError
from .flaky import DEFAULT_WINDOW, SLOW_MIN_DELTA_S, SLOW_RATIO, FlakyReport, TestStats, flaky_tests
from .history import RUN_FILE, TESTS_FILE, check_run_id, list_run_ids, unknown_run_error
from .models import Failure, Model, Outcome, PhaseRun, RunStatus, TestResult, TestTiming, Totals
from .phases import Phase, Runner
from .repo import Project
from .results_store import ERROR_KEY, load_latest

SECTIONS = ("Test Execution Summary", "Critical Findings", "Coverage Analysis", "Recommendations")
MAX_RUNS = 50
MAX_FAILURES = 100
SLOW_TEST_MIN_S = 1.0
SLOW_TEST_SHARE = 0.25
"""A test is a performance finding at ≥ SLOW_TEST_MIN_S and ≥ SLOW_TEST_SHARE of its phase's wall time: below
either, speeding it up would not shorten the phase noticeably (history regressions are reported regardless)."""
SUBTEST_EXPLAINS = 0.5
MAX_SLOW_FINDINGS = 5
MAX_SLOWDOWNS = 10
WELL_COVERED = 80.0
REPORT_ID = re.compile(r"^report-\d{8}T\d{6}-\d{6}$")


class Cause(StrEnum):
    """Why a test failed, derived from its failure data."""

    ASSERTION = "assertion"
    TIMEOUT = "timeout"
    PANIC = "panic"
    DATA_RACE = "data race"
    BUILD = "build"
    NETWORK = "network"
    AUTH = "auth"
    RATE_LIMIT = "rate limit"
    ENVIRONMENT = "environment"
    UNCLASSIFIED = "unclassified"


# Checked in this order: the first match names the cause. Signals a runtime prints
# (race, panic, build, timeout) beat words a test author may have put in an assertion.
CAUSE_PATTERNS: tuple[tuple[Cause, re.Pattern[str]], ...] = (
    (Cause.DATA_RACE, re.compile(r"WARNING: DATA RACE|race detected during execution of test")),
    (Cause.PANIC, re.compile(r"^\s*panic: |goroutine \d+ \[running\]", re.MULTILINE)),
    (
        Cause.BUILD,
        re.compile(
            r"\[build failed\]|build failed|\bundefined: |declared and not used|imported and not used|"
            r"syntax error|SyntaxError|ImportError|errors? during collection|cannot use .+ as .+ value",
        ),
    ),
    (
        Cause.TIMEOUT,
        re.compile(
            r"test timed out after|deadline exceeded|i/o timeout|\btimed out\b|TimeoutError|ReadTimeout|"
            r"ConnectTimeout|Timeout exceeded",
            re.IGNORECASE,
        ),
    ),
    (
        Cause.RATE_LIMIT,
        re.compile(r"rate.?limit|\b429\b|too many requests|x-ratelimit-remaining:\s*0|RateLimitError", re.IGNORECASE),
    ),
    (
        Cause.AUTH,
        re.compile(
            r"\b401\b|\b403\b|unauthori[sz]ed|bad credentials|forbidden|authentication (?:failed|required)|"
            r"invalid token|requires authentication",
            re.IGNORECASE,
        ),
    ),
    (
        Cause.NETWORK,
        re.compile(
            r"connection refused|connection reset|no such host|dial tcp|network is unreachable|broken pipe|"
            r"unexpected EOF|ConnectionError|ConnectError|RemoteDisconnected|TLS handshake|name resolution",
            re.IGNORECASE,
        ),
    ),
    (
        Cause.ENVIRONMENT,
        re.compile(
            r"executable file not found|command not found|No such file or directory|permission denied|"
            r"ModuleNotFoundError|environment variable|GITHUB_TOKEN|GH_TOKEN|address already in use|"
            r"too many open files|no space left on device|is not on PATH",
            re.IGNORECASE,
        ),
    ),
    (
        Cause.ASSERTION,
        re.compile(
            r"AssertionError|\bassert\b|Error Trace|Not equal|expected|\bwant\b|\bgot\b|!=|mismatch|should (?:be|have)",
            re.IGNORECASE,
        ),
    ),
)
# Literal fragments (lower case) one of which a pattern's match must contain: a cheap `in` test
# skips most regex searches, which on long excerpts cost milliseconds each.
NEEDLES: dict[Cause, tuple[str, ...]] = {
    Cause.DATA_RACE: ("data race", "race detected"),
    Cause.PANIC: ("panic: ", "goroutine "),
    Cause.BUILD: (
        "build failed", "undefined: ", "declared and not used", "imported and not used", "syntax error",
        "syntaxerror", "importerror", "during collection", "cannot use ",
    ),
    Cause.TIMEOUT: ("timed out", "deadline exceeded", "timeout"),
    Cause.RATE_LIMIT: ("rate", "429", "too many requests"),
    Cause.AUTH: ("401", "403", "unauthori", "credentials", "forbidden", "authentication", "invalid token"),
    Cause.NETWORK: (
        "connection", "no such host", "dial tcp", "unreachable", "broken pipe", "eof", "connecterror",
        "remotedisconnected", "tls handshake", "name resolution",
    ),
    Cause.ENVIRONMENT: (
        "not found", "no such file", "permission denied", "modulenotfounderror", "environment variable",
        "github_token", "gh_token", "address already in use", "too many open files", "no space left", "not on path",
    ),
}  # fmt: skip
PARSER_KINDS: dict[str, Cause] = {
    "data-race": Cause.DATA_RACE,
    "race": Cause.DATA_RACE,
    "panic": Cause.PANIC,
    "timeout": Cause.TIMEOUT,
    "build": Cause.BUILD,
}


CLASSIFY_HEAD = 600
CLASSIFY_TAIL = 1400


def classify(failure: Failure) -> tuple[Cause, str]:
    """The cause class of a failure and the line of data it was read from."""
    return _classify(failure.message, failure.excerpt, failure.kind, failure.outcome)


@functools.lru_cache(maxsize=4096)
def _classify(message: str, excerpt: str, kind: str | None, outcome: Outcome) -> tuple[Cause, str]:
    # A failure prints its cause near the start (panic:, WARNING: DATA RACE) or the end (the
    # assertion, "race detected"); the middle of a long excerpt is stack frames. Bounding the text
    # keeps nine patterns over hundreds of failures well inside the report's time budget.
    if len(excerpt) > CLASSIFY_HEAD + CLASSIFY_TAIL:
        excerpt = excerpt[:CLASSIFY_HEAD] + "\n" + excerpt[-CLASSIFY_TAIL:]
    failure = Failure(test="", message=message, excerpt=excerpt, kind=kind, outcome=outcome)
    text = "\n".join(part for part in (message, excerpt) if part)
    strong = PARSER_KINDS.get(failure.kind or "")
    if strong is not None:
        return strong, f"the test output parser marked it {failure.kind!r}" + _quote_match(strong, text)
    lower = text.lower()
    for cause, pattern in CAUSE_PATTERNS:
        needles = NEEDLES.get(cause)
        if needles is not None and not any(n in lower for n in needles):
            continue
        match = pattern.search(text)
        if match:
            return cause, _evidence(failure, text, match)
    if failure.kind == "assertion" or (failure.outcome is Outcome.FAILED and text.strip()):
        return (
            Cause.ASSERTION,
            "the test reported a failure of its own check; no panic, timeout, network or build signal",
        )
    return Cause.UNCLASSIFIED, "no message or output was captured for this failure"


def _quote_match(cause: Cause, text: str) -> str:
    for c, pattern in CAUSE_PATTERNS:
        if c is cause:
            match = pattern.search(text)
            if match:
                return f"; output line: {_line_of(text, match.start())}"
    return ""


def _evidence(failure: Failure, text: str, match: re.Match[str]) -> str:
    token = match.group(0).strip()
    if match.start() < len(failure.message or ""):
        return f"the message contains {token!r}"
    return f"the output contains {token!r}: {_line_of(text, match.start())}"


def _line_of(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return _clip(text[start : end if end != -1 else len(text)].strip(), 200)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the model ------------------------------------------------------------------------------


class PhaseResult(Model):
    """One run in the summary table."""

    run_id: str
    phase: str
    status: RunStatus
    started_at: datetime
    duration_s: float
    commit: str | None = None
    dirty: bool = False
    totals: Totals
    source: str
    exit_code: int | None = None


class SlowTestEntry(Model):
    """One of the slowest tests of the selected runs."""

    name: str
    classname: str = ""
    phase: str
    run_id: str
    duration_s: float
    share_of_phase: float | None = None


class ExecutionSummary(Model):
    """Test Execution Summary: phases, total time, pass/fail statistics."""

    runs: list[PhaseResult] = Field(default_factory=list)
    total_duration_s: float = 0.0
    totals: Totals = Field(default_factory=Totals)
    pass_rate: float | None = None
    """Passed (flaky included) over tests that ran (skipped excluded)."""
    slowest: list[SlowTestEntry] = Field(default_factory=list)
    covered: list[str] = Field(default_factory=list)
    """Recommended phases not run on their own because a run of a wider phase ran all their tests."""
    github: str | None = None
    """The GitHub API validation that ran with these results, in one line (its problems are findings)."""


class FailureFinding(Model):
    """A failed test, build error or race with its cause class and the data behind it."""

    test: str
    classname: str = ""
    phase: str
    run_id: str
    outcome: Outcome = Outcome.FAILED
    cause: Cause
    cause_evidence: str
    location: str | None = None
    message: str = ""
    excerpt: str = ""
    attempts: int = 1
    history: str | None = None
    """What history says about this test (broken since, flaky rate)."""
    also_failed_in: list[str] = Field(default_factory=list)
    """The other selected runs (any phase) in which it failed too; the finding shows `run_id`'s data."""
    phases: list[str] = Field(default_factory=list)
    """Every phase of the selected runs in which it failed, in run order (one test, one finding)."""
    seen_in: list[str] = Field(default_factory=list)
    """Every selected run in which it failed, in run order."""


class Finding(Model):
    """A performance, environment or input problem, with where the data came from."""

    category: str
    """"performance", "environment" or "input"."""
    title: str
    detail: str = ""
    run_id: str | None = None
    source: str = ""
    test: str | None = None
    phase: str | None = None


class CriticalFindings(Model):
    """Critical Findings: failures with cause classes, performance issues, environment problems."""

    failures: list[FailureFinding] = Field(default_factory=list)
    failures_omitted: int = 0
    causes: dict[str, int] = Field(default_factory=dict)
    performance: list[Finding] = Field(default_factory=list)
    environment: list[Finding] = Field(default_factory=list)


class CoverageFile(Model):
    """A file or package with its coverage."""

    name: str
    percent: float


class CoverageGapEntry(Model):
    """Lines a coverage result marks as not covered."""

    file: str
    lines: str = ""
    detail: str = ""


class TestIdea(Model):
    """A test to add, with the coverage data behind it."""

    __test__ = False

    text: str
    evidence: str


class CoverageAnalysis(Model):
    """Coverage Analysis: well-covered areas, gaps, scenarios the suites never exercise."""

    source: str | None = None
    total_percent: float | None = None
    total_lines: str | None = None
    """"covered/measured over N files"."""
    changed_lines_percent: float | None = None
    changed_lines: str | None = None
    well_covered: list[CoverageFile] = Field(default_factory=list)
    gaps: list[CoverageGapEntry] = Field(default_factory=list)
    unexercised: list[str] = Field(default_factory=list)
    test_ideas: list[TestIdea] = Field(default_factory=list)
    """New tests the coverage result calls for (its ranked gaps and scenario suggestions)."""
    notes: list[str] = Field(default_factory=list)


class Recommendation(Model):
    """One action, with the data that calls for it."""

    category: str
    """"fix", "reliability", "performance" or "new-test"."""
    text: str
    evidence: str


class ReportFiles(Model):
    """Where the report was saved (project-relative)."""

    json_path: str | None = None
    markdown: str | None = None
    html: str | None = None
    out: str | None = None


class Report(Model):
    """The four-section report over a set of runs."""

    report_id: str
    created_at: datetime
    project_root: str
    commit: str | None = None
    run_ids: list[str]
    selection: str
    """Why these runs (given, since the last report, of the current commit, latest per phase)."""
    summary: ExecutionSummary
    findings: CriticalFindings
    coverage: CoverageAnalysis
    recommendations: list[Recommendation] = Field(default_factory=list)
    history: FlakyReport | None = None
    files: ReportFiles = Field(default_factory=ReportFiles)


# -- selecting and reading runs -----------------------------------------------------------


def load_run_summary(project: Project, run_id: str) -> PhaseRun:
    """A run folder's PhaseRun without its full test list (the report needs counts and failures)."""
    folder = project.runs_dir / check_run_id(run_id)
    if not (folder / RUN_FILE).is_file():
        raise unknown_run_error(project, run_id)
    try:
        return PhaseRun.model_validate_json((folder / RUN_FILE).read_bytes())
    except (OSError, ValidationError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise HistoryError(f"{project.rel(folder)}/{RUN_FILE} cannot be read: {first}") from exc


def flaky_in_run(project: Project, run_id: str) -> list[TestResult]:
    """Tests of one run that failed and then passed on a rerun (scanned cheaply from tests.jsonl)."""
    path = project.runs_dir / run_id / TESTS_FILE
    found: list[TestResult] = []
    try:
        with path.open("rb") as handle:
            for line in handle:
                if b'"flaky"' not in line:
                    continue
                try:
                    test = TestResult.model_validate_json(line)
                except (ValidationError, ValueError):
                    continue
                if test.outcome is Outcome.FLAKY:
                    found.append(test)
    except OSError:
        return []
    return found


def latest_report_path(project: Project) -> Path | None:
    """The newest saved report's JSON, or None."""
    reports = sorted(p for p in project.reports_dir.glob("report-*.json") if REPORT_ID.match(p.stem))
    return reports[-1] if reports else None


def _no_runs_error(project: Project) -> NotFoundError:
    hint = "`itest-mcp phases` lists them"
    try:
        from .phases import list_phases

        names = [p.name for p in list_phases(project).phases if p.available]
        if names:
            hint = f"phases here: {', '.join(names)}"
    except ItestError:
        pass
    return NotFoundError(
        f"no test runs yet in {project.rel(project.runs_dir)}; run a phase first "
        f"(`itest-mcp run <phase>` or the run_phase tool; {hint}), or `itest-mcp workflow` for the whole workflow"
    )


def select_runs(project: Project, run_ids: list[str] | None) -> tuple[list[str], str]:
    """The runs a report covers and why: given ids, else runs since the last report, else the current commit's."""
    if run_ids:
        for run_id in run_ids:
            check_run_id(run_id)
            if not (project.runs_dir / run_id / RUN_FILE).is_file():
                raise unknown_run_error(project, run_id)
        unique = list(dict.fromkeys(run_ids))
        return unique, f"the {len(unique)} run(s) asked for"
    all_ids = list_run_ids(project)
    if not all_ids:
        raise _no_runs_error(project)
    last = latest_report_path(project)
    if last is not None:
        try:
            previous = json.loads(last.read_text(encoding="utf-8"))
            covered = [str(r) for r in previous.get("run_ids", [])]
        except (OSError, ValueError, AttributeError):
            covered = []
        if covered:
            newest = max(covered)
            since = [r for r in all_ids if r > newest]
            if since:
                return since[-MAX_RUNS:], f"the {len(since)} run(s) since the last report {last.stem}"
    head = project.head_commit()
    if head:
        at_head = []
        for run_id in all_ids[-500:]:
            try:
                if load_run_summary(project, run_id).commit == head:
                    at_head.append(run_id)
            except ItestError:
                continue
        if at_head:
            return at_head[-MAX_RUNS:], f"the {len(at_head)} run(s) of the current commit {head[:12]}"
    latest: dict[str, str] = {}
    for run_id in all_ids[-500:]:
        try:
            latest[load_run_summary(project, run_id).phase] = run_id
        except ItestError:
            continue
    chosen = sorted(latest.values())
    return chosen, f"the latest run of each phase ({len(chosen)}), as none is newer than the last report"


# -- sections ---------------------------------------------------------------------------------


def _summary(runs: list[PhaseRun]) -> ExecutionSummary:
    summary = ExecutionSummary()
    totals = summary.totals
    for run in runs:
        t = run.report.totals
        summary.runs.append(
            PhaseResult(
                run_id=run.run_id,
                phase=run.phase,
                status=run.status,
                started_at=run.started_at,
                duration_s=run.duration_s,
                commit=run.commit,
                dirty=run.dirty,
                totals=t,
                source=run.report.source.value,
                exit_code=run.exit_code,
            )
        )
        summary.total_duration_s += run.duration_s
        for name in ("tests", "passed", "failed", "errors", "skipped", "flaky", "attempts"):
            setattr(totals, name, getattr(totals, name) + getattr(t, name))
    summary.total_duration_s = round(summary.total_duration_s, 3)
    ran = totals.tests - totals.skipped
    summary.pass_rate = round((totals.passed + totals.flaky) / ran, 4) if ran > 0 else None
    slow: list[SlowTestEntry] = []
    for run in runs:
        for timing in run.report.slowest:
            share = timing.duration_s / run.duration_s if run.duration_s > 0 else None
            slow.append(
                SlowTestEntry(
                    name=timing.name,
                    classname=timing.classname,
                    phase=run.phase,
                    run_id=run.run_id,
                    duration_s=timing.duration_s,
                    share_of_phase=round(min(share, 1.0), 4) if share is not None else None,
                )
            )
    # One entry per test across phases (a test of `slow` runs again in `all`): its slowest run, and of
    # equal ones the run where it weighed most.
    best: dict[tuple[str, str], SlowTestEntry] = {}
    for entry in slow:
        key = (entry.classname, entry.name)
        rank = (round(entry.duration_s, 1), entry.share_of_phase or 0.0)
        if key not in best or rank > (round(best[key].duration_s, 1), best[key].share_of_phase or 0.0):
            best[key] = entry
    summary.slowest = sorted(best.values(), key=lambda s: s.duration_s, reverse=True)[:10]
    return summary


def _history_note(stats: TestStats | None) -> str | None:
    if stats is None:
        return None
    rate = f"failure rate {stats.failure_rate:.0%} over {stats.runs} run(s)"
    return f"{stats.status.value}: {stats.evidence}; {rate}" if stats.evidence else rate


def _failures(runs: list[PhaseRun], history: FlakyReport | None) -> CriticalFindings:
    findings = CriticalFindings()
    by_key: dict[str, TestStats] = {}
    if history is not None:
        for stats in (*history.broken, *history.flaky, *history.failing):
            by_key[stats.key] = stats
            by_key.setdefault(stats.name, stats)
    items: list[FailureFinding] = []
    for run in runs:
        races_by_test = {race.test: race for race in run.report.races if race.test}
        seen_tests: set[str] = set()
        for failure in run.report.failures:
            cause, evidence = classify(failure)
            race = races_by_test.get(failure.test)
            location = failure.location
            if race is not None:
                cause = Cause.DATA_RACE
                where = ", ".join(str(loc) for loc in race.locations[:3])
                evidence = "a WARNING: DATA RACE block ran during this test" + (f" (at {where})" if where else "")
                location = location or (race.locations[0] if race.locations else None)
            if cause is Cause.UNCLASSIFIED and run.status is RunStatus.TIMEOUT:
                cause, evidence = Cause.TIMEOUT, f"the phase hit its timeout after {run.duration_s:.1f} s"
            key = f"{failure.classname}::{failure.test}" if failure.classname else failure.test
            seen_tests.add(failure.test)
            items.append(
                FailureFinding(
                    test=failure.test,
                    classname=failure.classname,
                    phase=run.phase,
                    run_id=run.run_id,
                    outcome=failure.outcome,
                    cause=cause,
                    cause_evidence=evidence,
                    location=str(location) if location else None,
                    message=_clip(failure.message.strip(), 500),
                    excerpt=_clip_tail(failure.excerpt, 1200),
                    attempts=failure.attempts,
                    history=_history_note(by_key.get(key) or by_key.get(failure.test)),
                )
            )
        for race in run.report.races:
            if race.test and race.test in seen_tests:
                continue
            items.append(
                FailureFinding(
                    test=race.test or "(no test attributed)",
                    classname=race.package,
                    phase=run.phase,
                    run_id=run.run_id,
                    cause=Cause.DATA_RACE,
                    cause_evidence="a WARNING: DATA RACE block in the output",
                    location=str(race.locations[0]) if race.locations else None,
                    message="WARNING: DATA RACE",
                    excerpt=_clip_tail(race.excerpt, 1200),
                )
            )
        for build in run.report.build_errors:
            items.append(
                FailureFinding(
                    test=f"{build.package or 'package'} (build)",
                    classname=build.package,
                    phase=run.phase,
                    run_id=run.run_id,
                    outcome=Outcome.ERROR,
                    cause=Cause.BUILD,
                    cause_evidence="the compiler rejected the package",
                    location=str(build.location) if build.location else None,
                    message=_clip(build.message.strip(), 500),
                )
            )
        for panic in run.report.panics:
            if panic.test and panic.test in seen_tests:
                continue
            items.append(
                FailureFinding(
                    test=panic.test or f"{panic.package or 'test binary'} (panic)",
                    classname=panic.package,
                    phase=run.phase,
                    run_id=run.run_id,
                    outcome=Outcome.ERROR,
                    cause=Cause.PANIC,
                    cause_evidence=f"panic: {_clip(panic.message, 160)}",
                    location=str(panic.location) if panic.location else None,
                    message=_clip(panic.message, 500),
                    excerpt=_clip_tail(panic.excerpt, 1200),
                )
            )
    items = _merge_failures(items, {run.run_id: run.report.totals.tests for run in runs})
    findings.causes = dict(Counter(item.cause.value for item in items).most_common())
    findings.failures = items[:MAX_FAILURES]
    findings.failures_omitted = max(0, len(items) - MAX_FAILURES)
    return findings


def _merge_failures(items: list[FailureFinding], tests_in_run: dict[str, int]) -> list[FailureFinding]:
    """One finding per test (package/classname + name), however many selected runs and phases it failed in.

    A test failing in `api-client` and again in `all` is one problem to fix. The finding keeps the data of
    the most specific run (the one with the fewest tests: its output has the least noise), the latest on a tie,
    and lists every phase and run it was seen in.
    """
    groups: dict[tuple[str, str], list[FailureFinding]] = {}
    for item in items:
        groups.setdefault((item.classname, item.test), []).append(item)
    merged: list[FailureFinding] = []
    for group in groups.values():
        primary = min(group, key=lambda i: (tests_in_run.get(i.run_id, 0), _reverse_key(i.run_id)))
        runs = list(dict.fromkeys(i.run_id for i in group))
        primary.seen_in = runs
        primary.phases = list(dict.fromkeys(i.phase for i in group))
        primary.also_failed_in = [r for r in runs if r != primary.run_id]
        merged.append(primary)
    return merged


def _reverse_key(text: str) -> tuple[int, ...]:
    # min() over (size, this) picks the latest run id among runs of the same size.
    return tuple(-ord(c) for c in text)


def seen_in_text(item: FailureFinding) -> str:
    """Where a failure was seen: "phase race, run R" or "phases api-client, all (runs A, B)"."""
    phases = item.phases or [item.phase]
    runs = item.seen_in or [item.run_id]
    label = "phases" if len(phases) > 1 else "phase"
    if len(runs) == 1:
        return f"{label} {', '.join(phases)}, run {runs[0]}"
    return f"seen in {label} {', '.join(phases)} (runs {', '.join(runs)})"


def _clip_tail(text: str, limit: int) -> str:
    text = text.strip("\n")
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def performance_rule() -> str:
    """The rule the Performance findings follow, as the report states it."""
    return (
        f"a test is listed when it took at least {SLOW_TEST_MIN_S:g} s and at least {SLOW_TEST_SHARE:.0%} of its "
        f"phase's wall time, or when history shows it slowed down (over {SLOW_RATIO:g}× its rolling median and "
        f"{SLOW_MIN_DELTA_S:g} s slower); a parent test is replaced by the subtest that takes at least "
        f"{SUBTEST_EXPLAINS:.0%} of its time; each test is listed once"
    )


def _is_slow(duration_s: float, share: float) -> bool:
    return duration_s >= SLOW_TEST_MIN_S and share >= SLOW_TEST_SHARE


def _explaining_subtest(timing: TestTiming, timings: list[TestTiming]) -> TestTiming:
    """The deepest subtest of `timing` that accounts for most of its time (itself when none does)."""
    best = timing
    for other in timings:
        if (
            other.classname == timing.classname
            and other.name.startswith(timing.name + "/")
            and other.duration_s >= SUBTEST_EXPLAINS * timing.duration_s
            and (other.name.count("/"), other.duration_s) > (best.name.count("/"), best.duration_s)
        ):
            best = other
    return best


def _performance(runs: list[PhaseRun], history: FlakyReport | None) -> list[Finding]:
    # Over the selected runs' slowest tests: a test over the threshold in several phases (`slow` and `all`)
    # is one finding (its largest share of a phase), and a parent whose time one subtest explains
    # (TestNetworkEdgeCases 1.14 s, its rate_limit_429_retry_after 1.00 s) is reported as that subtest.
    best: dict[tuple[str, str], tuple[float, Finding]] = {}
    also: dict[tuple[str, str], list[str]] = {}
    for run in runs:
        timings = run.report.slowest
        for timing in timings:
            share = timing.duration_s / run.duration_s if run.duration_s > 0 else 0.0
            if not _is_slow(timing.duration_s, share):
                continue
            test = _explaining_subtest(timing, timings)
            test_share = min(test.duration_s / run.duration_s, 1.0)
            key = (test.classname, test.name)
            title = (
                f"{test.name} took {test.duration_s:.2f} s in phase {run.phase}, "
                f"{test_share:.0%} of the phase's {run.duration_s:.2f} s"
            )
            detail = ""
            if test is not timing:
                part = test.duration_s / timing.duration_s
                detail = f"it accounts for {part:.0%} of {timing.name}'s {timing.duration_s:.2f} s"
            finding = Finding(
                category="performance",
                title=title,
                detail=detail,
                run_id=run.run_id,
                source="run result (slowest tests)",
                test=test.name,
                phase=run.phase,
            )
            phases = also.setdefault(key, [])
            if run.phase not in phases:
                phases.append(run.phase)
            if key not in best or test_share > best[key][0]:
                best[key] = (test_share, finding)
    found: list[Finding] = []
    for key, (_share, finding) in sorted(best.items(), key=lambda kv: -kv[1][0]):
        others = [p for p in also[key] if p != finding.phase]
        if others:
            extra = f"also over the threshold in phase(s) {', '.join(others)}"
            finding.detail = f"{finding.detail}; {extra}" if finding.detail else extra
        found.append(finding)
    del found[MAX_SLOW_FINDINGS:]
    if history is not None:
        reported: set[str] = set()
        for slow in history.slow:
            if slow.key in reported or len(reported) >= MAX_SLOWDOWNS:
                continue
            reported.add(slow.key)
            found.append(
                Finding(
                    category="performance",
                    title=(
                        f"{slow.name} slowed down: {slow.duration_s:.2f} s in {slow.run_id}, "
                        f"{slow.ratio:.1f}× its median {slow.median_s:.2f} s over {slow.samples} earlier runs"
                    ),
                    detail=f"phase {slow.phase}; {slow.slower_by_s:.2f} s slower",
                    run_id=slow.run_id,
                    source="history (rolling median)",
                    test=slow.name,
                    phase=slow.phase,
                )
            )
    return found


# Run notes that restate a failure (its own finding under Failures) or a status the environment list
# already reports; everything else a run notes (a missing tool, a log limit, a JUnit glob) stays.
NOT_ENVIRONMENT_NOTES = re.compile(
    r"^(?:data race detected in |build failed in |the phase exited 0 but ran no tests|"
    r"the run (?:timed out|was cancelled) after )"
)


def is_environment_note(note: str) -> bool:
    """Whether a run note belongs under Environment and configuration (not a test failure restated)."""
    return not NOT_ENVIRONMENT_NOTES.match(note)


def phase_covers(outer: Phase, inner: Phase) -> bool:
    """Whether running `outer` runs every test of `inner` the way `inner` would (Go phases, same build)."""
    if outer.name == inner.name or outer.runner is not Runner.GO or inner.runner is not Runner.GO:
        return False
    if not outer.available or not inner.test_files or not outer.test_files:
        return False
    return (
        set(inner.test_files) <= set(outer.test_files)
        and set(inner.packages) <= set(outer.packages)
        and set(inner.tags) == set(outer.tags)
        and (outer.race or not inner.race)
        and outer.run is None
        and outer.skip in (None, inner.skip)
        and outer.count >= inner.count
        and outer.args == inner.args
        and outer.env == inner.env
    )


def _covering_run(defined: dict[str, Phase], name: str, runs: list[PhaseRun]) -> PhaseRun | None:
    inner = defined.get(name)
    if inner is None:
        return None
    for run in reversed(runs):
        outer = defined.get(run.phase)
        if outer is not None and phase_covers(outer, inner) and _ran_whole(run, inner):
            return run
    return None


def _ran_whole(run: PhaseRun, inner: Phase) -> bool:
    # A run narrowed to some tests (-run) or with race turned off did not run what `inner` would.
    narrowed = any(arg == "-run" or arg.startswith("-run=") for arg in run.argv)
    return not narrowed and (not inner.race or "-race" in run.argv)


def _environment(
    project: Project,
    runs: list[PhaseRun],
    latest: dict[str, dict[str, Any] | None],
    problems: list[Finding],
    summary: ExecutionSummary,
) -> list[Finding]:
    found = list(problems)
    for run in runs:
        if run.status in (RunStatus.TIMEOUT, RunStatus.ERROR, RunStatus.CANCELLED):
            verb = {
                RunStatus.TIMEOUT: f"hit its timeout after {run.duration_s:.1f} s",
                RunStatus.ERROR: f"ended in an error (exit code {run.exit_code})",
                RunStatus.CANCELLED: f"was cancelled after {run.duration_s:.1f} s; its results are partial",
            }[run.status]
            found.append(
                Finding(category="environment", title=f"phase {run.phase} {verb}", run_id=run.run_id, source="run")
            )
        if run.report.totals.tests == 0 and run.status is RunStatus.PASSED:
            found.append(
                Finding(
                    category="environment",
                    title=f"phase {run.phase} ran no tests (exit code {run.exit_code})",
                    detail="check its test selection (build tags, -run pattern, markers)",
                    run_id=run.run_id,
                    source="run",
                )
            )
        for note in run.notes:
            if not is_environment_note(note):
                continue
            found.append(
                Finding(
                    category="environment", title=f"phase {run.phase}: {note}", run_id=run.run_id, source="run notes"
                )
            )
    ran_phases = {run.phase for run in runs}
    defined: dict[str, Phase] = {}
    try:
        from .phases import load_phases

        for phase in load_phases(project).phases:
            defined[phase.name] = phase
            if not phase.available:
                found.append(
                    Finding(
                        category="environment",
                        title=f"phase {phase.name} cannot run here: {phase.note or 'its program is missing'}",
                        source="list_phases",
                    )
                )
    except ItestError as exc:
        found.append(Finding(category="environment", title=f"the phase configuration cannot be read: {exc}"))
    assess = latest.get("assess")
    recommended = _recommended_phases(assess)
    covered: dict[str, list[str]] = {}
    for name in recommended:
        if name in ran_phases:
            continue
        cover = _covering_run(defined, name, runs)
        if cover is not None:
            covered.setdefault(cover.run_id, []).append(name)
            continue
        if name not in ran_phases:
            found.append(
                Finding(
                    category="environment",
                    title=f"phase {name} was recommended by assess_changes but is not among the reported runs",
                    source="assess_changes",
                    phase=name,
                )
            )
    by_id = {run.run_id: run for run in runs}
    for run_id, names in covered.items():
        label = "phases" if len(names) > 1 else "phase"
        summary.covered.append(
            f"recommended {label} {', '.join(names)}: every test of theirs ran in phase {by_id[run_id].phase} "
            f"(run {run_id}) with the same tags and flags, so they were not run again on their own"
        )
    github = latest.get("github")
    if github is not None and ERROR_KEY in github:
        found.append(
            Finding(
                category="environment",
                title=f"GitHub API validation failed: {_clip(str(github[ERROR_KEY]), 300)}",
                source="validate_github_api",
            )
        )
    elif github is not None:
        summary.github = github_summary(github)
        unreachable = _unreachable(github)
        if unreachable:
            found.append(Finding(category="environment", title=unreachable, source="validate_github_api"))
        for check in _failed_checks(github):
            if unreachable and check.startswith("the API at "):
                continue  # said above, in words that name the host
            found.append(
                Finding(category="environment", title=f"GitHub API check failed: {check}", source="validate_github_api")
            )
    if _api_changed(assess) and github is None:
        token = (
            "a token is set"
            if (os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN"))
            else ("and neither GITHUB_TOKEN nor GH_TOKEN is set")
        )
        found.append(
            Finding(
                category="environment",
                title=f"GitHub API code changed but validate_github_api has not run ({token})",
                source="assess_changes",
            )
        )
    return found


def _get(data: dict[str, Any] | None, *keys: str) -> Any:
    if not isinstance(data, dict):
        return None
    for key in keys:
        if key in data and data[key] is not None:
            return data[key]
    return None


def _recommended_phases(assess: dict[str, Any] | None) -> list[str]:
    value = _get(assess, "recommended_phases", "phases_to_run", "recommended", "phases")
    names: list[str] = []
    if isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                names.append(item)
            elif isinstance(item, dict):
                name = _get(item, "name", "phase")
                if isinstance(name, str) and item.get("recommended", True) is not False:
                    names.append(name)
    return names


def _api_changed(assess: dict[str, Any] | None) -> bool:
    categories = _get(assess, "categories")
    if isinstance(categories, list):
        for item in categories:
            if isinstance(item, dict) and item.get("category") == "github-api":
                return True
    value = _get(assess, "github_api_changed", "api_changed")
    return value is True


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url


def _unreachable(github: dict[str, Any]) -> str | None:
    """ "api.github.com unreachable: <why>" when the validation never got an answer from the API."""
    api = _get(github, "api")
    if not isinstance(api, dict) or api.get("reachable") is not False or not api.get("error"):
        return None
    error = str(api["error"])
    budget = _get(github, "_timeout_s")
    within = f" (gave up after the workflow's {budget:g} s GitHub timeout)" if isinstance(budget, int | float) else ""
    return f"{_host(str(api.get('url', '')))} unreachable: {_clip(error, 300)}{within}"


def github_summary(github: dict[str, Any]) -> str:
    """One line on a validate_github_api result: where, token, outcome, rate limit."""
    api = _get(github, "api") or {}
    url = str(api.get("url", "?")) if isinstance(api, dict) else "?"
    token = _get(github, "token") or {}
    if isinstance(token, dict) and token.get("found"):
        who = f"token from {token.get('source', '?')}"
    else:
        who = "no token"
    parts = [f"validate_github_api against {url} with {who}"]
    if isinstance(api, dict) and api.get("reachable"):
        latency = api.get("latency_ms")
        parts.append(f"reachable (HTTP {api.get('status')}" + (f", {latency:.0f} ms)" if latency is not None else ")"))
    else:
        parts.append("unreachable")
    for rate in _get(github, "rate_limits") or []:
        if isinstance(rate, dict) and rate.get("resource") == "core":
            parts.append(f"core rate limit {rate.get('remaining')}/{rate.get('limit')} remaining")
    handling = [c for c in _get(github, "handling") or [] if isinstance(c, dict)]
    if handling:
        passed = sum(1 for c in handling if c.get("passed"))
        parts.append(f"retry handling {passed}/{len(handling)} scenarios passed")
    problems = _get(github, "problems") or []
    verdict = "ok" if github.get("ok") else f"{len(problems)} problem(s), listed under Critical Findings"
    return "; ".join(parts) + f" — {verdict}"


def _failed_checks(github: dict[str, Any]) -> list[str]:
    """Problems a validate_github_api result lists (its own words), plus failed handling and access checks."""
    failed: list[str] = []
    problems = _get(github, "problems")
    if isinstance(problems, list):
        failed += [_clip(str(p), 300) for p in problems if p]
    token = _get(github, "token")
    if isinstance(token, dict) and token.get("found") is False and not any("token" in f.lower() for f in failed):
        failed.append("no GitHub token was found (unauthenticated: 60 core requests per hour)")
    for case in _get(github, "handling") or []:
        if isinstance(case, dict) and case.get("passed") is False:
            failed.append(
                f"retry handling for {case.get('scenario')}: expected {case.get('expected')}, "
                f"classified as {case.get('classified_as')} {_clip(str(case.get('detail') or ''), 160)}".rstrip()
            )
    for repo in _get(github, "repos") or []:
        if isinstance(repo, dict) and repo.get("accessible") is False:
            text = f"repository {repo.get('repo')} is not accessible (HTTP {repo.get('status')})"
            if not any(str(repo.get("repo")) in f for f in failed):
                failed.append(text + (f": {_clip(str(repo.get('message')), 160)}" if repo.get("message") else ""))
    if not failed and github.get("ok") is False:
        failed.append("the validation reported ok = false without listing a problem")
    return failed


def _coverage(
    project: Project, runs: list[PhaseRun], latest: dict[str, dict[str, Any] | None], problems: list[Finding]
) -> CoverageAnalysis:
    analysis = CoverageAnalysis()
    for run in runs:
        for rel in run.artifacts.coverage:
            problem = check_coverage_file(project, rel)
            if problem:
                problems.append(
                    Finding(category="input", title=problem, run_id=run.run_id, source="run coverage artifact")
                )
                analysis.notes.append(problem)
    data = latest.get("coverage")
    if data is None:
        analysis.notes.append(
            "no coverage result yet: run find_coverage_gaps (`itest-mcp coverage`) after a phase with coverage"
        )
        return analysis
    if ERROR_KEY in data:
        source = data.get("_source")
        where = f" ({source})" if source else ""
        message = f"the latest coverage file{where} failed to parse: {_clip(str(data[ERROR_KEY]), 400)}"
        problems.append(Finding(category="input", title=message, source="find_coverage_gaps"))
        analysis.notes.append(message)
        return analysis
    analysis.source = f"{project.rel(project.state_dir)}/latest/coverage.json"
    _read_coverage_result(data, analysis)
    return analysis


def _read_coverage_result(data: dict[str, Any], analysis: CoverageAnalysis) -> None:
    """Fill the analysis from a find_coverage_gaps result, reading every field defensively."""
    src = analysis.source
    totals = _get(data, "totals")
    total = _get(totals, "percent") if isinstance(totals, dict) else _get(data, "total_percent", "percent")
    if isinstance(total, int | float):
        analysis.total_percent = round(float(total), 2)
        if isinstance(totals, dict):
            covered, measured, files = (totals.get(k, "?") for k in ("covered", "measured", "files"))
            analysis.total_lines = f"{covered}/{measured} lines over {files} files"
    patch = _get(data, "patch")
    if isinstance(patch, dict) and isinstance(patch.get("percent"), int | float):
        analysis.changed_lines_percent = round(float(patch["percent"]), 2)
        analysis.changed_lines = f"{patch.get('covered', '?')}/{patch.get('measured', '?')} changed lines covered"
    areas: list[CoverageFile] = []
    for item in _get(data, "files") or []:
        if isinstance(item, dict):
            name = _get(item, "path", "file", "name")
            pct = _get(item, "percent")
            if isinstance(name, str) and isinstance(pct, int | float) and item.get("measured", 1):
                areas.append(CoverageFile(name=name, percent=round(float(pct), 2)))
    areas.sort(key=lambda a: (-a.percent, a.name))
    analysis.well_covered = [a for a in areas if a.percent >= WELL_COVERED][:15]
    for changed in _get(data, "changed_files") or []:
        if not isinstance(changed, dict) or not isinstance(changed.get("path"), str):
            continue
        ranges = changed.get("uncovered_ranges") or []
        if not ranges:
            continue
        analysis.gaps.append(
            CoverageGapEntry(
                file=changed["path"],
                lines=_lines_text({"lines": ranges}),
                detail=f"{changed.get('uncovered', len(ranges))} changed line(s) no test executed",
            )
        )
    for func in _get(data, "uncovered_functions") or []:
        if not isinstance(func, dict) or not isinstance(func.get("file"), str):
            continue
        reasons = ", ".join(str(r) for r in func.get("reasons") or [])
        analysis.gaps.append(
            CoverageGapEntry(
                file=f"{func['file']}:{func.get('line', '?')}",
                lines=f"{func.get('line', '?')}-{func.get('end_line', '?')}",
                detail=f"function {func.get('name')}: {func.get('covered', 0)}/{func.get('measured', 0)} lines covered"
                + (f" ({reasons})" if reasons else ""),
            )
        )
    del analysis.gaps[50:]
    for scenario in _get(data, "scenarios") or []:
        if isinstance(scenario, dict) and scenario.get("exercised") is False:
            title = scenario.get("title") or scenario.get("scenario")
            analysis.unexercised.append(f"{scenario.get('suite', '?')}: {title}")
    analysis.test_ideas = _test_ideas(data, src)
    if not analysis.test_ideas:
        for entry in analysis.gaps[:10]:
            analysis.test_ideas.append(
                TestIdea(
                    text=f"Add an integration test that exercises {entry.file}"
                    + (f" lines {entry.lines}" if entry.lines else ""),
                    evidence=f"{entry.detail} ({src})",
                )
            )
    for note in _get(data, "notes") or []:
        analysis.notes.append(_clip(str(note), 300))
    unmatched = _get(data, "unmatched") or []
    if unmatched:
        analysis.notes.append(f"{len(unmatched)} path(s) in the coverage data matched no file in the repository")


# find_coverage_gaps ranks a missing scenario as "<title> (<suite>): write <test>"; the same scenario is in
# its `scenarios` list with a suggestion. Both name one new test, so they merge on (suite, test).
MISSING_SCENARIO = re.compile(r"^(?P<title>.+?) \((?P<suite>[^()]+)\): write (?P<test>\S+)$")


def _test_ideas(data: dict[str, Any], src: str | None) -> list[TestIdea]:
    """New tests from ranked gaps and unexercised scenarios, one per (suite, test), ranked ones first."""
    ideas: dict[tuple[str, ...], dict[str, Any]] = {}
    for gap in _get(data, "top_gaps") or []:
        if not isinstance(gap, dict) or not gap.get("what"):
            continue
        what, where = str(gap["what"]), str(gap.get("where", "?"))
        match = MISSING_SCENARIO.match(what) if gap.get("kind") == "missing-scenario" else None
        ranked = f"ranked gap #{gap.get('rank', '?')} ({gap.get('kind', 'gap')})"
        if match is None:
            why = str(gap.get("why") or "")
            ideas[("gap", what, where)] = {"text": f"Cover {what} at {where}", "evidence": [f"{ranked}: {why}"]}
            continue
        idea = ideas.setdefault(("scenario", match["suite"], match["test"]), {"evidence": []})
        idea.update(suite=match["suite"], test=match["test"], title=match["title"], file=where)
        idea["how"] = _richer(idea.get("how"), str(gap.get("why") or ""))
        idea["evidence"].append(ranked)
    for scenario in _get(data, "scenarios") or []:
        if not isinstance(scenario, dict) or scenario.get("exercised") is not False:
            continue
        suggestion = scenario.get("suggestion")
        if not isinstance(suggestion, dict) or not suggestion.get("test"):
            continue
        suite, test = str(scenario.get("suite", "?")), str(suggestion["test"])
        idea = ideas.setdefault(("scenario", suite, test), {"evidence": []})
        idea.update(suite=suite, test=test, title=scenario.get("title") or scenario.get("scenario"))
        idea.setdefault("file", suggestion.get("file", "?"))
        idea["how"] = _richer(idea.get("how"), str(suggestion.get("how") or ""))
        idea["evidence"].append(f"no {suite} test exercises this scenario")
    out: list[TestIdea] = []
    for idea in ideas.values():
        if "text" not in idea:
            how = f": {idea['how']}" if idea.get("how") else ""
            idea["text"] = f"Add {idea['test']} in {idea['file']} to exercise “{idea['suite']}: {idea['title']}”{how}"
        evidence = "; ".join(idea["evidence"]) + (f" ({src})" if src else "")
        out.append(TestIdea(text=idea["text"], evidence=evidence))
    return out


def _richer(current: str | None, candidate: str) -> str:
    # The ranked gap's "why" names the function to exercise when it knows one; keep the text that says more.
    return candidate if len(candidate) > len(current or "") else current or ""


def _lines_text(gap: dict[str, Any]) -> str:
    lines = _get(gap, "lines", "ranges", "line_ranges")
    if isinstance(lines, str):
        return lines
    if isinstance(lines, list):
        parts: list[str] = []
        for item in lines[:20]:
            if isinstance(item, int):
                parts.append(str(item))
            elif isinstance(item, list | tuple) and len(item) == 2:
                parts.append(f"{item[0]}-{item[1]}" if item[0] != item[1] else str(item[0]))
            elif isinstance(item, dict):
                start, end = _get(item, "start", "from"), _get(item, "end", "to")
                if start is not None:
                    parts.append(f"{start}-{end}" if end not in (None, start) else str(start))
        return ", ".join(parts)
    start, end = _get(gap, "start", "start_line", "line"), _get(gap, "end", "end_line")
    if start is not None:
        return f"{start}-{end}" if end not in (None, start) else str(start)
    return ""


def check_coverage_file(project: Project, rel: str) -> str | None:
    """Why a coverage file a run left cannot be used (read with the coverage readers), or None."""
    from .covreaders import read_coverage
    from .errors import CoverageError

    try:
        path = project.resolve_path(rel, what="coverage file")
    except ItestError as exc:
        return f"coverage file {rel!r} cannot be used: {exc}"
    if not path.is_file():
        return f"coverage file {rel} listed by the run is missing"
    try:
        read_coverage(path)
    except CoverageError as exc:
        return f"coverage file {rel} failed to parse: {_clip(str(exc).replace(str(path), rel), 400)}"
    return None


def _recommendations(
    findings: CriticalFindings,
    history: FlakyReport | None,
    flaky_now: list[tuple[str, TestResult]],
    coverage: CoverageAnalysis,
    runs: list[PhaseRun],
) -> list[Recommendation]:
    recs: list[Recommendation] = []
    seen: set[tuple[str, str]] = set()
    for item in findings.failures:
        if (item.classname, item.test) in seen:
            continue
        seen.add((item.classname, item.test))
        where = f" at {item.location}" if item.location else ""
        message = _first_line(item.message)
        action = {
            Cause.ASSERTION: f"Fix {item.test}{where}: its check fails with “{message}”",
            Cause.DATA_RACE: f"Fix the data race in {item.test}{where}: guard the shared state with a mutex or atomic",
            Cause.PANIC: f"Fix the panic in {item.test}{where}: “{message}”",
            Cause.TIMEOUT: f"Find what {item.test}{where} waits on: it timed out",
            Cause.BUILD: f"Fix the build error in {item.classname or item.test}{where}: “{message}”",
            Cause.NETWORK: f"Check the network path {item.test}{where} depends on: “{message}”",
            Cause.AUTH: f"Check the credentials {item.test}{where} uses: “{message}”",
            Cause.RATE_LIMIT: f"Reduce or space out the API calls of {item.test}{where}: it hit a rate limit",
            Cause.ENVIRONMENT: f"Fix the environment for {item.test}{where}: “{message}”",
            Cause.UNCLASSIFIED: f"Read the log of {item.test}{where} in run {item.run_id}: no message was captured",
        }[item.cause]
        evidence = f"{seen_in_text(item)}; cause {item.cause.value}: {item.cause_evidence}"
        if item.history:
            evidence += f"; history: {item.history}"
        recs.append(Recommendation(category="fix", text=action, evidence=evidence))
    for finding in findings.environment:
        if finding.source == "assess_changes" and finding.phase:
            recs.append(
                Recommendation(
                    category="fix",
                    text=f"Run phase {finding.phase} (`itest-mcp run {finding.phase}`)",
                    evidence=finding.title,
                )
            )
    flaky_keys: set[str] = set()
    if history is not None:
        for stats in history.flaky:
            flaky_keys.add(stats.key)
            recs.append(
                Recommendation(
                    category="reliability",
                    text=f"Stabilise {stats.name}: it failed in {stats.runs_with_failure} of its last {stats.runs} "
                    f"run(s) ({stats.failure_rate:.0%})",
                    evidence=stats.evidence,
                )
            )
    for run_id, test in flaky_now:
        if test.key in flaky_keys:
            continue
        flaky_keys.add(test.key)
        outcomes = ", ".join(a.outcome.value for a in test.attempts)
        recs.append(
            Recommendation(
                category="reliability",
                text=f"Stabilise {test.name}: it failed and then passed on a rerun",
                evidence=f"run {run_id}: attempts {outcomes}",
            )
        )
    failing_names = {item.test for item in findings.failures}
    if history is not None:
        for stats in history.broken:
            if stats.name in failing_names:
                continue
            recs.append(
                Recommendation(
                    category="fix",
                    text=f"Fix or quarantine {stats.name}: it is broken",
                    evidence=f"{stats.evidence}; failure rate {stats.failure_rate:.0%} over {stats.runs} run(s)",
                )
            )
    slowed = {f.test for f in findings.performance if f.source.startswith("history")}
    for finding in findings.performance:
        if not finding.source.startswith("history") and finding.test in slowed:
            continue  # the slowdown recommendation says more
        if finding.source.startswith("history"):
            text = f"Find what slowed down {finding.test}"
        else:
            text = f"Speed up {finding.test} or move it to a slower phase"
        recs.append(
            Recommendation(
                category="performance",
                text=text,
                evidence=finding.title + (f" (run {finding.run_id})" if finding.run_id else ""),
            )
        )
    for idea in coverage.test_ideas[:15]:
        recs.append(Recommendation(category="new-test", text=idea.text, evidence=idea.evidence))
    return recs


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return _clip(line.strip(), 160)
    return ""


# -- building, saving, rendering ------------------------------------------------------------


def _load_latest_safely(project: Project, problems: list[Finding]) -> dict[str, dict[str, Any] | None]:
    latest: dict[str, dict[str, Any] | None] = {}
    for kind, tool in (
        ("assess", "assess_changes"),
        ("coverage", "find_coverage_gaps"),
        ("github", "validate_github_api"),
    ):
        try:
            latest[kind] = load_latest(project, kind)
        except ParseError as exc:
            latest[kind] = None
            problems.append(
                Finding(category="input", title=f"the latest {tool} result cannot be read: {exc}", source=tool)
            )
    return latest


def build_report(
    project: Project,
    run_ids: list[str] | None = None,
    *,
    now: datetime | None = None,
    window: int = DEFAULT_WINDOW,
    save: bool = True,
) -> Report:
    """The four-section report over the given runs (default: since the last report, else the current commit)."""
    now = now or datetime.now(UTC)
    selected, why = select_runs(project, run_ids)
    problems: list[Finding] = []
    runs: list[PhaseRun] = []
    for run_id in selected:
        try:
            runs.append(load_run_summary(project, run_id))
        except HistoryError as exc:
            if run_ids:
                raise
            problems.append(Finding(category="input", title=str(exc), run_id=run_id, source="run folder"))
    runs.sort(key=lambda r: r.run_id)
    history: FlakyReport | None = None
    try:
        history = flaky_tests(project, window)
        for problem in history.problems:
            problems.append(Finding(category="input", title=problem, source="history import"))
    except HistoryError as exc:
        problems.append(
            Finding(
                category="environment",
                title=f"history is unavailable, so flaky and slow-test trends are missing: {exc}",
                source="history",
            )
        )
    latest = _load_latest_safely(project, problems)
    summary = _summary(runs)
    findings = _failures(runs, history)
    findings.performance = _performance(runs, history)
    coverage = _coverage(project, runs, latest, problems)
    findings.environment = _environment(project, runs, latest, problems, summary)
    flaky_now = [
        (run.run_id, test) for run in runs if run.report.totals.flaky for test in flaky_in_run(project, run.run_id)
    ]
    report = Report(
        report_id=f"report-{now.strftime('%Y%m%dT%H%M%S')}-{now.microsecond:06d}",
        created_at=now,
        project_root=str(project.root),
        commit=runs[-1].commit if runs else None,
        run_ids=[r.run_id for r in runs],
        selection=why,
        summary=summary,
        findings=findings,
        coverage=coverage,
        history=history,
    )
    report.recommendations = _recommendations(findings, history, flaky_now, coverage, runs)
    if save:
        save_report(project, report)
    return report


def save_report(project: Project, report: Report) -> ReportFiles:
    """Write `<id>.json` and `<id>.md` under `.itest/reports/` (JSON last: it marks the report complete)."""
    folder = project.reports_dir
    md = folder / f"{report.report_id}.md"
    js = folder / f"{report.report_id}.json"
    report.files.markdown = project.rel(md)
    report.files.json_path = project.rel(js)
    _atomic_write(md, render_markdown(report))
    _atomic_write(js, report.model_dump_json(indent=2))
    return report.files


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def load_report(path: Path) -> Report:
    """A saved report's model."""
    return Report.model_validate_json(path.read_bytes())


def latest_report_markdown(project: Project) -> str:
    """The newest saved report as markdown; NotFoundError says how to make one."""
    path = latest_report_path(project)
    if path is None:
        raise NotFoundError(
            f"no report saved in {project.rel(project.reports_dir)} yet; build one with the build_report tool "
            "(`itest-mcp report`)"
        )
    md = path.with_suffix(".md")
    if md.is_file():
        return md.read_text(encoding="utf-8")
    return render_markdown(load_report(path))


# -- markdown ---------------------------------------------------------------------------------


def _inline(text: str, limit: int = 200) -> str:
    return _clip(_first_line(text).replace("`", "'"), limit)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


RECOMMENDATION_GROUPS = (
    ("fix", "Immediate fixes"),
    ("reliability", "Reliability"),
    ("performance", "Performance"),
    ("new-test", "New integration tests"),
)


def empty_recommendation_reason(report: Report, category: str) -> str:
    """Why a recommendation group is empty, in numbers."""
    s, c = report.summary, report.coverage
    if category == "fix":
        return f"nothing to fix: no failures in {len(s.runs)} run(s)"
    if category == "reliability":
        if report.history:
            h = report.history
            return (
                f"no flaky tests in the last {h.window} runs of each phase "
                f"({h.runs_considered} runs, {h.tests_seen} tests)"
            )
        return "no flaky tests in these runs; history was unavailable"
    if category == "performance":
        return f"no test met the rule under Critical Findings → Performance in {len(s.runs)} run(s){_slowest_basis(s)}"
    return "no coverage gaps recorded" if c.source else "no coverage result to derive new tests from"


def _slowest_basis(s: ExecutionSummary) -> str:
    if not s.slowest:
        return ""
    top = s.slowest[0]
    share = f", {top.share_of_phase:.0%} of phase {top.phase}" if top.share_of_phase is not None else ""
    return f"; the slowest test was {top.name} at {top.duration_s:.2f} s{share}"


def _finding_line(item: Finding) -> str:
    run = f" (run `{item.run_id}`)" if item.run_id else ""
    detail = f" — {item.detail}" if item.detail else ""
    return f"- {item.title}{detail}{run}"


def render_markdown(report: Report) -> str:
    """The report as markdown with exactly the four sections."""
    s = report.summary
    out: list[str] = ["# Integration test report", ""]
    commit = f"`{report.commit[:12]}`" if report.commit else "no commit"
    out.append(
        f"Project `{report.project_root}` · commit {commit} · {len(report.run_ids)} run(s) "
        f"({report.selection}) · {report.created_at.strftime('%Y-%m-%d %H:%M:%S %Z').strip()} · `{report.report_id}`"
    )
    out += ["", f"## {SECTIONS[0]}", ""]
    out.append("| Phase | Run | Status | Tests | Passed | Failed | Errors | Skipped | Flaky | Duration |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in s.runs:
        t = r.totals
        dirty = " (dirty tree)" if r.dirty else ""
        out.append(
            f"| {_cell(r.phase)} | `{r.run_id}`{dirty} | {r.status.value} | {t.tests} | {t.passed} | {t.failed} | "
            f"{t.errors} | {t.skipped} | {t.flaky} | {r.duration_s:.2f} s |"
        )
    t = s.totals
    out.append("")
    out.append(
        f"Total: {len(s.runs)} run(s) in {s.total_duration_s:.2f} s; {t.tests} tests — {t.passed} passed, "
        f"{t.failed} failed, {t.errors} errors, {t.skipped} skipped, {t.flaky} flaky ({t.attempts} attempts); "
        f"pass rate {_pct(s.pass_rate)}."
    )
    for note in s.covered:
        out += ["", f"Not run separately: {note}."]
    if s.github:
        out += ["", f"GitHub API: {s.github}."]
    if s.slowest:
        out += ["", "Slowest tests:", ""]
        for i, e in enumerate(s.slowest[:5], 1):
            share = f", {e.share_of_phase:.0%} of the phase" if e.share_of_phase else ""
            out.append(f"{i}. `{e.name}` ({e.phase}, `{e.run_id}`): {e.duration_s:.2f} s{share}")
    f = report.findings
    out += ["", f"## {SECTIONS[1]}", ""]
    out.append(f"### Failures ({len(f.failures) + f.failures_omitted})")
    out.append("")
    if f.failures:
        out.append("By cause: " + ", ".join(f"{cause} {count}" for cause, count in f.causes.items()) + ".")
        out.append("")
        for i, item in enumerate(f.failures, 1):
            where = f" at `{item.location}`" if item.location else ""
            if len(item.seen_in) > 1:
                phases = item.phases or [item.phase]
                label = "phases" if len(phases) > 1 else "phase"
                runs = ", ".join(f"`{r}`" for r in item.seen_in)
                where_seen = f"seen in {label} {', '.join(phases)} (runs {runs}); output from `{item.run_id}`"
            else:
                where_seen = f"phase {item.phase}, run `{item.run_id}`"
            out.append(
                f"{i}. **{item.test}** — {item.cause.value}{where} ({where_seen}, "
                f"{item.outcome.value}, {item.attempts} attempt(s))"
            )
            if item.message:
                out.append(f"   - message: `{_inline(item.message)}`")
            out.append(f"   - why {item.cause.value}: {item.cause_evidence}")
            if item.history:
                out.append(f"   - history: {item.history}")
            if item.excerpt and item.excerpt.strip() != item.message.strip():
                lines = item.excerpt.strip("\n").splitlines()[-12:]
                out.append("")
                out.append("   ```text")
                out += ["   " + line.replace("```", "'''") for line in lines]
                out.append("   ```")
        if f.failures_omitted:
            out.append(f"\n{f.failures_omitted} more failure(s) are in the JSON report and the run folders.")
    else:
        out.append(f"No failing tests in {len(s.runs)} run(s) ({s.totals.tests} tests).")
    out += ["", f"### Performance ({len(f.performance)})", ""]
    out.append(f"Rule: {performance_rule()}.")
    out.append("")
    if f.performance:
        for perf in f.performance:
            out.append(_finding_line(perf))
    else:
        out.append(f"No test met the rule in {len(s.runs)} run(s){_slowest_basis(s)}.")
    out += ["", f"### Environment and configuration ({len(f.environment)})", ""]
    if f.environment:
        for env in f.environment:
            out.append(_finding_line(env))
    else:
        out.append(f"No missing tools, skipped phases or unreadable results; all {len(s.runs)} run(s) completed.")
    c = report.coverage
    out += ["", f"## {SECTIONS[2]}", ""]
    if c.total_percent is not None:
        lines_text = f", {c.total_lines}" if c.total_lines else ""
        out.append(f"Total coverage: {c.total_percent:.1f}%{lines_text} (from `{c.source}`).")
        out.append("")
    if c.changed_lines_percent is not None:
        out.append(f"Changed lines: {c.changed_lines_percent:.1f}% ({c.changed_lines}).")
        out.append("")
    if c.well_covered:
        out.append(
            f"Well covered (≥ {WELL_COVERED:.0f}%): "
            + ", ".join(f"`{a.name}` {a.percent:.0f}%" for a in c.well_covered)
            + "."
        )
        out.append("")
    if c.gaps:
        out.append(f"Gaps ({len(c.gaps)}):")
        out.append("")
        for gap in c.gaps:
            span = f" lines {gap.lines}" if gap.lines else ""
            detail = f" — {gap.detail}" if gap.detail else ""
            out.append(f"- `{gap.file}`{span}{detail}")
        out.append("")
    if c.unexercised:
        out.append("Never exercised by the suites: " + ", ".join(f"`{u}`" for u in c.unexercised) + ".")
        out.append("")
    for note in c.notes:
        out.append(f"- {note}")
    if out[-1] == "":
        out.pop()
    out += ["", f"## {SECTIONS[3]}", ""]
    groups = RECOMMENDATION_GROUPS
    for category, title in groups:
        items = [r for r in report.recommendations if r.category == category]
        out += [f"### {title} ({len(items)})", ""]
        if not items:
            out.append(f"None: {empty_recommendation_reason(report, category)}.")
        for i, rec in enumerate(items, 1):
            out.append(f"{i}. {rec.text}. _Evidence: {rec.evidence}._")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
