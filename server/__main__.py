"""`python -m itest_mcp.server` is the same as the `itest-mcp` command."""

from itest_mcp.server.cli import main

raise SystemExit(main())
