"""Bridge the engine's progress callbacks to MCP progress notifications."""

from __future__ import annotations

from mcp.server.mcpserver import Context

from itest_mcp.tools.runner import ProgressSink


def progress_to(ctx: Context) -> ProgressSink:
    """Forward engine progress to the client with a value that always increases, as MCP requires.

    The engine counts finished top-level tests; subtests finishing report the same count
    again, so those notifications get a small fractional step instead.
    """
    last = [-1.0]

    async def progress(done: int, total: int | None, message: str) -> None:
        value = float(done) if done > last[0] else last[0] + 0.001
        last[0] = value
        await ctx.report_progress(value, total, message)

    return progress
