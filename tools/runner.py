"""run_phase: run one configured or discovered phase and turn what it did into a `PhaseRun`.

Every run gets a folder `.itest/runs/<run-id>/` (ids sort by time) holding
`output.log` (everything the child printed, raw bytes), `run.json` (the
PhaseRun), `tests.jsonl` (one TestResult per line, all attempts), `junit.xml`
and, with `coverage=true`, the coverage file. The child runs in its own session
(tools/process.py); timeout, cancel and disconnect kill its whole process group.

Runners: `go` adds `-json` and parses the event stream live (tools/gotest.py);
`pytest` loads our plugin (tools/pytest_plugin.py, copied into the run folder)
that reports each test on a pipe; `command` uses the Go parser when the command
prints `go test -json`, else the JUnit files its `junit` glob names, else text.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from .errors import InputError, ItestError, ToolNotFoundError
from .gotest import GoTestParser, race_site, verdict
from .models import (
    SLOWEST_LIMIT,
    Artifacts,
    Attempt,
    CountsSource,
    Failure,
    Location,
    Model,
    Outcome,
    PhaseRun,
    Resources,
    RunStatus,
    SuiteSummary,
    TestReport,
    TestResult,
    TestTiming,
    Totals,
    excerpt,
)
from .phases import MAX_TIMEOUT_S, ArgvOptions, Phase, Runner, build_argv, load_phases, python_for, top_level_regex
from .process import INSTALL_HINTS, Supervised, require_program, run_capture, run_supervised
from .repo import Project, ensure_not_option

ProgressSink = Callable[[int, int | None, str], Awaitable[None]]
"""An async callable `(done, total or None, message)` that forwards progress (MCP, a terminal)."""

RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}-[0-9a-f]{4}$")
PLUGIN_MODULE = "itest_pytest_plugin"
EVENTS_ENV = "ITEST_EVENTS_FD"
PROGRESS_INTERVAL_S = 0.25
"""Least time between two progress notifications (the first and the last are never held back)."""
MAX_RERUN = 10


class RunOptions(Model):
    """How a caller narrows a phase run: values only, never a command."""

    test: str | None = None
    """Run one test or a regular expression in isolation (Go -run, pytest -k)."""
    race: bool | None = None
    count: int | None = Field(default=None, ge=1, le=1000)
    rerun_failures: int = Field(default=0, ge=0, le=MAX_RERUN)
    timeout_s: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_S)
    coverage: bool = False


def new_run_id(phase: str, now: datetime | None = None) -> str:
    """`20261124T031500Z-<phase>-<4 hex>`: sorts by start time."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{phase}-{secrets.token_hex(2)}"


def _make_run_dir(project: Project, phase: str) -> tuple[str, Path]:
    for _ in range(20):
        run_id = new_run_id(phase)
        path = project.runs_dir / run_id
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return run_id, path
    raise ItestError(f"could not create a run folder under {project.runs_dir}; check that it is writable")


# -- progress -----------------------------------------------------------------------------------


@dataclass
class _Progress:
    sink: ProgressSink | None
    total: int | None = None
    done: int = 0
    message: str = ""
    sent_done: int = -1
    last_sent: float = 0.0
    changed: Any = None  # anyio.Event, created inside the event loop

    finished: tuple[str, Outcome] | None = None
    """The last finished test, formatted into `message` only when a notification goes out."""

    def test_done(self, done: int, test: str, outcome: Outcome) -> None:
        """Cheaper `update` for the hot path (one call per finished test)."""
        self.done = done
        self.finished = (test, outcome)
        if self.total is not None and done > self.total:
            self.total = done
        if self.changed is not None:
            self.changed.set()

    def update(self, done: int, message: str, total: int | None = None) -> None:
        self.done = done
        self.message = message
        self.finished = None
        if total is not None:
            self.total = total
        if self.total is not None and self.done > self.total:
            self.total = self.done
        if self.changed is not None:
            self.changed.set()

    async def send(self) -> None:
        if self.sink is None:
            return
        self.sent_done = self.done
        self.last_sent = time.monotonic()
        if self.finished is not None:
            self.message = f"{self.finished[0]} {self.finished[1].value}"
            self.finished = None
        try:
            await self.sink(self.done, self.total, self.message)
        except Exception:  # noqa: BLE001 - a client that stopped listening must not fail the run
            self.sink = None

    async def loop(self) -> None:
        import anyio

        while True:
            self.changed = anyio.Event()
            await self.changed.wait()
            wait = PROGRESS_INTERVAL_S - (time.monotonic() - self.last_sent)
            if self.sent_done > 0 and wait > 0:
                await anyio.sleep(wait)
            await self.send()


# -- pytest events ------------------------------------------------------------------------------


@dataclass
class _PytestCollector:
    """Per-test results from our plugin's event lines, merged over attempts by node id."""

    root: Path
    on_done: Callable[[str, int | None], None] | None = None
    collected: int | None = None
    results: dict[str, TestResult] = field(default_factory=dict)
    details: dict[str, tuple[str, str]] = field(default_factory=dict)
    collect_errors: list[Failure] = field(default_factory=list)
    done: int = 0
    events: int = 0

    def feed(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        self.events += 1
        kind = event.get("event")
        if kind == "collected" and isinstance(event.get("count"), int):
            if self.collected is None:
                self.collected = int(event["count"])
            if self.on_done:
                self.on_done("", self.collected)
        elif kind == "collect_error":
            nodeid = str(event.get("nodeid") or "")
            self.collect_errors.append(
                Failure(
                    test=nodeid or "(collection)",
                    classname=nodeid.partition("::")[0],
                    outcome=Outcome.ERROR,
                    message=excerpt(str(event.get("message") or "collection failed"), 500),
                    location=Location(file=nodeid.partition("::")[0]) if nodeid else None,
                    excerpt=excerpt(str(event.get("longrepr") or "")),
                    kind="collection",
                )
            )
        elif kind == "test":
            self._test(event)

    def _test(self, event: dict[str, Any]) -> None:
        nodeid = str(event.get("nodeid") or "")
        module, _, name = nodeid.partition("::")
        outcome = Outcome(str(event.get("outcome") or "error"))
        duration = float(event.get("duration") or 0.0)
        message = str(event.get("message") or "") or None
        attempt = Attempt(
            outcome=outcome, duration_s=duration, message=message if outcome is not Outcome.PASSED else None
        )
        result = self.results.get(nodeid)
        if result is None:
            result = TestResult(name=name or nodeid, classname=module, outcome=outcome, duration_s=duration)
            self.results[nodeid] = result
        result.attempts.append(attempt)
        result.outcome = verdict([a.outcome for a in result.attempts])
        result.duration_s = max(result.duration_s, duration)
        if outcome in (Outcome.FAILED, Outcome.ERROR):
            where_file = event.get("where_file") or event.get("file")
            where_line = event.get("where_line") or event.get("line")
            if where_file:
                result.location = Location(
                    file=_project_rel(self.root, str(where_file)),
                    line=int(where_line) if isinstance(where_line, int) else None,
                )
            result.message = message
            self.details[nodeid] = (message or "failed", str(event.get("longrepr") or ""))
        self.done += 1
        if self.on_done:
            self.on_done(name or nodeid, None)

    def report(self) -> TestReport:
        tests = list(self.results.values())
        totals = Totals()
        suites: dict[str, SuiteSummary] = {}
        failures: list[Failure] = []
        for nodeid, test in self.results.items():
            totals.tests += 1
            totals.attempts += len(test.attempts)
            suite = suites.setdefault(test.classname, SuiteSummary(name=test.classname, file=test.classname))
            suite.tests += 1
            suite.duration_s += test.duration_s
            for target in (totals, suite):
                _count(target, test.outcome)
            if test.outcome in (Outcome.FAILED, Outcome.ERROR):
                message, longrepr = self.details.get(nodeid, ("failed", ""))
                failures.append(
                    Failure(
                        test=test.name,
                        classname=test.classname,
                        outcome=test.outcome,
                        message=excerpt(message, 500),
                        location=test.location,
                        excerpt=excerpt(longrepr),
                        attempts=len(test.attempts),
                        kind="assertion" if "AssertionError" in longrepr or "assert " in longrepr else None,
                    )
                )
        failures.extend(self.collect_errors)
        totals.errors += len(self.collect_errors)
        slowest = sorted(tests, key=lambda t: t.duration_s, reverse=True)[:SLOWEST_LIMIT]
        return TestReport(
            source=CountsSource.PYTEST,
            totals=totals,
            suites=list(suites.values()),
            failures=failures,
            slowest=[TestTiming(name=t.name, classname=t.classname, duration_s=t.duration_s) for t in slowest],
            tests=tests,
        )


def _count(target: Totals | SuiteSummary, outcome: Outcome) -> None:
    name = {
        Outcome.PASSED: "passed",
        Outcome.FAILED: "failed",
        Outcome.ERROR: "errors",
        Outcome.SKIPPED: "skipped",
        Outcome.FLAKY: "flaky",
    }[outcome]
    setattr(target, name, getattr(target, name) + 1)


def _project_rel(root: Path, path: str) -> str:
    p = Path(path)
    if p.is_absolute():
        try:
            return p.resolve().relative_to(root).as_posix()
        except ValueError:
            return path
    return p.as_posix()


# -- the engine -------------------------------------------------------------------------------


@dataclass
class _Run:
    """Everything one phase run accumulates while its child processes come and go."""

    project: Project
    phase: Phase
    options: RunOptions
    run_id: str
    run_dir: Path
    env: dict[str, str]
    progress: _Progress
    started_at: datetime
    started: float
    argv: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    attempts: list[Supervised] = field(default_factory=list)
    go: GoTestParser | None = None
    pytest: _PytestCollector | None = None
    text: Any = None
    coverage: list[str] = field(default_factory=list)
    commit: str | None = None
    dirty: bool = False
    exit_code: int | None = None
    current: list[int] = field(default_factory=list)
    mark: Callable[[str], None] = field(default=lambda step: None)

    @property
    def log_path(self) -> Path:
        return self.run_dir / "output.log"


async def run_phase(
    project: Project,
    phase_name: str,
    options: RunOptions | None = None,
    *,
    progress: ProgressSink | None = None,
    extra_env: dict[str, str] | None = None,
    timeline: list[tuple[str, float]] | None = None,
) -> PhaseRun:
    """Run one phase with `options`; returns the PhaseRun (also written to the run folder).

    `timeline` (benches) receives `(step, time.monotonic())` pairs along the run's critical path.
    """
    import anyio

    mark = _marker(timeline)
    mark("entry")
    opts = options or RunOptions()
    phase_set = load_phases(project)
    phase = phase_set.get(phase_name)
    mark("phases loaded")
    if opts.test is not None:
        ensure_not_option("test", opts.test)
        if phase.runner is Runner.COMMAND:
            raise InputError(
                f"phase {phase.name!r} runs a command ({' '.join(phase.argv)}), which cannot be narrowed to test "
                f"{opts.test!r}; run a go or pytest phase with a test filter instead"
            )
    timeout = float(opts.timeout_s or phase.timeout_s)
    phase = phase.model_copy(update={"timeout_s": max(1.0, timeout)})
    _check_programs(phase)
    # Validate the argv before anything is created on disk (a bad filter is the caller's error).
    build_argv(phase, ArgvOptions(test=opts.test, race=opts.race, count=opts.count), others=phase_set.phases)
    mark("argv checked")
    run_id, run_dir = _make_run_dir(project, phase.name)
    mark("run folder")
    env = {**os.environ, **phase.env, **(extra_env or {}), "ITEST_RUN_DIR": str(run_dir)}
    run = _Run(
        project=project,
        phase=phase,
        options=opts,
        run_id=run_id,
        run_dir=run_dir,
        env=env,
        progress=_Progress(progress),
        started_at=datetime.now(UTC),
        started=time.monotonic(),
        mark=mark,
    )
    status: RunStatus | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_git_state, run)
            tg.start_soon(run.progress.loop)
            run.progress.update(0, f"starting {phase.name}")
            await run.progress.send()
            if phase.runner is Runner.GO:
                await _run_go(run, timeout)
            elif phase.runner is Runner.PYTEST:
                await _run_pytest(run, timeout)
            else:
                await _run_command(run, timeout)
            tg.cancel_scope.cancel()
    except BaseException as exc:
        domain = _domain_error(exc)
        if domain is not None:
            raise domain from None
        # Cancelled (client cancel, disconnect, Ctrl-C): the child is already dead; record what finished.
        with anyio.CancelScope(shield=True):
            status = RunStatus.CANCELLED
            result = _finish(run, status)
            _write_artifacts(run, result)
        raise
    mark("children done")
    result = _finish(run, None)
    mark("result built")
    await _complete(run, result)
    run.progress.update(run.progress.done, f"{result.status.value}: {_totals_line(result.report.totals)}")
    await run.progress.send()
    mark("return")
    return result


def _marker(timeline: list[tuple[str, float]] | None) -> Callable[[str], None]:
    if timeline is None:
        return _no_mark
    return lambda step: timeline.append((step, time.monotonic()))


def _no_mark(step: str) -> None:
    return None


def _domain_error(exc: BaseException) -> ItestError | None:
    """The ItestError inside `exc` (task groups wrap errors in exception groups), if there is one."""
    if isinstance(exc, ItestError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _domain_error(inner)
            if found is not None:
                return found
    return None


async def run_phases(
    project: Project,
    names: list[str],
    options: RunOptions | None = None,
    *,
    stop_on_failure: bool = True,
    progress: ProgressSink | None = None,
) -> list[PhaseRun]:
    """Run phases in order; with `stop_on_failure` the first phase that does not pass ends the sequence."""
    if not names:
        raise InputError("no phases given; name at least one phase (list_phases shows them)")
    phase_set = load_phases(project)
    for name in names:
        phase = phase_set.get(name)
        if options is not None and options.test is not None and phase.runner is not Runner.COMMAND:
            # A filter outside a later phase's selection is refused before the first phase runs.
            build_argv(phase, ArgvOptions(test=options.test), others=phase_set.phases)
    runs: list[PhaseRun] = []
    for name in names:
        result = await run_phase(project, name, options, progress=progress)
        runs.append(result)
        if stop_on_failure and result.status is not RunStatus.PASSED:
            break
    return runs


def _check_programs(phase: Phase) -> None:
    if phase.runner is Runner.GO:
        require_program("go")
    elif phase.runner is Runner.COMMAND:
        program = phase.argv[0]
        if os.sep in program:
            if not Path(program if Path(program).is_absolute() else Path(phase.project_root or ".") / program).exists():
                raise ToolNotFoundError(program, f"phase {phase.name!r} names it in its argv; check the path")
        else:
            require_program(program)
    else:
        python = python_for(phase)
        if not Path(python).exists():
            raise ToolNotFoundError(python, "create the project's .venv or install Python")


async def _git_state(run: _Run) -> None:
    import anyio

    def read() -> tuple[str | None, bool]:
        try:
            commit = run.project.head_commit()
            run.mark("git commit")
            dirty = run.project.is_dirty()
            run.mark("git dirty")
            return commit, dirty
        except ItestError:
            return None, False

    run.commit, run.dirty = await anyio.to_thread.run_sync(read)


async def _supervise(
    run: _Run,
    argv: list[str],
    on_line: Callable[[bytes], None],
    deadline: float,
    *,
    side_channel: Callable[[bytes], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Supervised | None:
    """Run one child for this phase; None when the phase's time is already used up."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    with run.log_path.open("ab") as log:
        log.write(f"$ {' '.join(argv)}\n".encode())
    result = await run_supervised(
        argv,
        cwd=run.project.root,
        env=run.env,
        log_path=run.log_path,
        on_line=on_line,
        timeout_s=remaining,
        side_channel=side_channel,
        side_channel_env=EVENTS_ENV,
        on_start=on_start or run.current.append,
        mark=run.mark,
    )
    run.attempts.append(result)
    if run.exit_code is None:
        run.exit_code = result.returncode
    if result.left_behind:
        run.notes.append(f"processes {result.left_behind} outlived the kill of the process group")
    if result.log_truncated:
        run.notes.append("output.log reached its size limit; later output was parsed but not written")
    return result


# -- go ------------------------------------------------------------------------------------------


def _module_path(root: Path) -> str | None:
    try:
        with (root / "go.mod").open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                match = re.match(r"^\s*module\s+(\S+)", line)
                if match:
                    return match.group(1).strip('"')
    except OSError:
        return None
    return None


async def _run_go(run: _Run, timeout: float) -> None:
    phase, opts = run.phase, run.options
    # The supervisor leaves go's own -timeout the first word (its panic names the hung test).
    deadline = run.started + timeout + min(30.0, max(2.0, timeout * 0.1))
    coverage_out = run.run_dir / "coverage.out" if opts.coverage else None
    argv = build_argv(
        phase,
        ArgvOptions(
            test=opts.test,
            race=opts.race,
            count=opts.count,
            coverage_profile=str(coverage_out) if coverage_out else None,
            coverpkg="./..." if coverage_out else None,
        ),
    )
    run.argv = argv
    run_regex = next((a.split("=", 1)[1] for a in argv if a.startswith("-run=")), None)

    def estimate_total(pid: int) -> None:
        # Counted from the source while the child starts up (off the path to the spawn).
        run.current.append(pid)
        if run.progress.total is None and len(run.attempts) == 0:
            total = estimate_go_total(run.project.root, phase, run_regex)
            if total is not None:
                run.progress.total = max(total, run.progress.done)
            run.mark("total estimated")

    def on_done(package: str, test: str, outcome: Outcome) -> None:
        assert run.go is not None
        # Every test (subtests too) is news, but `done` counts top-level tests like the total does.
        run.progress.test_done(run.go.top_level_done, test, outcome)

    parser = GoTestParser(module_path=_module_path(run.project.root), root=str(run.project.root), on_test_done=on_done)
    run.go = parser
    run.mark("parser ready")
    first = await _supervise(run, argv, parser.feed, deadline, on_start=estimate_total)
    if coverage_out is not None:
        if coverage_out.exists():
            run.coverage.append(run.project.rel(coverage_out))
        else:
            run.notes.append("go test wrote no coverage profile (did the build fail?)")
    if first is None or first.timed_out or parser.build_errors_count:
        return
    for round_no in range(1, opts.rerun_failures + 1):
        failing = _go_failing_top_level(parser)
        if not failing:
            break
        for package, names in failing.items():
            regex = "^(" + "|".join(re.escape(n) for n in sorted(names)) + ")$"
            rerun_phase = phase.model_copy(update={"packages": [package], "run": None})
            rerun_argv = build_argv(rerun_phase, ArgvOptions(test=regex, race=opts.race, count=1))
            run.progress.update(
                run.progress.done, f"rerun {round_no}/{opts.rerun_failures}: {', '.join(sorted(names))}"
            )
            done = await _supervise(run, rerun_argv, parser.feed, deadline)
            if done is None or done.timed_out:
                return


def _go_failing_top_level(parser: GoTestParser) -> dict[str, set[str]]:
    failing: dict[str, set[str]] = {}
    for test in parser.report().tests:
        last = test.attempts[-1].outcome if test.attempts else Outcome.ERROR
        if last in (Outcome.FAILED, Outcome.ERROR):
            failing.setdefault(test.classname, set()).add(test.name.split("/", 1)[0])
    return failing


def estimate_go_total(root: Path, phase: Phase, run_regex: str | None) -> int | None:
    """Top-level tests the phase will run, counted from the source (cheap; None when unsure)."""
    from .discovery import SKIP_DIRS, constraint_tags, read_go_test_file

    try:
        top = re.compile(top_level_regex(run_regex)) if run_regex else None
        skip = re.compile(top_level_regex(phase.skip)) if phase.skip else None
    except re.error:
        return None
    folders: list[Path] = []
    for package in phase.packages or ["./..."]:
        if not package.startswith("."):
            return None
        recursive = package.endswith("...")
        base = (root / package.removesuffix("...").rstrip("/")).resolve()
        if recursive:
            for walked, dirs, _files in os.walk(base):
                dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith((".", "_"))]
                folders.append(Path(walked))
        else:
            folders.append(base)
        if len(folders) > 2000:
            return None
    tags = set(phase.tags)
    count = 0
    for folder in folders:
        try:
            names = [n for n in os.listdir(folder) if n.endswith("_test.go")]
        except OSError:
            continue
        for name in names:
            constraint, tests = read_go_test_file(folder / name)
            if constraint:
                required, negated = constraint_tags(constraint)
                if not required <= tags or negated & tags:
                    continue
            for test in tests:
                if (top is None or top.search(test)) and not (skip is not None and skip.search(test)):
                    count += 1
    return count or None


# -- pytest --------------------------------------------------------------------------------------


async def _run_pytest(run: _Run, timeout: float) -> None:
    phase, opts = run.phase, run.options
    deadline = run.started + timeout
    shutil.copyfile(Path(__file__).with_name("pytest_plugin.py"), run.run_dir / f"{PLUGIN_MODULE}.py")
    run.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(run.run_dir), run.env.get("PYTHONPATH", "")) if p)
    if opts.race is not None:
        run.notes.append("race applies to Go phases only; ignored for pytest")
    if opts.count not in (None, 1):
        run.notes.append("count applies to Go phases only (pytest needs pytest-repeat); ran once")
    base = build_argv(phase, ArgvOptions(test=opts.test))
    python = base[0]
    argv = _with_plugin(base)
    data_file = run.run_dir / ".coverage"
    if opts.coverage:
        from .pytest_coverage import coverage_prefix

        prefix = coverage_prefix(python, run.project.root, run.run_dir, data_file, run.env)
        if prefix is not None:
            argv = [*prefix, *argv[1:]]
        else:
            run.notes.append(f"coverage.py is not installed in {python}; `pip install coverage` there for coverage")
    run.argv = argv

    def on_done(name: str, collected: int | None) -> None:
        assert run.pytest is not None
        if collected is not None:
            run.progress.update(run.pytest.done, "collected", total=collected)
        else:
            run.progress.update(run.pytest.done, name)

    collector = _PytestCollector(root=run.project.root, on_done=on_done)
    run.pytest = collector
    from .textparse import TextParser

    run.text = TextParser()
    first = await _supervise(run, argv, run.text.feed, deadline, side_channel=collector.feed)
    if first is not None and first.returncode not in (0, 5) and collector.events == 0:
        tail = first.tail.decode("utf-8", errors="replace")
        if "No module named pytest" in tail:
            raise ToolNotFoundError("pytest", f"{INSTALL_HINTS['pytest']} (the phase runs {python})")
    if opts.coverage and data_file.exists():
        xml = run.run_dir / "coverage.xml"
        made = run_capture(
            [python, "-m", "coverage", "xml", f"--data-file={data_file}", "-o", str(xml)],
            cwd=run.project.root,
            timeout=120,
        )
        if made.returncode == 0 and xml.exists():
            run.coverage.append(run.project.rel(xml))
        else:
            run.notes.append(f"coverage xml failed: {made.stderr.strip()[-300:] or made.stdout.strip()[-300:]}")
    if first is None or first.timed_out:
        return
    for round_no in range(1, opts.rerun_failures + 1):
        failing = [
            nodeid
            for nodeid, test in collector.results.items()
            if test.attempts and test.attempts[-1].outcome in (Outcome.FAILED, Outcome.ERROR)
        ]
        if not failing:
            break
        rerun_phase = phase.model_copy(update={"paths": failing, "markers": None, "keyword": None})
        rerun_argv = _with_plugin(build_argv(rerun_phase, ArgvOptions()))
        run.progress.update(run.progress.done, f"rerun {round_no}/{opts.rerun_failures}: {len(failing)} tests")
        done = await _supervise(run, rerun_argv, run.text.feed, deadline, side_channel=collector.feed)
        if done is None or done.timed_out:
            return


def _with_plugin(argv: list[str]) -> list[str]:
    """Insert `-p itest_pytest_plugin` right after `python -m pytest`."""
    index = argv.index("pytest") + 1 if "pytest" in argv else len(argv)
    return [*argv[:index], "-p", PLUGIN_MODULE, *argv[index:]]


# -- command ------------------------------------------------------------------------------------


async def _run_command(run: _Run, timeout: float) -> None:
    from .textparse import TextParser

    phase, opts = run.phase, run.options
    deadline = run.started + timeout
    for what, given in (("race", opts.race is not None), ("count", opts.count not in (None, 1))):
        if given:
            run.notes.append(f"{what} cannot be applied to a command phase; ran {' '.join(phase.argv)} as configured")
    if opts.rerun_failures:
        run.notes.append("rerun_failures is not available for command phases (a command cannot be narrowed)")
    if opts.coverage:
        run.notes.append("coverage is not collected for command phases; use a go or pytest phase")
    run.argv = list(phase.argv)

    def on_done(package: str, test: str, outcome: Outcome) -> None:
        assert run.go is not None
        run.progress.test_done(run.go.tests_done, test, outcome)

    go = GoTestParser(module_path=_module_path(run.project.root), root=str(run.project.root), on_test_done=on_done)
    text = TextParser()
    run.go, run.text = go, text

    def feed(line: bytes) -> None:
        go.feed(line)
        text.feed(line)

    await _supervise(run, run.argv, feed, deadline)


# -- results ------------------------------------------------------------------------------------


def _report_for(run: _Run) -> TestReport:
    phase = run.phase
    if phase.runner is Runner.PYTEST and run.pytest is not None:
        if run.pytest.events or run.text is None or not run.text.found_anything:
            return run.pytest.report()
        run.notes.append("our pytest plugin reported nothing; counts are from pytest's text output")
        return run.text.report()  # type: ignore[no-any-return]
    if phase.runner is Runner.GO and run.go is not None:
        return run.go.report()
    go = run.go
    if go is not None and (go.json_events or go.build_errors_count):
        return go.report()
    if phase.junit:
        report = _junit_report(run)
        if report is not None:
            return report
    if run.text is not None and run.text.found_anything:
        run.notes.append(
            "counts are from the command's text output (no go test -json, no JUnit files); plain go test "
            "prints only failing tests, so passing ones may be missing"
        )
        return run.text.report()  # type: ignore[no-any-return]
    return TestReport(source=CountsSource.NONE)


def _junit_report(run: _Run) -> TestReport | None:
    assert run.phase.junit is not None
    pattern = run.phase.junit
    try:
        return _read_junit(run, pattern)
    except (ItestError, OSError, ValueError, NotImplementedError) as exc:
        # The command has run: its exit code and output are the result, so a report that cannot be read is a
        # note and the run is still recorded (pathlib raises NotImplementedError for an absolute glob).
        run.notes.append(f"the JUnit files matching {pattern!r} could not be read: {exc or type(exc).__name__}")
        return None


def _read_junit(run: _Run, pattern: str) -> TestReport | None:
    files = sorted(p for p in run.project.root.glob(pattern) if p.is_file())
    # Only files this run wrote: an old report from yesterday must not pass for today's result.
    fresh = [p for p in files if p.stat().st_mtime >= run.started_at.timestamp() - 1]
    if not fresh:
        run.notes.append(f"the junit glob {pattern!r} matched no file written by this run")
        return None
    from .junit import parse_junit_files

    parsed = parse_junit_files(fresh, root=run.project.root)
    read = len(fresh) - len(parsed.errors)
    # A file that cannot be read is named (its own message says why); the other files still count.
    run.notes.extend(f"JUnit file skipped: {error}" for error in parsed.errors)
    if read <= 0:
        return None
    run.notes.append(f"counts are from {read} JUnit file(s) matching {pattern!r}")
    return parsed.report


NO_TESTS_MATCHED = "no tests matched"
"""How the note of a run whose test filter selected nothing starts (the CLI exits 2 on it: bad input)."""

PYTEST_USAGE_ERROR = 4
"""pytest's exit code when it refused its arguments (a bad -k expression, a path that does not exist)."""
PYTEST_REFUSED = "pytest refused its arguments"
"""How the note of such a run starts."""


def _usage_error(phase: Phase, last: Supervised | None) -> str | None:
    """The note for a pytest that refused its arguments, with its own error lines (they come last in its output)."""
    if phase.runner is not Runner.PYTEST or last is None or last.returncode != PYTEST_USAGE_ERROR:
        return None
    lines = last.tail.decode("utf-8", errors="replace").strip().splitlines()
    said = [line for line in lines if line.startswith(("ERROR:", "pytest: error:"))] or lines[-3:]
    return f"{PYTEST_REFUSED} (exit code 4, a usage error): " + excerpt(" ".join(said), 800)


def _finish(run: _Run, forced: RunStatus | None) -> PhaseRun:
    """Build the PhaseRun from what the run saw (also for a cancelled or timed-out run)."""
    timed_out = any(a.timed_out for a in run.attempts)
    if run.go is not None and (forced is not None or timed_out):
        reason = "did not finish: the run was cancelled" if forced else "did not finish: the phase timed out"
        run.go.finish_unfinished(reason)
    report = _report_for(run)
    run.mark("report parsed")
    totals = report.totals
    go_timeout = any(f.kind == "timeout" for f in report.failures)
    last = run.attempts[-1] if run.attempts else None
    status: RunStatus
    if forced is not None:
        status = forced
    elif timed_out or go_timeout:
        status = RunStatus.TIMEOUT
    elif report.build_errors:
        status = RunStatus.ERROR
        first = report.build_errors[0]
        where = f" at {first.location}" if first.location else ""
        run.notes.insert(0, f"build failed in {first.package}{where}: {first.message.splitlines()[0][:300]}")
    elif totals.tests == 0 and (usage := _usage_error(run.phase, last)):
        status = RunStatus.ERROR
        run.notes.insert(0, usage)
    elif totals.tests == 0 and run.options.test is not None:
        status = RunStatus.ERROR
        run.notes.insert(0, f"{NO_TESTS_MATCHED} {run.options.test!r} in phase {run.phase.name!r}")
    elif totals.failed or totals.errors:
        status = RunStatus.FAILED
    elif (
        last is not None
        and last.returncode not in (0, None)
        and not (run.phase.runner is Runner.PYTEST and last.returncode == 5)
    ):
        status = RunStatus.ERROR
        tail = last.tail.decode("utf-8", errors="replace").strip().splitlines()[-8:]
        run.notes.insert(
            0,
            f"exited with code {last.returncode} without a failing test; last output: " + excerpt("\n".join(tail), 800),
        )
    else:
        status = RunStatus.PASSED
    if totals.tests == 0 and status is RunStatus.PASSED:
        run.notes.insert(0, "the phase exited 0 but ran no tests; check its filter, tags and paths")
    wall = time.monotonic() - run.started
    if status in (RunStatus.TIMEOUT, RunStatus.CANCELLED):
        finished = [t for t in report.tests if not (t.message or "").startswith("did not finish")]
        # The limit is what the caller set; the wall also holds go's own shutdown and our kill's grace time.
        what = (
            f"hit its timeout of {run.phase.timeout_s:g} s (stopped after {wall:.1f} s)"
            if status is RunStatus.TIMEOUT
            else f"was cancelled after {wall:.1f} s"
        )
        run.notes.insert(0, f"the run {what}; partial result: {len(finished)} tests finished ({_totals_line(totals)})")
    if report.races:
        sites: dict[str, Location | None] = {}
        for race in report.races:
            sites.setdefault(race.test or "(no test)", race_site(race.locations))
        found = ", ".join(f"{test} at {site}" if site else test for test, site in sorted(sites.items()))
        run.notes.append(f"data race detected in {found}")
    peaks = [a.peak_rss_mb for a in run.attempts if a.peak_rss_mb is not None]
    ended = datetime.now(UTC)
    return PhaseRun(
        run_id=run.run_id,
        phase=run.phase.name,
        argv=run.argv,
        commit=run.commit,
        dirty=run.dirty,
        status=status,
        exit_code=run.exit_code,
        started_at=run.started_at,
        ended_at=ended,
        duration_s=round(wall, 3),
        timeout_s=run.phase.timeout_s,
        report=report,
        resources=Resources(
            wall_s=round(wall, 3),
            cpu_user_s=round(sum(a.cpu_user_s for a in run.attempts), 3),
            cpu_system_s=round(sum(a.cpu_system_s for a in run.attempts), 3),
            peak_rss_mb=max(peaks) if peaks else None,
        ),
        artifacts=Artifacts(
            run_dir=run.project.rel(run.run_dir),
            log=run.project.rel(run.log_path),
            junit=run.project.rel(run.run_dir / "junit.xml"),
            coverage=list(run.coverage),
        ),
        notes=run.notes,
    )


def _write_artifacts(run: _Run, result: PhaseRun, *, junit: bool = True) -> None:
    """tests.jsonl, then run.json (its presence marks a complete folder), then junit.xml."""
    if not TestResult.__pydantic_complete__:
        TestResult.model_rebuild()  # deferred build (start-up time); the serializer below needs it done
    serialize = TestResult.__pydantic_serializer__.to_json
    with (run.run_dir / "tests.jsonl").open("wb") as out:
        out.write(b"".join(serialize(test) + b"\n" for test in result.report.tests))
    _write_run_json(run, result)
    if junit:
        _write_junit(run, result)


def _write_run_json(run: _Run, result: PhaseRun) -> None:
    tmp = run.run_dir / "run.json.tmp"
    tmp.write_text(result.model_dump_json(indent=2), encoding="utf-8")
    tmp.replace(run.run_dir / "run.json")


def _write_junit(run: _Run, result: PhaseRun) -> None:
    from .junit_write import write_junit

    write_junit(result.report, run.run_dir / "junit.xml", name=f"{result.phase} ({result.run_id})")


async def _complete(run: _Run, result: PhaseRun) -> None:
    """Write the run folder and record the run in history; a history failure becomes a note, not an error."""
    import threading

    import anyio

    from .history import checkpoint, try_record_run

    outcome: list[str | None] = []
    answered = threading.Event()

    def record() -> None:
        try:
            outcome.append(try_record_run(run.project, result))
        except Exception as exc:  # noqa: BLE001 - history must never cost the caller the run's result
            outcome.append(f"not recorded in history: {type(exc).__name__}: {exc}")
        finally:
            run.mark("history answer")
            answered.set()
        # After the answer, off the caller's path: copy the WAL into history.db so an idle server leaves a
        # whole file (history keeps its connection open between runs). Failing here loses nothing.
        try:
            checkpoint(run.project)
        except Exception:  # noqa: BLE001 - the run is recorded; the next checkpoint catches up
            pass

    # First the history write (SQLite works outside the GIL), then the files beside it: tests.jsonl and
    # run.json in this thread, junit.xml in a worker; all three exist before the caller gets the result.
    recorder = threading.Thread(target=record, name=f"itest-history-{run.run_id}", daemon=True)
    recorder.start()

    def junit() -> None:
        _write_junit(run, result)
        run.mark("junit.xml")

    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, junit)
        _write_artifacts(run, result, junit=False)
        run.mark("tests.jsonl + run.json")
    if not answered.is_set():
        await anyio.to_thread.run_sync(answered.wait)
    note = outcome[0] if outcome else "not recorded in history: the history writer stopped without an answer"
    if note:
        result.notes.append(note)
        _write_run_json(run, result)


def _totals_line(totals: Totals) -> str:
    parts = [f"{totals.tests} tests", f"{totals.passed} passed", f"{totals.failed} failed"]
    for label, value in (("errors", totals.errors), ("skipped", totals.skipped), ("flaky", totals.flaky)):
        if value:
            parts.append(f"{value} {label}")
    return ", ".join(parts)
