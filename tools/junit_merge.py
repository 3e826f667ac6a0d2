"""Merge the testcases of every JUnit file into one `TestReport`: a column per field, reruns as attempts.

Reruns: testcases with the same class and name (suite and name when the class is empty, as jest-junit
writes), in one file or several, are one test with several attempts. The verdict: any pass plus any
failure → flaky; otherwise the last non-skipped attempt's outcome. Totals count tests; `attempts`
counts runs. Failure messages, locations and excerpts are worked out only for the failures returned
(`max_failures`); the counts always cover all of them.
"""

from __future__ import annotations

import heapq
import sys
from bisect import bisect_right
from collections.abc import Callable
from itertools import groupby
from pathlib import Path
from typing import Any, cast

from . import junit_dialects as dialects
from .junit_target import ERROR, FAILED, FLAKY, PASSED, SKIPPED, Attempts, Detail, Record, parse_seconds
from .models import (
    EXCERPT_LIMIT,
    SLOWEST_LIMIT,
    Attempt,
    CountsSource,
    Failure,
    Location,
    Outcome,
    SuiteSummary,
    TestReport,
    TestResult,
    TestTiming,
    Totals,
    excerpt,
)

_PLAIN_PASS: Record = (PASSED, None, None)


class _SecondsCache(dict[str, float]):
    """`time` attribute → seconds. Test times repeat ("0.236" has a thousand values), and float() of a
    decimal that binary cannot hold exactly takes ~0.4 µs, four times a dict lookup; same values either way."""

    def __missing__(self, key: str) -> float:
        value = float(key)
        if len(self) < 65536:
            self[key] = value
        return value


class Accumulator:
    """Every test seen so far, in columns (a test is a position), keyed by (class or suite, name).

    Columns instead of one object per test keep memory at roughly 200 bytes per test and let a batch
    of plain passing testcases be added with list/dict operations that run in C.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.index: dict[str, dict[str, int]] = {}
        """Class (or suite, when the class is empty) → test name → position."""
        self.names: list[str] = []
        self.classes: list[str] = []
        # Lists, not arrays: list.extend copies pointers, array.extend converts element by element (3x slower).
        self.suite_of: list[int] = []
        self.outcome: list[Outcome] = []
        self.dur: list[float] = []
        self.attempts: dict[int, Attempts] = {}
        """Positions with more than one attempt (or a skip message); the others ran once."""
        self.detail: dict[int, Detail] = {}
        """Positions whose last failing attempt said something."""
        self.runs: list[list[int]] = []  # [suite index, first position, end position]
        self.suites: list[list[Any]] = []  # [name, first file, time attribute sum]
        self._suite_by_name: dict[str, int] = {}
        self.declared: dict[int, tuple[int, int, int, int]] = {}
        self.waiting_output: dict[int, list[Detail]] = {}
        # Candidates for the slowest tests: every test whose duration reached the running floor when added.
        self._slow: set[int] = set()
        self._slow_floor = float("-inf")
        self._slow_exact = True
        self._seconds: _SecondsCache | None = _SecondsCache()

    def suite(self, name: str, file: str) -> int:
        idx = self._suite_by_name.get(name)
        if idx is None:
            idx = len(self.suites)
            self.suites.append([name, file, 0.0])
            self._suite_by_name[name] = idx
        return idx

    def _run(self, idx: int, start: int, end: int) -> None:
        runs = self.runs
        if runs and runs[-1][0] == idx and runs[-1][2] == start:
            runs[-1][2] = end
        else:
            runs.append([idx, start, end])

    def add_batch(
        self,
        names: list[str | None],
        classes: list[str | None],
        times: list[str | None],
        cases: list[dict[str, str]],
        records: dict[int, Record],
        idx: int,
        suite_name: str,
        unnamed: Callable[[], str],
    ) -> None:
        """Add a suite's testcases in document order: plain passes, and at `records` the ones with children."""
        if not all(names):
            names = [name or unnamed() for name in names]
        durations = self._durations(times)
        first = classes[0]
        n = len(names)
        if first is not None and classes.count(first) == n:
            # One class for the whole batch (Go, Surefire, most writers): one lookup, one intern.
            cls = sys.intern(first)
            self._add_run(cls or suite_name, [cls] * n, cast(list[str], names), durations, idx, records, 0)
            return
        if None in classes:
            classes = [c if c is not None else a.get("class") or "" for c, a in zip(classes, cases, strict=True)]
        interned = list(map(sys.intern, cast(list[str], classes)))
        start = 0
        for cls, group in groupby(interned):
            end = start + sum(1 for _ in group)
            key_cls = cls or suite_name
            run_names = cast(list[str], names[start:end])
            self._add_run(key_cls, interned[start:end], run_names, durations[start:end], idx, records, start)
            start = end

    def _durations(self, times: list[str | None]) -> list[float]:
        cache = self._seconds
        try:
            if cache is None:
                return list(map(float, times))  # type: ignore[arg-type]
            before = len(cache)
            durations = list(map(cache.__getitem__, times))  # type: ignore[arg-type]  # None: TypeError below
            if len(cache) - before > len(times) // 2 and len(cache) > 4096:
                self._seconds = None  # times too precise to repeat: the cache would only cost
            return durations
        except (TypeError, ValueError):
            return [parse_seconds(t) if t else 0.0 for t in times]

    def _add_run(
        self,
        key_cls: str,
        classes: list[str],
        names: list[str],
        durations: list[float],
        idx: int,
        records: dict[int, Record],
        offset: int,
    ) -> None:
        """Add consecutive testcases of one class; if one was seen before (a rerun), each goes through `add`."""
        sub = self.index.get(key_cls)
        if sub is None:
            sub = self.index[key_cls] = {}
        n = len(names)
        base = len(self.names)
        if sub.keys().isdisjoint(names):
            before = len(sub)
            sub.update(zip(names, range(base, base + n), strict=True))
            if len(sub) == before + n:
                self.names.extend(names)
                self.classes.extend(classes)
                self.suite_of.extend([idx] * n)
                self.outcome.extend([PASSED] * n)
                self.dur.extend(durations)
                self._run(idx, base, base + n)
                for i, (outcome, attempts, detail) in records.items():
                    if offset <= i < offset + n:
                        pos = base + i - offset
                        self.outcome[pos] = outcome
                        if attempts is not None:
                            self.attempts[pos] = attempts
                        if detail is not None:
                            self.detail[pos] = detail
                if durations and max(durations) > self._slow_floor:
                    self._offer_slow(base, durations)  # rarely, once the floor has risen
                return
            for name in names:  # the same name twice in this run: undo, then one by one
                sub.pop(name, None)
        for i, (name, cls, took) in enumerate(zip(names, classes, durations, strict=True)):
            outcome, attempts, detail = records.get(offset + i) or _PLAIN_PASS
            self.add((key_cls, name), name, cls, idx, outcome, took, attempts, detail)

    def _offer_slow(self, base: int, durations: list[float]) -> None:
        """Make candidates of the batch's durations that could rank among the slowest (ties included)."""
        ranked = sorted(durations)  # C; only the batch's own top values can make the list
        # Later positions lose ties, so a value must beat the floor, and reach the batch's own 10th value.
        start = max(bisect_right(ranked, self._slow_floor), len(ranked) - SLOWEST_LIMIT)
        while 0 < start < len(ranked) and ranked[start - 1] == ranked[start]:
            start -= 1  # ties with the batch's 10th value: keep them all, the earliest wins later
        slow = self._slow
        for value in set(ranked[start:]):
            if value <= 0 or value <= self._slow_floor:
                continue
            i = -1
            while True:
                try:
                    i = durations.index(value, i + 1)
                except ValueError:
                    break
                slow.add(base + i)
        if len(slow) > 8 * SLOWEST_LIMIT:
            dur = self.dur
            keep = heapq.nsmallest(SLOWEST_LIMIT, slow, key=lambda pos: (-dur[pos], pos))
            self._slow = set(keep)
            self._slow_floor = min(dur[pos] for pos in keep)

    def add(
        self,
        key: tuple[str, str],
        name: str,
        cls: str,
        idx: int,
        outcome: Outcome,
        dur: float,
        attempts: Attempts | None,
        detail: Detail | None,
    ) -> None:
        """Add one attempt of one test; a test already seen gets it as another attempt."""
        sub = self.index.get(key[0])
        if sub is None:
            sub = self.index[key[0]] = {}
        pos = sub.get(key[1])
        if pos is None:
            pos = len(self.names)
            sub[key[1]] = pos
            self.names.append(name)
            self.classes.append(sys.intern(cls))
            self.suite_of.append(idx)
            self.outcome.append(outcome)
            self.dur.append(dur)
            if attempts is not None:
                self.attempts[pos] = attempts
            if detail is not None:
                self.detail[pos] = detail
            self._run(idx, pos, pos + 1)
            self._slow.add(pos)
            return
        previous = self.attempts.get(pos) or [(self.outcome[pos], self.dur[pos], _detail_message(self.detail.get(pos)))]
        merged = previous + (attempts or [(outcome, dur, _detail_message(detail))])
        self.attempts[pos] = merged
        self.outcome[pos] = _verdict(merged)
        self.dur[pos] += dur
        if dur < 0:
            self._slow_exact = False  # the candidate set assumes durations only grow
        self._slow.add(pos)
        if detail is not None:
            self.detail[pos] = detail

    def finish(self, *, keep_tests: bool, max_failures: int | None) -> tuple[TestReport, list[Failure], int]:
        column = {PASSED: 1, FAILED: 2, ERROR: 3, SKIPPED: 4, FLAKY: 5}
        rows = [[0, 0, 0, 0, 0, 0] for _ in self.suites]  # tests passed failed errors skipped flaky
        durations = [0.0] * len(self.suites)
        for idx, start, end in self.runs:
            # A run is a range of positions of one suite; list.count compares by identity first, in C.
            row = rows[idx]
            part = self.outcome[start:end]
            row[0] += end - start
            for outcome, col in column.items():
                row[col] += part.count(outcome)
            durations[idx] += sum(self.dur[start:end])
        attempts_total = len(self.names) + sum(len(a) - 1 for a in self.attempts.values())
        for idx, (tests, failed, errors, skipped) in self.declared.items():
            if rows[idx][0] == 0:
                rows[idx] = [tests, max(0, tests - failed - errors - skipped), failed, errors, skipped, 0]
                attempts_total += tests
        sums = [sum(col) for col in zip(*rows, strict=True)] if rows else [0] * 6
        totals = Totals(
            tests=sums[0],
            passed=sums[1],
            failed=sums[2],
            errors=sums[3],
            skipped=sums[4],
            flaky=sums[5],
            attempts=attempts_total,
        )
        suites = [
            SuiteSummary(
                name=name,
                file=file,
                tests=row[0],
                passed=row[1],
                failed=row[2],
                errors=row[3],
                skipped=row[4],
                flaky=row[5],
                duration_s=round(time_sum or durations[idx], 6),
            )
            for idx, ((name, file, time_sum), row) in enumerate(zip(self.suites, rows, strict=True))
            if row[0]
        ]
        failing: list[int] = []
        flaky: list[Failure] = []
        for pos in sorted(self.detail):
            outcome = self.outcome[pos]
            if outcome is FAILED or outcome is ERROR:
                failing.append(pos)
            elif outcome is FLAKY:
                flaky.append(self._failure(pos))
        # Messages, locations and excerpts are worked out only for the failures that are returned.
        omitted = 0
        if max_failures is not None and len(failing) > max_failures:
            omitted = len(failing) - max_failures
            failing = failing[:max_failures]
        failures = [self._failure(pos) for pos in failing]
        dur = self.dur
        candidates = sorted(self._slow) if self._slow_exact else range(len(dur))
        slowest = [
            TestTiming(name=self.names[pos], classname=self.classes[pos], duration_s=dur[pos])
            for pos in heapq.nlargest(SLOWEST_LIMIT, candidates, key=dur.__getitem__)
            if dur[pos] > 0
        ]
        report = TestReport(
            source=CountsSource.JUNIT,
            totals=totals,
            suites=suites,
            failures=failures,
            slowest=slowest,
            tests=self._tests() if keep_tests else [],
        )
        return report, flaky, omitted

    def _failure(self, pos: int) -> Failure:
        detail = self.detail[pos]
        message = dialects.best_message(detail.message, detail.text)
        return Failure(
            test=self.names[pos],
            classname=self.classes[pos],
            outcome=self.outcome[pos],
            message=message,
            location=self._location(pos, detail),
            excerpt=_excerpt(detail.text, detail.out, detail.err),
            attempts=len(self.attempts[pos]) if pos in self.attempts else 1,
            kind=dialects.failure_kind(detail.type, message, detail.text),
        )

    def _location(self, pos: int, detail: Detail) -> Location | None:
        return dialects.find_location(
            detail.text or detail.out,
            classname=self.classes[pos],
            file_attr=detail.file,
            line_attr=detail.line,
            root=self.root,
        )

    def _tests(self) -> list[TestResult]:
        tests = []
        suite_names = [s[0] for s in self.suites]
        for pos, name in enumerate(self.names):
            outcome = self.outcome[pos]
            detail = self.detail.get(pos)
            attempts = self.attempts.get(pos) or [(outcome, self.dur[pos], _detail_message(detail))]
            failing = detail is not None and outcome is not PASSED and outcome is not SKIPPED
            tests.append(
                TestResult(
                    name=name,
                    classname=self.classes[pos],
                    suite=suite_names[self.suite_of[pos]],
                    outcome=outcome,
                    duration_s=self.dur[pos],
                    attempts=[Attempt(outcome=o, duration_s=d, message=m) for o, d, m in attempts],
                    location=self._location(pos, detail) if failing and detail is not None else None,
                    message=_detail_message(detail) if failing else None,
                )
            )
        return tests


def _excerpt(text: str, out: str, err: str) -> str:
    """The failure text, then the test's own output, each cut to its share of the excerpt budget."""
    text = text.strip("\n")
    candidates = (("", text), ("--- system-out ---\n", out.strip("\n")), ("--- system-err ---\n", err.strip("\n")))
    parts = [p for p in candidates if p[1]]
    if not parts:
        return ""
    budget = EXCERPT_LIMIT // len(parts)
    return excerpt("\n".join(head + excerpt(body, max(1, budget - len(head) - 1)) for head, body in parts))


def _detail_message(detail: Detail | None) -> str | None:
    return dialects.best_message(detail.message, detail.text) if detail is not None else None


def _verdict(attempts: Attempts) -> Outcome:
    outcomes = [a[0] for a in attempts if a[0] is not SKIPPED]
    if not outcomes:
        return SKIPPED
    passed = any(o is PASSED or o is FLAKY for o in outcomes)
    failed = any(o is not PASSED for o in outcomes)
    if passed:
        return FLAKY if failed else PASSED
    return outcomes[-1]
