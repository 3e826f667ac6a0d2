"""The itest-mcp domain: one module per capability, no MCP imports (see DESIGN.md)."""

__version__ = "0.1.0"
