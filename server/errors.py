"""Map the domain's exception tree to what an MCP client or a terminal user sees."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from mcp.server.mcpserver.exceptions import ToolError

from itest_mcp.tools.errors import ItestError

log = logging.getLogger("itest_mcp")


@contextmanager
def tool_errors() -> Iterator[None]:
    """Turn an ItestError into a ToolError whose message reaches the model (others become a bare error)."""
    try:
        yield
    except ItestError as exc:
        log.info("tool error: %s", exc)
        raise ToolError(str(exc)) from exc
