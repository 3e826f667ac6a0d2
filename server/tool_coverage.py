"""`find_coverage_gaps`: changed-line coverage, uncovered risky functions and untested network scenarios."""

from __future__ import annotations

import argparse
from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from itest_mcp.server.errors import tool_errors
from itest_mcp.server.latest import remember, remember_failure
from itest_mcp.server.state import ServerState
from itest_mcp.tools.coverage import CoverageGaps, find_coverage_gaps
from itest_mcp.tools.errors import ParseError
from itest_mcp.tools.gitdiff import LineRange
from itest_mcp.tools.repo import Project, ensure_not_option


def register(app: MCPServer, state: ServerState) -> None:
    @app.tool(name="find_coverage_gaps", title="Find coverage gaps")
    def find_coverage_gaps_tool(
        files: Annotated[
            list[str] | None,
            Field(description="coverage files (Go coverprofile, Cobertura, LCOV, JaCoCo); default: the latest run's"),
        ] = None,
        run_id: Annotated[str | None, Field(description="take coverage from this run id instead")] = None,
        base: Annotated[
            str | None, Field(description="base revision of the diff (default as in assess_changes)")
        ] = None,
        count_unmeasured: Annotated[
            bool, Field(description="count changed source files with no coverage data as uncovered")
        ] = True,
    ) -> CoverageGaps:
        """Coverage of the changed lines, uncovered network/API functions by risk, and untested edge-case scenarios."""
        with tool_errors():
            return _find_gaps(
                state.project(), files or None, run_id=run_id, base=base, count_unmeasured=count_unmeasured
            )


def _find_gaps(
    project: Project,
    files: list[str] | None,
    *,
    run_id: str | None,
    base: str | None,
    count_unmeasured: bool,
    all_files: bool = False,
) -> CoverageGaps:
    """find_coverage_gaps for both edges, keeping the result (or the parse failure) for build_report."""
    if base is not None:
        ensure_not_option("base", base)
    try:
        result = find_coverage_gaps(
            project, files, run_id=run_id, base=base, count_unmeasured=count_unmeasured, all_files=all_files
        )
    except ParseError as exc:
        # The report's Critical Findings says which coverage file failed and why.
        remember_failure(project, "coverage", exc, source=", ".join(files or []) or None)
        raise
    remember(project, "coverage", result)
    return result


def render(result: CoverageGaps) -> str:
    """The result as terminal text."""
    t = result.totals
    p = result.patch
    per_unit = "; ".join(f"{u.percent}% ({u.covered}/{u.measured} {u.unit}) over {u.files} files" for u in t.by_unit)
    lines = [f"coverage: {per_unit or 'no files'}"]
    lines.append(
        "inputs:   " + ", ".join(f"{i.file} ({i.format}{', ' + i.mode if i.mode else ''})" for i in result.inputs)
    )
    lines.append(f"diff:     {result.base_label} → {result.head_label}")
    lines.append(
        (
            f"changed lines: {p.percent}% covered ({p.covered}/{p.measured} measured lines"
            + (f", {p.partly_executed} of the uncovered partly executed)" if p.partly_executed else ")")
            if p.measured
            else "changed lines: none measured"
        )
        + (
            f"; {p.percent_with_unmeasured}% counting {len(p.unmeasured_files)} file(s) without data"
            if p.unmeasured_files
            else ""
        )
        + (f"; {len(p.stale_files)} file(s) left out, stale coverage" if p.stale_files else "")
    )
    for cf in result.changed_files:
        state = f"{cf.percent}%" if cf.percent is not None else cf.status
        partly = _ranges(cf.partly_executed_ranges)
        lines.append(
            f"  {cf.path}: {state}"
            + (f"  uncovered {_ranges(cf.uncovered_ranges)}" if cf.uncovered_ranges else "")
            + (f" (partly executed: {partly})" if partly else "")
        )
    if result.uncovered_functions:
        lines.append("uncovered functions (by risk):")
        for f in result.uncovered_functions[:10]:
            lines.append(f"  {f.file}:{f.line} {f.name}  {f.covered}/{f.measured} {f.unit}  [{', '.join(f.reasons)}]")
    if result.scenarios:
        lines.append("scenarios:")
        for s in result.scenarios:
            if s.exercised:
                e = s.evidence[0]
                lines.append(f"  [x] {s.suite:6} {s.title}: {e.test} ({e.file}:{e.line}, {e.matched})")
            else:
                assert s.suggestion is not None
                lines.append(f"  [ ] {s.suite:6} {s.title}: write {s.suggestion.test} in {s.suggestion.file}")
    if result.top_gaps:
        lines.append("close first:")
        for g in result.top_gaps:
            lines.append(f"  {g.rank}. {g.what} — {g.where} ({g.why})")
    for u in result.unmatched[:10]:
        cands = ", ".join(u.candidates) or "none"
        lines.append(f"unmatched: {u.name} ({u.reason}; closest: {cands})")
    for n in result.notes:
        lines.append(f"note: {n}")
    return "\n".join(lines)


def _ranges(ranges: list[LineRange]) -> str:
    return ", ".join(f"{r.start}-{r.end}" if r.end != r.start else str(r.start) for r in ranges[:8])


def add_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("coverage", help="changed-line coverage, uncovered risky functions, scenario gaps")
    parser.add_argument("files", nargs="*", help="coverage files (default: the latest run with coverage)")
    parser.add_argument("--run", dest="run_id", help="take coverage from this run id")
    parser.add_argument("--base", help="base revision of the diff (default as in assess)")
    parser.add_argument("--no-count-unmeasured", action="store_true", help="leave files without data out of the %%")
    parser.add_argument("--all-files", action="store_true", help="list every file, not only the first ones")
    parser.add_argument("--json", action="store_true", help="print the model as JSON")
    parser.set_defaults(handler=_cli_coverage)


def _cli_coverage(args: argparse.Namespace, project: Project) -> int:
    result = _find_gaps(
        project,
        args.files or None,
        run_id=args.run_id,
        base=args.base,
        count_unmeasured=not args.no_count_unmeasured,
        all_files=args.all_files,
    )
    print(result.model_dump_json(indent=2) if args.json else render(result))
    return 0
