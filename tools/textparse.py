"""Fallback parser for plain `go test` (with or without -v) and pytest text output.

Used when a command phase prints neither `go test -json` nor leaves JUnit files.
Counts from text are the least precise (plain `go test` prints only failing
tests), so results built from it say so in their notes.
"""

from __future__ import annotations

import re

from .models import (
    SLOWEST_LIMIT,
    Attempt,
    CountsSource,
    Failure,
    Location,
    Outcome,
    TestReport,
    TestResult,
    TestTiming,
    Totals,
    excerpt,
)

_GO_RESULT = re.compile(r"^(\s*)--- (PASS|FAIL|SKIP): (\S+) \(([\d.]+)s\)")
_GO_RUN = re.compile(r"^=== RUN\s+(\S+)")
_GO_PKG = re.compile(r"^(?:ok|FAIL)\s+(\S+)\s")
_GO_PKG_OK = re.compile(r"^ok\s+(\S+)\s+(?:([\d.]+)s)?")
PACKAGE_ONLY = "(package passed; per-test counts unknown)"
"""The name of the one result standing for a package `go test` passed without printing its tests (no -v)."""
_GO_MSG = re.compile(r"^\s+([\w.\-+]+\.go):(\d+): ?(.*)$")
_PY_VERBOSE = re.compile(r"^(\S+::\S+)\s+(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
_PY_SHORT = re.compile(r"^(FAILED|ERROR)\s+(\S+::\S+)(?:\s+-\s+(.*))?$")
_PY_SUMMARY = re.compile(r"^=+ (.*\d+ (?:passed|failed|error|errors|skipped).*) in [\d.]+s")
_PY_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")
_PY_LOC = re.compile(r"^(\S+\.py):(\d+): ")

_OUTCOMES = {
    "PASS": Outcome.PASSED,
    "FAIL": Outcome.FAILED,
    "SKIP": Outcome.SKIPPED,
    "PASSED": Outcome.PASSED,
    "FAILED": Outcome.FAILED,
    "ERROR": Outcome.ERROR,
    "SKIPPED": Outcome.SKIPPED,
    "XFAIL": Outcome.SKIPPED,
    "XPASS": Outcome.PASSED,
}


class TextParser:
    """Recognise test results in plain text output, line by line."""

    def __init__(self) -> None:
        self._tests: dict[str, TestResult] = {}
        self._messages: dict[str, tuple[str, Location | None, list[str]]] = {}
        self._current: str | None = None
        self._pending: list[tuple[str, str]] = []  # tests whose package line has not come yet
        self._py_summary: dict[str, int] = {}
        self._py_locations: dict[str, Location] = {}
        self._passed_packages: dict[str, float] = {}
        """Packages go test printed `ok` for, with their time: without -v that line is all there is."""
        self.lines = 0

    def feed(self, line: bytes | str) -> None:
        """One line of output."""
        self.lines += 1
        text = (line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line).rstrip("\r\n")
        if len(text) > 4096:
            text = text[:4096]
        run = _GO_RUN.match(text)
        if run:
            self._current = run.group(1)
            return
        result = _GO_RESULT.match(text)
        if result:
            name = result.group(3)
            self._add(name, "", _OUTCOMES[result.group(2)], float(result.group(4)))
            self._current = name
            self._pending.append((name, ""))
            return
        pkg = _GO_PKG.match(text)
        if pkg and "::" not in text:
            ok = _GO_PKG_OK.match(text)
            if ok:
                self._passed_packages[ok.group(1)] = float(ok.group(2) or 0.0)
            for name, _ in self._pending:
                test = self._tests.get(name)
                if test is not None and not test.classname:
                    self._tests[pkg.group(1) + "::" + name] = test.model_copy(update={"classname": pkg.group(1)})
                    del self._tests[name]
                    if name in self._messages:
                        self._messages[pkg.group(1) + "::" + name] = self._messages.pop(name)
            self._pending.clear()
            self._current = None
            return
        msg = _GO_MSG.match(text)
        if msg and self._current is not None:
            if msg.group(1) == "testing.go" and self._current not in self._messages:
                return
            entry = self._messages.setdefault(
                self._current, (msg.group(3), Location(file=msg.group(1), line=int(msg.group(2))), [])
            )
            if len(entry[2]) < 40:
                entry[2].append(text.strip())
            return
        verbose = _PY_VERBOSE.match(text)
        if verbose:
            nodeid = verbose.group(1)
            module, _, name = nodeid.partition("::")
            self._add(name, module, _OUTCOMES[verbose.group(2)], 0.0)
            return
        short = _PY_SHORT.match(text)
        if short:
            module, _, name = short.group(2).partition("::")
            outcome = _OUTCOMES[short.group(1)]
            key = f"{module}::{name}"
            if key not in self._tests:
                self._add(name, module, outcome, 0.0)
            self._messages[key] = (short.group(3) or "", self._py_locations.get(module), [])
            return
        loc = _PY_LOC.match(text)
        if loc:
            self._py_locations[loc.group(1)] = Location(file=loc.group(1), line=int(loc.group(2)))
            return
        summary = _PY_SUMMARY.match(text)
        if summary:
            for count, word in _PY_COUNT.findall(summary.group(1)):
                self._py_summary[word.rstrip("s") if word.startswith("error") else word] = int(count)

    def _stand_in_for_silent_packages(self) -> None:
        """One passed result per package go test passed without printing a test line (plain `go test`).

        Its `ok` line says the package's tests ran and passed but not how many: with no result at all the
        run would read "ran no tests", which its own output contradicts.
        """
        printed = {test.classname for test in self._tests.values()}
        for package, duration in self._passed_packages.items():
            key = f"{package}::{PACKAGE_ONLY}"
            if package not in printed and key not in self._tests:
                self._add(PACKAGE_ONLY, package, Outcome.PASSED, duration)

    def _add(self, name: str, classname: str, outcome: Outcome, duration: float) -> None:
        key = f"{classname}::{name}" if classname else name
        existing = self._tests.get(key)
        attempt = Attempt(outcome=outcome, duration_s=duration)
        if existing is None:
            self._tests[key] = TestResult(
                name=name, classname=classname, outcome=outcome, duration_s=duration, attempts=[attempt]
            )
        else:
            existing.attempts.append(attempt)
            existing.outcome = outcome if existing.outcome is outcome else Outcome.FLAKY

    @property
    def found_anything(self) -> bool:
        """Whether any test result or summary was recognised."""
        return bool(self._tests or self._py_summary or self._passed_packages)

    def report(self) -> TestReport:
        """The report of everything recognised (source `text`)."""
        self._stand_in_for_silent_packages()
        tests = list(self._tests.values())
        totals = Totals()
        failures: list[Failure] = []
        for key, test in self._tests.items():
            totals.tests += 1
            totals.attempts += len(test.attempts)
            attr = {
                Outcome.PASSED: "passed",
                Outcome.FAILED: "failed",
                Outcome.ERROR: "errors",
                Outcome.SKIPPED: "skipped",
                Outcome.FLAKY: "flaky",
            }[test.outcome]
            setattr(totals, attr, getattr(totals, attr) + 1)
            if test.outcome in (Outcome.FAILED, Outcome.ERROR):
                message, location, lines = self._messages.get(key, self._messages.get(test.name, ("", None, [])))
                test.message = message or None
                test.location = location
                failures.append(
                    Failure(
                        test=test.name,
                        classname=test.classname,
                        outcome=test.outcome,
                        message=message or "failed",
                        location=location,
                        excerpt=excerpt("\n".join(lines)),
                    )
                )
        if self._py_summary and not tests:
            totals.passed = self._py_summary.get("passed", 0) + self._py_summary.get("xpassed", 0)
            totals.failed = self._py_summary.get("failed", 0)
            totals.errors = self._py_summary.get("error", 0)
            totals.skipped = self._py_summary.get("skipped", 0) + self._py_summary.get("xfailed", 0)
            totals.tests = totals.passed + totals.failed + totals.errors + totals.skipped
            totals.attempts = totals.tests
        slowest = sorted(tests, key=lambda t: t.duration_s, reverse=True)[:SLOWEST_LIMIT]
        return TestReport(
            source=CountsSource.TEXT,
            totals=totals,
            failures=failures,
            slowest=[TestTiming(name=t.name, classname=t.classname, duration_s=t.duration_s) for t in slowest],
            tests=tests,
        )
