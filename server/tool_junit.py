"""`parse_junit`: read JUnit XML files (paths, globs, or a run's folder) into the shared test report."""

from __future__ import annotations

import argparse
from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from itest_mcp.server.errors import tool_errors
from itest_mcp.server.state import ServerState
from itest_mcp.tools.errors import InputError
from itest_mcp.tools.junit import JUnitParseResult, parse_junit_files, parse_junit_paths, run_junit_paths
from itest_mcp.tools.repo import Project

MAX_FAILURES = 50
"""Failures listed in a tool result; the counts stay complete and the files stay on disk."""


def parse_junit(project: Project, paths: list[str], run_id: str | None = None) -> JUnitParseResult:
    """Read the JUnit files named by `paths` (files or globs in the repo) or left by run `run_id`."""
    if run_id is not None and paths:
        raise InputError("give either paths or run_id, not both")
    if run_id is not None:
        files = run_junit_paths(project, run_id)
        return parse_junit_files(files, root=project.root, keep_tests=False, max_failures=MAX_FAILURES)
    if not paths:
        raise InputError("give paths (files or globs such as 'build/test-results/**/*.xml') or a run_id")
    return parse_junit_paths(project, paths, keep_tests=False, max_failures=MAX_FAILURES)


def register(app: MCPServer, state: ServerState) -> None:
    @app.tool(name="parse_junit", title="Read JUnit XML")
    def parse_junit_tool(
        paths: Annotated[
            list[str],
            Field(description="JUnit XML files or globs inside the repository, e.g. 'build/test-results/**/*.xml'"),
        ] = [],  # noqa: B006 - pydantic copies defaults; MCP needs a plain list in the schema
        run_id: Annotated[
            str | None,
            Field(description="read the JUnit files a run left in .itest/runs/<run_id>/ instead of paths"),
        ] = None,
    ) -> JUnitParseResult:
        """Summarise JUnit XML from any common producer: totals, suites, failures with file:line, slowest, flaky."""
        with tool_errors():
            return parse_junit(state.project(), paths, run_id)


def render(result: JUnitParseResult) -> str:
    """The result as terminal text."""
    report = result.report
    t = report.totals
    lines = [
        f"tests {t.tests}: {t.passed} passed, {t.failed} failed, {t.errors} errors, "
        f"{t.skipped} skipped, {t.flaky} flaky ({t.attempts} attempts)"
    ]
    for f in result.files:
        state = f"ERROR {f.error}" if f.error else f"{f.dialect}, {f.tests} testcases"
        lines.append(f"  {f.path}: {state}")
        lines.extend(f"    note: {note}" for note in f.notes)
    for failure in report.failures:
        where = f" ({failure.location})" if failure.location else ""
        again = f" after {failure.attempts} attempts" if failure.attempts > 1 else ""
        lines.append(f"{failure.outcome.value.upper()} {failure.classname}::{failure.test}{where}{again}")
        if failure.message:
            lines.append(f"    {failure.message}")
    if result.failures_omitted:
        lines.append(f"... and {result.failures_omitted} more failures (use --json for the full counts)")
    for flaky in result.flaky:
        lines.append(f"FLAKY {flaky.classname}::{flaky.test} ({flaky.attempts} attempts): {flaky.message}")
    if report.slowest:
        lines.append("slowest:")
        lines.extend(f"  {s.duration_s:9.3f}s  {s.classname}::{s.name}" for s in report.slowest)
    return "\n".join(lines)


def add_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("junit", help="summarise JUnit XML files (paths or globs in the repo, or a run's files)")
    parser.add_argument("paths", nargs="*", metavar="PATH_OR_GLOB", help="JUnit XML files or globs")
    parser.add_argument("--run", dest="run_id", metavar="ID", help="read the JUnit files of run ID instead")
    parser.add_argument("--json", action="store_true", help="print the model as JSON")
    parser.set_defaults(handler=_cli_junit)


def _cli_junit(args: argparse.Namespace, project: Project) -> int:
    result = parse_junit(project, list(args.paths), args.run_id)
    print(result.model_dump_json(indent=2) if args.json else render(result))
    t = result.report.totals
    return 1 if (t.failed or t.errors or result.errors) else 0
