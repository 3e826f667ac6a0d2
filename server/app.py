"""Build the MCP server: one module per capability registers its tools, resources and prompts.

Each `server/tool_*.py` module exposes `register(app, state)`; this file only
lists them, so adding a capability is one line here and one module there.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from mcp.server import MCPServer

from itest_mcp.server.schema_cache import SchemaCache, SchemaCachedServer, default_cache_file, sources_key
from itest_mcp.server.state import ServerState
from itest_mcp.tools import __version__

TOOL_MODULES: tuple[str, ...] = (
    "tool_phases",
    "tool_assess",
    "tool_faults",
    "tool_github",
    "tool_run",
    "tool_coverage",
    "tool_junit",
    "tool_report",
)

INSTRUCTIONS = """\
itest-mcp runs this repository's integration-test workflow. Typical order:
assess_changes → run_phase for the recommended phases (rerun_failures to tell flaky
from broken) → find_coverage_gaps → validate_github_api when GitHub API code changed →
build_report. Results are compact; full logs and JUnit are resources (itest://runs/{id}/log).
"""


def create_app(repo: Path | str = ".", *, schema_cache: bool | Path | SchemaCache = True) -> MCPServer:
    """The MCP server for the project at `repo` (opened on first use).

    `schema_cache`: True keeps the tools' JSON schemas in the system temp dir between starts
    (see server/schema_cache.py for why), a Path or SchemaCache names another cache, False
    generates them every time.
    """
    state = ServerState(repo=Path(repo))
    app: MCPServer
    if schema_cache is False:
        app = MCPServer(name="itest-mcp", version=__version__, instructions=INSTRUCTIONS)
    else:
        if isinstance(schema_cache, SchemaCache):
            cache = schema_cache
        else:
            cache = SchemaCache(default_cache_file() if schema_cache is True else schema_cache, sources_key())
        app = SchemaCachedServer(cache, name="itest-mcp", version=__version__, instructions=INSTRUCTIONS)
    for module_name in TOOL_MODULES:
        module = importlib.import_module(f"itest_mcp.server.{module_name}")
        module.register(app, state)
    if isinstance(app, SchemaCachedServer):
        app.finish_registration()
    return app
