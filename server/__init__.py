"""The MCP and CLI edge of itest-mcp: thin wrappers over `itest_mcp.tools`."""
