"""A pure, streaming parser of `go test -json` output (plain-text lines mixed in are fine).

Feed it one line at a time (`feed`), ask it for a `TestReport` at the end
(`report`). It never starts a process and never reads a file: like gotestsum's
`testjson`, it scans what it is given. Memory stays bounded by the number of
tests, not by the amount of output: each running test keeps only a bounded tail
of its output, and a passing test drops it.

What it understands: run/pass/fail/skip/output events, repeated runs of one test
(`-count`, reruns) as attempts, per-test output, package-level build failures
(Go ≥ 1.24 `build-output`/`build-fail` events and older plain-text `# pkg`
blocks), `panic:` and `WARNING: DATA RACE` blocks attributed to the test that
was running, the `-timeout` panic, and output of a test that never finished.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from .models import (
    SLOWEST_LIMIT,
    Attempt,
    BuildError,
    CountsSource,
    DataRace,
    Failure,
    Location,
    Outcome,
    Panic,
    SuiteSummary,
    TestReport,
    TestResult,
    TestTiming,
    Totals,
    excerpt,
)

TAIL_CHARS = 16 * 1024
"""Characters of output kept per running test (the failure excerpt is cut from it)."""
BLOCK_LINES = 80
"""Lines kept of one panic or data-race block."""
BLOCK_CHARS = 8 * 1024
LINE_CHARS = 64 * 1024
"""A single output line longer than this is cut before it is kept anywhere."""
MAX_RACES = 50
MAX_PANICS = 50

_T_LINE = re.compile(r"^\s+([\w.\-+]+\.go):(\d+): ?(.*)$")
_COMPILER_LINE = re.compile(r"^(\S+?\.(?:go|s|c|mod)):(\d+)(?::\d+)?: ?(.*)$")
_FRAME_FILE = re.compile(r"^\s+(\S+\.go):(\d+)(?: \+0x[0-9a-f]+)?$")
_TIMEOUT = re.compile(r"^panic: test timed out after (\S+)")
_RACE_SEP = "=================="
_BUILD_FAILED = re.compile(r"^FAIL\s+(\S+)\s+\[(build failed|setup failed)\]")
_SCAN_FIRST = frozenset("Wpf")
"""First characters of the lines `_scan` looks for besides indented t.Log/t.Error lines (WARNING, panic, fatal)."""
# Enum members read through module constants: a class attribute lookup on an enum costs a descriptor call.
_PASSED, _FAILED, _ERROR = Outcome.PASSED, Outcome.FAILED, Outcome.ERROR
_SKIPPED, _FLAKY = Outcome.SKIPPED, Outcome.FLAKY
_ACTIONS = {"pass": _PASSED, "fail": _FAILED, "skip": _SKIPPED}
_NOISE = ("=== ", "--- PASS: ")
"""A test's "=== RUN" (PAUSE, CONT, NAME) and "--- PASS:" lines: nothing reads them (excerpts and messages
skip them, a pass clears the tail). They are 2 of the ~5 events of a passing test."""

ProgressHook = Callable[[str, str, Outcome], None]
"""Called with (package, test, outcome) when a test finishes."""


@dataclass(slots=True)
class _TestRecord:
    package: str
    name: str
    attempts: list[Attempt] = field(default_factory=list)
    location: Location | None = None
    message: str | None = None
    excerpt: str = ""
    kind: str | None = None
    has_failed_child: bool = False
    # the attempt in flight
    running: bool = False
    tail: deque[str] = field(default_factory=deque)
    tail_chars: int = 0
    attempt_message: str | None = None
    attempt_location: Location | tuple[str, str, int] | None = None
    """Where the attempt failed; a t.Error line's (package, file, line) stays a tuple until a failure needs it."""
    attempt_kind: str | None = None
    race_located: bool = False
    """The attempt's location is its first race's (a later race or t.Error line does not move it)."""
    run_time: str | None = None
    """The `Time` of the attempt's run event: how long a test killed mid-run had been running."""
    result: TestResult | None = None
    """The TestResult over `attempts` (rebuilt when an attempt is added)."""


@dataclass(slots=True)
class _Block:
    kind: str  # "panic" or "race"
    package: str
    test: str | None
    lines: list[str] = field(default_factory=list)
    chars: int = 0


@dataclass(slots=True)
class _Package:
    name: str
    started: bool = False
    outcome: Outcome | None = None
    elapsed: float = 0.0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    running: list[str] = field(default_factory=list)
    build_failed: bool = False
    timed_out: str | None = None


class GoTestParser:
    """Streaming `go test -json` parser; `feed` lines, then `report()`."""

    def __init__(
        self,
        *,
        module_path: str | None = None,
        root: str | None = None,
        on_test_done: ProgressHook | None = None,
    ) -> None:
        """`module_path` (from go.mod) and `root` (absolute module folder) turn Go paths into repo-relative ones."""
        self.module_path = module_path
        self.root = root.rstrip("/") + "/" if root else None
        self.on_test_done = on_test_done
        self.events = 0
        self.json_events = 0
        self.top_level_done = 0
        self.tests_done = 0
        self.last_test: str | None = None
        self._tests: dict[tuple[str, str], _TestRecord] = {}
        self._packages: dict[str, _Package] = {}
        self._build_output: dict[str, list[str]] = {}
        self._build_errors: list[BuildError] = []
        self._plain_build_pkg: str | None = None
        self._blocks: dict[tuple[str, str | None], _Block] = {}
        self._races: list[DataRace] = []
        self._panics: list[Panic] = []
        self._stray: deque[str] = deque(maxlen=200)

    # -- input ------------------------------------------------------------------------------

    def feed(self, line: bytes | str) -> None:
        """One line of the stream (newline optional; bytes may hold invalid UTF-8)."""
        self.events += 1
        if isinstance(line, bytes):
            # go writes each event on its own line starting with "{".
            if line[:1] == b"{" or line.lstrip()[:1] == b"{":
                try:
                    event = _loads(line)
                except ValueError:
                    event = _loads_lenient(line.strip())
                if type(event) is dict and "Action" in event:
                    if event["Action"] == "output" and self._fast_output(event):
                        return
                    self._event(event)
                    return
            self._plain(line.decode("utf-8", errors="replace"))
            return
        if line.lstrip()[:1] == "{":
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if isinstance(event, dict) and "Action" in event:
                self._event(event)
                return
        self._plain(line)

    def _fast_output(self, ev: dict[str, object]) -> bool:
        """The common output event (a known test's ordinary line) handled inline; False: take the full path."""
        output = ev.get("Output")
        if type(output) is str and output.startswith(_NOISE) and not self._blocks and ev.get("Test"):
            self.json_events += 1
            return True
        rec = self._tests.get((ev.get("Package"), ev.get("Test")))  # type: ignore[arg-type]
        if rec is None or type(output) is not str or len(output) > LINE_CHARS or self._blocks:
            return False
        first = output[:1]
        if first in _SCAN_FIRST:
            return False
        if first.isspace() and (
            rec.attempt_message is None or rec.attempt_kind == "data-race" and rec.attempt_location is None
        ):
            # The first t.Log/t.Error line of an attempt (one per test in most runs): `_scan`'s last case.
            if rec.attempt_kind is not None:
                return False
            match = _T_LINE.match(output.rstrip("\n"))
            if match is not None and match.group(1) != "testing.go":
                rec.attempt_message = match.group(3)
                rec.attempt_location = (rec.package, match.group(1), int(match.group(2)))
        self.json_events += 1
        rec.tail.append(output)
        rec.tail_chars += len(output)
        if rec.tail_chars > TAIL_CHARS:
            while rec.tail_chars > TAIL_CHARS and len(rec.tail) > 1:
                rec.tail_chars -= len(rec.tail.popleft())
        return True

    def _event(self, ev: dict[str, object]) -> None:
        self.json_events += 1
        action = ev.get("Action")
        test = ev.get("Test")
        if action == "output":
            output = ev.get("Output")
            if type(output) is not str:
                return
            package = ev.get("Package")
            if type(package) is not str:
                package = str(package or "")
            if type(test) is str and test:
                self._test_output(package, test, output)
            else:
                self._package_output(package, output)
            return
        if action in ("build-output", "build-fail"):
            import_path = str(ev.get("ImportPath") or "")
            if action == "build-output":
                lines = self._build_output.setdefault(import_path, [])
                if len(lines) < BLOCK_LINES:
                    lines.append(str(ev.get("Output") or "")[:LINE_CHARS])
            else:
                self._build_fail(import_path)
            return
        package = ev.get("Package")
        if type(package) is not str:
            package = str(package or "")
        if type(test) is not str or not test:
            self._package_event(package, str(action), ev)
            return
        if action == "run":
            self._run(package, test, ev.get("Time"))
            return
        outcome = _ACTIONS.get(action) if type(action) is str else None
        if outcome is not None:
            elapsed = ev.get("Elapsed")
            self._finish(package, test, outcome, float(elapsed) if isinstance(elapsed, int | float) else 0.0)
        # pause/cont/bench/start carry nothing we report

    # -- tests ------------------------------------------------------------------------------

    def _record(self, package: str, test: str) -> _TestRecord:
        key = (package, test)
        rec = self._tests.get(key)
        if rec is None:
            rec = _TestRecord(package=package, name=test)
            self._tests[key] = rec
        return rec

    def _pkg(self, package: str) -> _Package:
        pkg = self._packages.get(package)
        if pkg is None:
            pkg = _Package(name=package)
            self._packages[package] = pkg
        return pkg

    def _run(self, package: str, test: str, when: object = None) -> None:
        rec = self._record(package, test)
        rec.running = True
        rec.run_time = when if type(when) is str else None
        rec.tail.clear()
        rec.tail_chars = 0
        rec.attempt_message = None
        rec.attempt_location = None
        rec.attempt_kind = None
        rec.race_located = False
        running = self._pkg(package).running
        if test not in running:
            running.append(test)

    def _finish(self, package: str, test: str, outcome: Outcome, elapsed: float, message: str | None = None) -> None:
        rec = self._record(package, test)
        if self._blocks:
            self._close_block(package, test)
        if outcome is _FAILED:
            if rec.attempt_kind is None and rec.attempt_message is None and message is None:
                # A parent that failed only because a subtest did: its own output says nothing.
                rec.attempt_kind = "subtest" if rec.has_failed_child else None
            text = "".join(rec.tail)
            rec.excerpt = excerpt(_drop_noise(text))
            rec.message = message or rec.attempt_message or _last_meaningful(text) or "failed"
            rec.location = self._location(rec.attempt_location) or rec.location
            rec.kind = rec.attempt_kind or rec.kind or "assertion"
            parent = test.rpartition("/")[0]
            if parent:
                self._record(package, parent).has_failed_child = True
        attempt_message = (message or rec.attempt_message) if outcome is not _PASSED else None
        if outcome is _SKIPPED:
            attempt_message = _skip_reason("".join(rec.tail))
        rec.attempts.append(_new_attempt(outcome, float(elapsed), attempt_message))
        # Built now, while the child still runs, so the report at the end only collects them.
        rec.result = _result(rec)
        rec.running = False
        rec.tail.clear()
        rec.tail_chars = 0
        running = self._pkg(package).running
        if test in running:
            running.remove(test)
        self.tests_done += 1
        if "/" not in test:
            self.top_level_done += 1
        self.last_test = test
        if self.on_test_done is not None:
            self.on_test_done(package, test, outcome)

    def _test_output(self, package: str, test: str, output: str) -> None:
        rec = self._tests.get((package, test))
        if rec is None:
            rec = self._record(package, test)
        if len(output) > LINE_CHARS:
            output = output[:LINE_CHARS] + "…[line cut]\n"
        rec.tail.append(output)
        rec.tail_chars += len(output)
        if rec.tail_chars > TAIL_CHARS:
            while rec.tail_chars > TAIL_CHARS and len(rec.tail) > 1:
                rec.tail_chars -= len(rec.tail.popleft())
        # Most lines are "=== RUN", "--- PASS" or a t.Log line after the first: nothing to look for.
        first = output[:1]
        if (
            self._blocks
            or first in _SCAN_FIRST
            or (
                first.isspace()
                and (rec.attempt_message is None or rec.attempt_kind == "data-race" and rec.attempt_location is None)
            )
        ):
            self._scan(package, test, rec, output)

    def _scan(self, package: str, test: str | None, rec: _TestRecord | None, output: str) -> None:
        """Find failure messages, panics and races in one line of a test's (or package's) output."""
        key = (package, test)
        block = self._blocks.get(key) if self._blocks else None
        line = output.rstrip("\n")
        if block is not None:
            if block.kind == "race" and line == _RACE_SEP:
                self._close_block(package, test)
                return
            if len(block.lines) < BLOCK_LINES and block.chars < BLOCK_CHARS:
                block.lines.append(line)
                block.chars += len(line)
            return
        if line.startswith("WARNING: DATA RACE"):
            self._blocks[key] = _Block("race", package, test, [line])
            if rec is not None:
                rec.attempt_kind = "data-race"
                rec.attempt_message = rec.attempt_message or "data race detected"
            return
        if line.startswith("panic: ") or line.startswith("fatal error: "):
            self._blocks[key] = _Block("panic", package, test, [line])
            timeout = _TIMEOUT.match(line)
            if timeout:
                self._pkg(package).timed_out = timeout.group(1)
            if rec is not None:
                rec.attempt_kind = "timeout" if timeout else "panic"
                rec.attempt_message = line
            return
        if rec is not None and rec.attempt_kind not in ("panic", "timeout"):
            match = _T_LINE.match(line)
            if match and match.group(1) != "testing.go":
                if rec.attempt_message is None or rec.attempt_kind == "data-race" and rec.attempt_location is None:
                    if rec.attempt_kind != "data-race":
                        rec.attempt_message = match.group(3)
                    # Most of these are t.Log lines of tests that pass: the Location is built only on failure.
                    rec.attempt_location = (package, match.group(1), int(match.group(2)))

    def _location(self, where: Location | tuple[str, str, int] | None) -> Location | None:
        if type(where) is tuple:
            return Location(file=self._pkg_file(where[0], where[1]), line=where[2])
        return where  # type: ignore[return-value]

    def _close_block(self, package: str, test: str | None) -> None:
        block = self._blocks.pop((package, test), None)
        if block is None:
            return
        text = "\n".join(block.lines)
        locations = self._frame_locations(block.lines, package)
        if block.kind == "race":
            if len(self._races) < MAX_RACES:
                self._races.append(DataRace(test=test, package=package, locations=locations[:6], excerpt=excerpt(text)))
            rec = self._tests.get((package, test)) if test else None
            if rec is not None and not rec.race_located and locations:
                rec.attempt_location = race_site(locations)
                rec.race_located = True
        else:
            location = locations[0] if locations else None
            if len(self._panics) < MAX_PANICS:
                self._panics.append(
                    Panic(test=test, package=package, message=block.lines[0], location=location, excerpt=excerpt(text))
                )
            rec = self._tests.get((package, test)) if test else None
            if rec is not None and location is not None:
                rec.attempt_location = location

    def _frame_locations(self, lines: list[str], package: str) -> list[Location]:
        """file:line of the stack frames that belong to user code, in stack order, without repeats."""
        found: list[Location] = []
        seen: set[str] = set()
        function = ""
        for line in lines:
            frame = _FRAME_FILE.match(line)
            if frame is None:
                function = line.strip()
                continue
            if not _is_user_function(function, package):
                continue
            loc = Location(file=self._rel(frame.group(1)), line=int(frame.group(2)))
            if str(loc) not in seen:
                seen.add(str(loc))
                found.append(loc)
        return found

    # -- packages and build failures --------------------------------------------------------

    def _package_output(self, package: str, output: str) -> None:
        pkg = self._pkg(package)
        if len(output) > LINE_CHARS:
            output = output[:LINE_CHARS] + "…[line cut]\n"
        # Older Go versions print a test's panic without the Test field: it belongs to the running test.
        if pkg.running:
            self._test_output(package, pkg.running[-1], output)
            return
        pkg.tail.append(output)
        if _BUILD_FAILED.match(output):
            pkg.build_failed = True
        self._scan(package, None, None, output)

    def _package_event(self, package: str, action: str, ev: dict[str, object]) -> None:
        pkg = self._pkg(package)
        if action == "start":
            pkg.started = True
            return
        if action not in ("pass", "fail", "skip"):
            return
        elapsed = ev.get("Elapsed")
        pkg.elapsed = float(elapsed) if isinstance(elapsed, int | float) else 0.0
        pkg.outcome = {"pass": Outcome.PASSED, "fail": Outcome.FAILED}.get(action, Outcome.SKIPPED)
        self._close_block(package, None)
        failed_build = ev.get("FailedBuild")
        if action == "fail" and (isinstance(failed_build, str) and failed_build or pkg.build_failed):
            self._build_fail(
                str(failed_build) if isinstance(failed_build, str) and failed_build else package, package=package
            )
        # Tests still running when their package ends did not finish: the -timeout panic or a crash.
        for test in list(pkg.running):
            reason = (
                f"test timed out after {pkg.timed_out}" if pkg.timed_out else "did not finish (the test binary exited)"
            )
            rec = self._record(package, test)
            if pkg.timed_out:
                rec.attempt_kind = "timeout"
            elapsed = _seconds_between(rec.run_time, ev.get("Time"))
            self._finish(package, test, Outcome.FAILED, elapsed, message=rec.attempt_message or reason)

    def _build_fail(self, import_path: str, *, package: str | None = None) -> None:
        lines = self._build_output.pop(import_path, None)
        pkg_name = package or _strip_variant(import_path)
        if any(b.package == pkg_name for b in self._build_errors):
            return
        if lines is None:
            # Plain-text build output (Go < 1.24) was collected under the `# pkg` header name.
            for key in list(self._build_output):
                if _strip_variant(key) == _strip_variant(import_path):
                    lines = self._build_output.pop(key)
                    break
        body = [line.rstrip("\n") for line in (lines or []) if not line.startswith("#")]
        location = None
        for line in body:
            match = _COMPILER_LINE.match(line.strip())
            if match:
                location = Location(file=self._build_file(pkg_name, match.group(1)), line=int(match.group(2)))
                break
        message = "\n".join(body).strip() or "build failed"
        self._build_errors.append(BuildError(package=pkg_name, message=excerpt(message), location=location))
        self._pkg(pkg_name).build_failed = True

    def _plain(self, line: str) -> None:
        """A line that is not a JSON event: go's own stderr, make's output, a stray print."""
        text = line.rstrip("\n")
        if len(text) > LINE_CHARS:
            text = text[:LINE_CHARS] + "…[line cut]"
        self._stray.append(text + "\n")
        if text.startswith("# "):
            self._plain_build_pkg = text[2:].strip()
            return
        if self._plain_build_pkg is not None:
            if _COMPILER_LINE.match(text.strip()) or text.startswith("\t") or text.startswith("    "):
                lines = self._build_output.setdefault(self._plain_build_pkg, [])
                if len(lines) < BLOCK_LINES:
                    lines.append(text + "\n")
                return
            self._plain_build_pkg = None
        failed = _BUILD_FAILED.match(text)
        if failed:
            self._build_fail(failed.group(1))

    # -- paths ------------------------------------------------------------------------------

    def _rel(self, path: str) -> str:
        if self.root and path.startswith(self.root):
            return path[len(self.root) :]
        return path

    def _pkg_dir(self, package: str) -> str | None:
        if self.module_path and (package == self.module_path or package.startswith(self.module_path + "/")):
            return package[len(self.module_path) + 1 :]
        return None

    def _pkg_file(self, package: str, base: str) -> str:
        pkg_dir = self._pkg_dir(package)
        if pkg_dir is None:
            return base
        return f"{pkg_dir}/{base}" if pkg_dir else base

    def _build_file(self, package: str, path: str) -> str:
        path = self._rel(path)
        if path.startswith("./"):
            # The compiler prints paths relative to where go ran (the module root).
            return path[2:]
        return path

    # -- output -----------------------------------------------------------------------------

    @property
    def build_errors_count(self) -> int:
        """Packages that failed to build so far."""
        return len(self._build_errors)

    def finish_unfinished(self, reason: str) -> None:
        """Mark tests still running (the run was stopped) as errors with `reason`."""
        for pkg in self._packages.values():
            for test in list(pkg.running):
                rec = self._record(pkg.name, test)
                self._close_block(pkg.name, test)
                rec.attempt_kind = "timeout" if "timed out" in reason else "interrupted"
                # Killed mid-run: it ran from its run event until now (go's clock and ours are the machine's).
                elapsed = _seconds_between(rec.run_time, datetime.now(UTC).isoformat())
                self._finish(pkg.name, test, Outcome.ERROR, elapsed, message=reason)

    def stray_output(self) -> str:
        """The last plain-text lines (not JSON events), for an error message."""
        return "".join(self._stray)

    def package_failures(self) -> list[str]:
        """Packages that failed without a failing test or a build error (TestMain exit, a crash after tests)."""
        failing = {
            r.package for r in self._tests.values() if r.attempts and r.attempts[-1].outcome is not Outcome.PASSED
        }
        return [
            p.name
            for p in self._packages.values()
            if p.outcome is Outcome.FAILED and not p.build_failed and p.name not in failing
        ]

    def report(self) -> TestReport:
        """The report of everything fed so far."""
        for key in list(self._blocks):
            self._close_block(*key)
        results: list[TestResult] = []
        failures: list[Failure] = []
        # Counted in plain dicts: 2,000 tests would otherwise mean 12,000 pydantic attribute writes.
        suite_counts: dict[str, dict[str, float]] = {}
        counts = dict.fromkeys(_COUNT_FIELDS, 0)
        attempts_total = 0
        for rec in self._tests.values():
            result = rec.result
            if result is None:
                continue
            results.append(result)
            outcome = result.outcome
            field_name = _OUTCOME_FIELD[outcome]
            counts[field_name] += 1
            attempts_total += len(rec.attempts)
            suite = suite_counts.get(rec.package)
            if suite is None:
                suite = suite_counts[rec.package] = dict.fromkeys(("tests", *_COUNT_FIELDS), 0)
                suite["duration_s"] = self._pkg(rec.package).elapsed
            suite["tests"] += 1
            suite[field_name] += 1
            if outcome in (Outcome.FAILED, Outcome.ERROR) and not (rec.kind == "subtest" and rec.has_failed_child):
                failures.append(
                    Failure(
                        test=rec.name,
                        classname=rec.package,
                        outcome=outcome,
                        message=excerpt(rec.message or "failed", 500),
                        location=rec.location,
                        excerpt=rec.excerpt,
                        attempts=len(rec.attempts),
                        kind=rec.kind,
                    )
                )
        for name in self.package_failures():
            pkg = self._packages[name]
            text = "".join(pkg.tail)
            failures.append(
                Failure(
                    test=f"{name} (package)",
                    classname=name,
                    outcome=Outcome.ERROR,
                    message=_last_meaningful(text) or "the test binary failed outside any test",
                    excerpt=excerpt(text),
                    kind="package",
                )
            )
        totals = Totals(tests=len(results), attempts=attempts_total, **counts)
        suites = [SuiteSummary(name=name, **values) for name, values in suite_counts.items()]
        slowest = heapq.nlargest(SLOWEST_LIMIT, results, key=_duration)
        return TestReport(
            source=CountsSource.GO_JSON,
            totals=totals,
            suites=suites,
            failures=failures,
            slowest=[TestTiming(name=r.name, classname=r.classname, duration_s=r.duration_s) for r in slowest],
            races=list(self._races),
            panics=list(self._panics),
            build_errors=list(self._build_errors),
            tests=results,
        )


_COUNT_FIELDS = ("passed", "failed", "errors", "skipped", "flaky")
_OUTCOME_FIELD = {
    Outcome.PASSED: "passed",
    Outcome.FAILED: "failed",
    Outcome.ERROR: "errors",
    Outcome.SKIPPED: "skipped",
    Outcome.FLAKY: "flaky",
}


def _duration(result: TestResult) -> float:
    return result.duration_s


def _result(rec: _TestRecord) -> TestResult:
    if len(rec.attempts) == 1:
        # The common case: one attempt, so its outcome is the verdict.
        only = rec.attempts[0]
        outcome = only.outcome
        duration = only.duration_s
    else:
        outcome = verdict([a.outcome for a in rec.attempts])
        duration = max(a.duration_s for a in rec.attempts)
    attempts = list(rec.attempts)  # a copy: later attempts must not change a report already handed out
    failed = outcome is _FAILED or outcome is _ERROR or outcome is _FLAKY
    return _new_result(
        {
            "name": rec.name,
            "classname": rec.package,
            "suite": None,
            "outcome": outcome,
            "duration_s": duration,
            "attempts": attempts,
            "location": rec.location if failed else None,
            "message": rec.message if failed else (attempts[-1].message if outcome is _SKIPPED else None),
        }
    )


def _new_attempt(outcome: Outcome, duration_s: float, message: str | None) -> Attempt:
    return _trusted(Attempt, {"outcome": outcome, "duration_s": duration_s, "message": message})


def _new_result(values: dict[str, object]) -> TestResult:
    return _trusted(TestResult, values)


_ModelT = TypeVar("_ModelT", Attempt, TestResult)
_TRUSTED_FIELDS: dict[type[Attempt | TestResult], tuple[str, ...]] = {
    Attempt: ("outcome", "duration_s", "message"),
    TestResult: ("name", "classname", "suite", "outcome", "duration_s", "attempts", "location", "message"),
}
# Only while the models have exactly the fields filled in here; a field added later means the validated path.
_TRUSTED = {cls for cls, names in _TRUSTED_FIELDS.items() if tuple(cls.model_fields) == names}


def _trusted(cls: type[_ModelT], values: dict[str, object]) -> _ModelT:
    """A model from values this parser built with the right types, without pydantic validation.

    One Attempt and one TestResult per finished test: validating them was a third of the
    parse time on a 2,000-test run. This is what `model_construct` does, minus its generic
    default handling (which made it slower than validating).
    """
    fields = _READY.get(cls)
    if fields is None:
        if cls not in _TRUSTED:
            return cls(**values)
        if not cls.__pydantic_complete__:
            # Models defer building their validators/serializers (start-up time); nothing here would trigger it.
            cls.model_rebuild()
        fields = _READY[cls] = frozenset(_TRUSTED_FIELDS[cls])
    model = _object_new(cls)
    _object_setattr(model, "__dict__", values)
    _object_setattr(model, "__pydantic_fields_set__", set(fields))
    _object_setattr(model, "__pydantic_extra__", None)
    _object_setattr(model, "__pydantic_private__", None)
    return model


_READY: dict[type[Attempt | TestResult], frozenset[str]] = {}
"""Trusted classes already built, with their field names (every value is always given)."""
_object_new = object.__new__
_object_setattr = object.__setattr__


def verdict(outcomes: list[Outcome]) -> Outcome:
    """The outcome over all attempts: fails then passes is flaky, fails every time is failed."""
    if not outcomes:
        return Outcome.ERROR
    bad = [o for o in outcomes if o in (Outcome.FAILED, Outcome.ERROR)]
    if not bad:
        if all(o is Outcome.SKIPPED for o in outcomes):
            return Outcome.SKIPPED
        return Outcome.PASSED
    if any(o is Outcome.PASSED for o in outcomes):
        return Outcome.FLAKY
    return Outcome.ERROR if all(o is Outcome.ERROR for o in bad) else Outcome.FAILED


def race_site(locations: list[Location]) -> Location | None:
    """Where a data race is: its first racing access outside the test files, else its first location.

    A race's frames list the accesses first and the goroutines' creation (often a test line) last;
    the test line says only which test started the goroutines, not where the unguarded access is.
    """
    for location in locations:
        if not location.file.endswith("_test.go"):
            return location
    return locations[0] if locations else None


def _is_user_function(function: str, package: str) -> bool:
    """Whether a stack frame's function is user code (not the runtime, testing or the standard library)."""
    if not function or function.startswith("created by") or function.startswith("panic("):
        return False
    name = function.split("(", 1)[0] if not function.startswith("(") else function
    if package and (name.startswith(package + ".") or name.startswith(package + "_test.")):
        return True
    # Module paths start with a domain ("example.com/..."); the standard library and `main` do not.
    return "/" in name and "." in name.split("/", 1)[0]


def _seconds_between(start: object, end: object) -> float:
    """Seconds from one go event `Time` (RFC 3339) to another; 0.0 when either is missing or unreadable."""
    if type(start) is not str or type(end) is not str:
        return 0.0
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return 0.0
    return round(max(0.0, seconds), 3)


def _strip_variant(import_path: str) -> str:
    """`example.com/x [example.com/x.test]` → `example.com/x`."""
    return import_path.split(" [", 1)[0].strip()


def _drop_noise(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("=== "))


def _last_meaningful(text: str) -> str | None:
    for line in reversed(text.splitlines()):
        stripped = line.strip()
        if stripped and not stripped.startswith(("--- ", "=== ", "FAIL", "PASS", "ok ")):
            return stripped[:500]
    return None


def _skip_reason(text: str) -> str | None:
    for line in text.splitlines():
        match = _T_LINE.match(line)
        if match:
            return match.group(3)[:500]
    return None


def _loads_stdlib(raw: bytes) -> object:
    text = raw.decode("utf-8")
    start = len(text) - len(text.lstrip())
    obj, end = _RAW_DECODE(text, start)
    if end != len(text) and not text[end:].isspace():
        raise ValueError("extra data after the JSON value")
    return obj


_RAW_DECODE = json.JSONDecoder().raw_decode
try:
    # orjson parses an event ~4x faster than json.loads; the 5% overhead bar on 10k-event runs needs it.
    from orjson import loads as _orjson_loads

    _loads: Callable[[bytes], object] = _orjson_loads
except ImportError:  # pragma: no cover - orjson is a dependency; keep working without it
    _loads = _loads_stdlib


def _loads_lenient(raw: bytes) -> object:
    """Invalid UTF-8 or lone surrogate escapes (which orjson refuses): decode with replacement characters."""
    try:
        return json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return None
