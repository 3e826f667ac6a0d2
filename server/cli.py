"""The `itest-mcp` command: no subcommand serves MCP over stdio; every tool is also a subcommand.

Exit codes: 0 success, 1 the tests (or checks) failed, 2 bad input or environment
(the message says what to do), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from itest_mcp.server.app import TOOL_MODULES
from itest_mcp.tools import __version__
from itest_mcp.tools.errors import ItestError


def _only_serving(argv: Sequence[str]) -> bool:
    """True when the command line starts the server (no subcommand, or `serve`).

    Serving needs none of the tool subcommands' parsers, and importing every tool
    module just to build them is most of what start-up costs beyond the SDK itself.
    """
    tokens = iter(argv)
    for token in tokens:
        if token == "--repo":
            next(tokens, None)
        elif token.startswith("--repo=") or token in ("-v", "--verbose"):
            continue
        elif token.startswith("-"):
            return False  # --help, --version, or something argparse should judge
        else:
            return token == "serve"
    return True


def port_number(text: str) -> int:
    """An argparse type: a TCP port 0-65535 (0 picks a free one), so a wrong one is a usage error, not OverflowError."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return port


def build_parser(*, with_tools: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="itest-mcp",
        description="Run a repository's integration-test workflow. Without a subcommand: serve MCP over stdio.",
    )
    parser.add_argument("--version", action="version", version=f"itest-mcp {__version__}")
    parser.add_argument(
        "--repo",
        default=os.environ.get("ITEST_REPO", "."),
        help="the project folder to work on (default: $ITEST_REPO or the current directory)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="serve MCP (stdio by default, or streamable HTTP with --http)")
    serve.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP host (default 127.0.0.1)")
    serve.add_argument("--port", type=port_number, default=8000, help="HTTP port (default 8000)")
    serve.set_defaults(handler=None)
    for module_name in TOOL_MODULES if with_tools else ():
        module = importlib.import_module(f"itest_mcp.server.{module_name}")
        add_cli = getattr(module, "add_cli", None)
        if add_cli is not None:
            add_cli(sub)
    return parser


def serve(repo: str, *, http: bool = False, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve MCP for the project at `repo` over stdio or streamable HTTP."""
    from itest_mcp.server.app import create_app

    app = create_app(Path(repo))
    if http:
        if host not in ("127.0.0.1", "localhost", "::1"):
            logging.getLogger("itest_mcp").warning("serving on %s: this server runs tests, keep it on loopback", host)
        app.run("streamable-http", host=host, port=port)
    else:
        app.run("stdio")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `itest-mcp` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(with_tools=not _only_serving(arguments))
    args = parser.parse_args(arguments)
    # stdout is the MCP transport when serving: every log line goes to stderr.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command is None:
            serve(args.repo)
            return 0
        if args.command == "serve":
            serve(args.repo, http=args.http, host=args.host, port=args.port)
            return 0
        if not getattr(args, "needs_project", True):
            # e.g. `fake-github`: serves anywhere, no repository involved.
            return int(args.handler(args, None))
        from itest_mcp.tools.repo import open_project

        project = open_project(args.repo)
        return int(args.handler(args, project))
    except ItestError as exc:
        print(f"itest-mcp: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("itest-mcp: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `itest-mcp ... | head` closed our stdout: not an error of ours. Point stdout at
        # devnull so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
