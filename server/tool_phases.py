"""`list_phases`: the phases a caller may run, with their exact argv."""

from __future__ import annotations

import argparse

from mcp.server import MCPServer

from itest_mcp.server.errors import tool_errors
from itest_mcp.server.state import ServerState
from itest_mcp.tools.phases import PhaseListing, list_phases
from itest_mcp.tools.repo import Project


def register(app: MCPServer, state: ServerState) -> None:
    @app.tool(name="list_phases", title="List test phases")
    def list_phases_tool() -> PhaseListing:
        """List every integration-test phase (from itest.toml or discovered) with the exact argv it runs."""
        with tool_errors():
            return list_phases(state.project())


def render_listing(listing: PhaseListing) -> str:
    """The listing as a terminal table."""
    lines = [f"project: {listing.project_root}"]
    lines.append(f"config:  {listing.config_file or 'none (phases discovered)'}")
    for phase in listing.phases:
        flag = "" if phase.available else "  [unavailable]"
        lines.append("")
        lines.append(f"{phase.name}{flag}  ({phase.runner.value}, {phase.source})")
        if phase.description:
            lines.append(f"  {phase.description}")
        lines.append(f"  argv:     {' '.join(phase.argv)}")
        if phase.triggers:
            lines.append(f"  triggers: {', '.join(phase.triggers)}")
        if phase.note:
            lines.append(f"  note:     {phase.note}")
    if not listing.phases:
        lines.append("")
        lines.append("no phases: add [phases.<name>] to itest.toml, or keep Go integration tests in test/integration/")
    return "\n".join(lines)


def add_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("phases", help="list the phases and the argv each runs")
    parser.add_argument("--json", action="store_true", help="print the model as JSON")
    parser.set_defaults(handler=_cli_phases)


def _cli_phases(args: argparse.Namespace, project: Project) -> int:
    listing = list_phases(project)
    print(listing.model_dump_json(indent=2) if args.json else render_listing(listing))
    return 0
