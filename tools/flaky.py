"""Flaky, broken and slow tests over the recent runs in history.

A test is *flaky* when it passed on a rerun within one run, or when it both passed
and failed on the same commit with a clean tree in runs made the same way (same argv
apart from the test selection, neither cut short by a timeout); *broken* when it failed in each
of its last `BROKEN_AFTER` runs. Its failure rate is the share of its recent runs
in which at least one attempt failed. A *slow-test regression* is a latest
duration above `SLOW_RATIO` times the median of the test's earlier durations in
the window and at least `SLOW_MIN_DELTA_S` slower.

Every question is asked over a window: the last `window` runs of each phase.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from .errors import InputError, NotFoundError
from .history import (
    CODE_OUTCOME,
    FAIL_CODES,
    PASS_CODES,
    RunRow,
    connect,
    import_run_folders,
    recent_runs,
)
from .models import Model, Outcome
from .repo import Project

DEFAULT_WINDOW = 20
BROKEN_AFTER = 3
SLOW_RATIO = 1.5
SLOW_MIN_DELTA_S = 0.5
SLOW_MIN_SAMPLES = 3
TREND_LIMIT = 30
LIST_LIMIT = 50


class TestStatus(StrEnum):
    """What a test's recent runs say about it."""

    __test__ = False

    FLAKY = "flaky"
    BROKEN = "broken"
    FAILING = "failing"
    """Failed in its latest run, without the history to call it broken or flaky."""
    RECOVERED = "recovered"
    """Failed earlier in the window, passes now, never on the same commit."""
    PASSING = "passing"


class TestStats(Model):
    """One test's record over the window."""

    __test__ = False

    key: str
    name: str
    classname: str = ""
    phases: list[str] = Field(default_factory=list)
    status: TestStatus
    runs: int
    """Runs in the window in which the test ran."""
    failed_runs: int
    """Runs whose verdict was failed or error (no passing attempt)."""
    runs_with_failure: int
    """Runs with at least one failed attempt (flaky runs included)."""
    failure_rate: float
    rerun_passes: int = 0
    """Runs in which it failed and then passed on a rerun."""
    evidence: str = ""
    """The data behind `status`, in words (run ids, commit)."""
    last_outcome: Outcome
    last_run_id: str
    last_message_sha256: str | None = None


class SlowTest(Model):
    """A test whose latest duration regressed against its rolling median."""

    __test__ = False

    key: str
    name: str
    classname: str = ""
    phase: str
    run_id: str
    duration_s: float
    median_s: float
    ratio: float
    slower_by_s: float
    samples: int


class TrendPoint(Model):
    """One run's failure and flaky rates, for the trend chart."""

    run_id: str
    phase: str
    started_at: datetime
    tests: int
    failed: int
    flaky: int
    failure_rate: float
    flaky_rate: float
    duration_s: float


class FlakyReport(Model):
    """Flaky, broken, failing and slow tests over the last runs of each phase."""

    window: int
    runs_considered: int
    phases: list[str] = Field(default_factory=list)
    tests_seen: int = 0
    """Tests recorded for the phases in the window."""
    flaky: list[TestStats] = Field(default_factory=list)
    broken: list[TestStats] = Field(default_factory=list)
    failing: list[TestStats] = Field(default_factory=list)
    """Failing or recovered tests that are neither flaky nor broken."""
    slow: list[SlowTest] = Field(default_factory=list)
    trend: list[TrendPoint] = Field(default_factory=list)
    imported: list[str] = Field(default_factory=list)
    """Run folders recorded into history by this call."""
    problems: list[str] = Field(default_factory=list)
    """Run folders that could not be read."""


class TestRunEntry(Model):
    """One run of one test."""

    __test__ = False

    run_id: str
    phase: str
    commit: str | None = None
    dirty: bool = False
    started_at: datetime
    outcome: Outcome
    attempts: list[Outcome]
    duration_s: float
    message_sha256: str | None = None


class TestHistory(Model):
    """One test across its recent runs, newest first, with its stats and any slow regression."""

    __test__ = False

    key: str
    name: str
    classname: str = ""
    phases: list[str] = Field(default_factory=list)
    entries: list[TestRunEntry] = Field(default_factory=list)
    stats: TestStats | None = None
    slow: SlowTest | None = None


class HistoryView(Model):
    """`test_history`: one test's history, or the recent runs when no test is named."""

    runs: list[RunRow] = Field(default_factory=list)
    test: TestHistory | None = None
    imported: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


# -- window ---------------------------------------------------------------------------------


@dataclass
class _Window:
    ids: dict[int, tuple[str, str, str | None, bool, str]] = field(default_factory=dict)
    """run pk → (run_id, phase, commit, dirty, started_at)"""
    settings: dict[int, tuple[str, str]] = field(default_factory=dict)
    """run pk → (its argv without the test selection, its status)"""
    latest: dict[str, int] = field(default_factory=dict)
    """phase → pk of its newest run"""


def _window(conn: sqlite3.Connection, window: int, phases: list[str] | None = None) -> _Window:
    if window < 1:
        raise InputError(f"window {window} must be at least 1 run")
    if phases is None:
        phases = [r[0] for r in conn.execute("SELECT DISTINCT phase FROM runs")]
    win = _Window()
    for phase in phases:
        rows = conn.execute(
            "SELECT id, run_id, phase, commit_sha, dirty, started_at, argv, status FROM runs "
            "WHERE phase = ? ORDER BY run_id DESC LIMIT ?",
            (phase, window),
        ).fetchall()
        for pk, run_id, ph, commit, dirty, started, argv, status in rows:
            win.ids[pk] = (run_id, ph, commit, bool(dirty), started)
            win.settings[pk] = (run_settings(argv, run_id), status)
        if rows:
            win.latest[phase] = rows[0][0]
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS win (id INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM win")
    conn.executemany("INSERT INTO win (id) VALUES (?)", [(pk,) for pk in win.ids])
    return win


@dataclass
class _RunOfTest:
    run_id: str
    phase: str
    commit: str | None
    dirty: bool
    started_at: str
    codes: list[int] = field(default_factory=list)
    first_duration_us: int = 0
    sha: str | None = None
    settings: str = ""
    """The argv without its test selection: runs compare only when they ran the tests the same way."""
    status: str = ""

    @property
    def has_pass(self) -> bool:
        return any(c in PASS_CODES for c in self.codes)

    @property
    def has_fail(self) -> bool:
        return any(c in FAIL_CODES for c in self.codes)

    @property
    def verdict(self) -> Outcome:
        if self.has_pass and self.has_fail:
            return Outcome.FLAKY
        if self.has_fail:
            last_fail = [c for c in self.codes if c in FAIL_CODES][-1]
            return CODE_OUTCOME[last_fail]
        if self.codes and all(c == 3 for c in self.codes):
            return Outcome.SKIPPED
        return Outcome.PASSED


def _runs_of_tests(conn: sqlite3.Connection, win: _Window, test_ids: list[int]) -> dict[int, list[_RunOfTest]]:
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS cand (id INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM cand")
    conn.executemany("INSERT INTO cand (id) VALUES (?)", [(t,) for t in test_ids])
    rows = conn.execute(
        "SELECT a.test, a.run, a.attempt, a.outcome, a.duration_us, a.message_sha256 "
        # CROSS JOIN fixes the loop order: one primary-key seek per (run, test), never a table scan.
        "FROM win w CROSS JOIN cand c CROSS JOIN attempts a ON a.run = w.id AND a.test = c.id "
        "ORDER BY a.test, a.run, a.attempt"
    )
    by_test: dict[int, dict[int, _RunOfTest]] = defaultdict(dict)
    for test, run, attempt, outcome, duration_us, sha in rows:
        runs = by_test[test]
        entry = runs.get(run)
        if entry is None:
            run_id, phase, commit, dirty, started = win.ids[run]
            settings, status = win.settings.get(run, ("", ""))
            entry = runs[run] = _RunOfTest(run_id, phase, commit, dirty, started, settings=settings, status=status)
        entry.codes.append(outcome)
        if attempt == 0:
            entry.first_duration_us = duration_us
        if sha:
            entry.sha = sha
    return {t: sorted(r.values(), key=lambda e: e.run_id) for t, r in by_test.items()}


def _stats(key: str, name: str, classname: str, phases: list[str], runs: list[_RunOfTest]) -> TestStats:
    """The verdict on one test from its runs in the window (oldest first)."""
    ran = [r for r in runs if r.verdict is not Outcome.SKIPPED]
    considered = ran or runs
    failed_runs = [r for r in considered if r.has_fail and not r.has_pass]
    with_failure = [r for r in considered if r.has_fail]
    rerun_passes = [r for r in considered if r.has_fail and r.has_pass]
    last = considered[-1]
    evidence = ""
    status = TestStatus.PASSING
    same_commit = _same_commit_flip(considered)
    # Broken first: failing each of its last runs outweighs an earlier pass on the same commit.
    if len(considered) >= BROKEN_AFTER and all(r.has_fail and not r.has_pass for r in considered[-BROKEN_AFTER:]):
        status = TestStatus.BROKEN
        first_bad = len(considered)
        for r in reversed(considered):
            if r.has_fail and not r.has_pass:
                first_bad -= 1
            else:
                break
        streak = len(considered) - first_bad
        evidence = f"failed in each of its last {streak} run(s), since {considered[first_bad].run_id}"
    elif rerun_passes:
        status = TestStatus.FLAKY
        shown = ", ".join(r.run_id for r in rerun_passes[-3:])
        evidence = f"failed, then passed on a rerun in {len(rerun_passes)} run(s): {shown}"
    elif same_commit:
        status = TestStatus.FLAKY
        evidence = same_commit
    elif last.has_fail and not last.has_pass:
        status = TestStatus.FAILING
        evidence = f"failed in its latest run {last.run_id} ({len(failed_runs)} of {len(considered)} runs failed)"
    elif with_failure:
        status = TestStatus.RECOVERED
        evidence = f"failed in {len(with_failure)} of {len(considered)} runs, passed in its latest run {last.run_id}"
    return TestStats(
        key=key,
        name=name,
        classname=classname,
        phases=phases,
        status=status,
        runs=len(considered),
        failed_runs=len(failed_runs),
        runs_with_failure=len(with_failure),
        failure_rate=round(len(with_failure) / len(considered), 4) if considered else 0.0,
        rerun_passes=len(rerun_passes),
        evidence=evidence,
        last_outcome=last.verdict,
        last_run_id=last.run_id,
        last_message_sha256=last.sha,
    )


# A run its timeout or a cancel ended: its failures say the run was cut short, not that the test is flaky.
CUT_SHORT = frozenset({"timeout", "cancelled"})
# Test selection (go -run/-skip, pytest -k/-m, node ids) narrows what runs, not how: runs differing only
# there ran the test the same way. Values given as the next argument are dropped with their flag.
SELECTION_FLAGS = frozenset({"-run", "-skip", "-test.run", "-test.skip", "-k", "-m"})


def run_settings(argv_json: str, run_id: str) -> str:
    """A run's argv without its test selection and its own output paths, to tell runs made the same way apart."""
    try:
        argv = json.loads(argv_json)
    except ValueError:
        return argv_json
    if not isinstance(argv, list):
        return argv_json
    kept: list[str] = []
    skip_next = False
    for arg in map(str, argv):
        if skip_next:
            skip_next = False
            continue
        flag = arg.split("=", 1)[0]
        if flag in SELECTION_FLAGS:
            skip_next = "=" not in arg
            continue
        if "::" in arg:
            continue  # a pytest node id
        kept.append(arg.replace(run_id, "<run>"))
    return json.dumps(kept)


def _same_commit_flip(runs: list[_RunOfTest]) -> str:
    # Only runs made the same way compare: a pass under -timeout=1800s and a failure under -timeout=1s (or a
    # run its timeout killed) is a difference in settings, not flakiness.
    by_commit: dict[tuple[str, str], list[_RunOfTest]] = defaultdict(list)
    for r in runs:
        if r.commit and not r.dirty and r.status not in CUT_SHORT:
            by_commit[(r.commit, r.settings)].append(r)
    for (commit, _settings), group in by_commit.items():
        passed = [r for r in group if r.has_pass and not r.has_fail]
        failed = [r for r in group if r.has_fail]
        if passed and failed:
            return (
                f"passed ({passed[-1].run_id}) and failed ({failed[-1].run_id}) on the same commit "
                f"{commit[:12]} with a clean tree and the same settings"
            )
    return ""


def _test_info(conn: sqlite3.Connection, test_ids: list[int]) -> dict[int, tuple[str, str, str, list[str]]]:
    info: dict[int, tuple[str, str, str, list[str]]] = {}
    phases: dict[int, list[str]] = defaultdict(list)
    for start in range(0, len(test_ids), 500):
        chunk = test_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for pk, phase in conn.execute(f"SELECT test, phase FROM test_phases WHERE test IN ({marks})", chunk):
            phases[pk].append(phase)
        for pk, key, name, classname in conn.execute(
            f"SELECT id, key, name, classname FROM tests WHERE id IN ({marks})", chunk
        ):
            info[pk] = (key, name, classname, sorted(phases[pk]))
    return info


def _slow(conn: sqlite3.Connection, win: _Window, only: list[int] | None = None) -> list[SlowTest]:
    threshold_us = int(SLOW_MIN_DELTA_S * 1e6)
    found: list[SlowTest] = []
    for phase, latest in win.latest.items():
        sql = (
            "SELECT test, duration_us FROM attempts WHERE run = ? AND attempt = 0 AND outcome != 3 AND duration_us >= ?"
        )
        params: list[int] = [latest, threshold_us]
        if only is not None:
            sql += f" AND test IN ({','.join('?' * len(only))})"
            params += only
        latest_durations = dict(conn.execute(sql, params).fetchall())
        if not latest_durations:
            continue
        earlier_ids = [pk for pk, meta in win.ids.items() if meta[1] == phase and pk != latest]
        if len(earlier_ids) < SLOW_MIN_SAMPLES:
            continue
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS prev (id INTEGER PRIMARY KEY)")
        conn.execute("DELETE FROM prev")
        conn.executemany("INSERT INTO prev (id) VALUES (?)", [(pk,) for pk in earlier_ids])
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS cand (id INTEGER PRIMARY KEY)")
        conn.execute("DELETE FROM cand")
        conn.executemany("INSERT INTO cand (id) VALUES (?)", [(t,) for t in latest_durations])
        samples: dict[int, list[int]] = defaultdict(list)
        for test, duration_us in conn.execute(
            "SELECT a.test, a.duration_us FROM prev p CROSS JOIN cand c CROSS JOIN attempts a "
            "ON a.run = p.id AND a.test = c.id WHERE a.attempt = 0 AND a.outcome != 3"
        ):
            samples[test].append(duration_us)
        regressed: list[tuple[int, float, float, int]] = []
        for test, now_us in latest_durations.items():
            values = samples.get(test, [])
            if len(values) < SLOW_MIN_SAMPLES:
                continue
            median_us = statistics.median(values)
            if now_us > SLOW_RATIO * median_us and now_us - median_us >= threshold_us:
                regressed.append((test, now_us / 1e6, median_us / 1e6, len(values)))
        if not regressed:
            continue
        info = _test_info(conn, [r[0] for r in regressed])
        run_id = win.ids[latest][0]
        for test, now_s, median_s, count in regressed:
            key, name, classname, _ = info[test]
            found.append(
                SlowTest(
                    key=key,
                    name=name,
                    classname=classname,
                    phase=phase,
                    run_id=run_id,
                    duration_s=round(now_s, 3),
                    median_s=round(median_s, 3),
                    ratio=round(now_s / median_s, 2) if median_s > 0 else float("inf"),
                    slower_by_s=round(now_s - median_s, 3),
                    samples=count,
                )
            )
    found.sort(key=lambda s: s.slower_by_s, reverse=True)
    return found


def _trend(conn: sqlite3.Connection, limit: int = TREND_LIMIT) -> list[TrendPoint]:
    rows = conn.execute(
        "SELECT run_id, phase, started_at, tests, failed + errors, flaky, duration_s FROM runs "
        "ORDER BY run_id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    points = [
        TrendPoint(
            run_id=run_id,
            phase=phase,
            started_at=datetime.fromisoformat(started),
            tests=tests,
            failed=failed,
            flaky=flaky,
            failure_rate=round(failed / tests, 4) if tests else 0.0,
            flaky_rate=round(flaky / tests, 4) if tests else 0.0,
            duration_s=duration,
        )
        for run_id, phase, started, tests, failed, flaky, duration in rows
    ]
    points.reverse()
    return points


def analyse(conn: sqlite3.Connection, window: int = DEFAULT_WINDOW, phase: str | None = None) -> FlakyReport:
    """Flaky, broken, failing and slow tests over the last `window` runs of each phase (or of `phase`)."""
    win = _window(conn, window, [phase] if phase else None)
    report = FlakyReport(window=window, runs_considered=len(win.ids), phases=sorted(win.latest))
    if not win.ids:
        return report
    marks = ",".join("?" * len(report.phases))
    report.tests_seen = conn.execute(
        f"SELECT COUNT(DISTINCT test) FROM test_phases WHERE phase IN ({marks})", report.phases
    ).fetchone()[0]
    # The partial index `attempts_failed` holds failed attempts only: the candidates cost a few seeks.
    candidates = [
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT a.test FROM win w CROSS JOIN attempts a INDEXED BY attempts_failed "
            "ON a.run = w.id WHERE a.outcome IN (1, 2, 4)"
        )
    ]
    if candidates:
        runs = _runs_of_tests(conn, win, candidates)
        info = _test_info(conn, candidates)
        for test, test_runs in runs.items():
            key, name, classname, phases = info[test]
            stats = _stats(key, name, classname, phases, test_runs)
            if stats.status is TestStatus.FLAKY:
                report.flaky.append(stats)
            elif stats.status is TestStatus.BROKEN:
                report.broken.append(stats)
            elif stats.status in (TestStatus.FAILING, TestStatus.RECOVERED):
                report.failing.append(stats)
    for bucket in (report.flaky, report.broken, report.failing):
        bucket.sort(key=lambda s: (-s.failure_rate, s.key))
        del bucket[LIST_LIMIT:]
    report.slow = _slow(conn, win)[:LIST_LIMIT]
    report.trend = _trend(conn)
    return report


def flaky_tests(project: Project, window: int = DEFAULT_WINDOW, phase: str | None = None) -> FlakyReport:
    """Import new run folders, then flaky, broken, failing and slow tests over the recent runs."""
    imported = import_run_folders(project)
    with connect(project) as conn:
        report = analyse(conn, window, phase)
    report.imported = imported.imported
    report.problems = imported.problems
    return report


def _find_test(conn: sqlite3.Connection, test: str) -> tuple[int, str, str, str]:
    row = conn.execute("SELECT id, key, name, classname FROM tests WHERE key = ?", (test,)).fetchone()
    if row:
        return row  # type: ignore[no-any-return]
    rows = conn.execute("SELECT id, key, name, classname FROM tests WHERE name = ? LIMIT 20", (test,)).fetchall()
    if len(rows) == 1:
        return rows[0]  # type: ignore[no-any-return]
    if len(rows) > 1:
        keys = ", ".join(r[1] for r in rows[:10])
        raise InputError(f"test name {test!r} is ambiguous; give the full key, one of: {keys}")
    pattern = "%" + test.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    similar = conn.execute(
        "SELECT key FROM tests WHERE key LIKE ? ESCAPE '\\' ORDER BY key LIMIT 10", (pattern,)
    ).fetchall()
    total = conn.execute("SELECT COUNT(*) FROM tests").fetchone()[0]
    if similar:
        shown = ", ".join(r[0] for r in similar)
        raise NotFoundError(f"no test {test!r} in history ({total} tests recorded); similar: {shown}")
    if total == 0:
        raise NotFoundError(
            f"no test {test!r} in history: no tests are recorded yet; run a phase first "
            "(`itest-mcp phases` lists them, `itest-mcp run <phase>` runs one)"
        )
    raise NotFoundError(
        f"no test {test!r} in history ({total} tests recorded); give a test name or classname::name key "
        "as `itest-mcp flaky` or a run result shows it"
    )


def history_of_test(conn: sqlite3.Connection, test: str, limit: int = DEFAULT_WINDOW) -> TestHistory:
    """One test's last `limit` runs (newest first), its stats over them, and a slow regression if any."""
    if limit < 1:
        raise InputError(f"limit {limit} must be at least 1 run")
    pk, key, name, classname = _find_test(conn, test)
    phases = sorted(r[0] for r in conn.execute("SELECT phase FROM test_phases WHERE test = ?", (pk,)))
    win = _window(conn, limit, phases)
    runs = _runs_of_tests(conn, win, [pk]).get(pk, [])
    history = TestHistory(key=key, name=name, classname=classname, phases=phases)
    if not runs:
        return history
    history.entries = [
        TestRunEntry(
            run_id=r.run_id,
            phase=r.phase,
            commit=r.commit,
            dirty=r.dirty,
            started_at=datetime.fromisoformat(r.started_at),
            outcome=r.verdict,
            attempts=[CODE_OUTCOME[c] for c in r.codes],
            duration_s=round(r.first_duration_us / 1e6, 6),
            message_sha256=r.sha,
        )
        for r in reversed(runs)
    ]
    history.stats = _stats(key, name, classname, phases, runs)
    slow = _slow(conn, win, only=[pk])
    history.slow = slow[0] if slow else None
    return history


def test_history(project: Project, test: str | None = None, limit: int = DEFAULT_WINDOW) -> HistoryView:
    """Import new run folders, then one test's history, or the recent runs when `test` is None."""
    imported = import_run_folders(project)
    view = HistoryView(imported=imported.imported, problems=imported.problems)
    with connect(project) as conn:
        if test:
            view.test = history_of_test(conn, test, limit)
        else:
            view.runs = recent_runs(conn, limit)
    return view


test_history.__test__ = False  # type: ignore[attr-defined]
