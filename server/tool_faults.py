"""`run_with_faults` and `list_fault_profiles`: a phase under injected network faults, and the profiles there are."""

from __future__ import annotations

import argparse
from typing import Annotated, Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import Field

from itest_mcp.server.errors import tool_errors
from itest_mcp.server.progress import progress_to
from itest_mcp.server.state import ServerState
from itest_mcp.tools.errors import FaultError, InputError
from itest_mcp.tools.fault_profiles import ProfileListing, load_fault_config
from itest_mcp.tools.fault_run import FaultRun, probe_with_faults, run_phase_with_faults
from itest_mcp.tools.repo import Project


def _run_options(test: str | None, race: bool | None, count: int | None, timeout_s: float | None) -> Any:
    try:
        from itest_mcp.tools.runner import RunOptions
    except ImportError as exc:
        raise FaultError("the run engine (tools/runner.py) is not available in this build; cannot run a phase") from exc
    fields: dict[str, Any] = {"test": test, "race": race, "count": count, "timeout_s": timeout_s}
    return RunOptions(**{k: v for k, v in fields.items() if v is not None})


def register(app: MCPServer, state: ServerState) -> None:
    @app.tool(name="run_with_faults", title="Run a phase under network faults")
    async def run_with_faults(
        phase: Annotated[str, Field(description="The phase to run (see list_phases)")],
        profile: Annotated[str, Field(description="Fault profile (see list_fault_profiles), e.g. 'rate-limited'")],
        test: Annotated[str | None, Field(description="Only this test name or regular expression")] = None,
        race: Annotated[bool | None, Field(description="Go: override the phase's -race setting")] = None,
        count: Annotated[int | None, Field(description="Run each test this many times (1-1000)", ge=1, le=1000)] = None,
        timeout_s: Annotated[float | None, Field(description="Stop the phase after this many seconds", gt=0)] = None,
        ctx: Context | None = None,
    ) -> FaultRun:
        """Run a phase with a fault proxy in front of its API and report what its HTTP client survived."""
        with tool_errors():
            options = _run_options(test, race, count, timeout_s)

            progress = progress_to(ctx) if ctx is not None else None
            return await run_phase_with_faults(state.project(), phase, profile, options, progress=progress)

    @app.tool(name="list_fault_profiles", title="List fault profiles")
    def list_fault_profiles() -> ProfileListing:
        """List the fault profiles (built-in and from itest.toml) with the faults each injects and when."""
        with tool_errors():
            return load_fault_config(state.project()).listing()


def render_listing(listing: ProfileListing) -> str:
    """The profiles as terminal text."""
    lines = [
        f"config:   {listing.config_file or 'none (built-in profiles only)'}",
        f"upstream: {listing.upstream}",
        f"env:      {', '.join(f'{k}={v}' for k, v in listing.env.items())}",
    ]
    for p in listing.profiles:
        lines.append("")
        lines.append(f"{p.name}  ({'built-in' if p.builtin else 'itest.toml'}, {p.mode.value}, seed {p.seed})")
        if p.description:
            lines.append(f"  {p.description}")
        lines += [f"  - {f}" for f in p.faults]
    return "\n".join(lines)


def add_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("faults", help="run a phase under injected network faults, or list the fault profiles")
    parser.add_argument("phase", nargs="?", help="the phase to run")
    parser.add_argument("--profile", "-p", help="the fault profile (see --list)")
    parser.add_argument("--list", action="store_true", help="list the fault profiles")
    parser.add_argument("--test", help="only this test name or regular expression")
    parser.add_argument("--count", type=int, help="run each test this many times")
    parser.add_argument("--timeout", type=float, dest="timeout_s", help="stop the phase after this many seconds")
    race = parser.add_mutually_exclusive_group()
    race.add_argument("--race", dest="race", action="store_true", default=None, help="Go: run with -race")
    race.add_argument("--no-race", dest="race", action="store_false", help="Go: run without -race")
    parser.add_argument(
        "--probe", type=int, metavar="N", help="instead of a phase: N concurrent requests through the proxy"
    )
    parser.add_argument("--json", action="store_true", help="print the model as JSON")
    parser.set_defaults(handler=_cli_faults)


def _cli_faults(args: argparse.Namespace, project: Project) -> int:
    from itest_mcp.tools.fault_report import Verdict, render_report

    if args.list:
        listing = load_fault_config(project).listing()
        print(listing.model_dump_json(indent=2) if args.json else render_listing(listing))
        return 0
    if not args.profile:
        raise InputError("name a fault profile with --profile (itest-mcp faults --list shows them)")
    if args.probe is not None:
        probe, report = anyio.run(probe_with_faults, project, args.profile, args.probe)
        if args.json:
            print(f'{{"probe": {probe.model_dump_json()}, "report": {report.model_dump_json()}}}')
        else:
            print(
                f"probe: {probe.requests} concurrent requests, {probe.completed} ok, {probe.errors} failed, "
                f"{probe.queued} queued (longest {probe.max_queue_ms:.1f} ms), p50 {probe.p50_ms:.1f} ms, "
                f"p95 {probe.p95_ms:.1f} ms, statuses {probe.statuses}"
            )
            print(render_report(report))
        return 0 if probe.errors == 0 else 1
    if not args.phase:
        raise InputError("name the phase to run (itest-mcp phases lists them), or use --list / --probe N")
    options = _run_options(args.test, args.race, args.count, args.timeout_s)
    run = anyio.run(run_phase_with_faults, project, args.phase, args.profile, options)
    if args.json:
        print(run.model_dump_json(indent=2))
    else:
        print(render_report(run.report))
    ok = run.phase_run.status.value == "passed" and run.report.verdict is not Verdict.FAILED
    return 0 if ok and run.report.verdict is not Verdict.NO_TRAFFIC else 1
