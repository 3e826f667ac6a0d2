"""`build_report`, `flaky_tests`, `test_history`, the latest report resource and the workflow prompt; CLI
`itest-mcp report`, `history`, `flaky` and `workflow`."""

from __future__ import annotations

import argparse
import sys
from typing import Annotated, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from pydantic import Field

from itest_mcp.server.errors import tool_errors
from itest_mcp.server.state import ServerState
from itest_mcp.tools.errors import InputError, ItestError
from itest_mcp.tools.flaky import DEFAULT_WINDOW, FlakyReport, HistoryView, flaky_tests, test_history
from itest_mcp.tools.repo import Project
from itest_mcp.tools.report import build_report, latest_report_markdown, out_path, write_out
from itest_mcp.tools.report_markdown import render_markdown
from itest_mcp.tools.report_model import Report
from itest_mcp.tools.workflow import GITHUB_TIMEOUT_S, workflow_prompt

Format = Literal["md", "json", "html"]

MAX_RUNS_ASKED = 500
"""The most runs `--limit`/`--window` may ask for (the MCP tools' bound; SQLite cannot take any integer)."""


def make_report(
    project: Project,
    run_ids: list[str] | None,
    fmt: Format = "md",
    out: str | None = None,
    window: int = DEFAULT_WINDOW,
) -> tuple[Report, str]:
    """Build and save the report; also write the HTML page (format html) and `out`. Returns it and its text."""
    if fmt not in ("md", "json", "html"):
        raise InputError(f"format {fmt!r} is not one of md, json, html")
    target = out_path(project, out) if out else None
    report = build_report(project, run_ids or None, window=window)
    if fmt == "html":
        from itest_mcp.tools.report import save_report
        from itest_mcp.tools.report_html import render_html

        path = project.reports_dir / f"{report.report_id}.html"
        report.files.html = project.rel(path)
        save_report(project, report)  # again, so the saved JSON names the HTML file
        text = render_html(report)
        path.write_text(text, encoding="utf-8")
    elif fmt == "json":
        text = report.model_dump_json(indent=2)
    else:
        text = render_markdown(report)
    if target is not None:
        write_out(project, target, text)
        report.files.out = project.rel(target)
    return report, text


def register(app: MCPServer, state: ServerState) -> None:
    @app.tool(name="build_report", title="Build the test report")
    def build_report_tool(
        runs: Annotated[
            list[str] | None,
            Field(description="run ids to report on (default: runs since the last report, else the current commit's)"),
        ] = None,
        format: Annotated[
            Format, Field(description="also write the report as md (always saved), json, or a self-contained html page")
        ] = "md",
        out: Annotated[
            str | None, Field(description="also write the report to this path inside the repository")
        ] = None,
        window: Annotated[
            int, Field(description="runs of each phase to judge flaky and slow tests by", ge=1, le=500)
        ] = (DEFAULT_WINDOW),
    ) -> Report:
        """Build the four-section report (summary, critical findings, coverage, recommendations) from the runs."""
        with tool_errors():
            report, _ = make_report(state.project(), runs, format, out, window)
            return report

    @app.tool(name="flaky_tests", title="Flaky, broken and slow tests")
    def flaky_tests_tool(
        window: Annotated[int, Field(description="the last N runs of each phase to look at", ge=1, le=500)] = (
            DEFAULT_WINDOW
        ),
        phase: Annotated[str | None, Field(description="only this phase")] = None,
    ) -> FlakyReport:
        """Flaky, broken and failing tests with failure rates, and slow-test regressions, over recent runs."""
        with tool_errors():
            return flaky_tests(state.project(), window, phase)

    @app.tool(name="test_history", title="Test history")
    def test_history_tool(
        test: Annotated[
            str | None, Field(description="a test name or classname::name key; omit to list the recent runs")
        ] = None,
        limit: Annotated[int, Field(description="runs to show", ge=1, le=500)] = DEFAULT_WINDOW,
    ) -> HistoryView:
        """One test's outcomes, attempts and durations across recent runs (or the recent runs when no test given)."""
        with tool_errors():
            return test_history(state.project(), test, limit)

    @app.resource(
        "itest://reports/latest",
        name="latest_report",
        title="Latest test report",
        description="The newest report build_report saved, as markdown",
        mime_type="text/markdown",
    )
    def latest_report() -> str:
        try:
            return latest_report_markdown(state.project())
        except ItestError as exc:
            raise ResourceError(str(exc)) from exc

    @app.prompt(name="integration_test_workflow", title="Integration test workflow")
    def integration_test_workflow(focus: str | None = None) -> str:
        """Walk through assess → run → rerun failures → coverage gaps → GitHub validation → report."""
        return workflow_prompt(focus)


# -- CLI ---------------------------------------------------------------------------------------


def render_history(view: HistoryView) -> str:
    """A history view as terminal text."""
    lines: list[str] = []
    if view.imported:
        lines.append(f"recorded {len(view.imported)} run folder(s) into history")
    for problem in view.problems:
        lines.append(f"note: {problem}")
    if view.test is not None:
        t = view.test
        lines.append(f"{t.key}  (phases: {', '.join(t.phases) or '-'})")
        if t.stats is not None:
            s = t.stats
            lines.append(
                f"  {s.status.value}: failure rate {s.failure_rate:.0%} over {s.runs} run(s)"
                + (f" — {s.evidence}" if s.evidence else "")
            )
        if t.slow is not None:
            w = t.slow
            lines.append(f"  slower: {w.duration_s:.2f} s vs median {w.median_s:.2f} s ({w.ratio:.1f}×) in {w.run_id}")
        for e in t.entries:
            tries = "/".join(a.value for a in e.attempts)
            commit = (e.commit or "-")[:10] + ("*" if e.dirty else "")
            lines.append(f"  {e.run_id}  {e.outcome.value:8} {e.duration_s:8.3f} s  {commit}  [{tries}]")
        return "\n".join(lines)
    if not view.runs:
        lines.append(
            "no runs recorded yet: run a phase first (`itest-mcp phases` lists them, `itest-mcp run <phase>` "
            "runs one, `itest-mcp workflow` runs the whole workflow)"
        )
        return "\n".join(lines)
    for r in view.runs:
        commit = (r.commit or "-")[:10] + ("*" if r.dirty else "")
        lines.append(
            f"{r.run_id}  {r.phase:20} {r.status:9} {r.duration_s:8.2f} s  {r.tests:5} tests  "
            f"{r.failed + r.errors} failed  {r.flaky} flaky  {commit}"
        )
    return "\n".join(lines)


def render_flaky(report: FlakyReport) -> str:
    """Flaky, broken, failing and slow tests as terminal text."""
    lines = [
        f"last {report.window} runs of each phase: {report.runs_considered} runs, {report.tests_seen} tests "
        f"({', '.join(report.phases) or 'no phases'})"
    ]
    for title, items in (("flaky", report.flaky), ("broken", report.broken), ("failing", report.failing)):
        lines.append(f"{title}: {len(items)}")
        for s in items:
            lines.append(f"  {s.key}  {s.failure_rate:.0%} of {s.runs} run(s) — {s.evidence}")
    lines.append(f"slow-test regressions: {len(report.slow)}")
    for w in report.slow:
        lines.append(
            f"  {w.key}  {w.duration_s:.2f} s vs median {w.median_s:.2f} s ({w.ratio:.1f}×, +{w.slower_by_s:.2f} s) "
            f"in {w.run_id}"
        )
    if report.runs_considered == 0:
        lines.append("no runs recorded yet: run a phase first (`itest-mcp run <phase>`)")
    return "\n".join(lines)


def add_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser("report", help="build the four-section report (md, json or a self-contained html page)")
    report.add_argument("--runs", nargs="+", metavar="ID", help="run ids (default: since the last report)")
    report.add_argument("--format", choices=("md", "json", "html"), default="md", help="output format (default md)")
    report.add_argument("--out", metavar="FILE", help="write the report to FILE (inside the repository)")
    report.add_argument("--window", type=int, default=DEFAULT_WINDOW, help="runs per phase for flaky/slow analysis")
    report.set_defaults(handler=_cli_report)
    history = sub.add_parser("history", help="recent runs, or one test's outcomes and durations across runs")
    history.add_argument("test", nargs="?", help="a test name or classname::name key")
    history.add_argument("--limit", type=int, default=DEFAULT_WINDOW, help="runs to show (default 20)")
    history.add_argument("--json", action="store_true", help="print the model as JSON")
    history.set_defaults(handler=_cli_history)
    flaky = sub.add_parser("flaky", help="flaky, broken and slow tests over the recent runs")
    flaky.add_argument("--window", type=int, default=DEFAULT_WINDOW, help="runs per phase (default 20)")
    flaky.add_argument("--phase", help="only this phase")
    flaky.add_argument("--json", action="store_true", help="print the model as JSON")
    flaky.set_defaults(handler=_cli_flaky)
    workflow = sub.add_parser(
        "workflow", help="assess, run the recommended phases, rerun failures, coverage, GitHub check, report"
    )
    workflow.add_argument("--base", metavar="REV", help="base revision for assess (default: merge-base)")
    workflow.add_argument("--format", choices=("md", "json", "html"), default="md", help="report format to print")
    workflow.add_argument("--json", action="store_true", help="print the workflow result as JSON")
    workflow.add_argument(
        "--phase",
        action="append",
        metavar="NAME",
        help="run only this phase of the recommended ones (repeatable; a phase not recommended runs too)",
    )
    workflow.add_argument(
        "--github-timeout",
        type=float,
        default=GITHUB_TIMEOUT_S,
        metavar="SECONDS",
        help=f"budget of the GitHub validation step (default {GITHUB_TIMEOUT_S:g}; unreachable API: a finding)",
    )
    workflow.add_argument(
        "--all-phases",
        action="store_true",
        help="run every go/pytest phase (a baseline) instead of the recommended ones",
    )
    workflow.set_defaults(handler=_cli_workflow)


def _check_count(flag: str, value: int) -> int:
    """Refuse a run count outside 1..MAX_RUNS_ASKED with the flag and value in the message."""
    if not 1 <= value <= MAX_RUNS_ASKED:
        raise InputError(f"{flag} {value} must be between 1 and {MAX_RUNS_ASKED} runs; give a smaller number")
    return value


def _cli_report(args: argparse.Namespace, project: Project) -> int:
    _check_count("--window", args.window)
    report, text = make_report(project, args.runs, args.format, args.out, args.window)
    if args.format == "html":
        print(f"wrote {report.files.out or report.files.html}")
    elif args.out:
        print(f"wrote {report.files.out}")
    else:
        print(text, end="")
    return 0


def _cli_history(args: argparse.Namespace, project: Project) -> int:
    _check_count("--limit", args.limit)
    view = test_history(project, args.test, args.limit)
    print(view.model_dump_json(indent=2) if args.json else render_history(view))
    return 0


def _cli_flaky(args: argparse.Namespace, project: Project) -> int:
    _check_count("--window", args.window)
    report = flaky_tests(project, args.window, args.phase)
    print(report.model_dump_json(indent=2) if args.json else render_flaky(report))
    return 0


def _cli_workflow(args: argparse.Namespace, project: Project) -> int:
    import anyio

    from itest_mcp.tools.workflow import render_workflow, run_workflow

    async def say(message: str) -> None:
        print(f"… {message}", file=sys.stderr, flush=True)

    async def main() -> int:
        result = await run_workflow(
            project,
            args.base,
            say=say,
            github_timeout_s=args.github_timeout,
            only=args.phase,
            all_phases=args.all_phases,
        )
        if args.json:
            print(result.model_dump_json(indent=2))
            return result.exit_code
        print(render_workflow(result))
        if result.report is not None and args.format == "html":
            from itest_mcp.tools.report_html import render_html

            path = project.reports_dir / f"{result.report.report_id}.html"
            path.write_text(render_html(result.report), encoding="utf-8")
            print(f"  {project.rel(path)}")
        elif result.report is not None and args.format == "json":
            print(result.report.model_dump_json(indent=2))
        return result.exit_code

    return anyio.run(main)
