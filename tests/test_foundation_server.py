"""The server through real clients: in-process, the official stdio client, and the MCP Inspector CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from itest_mcp.server.app import create_app
from itest_mcp.server.cli import main


@pytest.mark.anyio
async def test_list_phases_in_process_returns_structured_phases(demo_repo: Path):
    async with Client(create_app(demo_repo)) as client:
        tools = await client.list_tools()
        names = {tool.name for tool in tools.tools}
        assert "list_phases" in names
        listed = next(t for t in tools.tools if t.name == "list_phases")
        assert listed.output_schema is not None
        result = await client.call_tool("list_phases", {})
        assert not result.is_error
        phases = {p["name"]: p for p in result.structured_content["phases"]}
        assert phases["network-edge-cases"]["argv"][:3] == ["go", "test", "-json"]
        assert phases["network-edge-cases"]["source"] == "discovery:go-integration"


@pytest.mark.anyio
async def test_bad_repo_is_a_tool_error_with_the_reason(tmp_path: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    async with Client(create_app(plain)) as client:
        result = await client.call_tool("list_phases", {})
        assert result.is_error
        text = result.content[0].text
        assert "is not inside a git repository" in text and "git init" in text


@pytest.mark.anyio
async def test_config_error_reaches_the_model_with_file_and_line(make_repo):
    repo = make_repo({"itest.toml": '[phases.a]\nrunner = "go"\nrce = true\n'})
    async with Client(create_app(repo)) as client:
        result = await client.call_tool("list_phases", {})
        assert result.is_error
        assert "itest.toml:3 [phases.a.rce]: unknown key 'rce'" in result.content[0].text


@pytest.mark.anyio
async def test_real_stdio_server_answers_tools_list_and_a_call(demo_repo: Path):
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "itest_mcp.server", "--repo", str(demo_repo)], env=dict(os.environ)
    )
    async with Client(params) as client:
        tools = await client.list_tools()
        assert "list_phases" in {t.name for t in tools.tools}
        result = await client.call_tool("list_phases", {})
        assert "all" in {p["name"] for p in result.structured_content["phases"]}


def test_cli_phases_text_and_json(demo_repo: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["--repo", str(demo_repo), "phases"]) == 0
    text = capsys.readouterr().out
    assert "network-edge-cases  (go, discovery:go-integration)" in text
    assert main(["--repo", str(demo_repo), "phases", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config_file"] is None and data["discovered"] is True


def test_cli_bad_repo_exits_2_with_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    file = tmp_path / "f.txt"
    file.write_text("x")
    assert main(["--repo", str(file), "phases"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def _inspector_available() -> bool:
    return shutil.which("npx") is not None


@pytest.mark.inspector
@pytest.mark.skipif(not _inspector_available() and not os.environ.get("CI"), reason="npx is not installed")
def test_mcp_inspector_cli_lists_our_tools(demo_repo: Path):
    """A client nobody here wrote: the official MCP Inspector in CLI mode."""
    argv = [
        "npx", "-y", "@modelcontextprotocol/inspector", "--cli",
        sys.executable, "-m", "itest_mcp.server", "--repo", str(demo_repo),
        "--method", "tools/list",
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed = json.loads(proc.stdout)
    assert "list_phases" in {tool["name"] for tool in listed["tools"]}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.anyio
async def test_streamable_http_transport_on_loopback(demo_repo: Path):
    import socket

    import anyio

    port = _free_port()
    argv = [sys.executable, "-m", "itest_mcp.server", "--repo", str(demo_repo), "serve", "--http", "--port", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with anyio.fail_after(60):
            while True:  # wait until it accepts connections, without a client left half-open
                if proc.poll() is not None:
                    raise AssertionError(proc.stderr.read().decode() if proc.stderr else "server exited")
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                await anyio.sleep(0.2)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            names = {t.name for t in (await client.list_tools()).tools}
            phases = await client.call_tool("list_phases", {})
        assert "list_phases" in names
        assert "all" in {p["name"] for p in phases.structured_content["phases"]}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def test_every_subcommand_has_working_help(capsys: pytest.CaptureFixture[str]):
    from itest_mcp.server.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert {"phases", "run", "assess", "junit", "coverage", "github", "ci", "report", "workflow"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0, name
        assert f"itest-mcp {name}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "serving"),
    [
        ([], True),
        (["--repo", "x"], True),
        (["--repo=x", "-v", "serve", "--http"], True),
        (["--repo", "serve"], True),  # "serve" is the --repo value here; nothing follows: serve stdio
        (["phases"], False),
        (["--repo", "x", "run", "all"], False),
        (["--help"], False),
    ],
)
def test_serving_skips_the_tool_subcommands(argv: list[str], serving: bool):
    from itest_mcp.server.cli import _only_serving

    assert _only_serving(argv) is serving
