"""`assess_changes`: what changed, what it touches, and which phases to run (MCP tool and `itest-mcp assess`)."""

from __future__ import annotations

import argparse
from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from itest_mcp.server.errors import tool_errors
from itest_mcp.server.latest import remember
from itest_mcp.server.state import ServerState
from itest_mcp.tools.changes import DEFAULT_MAX_FILES, Assessment, assess_changes, describe_range
from itest_mcp.tools.repo import Project


def register(app: MCPServer, state: ServerState) -> None:
    @app.tool(name="assess_changes", title="Assess changes")
    async def assess_changes_tool(
        base: Annotated[
            str | None,
            Field(description="Base commit/branch; default: merge-base with the default branch, else HEAD~1"),
        ] = None,
        head: Annotated[str | None, Field(description="Head commit/branch; default: HEAD")] = None,
        include_worktree: Annotated[
            bool, Field(description="Include staged, unstaged and untracked changes (only when head is HEAD)")
        ] = True,
        import_graph: Annotated[
            bool, Field(description="Follow the Go/Python import graph to the tests that reach changed code")
        ] = True,
        max_files: Annotated[int, Field(description="Files listed in the result (all are counted)", ge=1, le=5000)] = (
            DEFAULT_MAX_FILES
        ),
        ci_failures: Annotated[
            bool,
            Field(description="Also list the branch's recent failed CI integration runs (needs a GitHub token)"),
        ] = True,
    ) -> Assessment:
        """Classify a git diff (categories with file:line evidence) and recommend the phases to run, with reasons."""
        with tool_errors():
            return await _assess(
                state.project(),
                base,
                head,
                include_worktree=include_worktree,
                import_graph=import_graph,
                max_files=max_files,
                ci_failures=ci_failures,
            )


async def _assess(
    project: Project,
    base: str | None,
    head: str | None,
    *,
    include_worktree: bool,
    import_graph: bool,
    max_files: int,
    ci_failures: bool,
) -> Assessment:
    """The assessment both edges return: offline classification, then CI failures, kept for the report."""
    import anyio

    assessment = await anyio.to_thread.run_sync(
        lambda: assess_changes(
            project, base, head, include_worktree=include_worktree, import_graph=import_graph, max_files=max_files
        )
    )
    if ci_failures:
        from itest_mcp.tools.assess_ci import attach_ci_failures

        assessment = await attach_ci_failures(project, assessment)
    remember(project, "assess", assessment)
    return assessment


def render_assessment(assessment: Assessment) -> str:
    """The assessment as terminal text."""
    a = assessment
    lines = [a.summary, f"range: {describe_range(a)}"]
    for note in a.notes:
        lines.append(f"note: {note}")
    if a.files:
        lines.append("")
        lines.append("files:")
        for f in a.files:
            cats = ", ".join(c.category for c in f.categories)
            where = f.go_package or f.python_module or ""
            renamed = f" (from {f.old_path})" if f.old_path else ""
            lines.append(
                f"  {f.status:<9} +{f.added:<5} -{f.removed:<5} {f.path}{renamed}"
                + (f"  [{cats}]" if cats else "")
                + (f"  {where}" if where else "")
            )
        if a.files_omitted:
            lines.append(f"  … and {a.files_omitted} more (raise --max-files to list them)")
    if a.categories:
        lines.append("")
        lines.append("evidence:")
        for c in a.categories:
            for e in c.examples:
                at = f"{e.file}:{e.line}" if e.line is not None else e.file
                mark = " (removed)" if e.removed else ""
                # Evidence without a changed line (a path or whole-file rule) says in its text why it counts.
                why = f": {e.text}" if e.line is None and e.text else ""
                lines.append(f"  {c.category:<13} {at}{mark}  {e.match!r}  [{e.rule}]{why}")
    if a.risk:
        lines.append("")
        lines.append("risk:")
        lines += [f"  {r}" for r in a.risk]
    lines.append("")
    if a.recommended:
        lines.append("run, in order:")
        for rec in a.recommended:
            flag = "" if rec.available else "  [unavailable here]"
            lines.append(f"  {rec.phase}{flag}")
            for reason in rec.reasons:
                lines.append(f"    - {reason.kind}: {reason.text}")
    else:
        lines.append("run: nothing")
    if a.not_recommended:
        lines.append("not recommended:")
        for skip in a.not_recommended:
            lines.append(f"  {skip.phase}: {skip.why}")
    if a.ci_failures:
        lines.append("")
        lines.append("recent failed CI integration runs:")
        for failure in a.ci_failures:
            lines.append(f"  {failure.workflow} ({failure.branch or 'branch?'}) {failure.run_url}")
            lines += [f"    - {test}" for test in failure.failing_tests[:10]]
    if a.import_graph:
        lines.append("")
        lines += [f"import graph: {g}" for g in a.import_graph]
    return "\n".join(lines)


def add_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("assess", help="classify the changes and recommend the phases to run")
    parser.add_argument("base", nargs="?", default=None, help="base revision (default: merge-base with main)")
    parser.add_argument("--head", default=None, help="head revision (default: HEAD)")
    parser.add_argument("--no-worktree", action="store_true", help="ignore staged, unstaged and untracked changes")
    parser.add_argument("--no-imports", action="store_true", help="skip the Go/Python import graph")
    parser.add_argument("--max-files", type=int, default=DEFAULT_MAX_FILES, help="files to list (all are counted)")
    parser.add_argument("--no-ci", action="store_true", help="do not look up recent failed CI runs on GitHub")
    parser.add_argument("--json", action="store_true", help="print the model as JSON")
    parser.set_defaults(handler=_cli_assess)


def _cli_assess(args: argparse.Namespace, project: Project) -> int:
    import anyio

    assessment = anyio.run(
        lambda: _assess(
            project,
            args.base,
            args.head,
            include_worktree=not args.no_worktree,
            import_graph=not args.no_imports,
            max_files=max(1, args.max_files),
            ci_failures=not args.no_ci,
        )
    )
    print(assessment.model_dump_json(indent=2) if args.json else render_assessment(assessment))
    return 0
