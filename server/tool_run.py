"""`run_phase` / `run_phases`: run test phases with progress, plus the run log and JUnit as resources."""

from __future__ import annotations

import argparse
import sys
from typing import Annotated

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError
from pydantic import Field, ValidationError

from itest_mcp.server.errors import tool_errors
from itest_mcp.server.progress import progress_to
from itest_mcp.server.state import ServerState
from itest_mcp.tools.errors import InputError, ItestError
from itest_mcp.tools.gotest import race_site
from itest_mcp.tools.models import Model, PhaseRun, RunStatus
from itest_mcp.tools.repo import Project
from itest_mcp.tools.runner import NO_TESTS_MATCHED, PYTEST_REFUSED, RunOptions


class PhaseRuns(Model):
    """The runs of an ordered list of phases (stopped at the first failure when asked to)."""

    status: RunStatus
    runs: list[PhaseRun]
    not_run: list[str] = Field(default_factory=list)


def _options(
    test: str | None,
    race: bool | None,
    count: int | None,
    rerun_failures: int,
    timeout_s: float | None,
    coverage: bool,
) -> RunOptions:
    try:
        return RunOptions(
            test=test,
            race=race,
            count=count,
            rerun_failures=rerun_failures,
            timeout_s=timeout_s,
            coverage=coverage,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{field}: {first['msg']} (got {first.get('input')!r})") from exc


TestArg = Annotated[
    str | None,
    Field(description="Run only this test (a name like TestX or TestX/sub, or a regex; pytest: a -k expression)"),
]
RaceArg = Annotated[bool | None, Field(description="Go race detector on/off (default: the phase's setting)")]
CountArg = Annotated[int | None, Field(description="Go -count: run each test this many times (1-1000)")]
RerunArg = Annotated[
    int, Field(description="Rerun failed tests alone up to N times; fail-then-pass is reported flaky (0-10)")
]
TimeoutArg = Annotated[float | None, Field(description="Stop the phase after this many seconds (default: its own)")]
CoverageArg = Annotated[bool, Field(description="Collect coverage into the run folder (Go coverage.out, pytest XML)")]


def register(app: MCPServer, state: ServerState) -> None:
    from itest_mcp.tools import runner, runs

    @app.tool(name="run_phase", title="Run a test phase")
    async def run_phase_tool(
        phase: Annotated[str, Field(description="The phase to run (list_phases shows them)")],
        ctx: Context,
        test: TestArg = None,
        race: RaceArg = None,
        count: CountArg = None,
        rerun_failures: RerunArg = 0,
        timeout_s: TimeoutArg = None,
        coverage: CoverageArg = False,
        faults: Annotated[
            str | None,
            Field(
                description="Run under this fault profile (list_fault_profiles): a proxy injects latency, resets, "
                "5xx or 429s in front of the phase's API; verdicts land in notes, the full report in the run folder"
            ),
        ] = None,
    ) -> PhaseRun:
        """Run one test phase and return a compact result: status, totals, failures with file:line, races, slowest."""
        with tool_errors():
            options = _options(test, race, count, rerun_failures, timeout_s, coverage)

            progress = progress_to(ctx)

            if faults is not None:
                from itest_mcp.tools.fault_run import run_phase_with_faults

                fault_run = await run_phase_with_faults(state.project(), phase, faults, options, progress=progress)
                return fault_run.phase_run
            return await runner.run_phase(state.project(), phase, options, progress=progress)

    @app.tool(name="run_phases", title="Run several test phases in order")
    async def run_phases_tool(
        phases: Annotated[list[str], Field(description="Phases to run, in this order")],
        ctx: Context,
        stop_on_failure: Annotated[bool, Field(description="Stop at the first phase that does not pass")] = True,
        test: TestArg = None,
        race: RaceArg = None,
        count: CountArg = None,
        rerun_failures: RerunArg = 0,
        timeout_s: TimeoutArg = None,
        coverage: CoverageArg = False,
    ) -> PhaseRuns:
        """Run an ordered list of phases; each result is like run_phase's."""
        with tool_errors():
            options = _options(test, race, count, rerun_failures, timeout_s, coverage)

            progress = progress_to(ctx)

            results = await runner.run_phases(
                state.project(),
                phases,
                options,
                stop_on_failure=stop_on_failure,
                progress=progress,
            )
            return _combine(phases, results)

    @app.resource(
        "itest://runs/{run_id}/log{?offset,limit}",
        name="run_log",
        title="Run output log",
        description="A page of a run's output.log: ?offset=<byte> (negative: from the end)&limit=<bytes, max 1 MiB>",
        mime_type="application/json",
    )
    def run_log(run_id: str, offset: str = "0", limit: str = str(runs.LOG_PAGE_DEFAULT)) -> str:
        try:
            try:
                off, lim = int(offset), int(limit)
            except ValueError as exc:
                raise InputError(f"offset {offset!r} and limit {limit!r} must be whole numbers of bytes") from exc
            return runs.read_log(state.project(), run_id, off, lim).model_dump_json()
        except ItestError as exc:
            raise ResourceError(str(exc)) from exc

    @app.resource(
        "itest://runs/{run_id}/junit",
        name="run_junit",
        title="Run JUnit XML",
        description="The run's junit.xml (every test with its outcome, failure message and output excerpt)",
        mime_type="application/xml",
    )
    def run_junit(run_id: str) -> str:
        try:
            return runs.junit_path(state.project(), run_id).read_text(encoding="utf-8")
        except ItestError as exc:
            raise ResourceError(str(exc)) from exc


def _combine(names: list[str], results: list[PhaseRun]) -> PhaseRuns:
    ran = {r.phase for r in results}
    worst = RunStatus.PASSED
    for result in results:
        if result.status is not RunStatus.PASSED:
            worst = result.status
            break
    return PhaseRuns(status=worst, runs=results, not_run=[n for n in names if n not in ran])


# -- CLI ----------------------------------------------------------------------------------------


def add_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("run", help="run one or more test phases and print a summary")
    parser.add_argument("phases", nargs="+", metavar="PHASE", help="phase(s) to run, in order")
    parser.add_argument("--test", help="run only this test (name or regex; pytest: -k expression)")
    parser.add_argument("--rerun-failures", type=int, default=0, metavar="N", help="rerun failed tests up to N times")
    parser.add_argument("--race", dest="race", action="store_true", default=None, help="Go: race detector on")
    parser.add_argument("--no-race", dest="race", action="store_false", help="Go: race detector off")
    parser.add_argument("--count", type=int, help="Go: -count N")
    parser.add_argument("--timeout", type=float, metavar="S", help="stop a phase after S seconds")
    parser.add_argument("--coverage", action="store_true", help="collect coverage into the run folder")
    parser.add_argument("--keep-going", action="store_true", help="run every phase even after one fails")
    parser.add_argument("--json", action="store_true", help="print the result model as JSON")
    parser.set_defaults(handler=_cli_run)


def _cli_run(args: argparse.Namespace, project: Project) -> int:
    import anyio

    from itest_mcp.tools import runner

    options = _options(args.test, args.race, args.count, args.rerun_failures, args.timeout, args.coverage)
    tty = sys.stderr.isatty() and not args.json
    width = [0]

    async def progress(done: int, total: int | None, message: str) -> None:
        if not tty:
            return
        count = f"{done}/{total}" if total else f"{done}"
        bar = ""
        if total:
            filled = int(20 * min(done, total) / total)
            bar = "[" + "#" * filled + "." * (20 - filled) + "] "
        line = f"\r{bar}{count} {message}"[:120]
        sys.stderr.write(line + " " * max(0, width[0] - len(line)))
        sys.stderr.flush()
        width[0] = len(line)

    results: list[PhaseRun] = []

    async def main() -> None:
        # The result leaves through `results`, not as the coroutine's return value: a large
        # return value from the coroutine handed to anyio.run measured 45-100 ms of extra
        # work per 2,000 tests on Python 3.11.
        results.extend(
            await runner.run_phases(
                project,
                list(args.phases),
                options,
                stop_on_failure=not args.keep_going,
                progress=progress,
            )
        )

    anyio.run(main)
    if tty:
        sys.stderr.write("\r" + " " * width[0] + "\r")
    combined = _combine(list(args.phases), results)
    if args.json:
        print(combined.model_dump_json(indent=2) if len(args.phases) > 1 else results[0].model_dump_json(indent=2))
    else:
        print(render_runs(combined))
    refused = next((why for run in results if (why := _bad_filter(run, args.test))), None)
    if refused:
        # The filter named no test or was refused: bad input (like an unknown phase), not a failing suite.
        print(f"itest-mcp: error: {refused}", file=sys.stderr)
        return 2
    return 0 if combined.status is RunStatus.PASSED else 1


def _bad_filter(run: PhaseRun, test: str | None) -> str | None:
    """Why the run's test filter was bad input (it selected no test, or pytest refused it), else None."""
    if test is None or run.status is not RunStatus.ERROR or run.report.totals.tests or not run.notes:
        return None
    first = run.notes[0]
    if first.startswith(NO_TESTS_MATCHED):
        return f"{NO_TESTS_MATCHED} {test!r}"
    return first if first.startswith(PYTEST_REFUSED) else None


def render_runs(combined: PhaseRuns) -> str:
    """The runs as a terminal summary table plus the failures."""
    header = (
        f"{'phase':<24} {'status':<9} {'tests':>5} {'pass':>5} {'fail':>5} {'err':>4} {'skip':>5} {'flaky':>5} "
        f"{'time':>8}"
    )
    lines = [header, "-" * len(header)]
    for run in combined.runs:
        t = run.report.totals
        lines.append(
            f"{run.phase[:24]:<24} {run.status.value:<9} {t.tests:>5} {t.passed:>5} {t.failed:>5} {t.errors:>4} "
            f"{t.skipped:>5} {t.flaky:>5} {run.duration_s:>7.1f}s"
        )
    for name in combined.not_run:
        lines.append(f"{name[:24]:<24} {'not run':<9}")
    for run in combined.runs:
        details: list[str] = []
        for failure in run.report.failures[:20]:
            where = f" ({failure.location})" if failure.location else ""
            kind = f" [{failure.kind}]" if failure.kind else ""
            first = failure.message.splitlines()[0] if failure.message else ""
            # Reruns: a test still failing after them failed every attempt (a pass would make it flaky).
            tries = f", failed {failure.attempts} of {failure.attempts} attempts" if failure.attempts > 1 else ""
            details.append(f"  FAIL {failure.test}{where}{kind}{tries}: {first}")
        races: list[str] = []
        for race in run.report.races:
            site = race_site(race.locations)
            others = [str(loc) for loc in race.locations if loc != site][:3]
            also = f" (also {', '.join(others)})" if others else ""
            line = f"  RACE {race.test or '(no test)'} at {site or 'an unknown place'}{also}"
            if line not in races:  # the same race seen again (another goroutine pair) says nothing new
                races.append(line)
        details.extend(races[:10])
        for build in run.report.build_errors:
            where = f" ({build.location})" if build.location else ""
            details.append(f"  BUILD {build.package}{where}: {build.message.splitlines()[0]}")
        flaky = [t.name for t in run.report.tests if t.outcome.value == "flaky"]
        if flaky:
            details.append(f"  flaky: {', '.join(flaky[:10])}")
        if run.report.slowest:
            slow = ", ".join(f"{s.name} {s.duration_s:.2f}s" for s in run.report.slowest[:3])
            details.append(f"  slowest: {slow}")
        # Cut in the middle: a note that quotes output ends with what went wrong.
        details.extend("  note: " + _clip_middle(note, 300).replace("\n", "\n        ") for note in run.notes)
        r = run.resources
        rss = f", peak RSS {r.peak_rss_mb:.0f} MB" if r.peak_rss_mb is not None else ""
        details.append(f"  cpu {r.cpu_user_s:.1f}s user + {r.cpu_system_s:.1f}s sys{rss}; log: {run.artifacts.log}")
        lines.append("")
        lines.append(f"{run.phase} ({run.run_id}):")
        lines.extend(details)
    return "\n".join(lines)


def _clip_middle(text: str, limit: int) -> str:
    """`text` within `limit` characters, its start and its end kept."""
    if len(text) <= limit:
        return text
    head = limit // 3
    return f"{text[:head]} … {text[-(limit - head - 3) :]}"
