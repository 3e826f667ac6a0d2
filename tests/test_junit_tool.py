"""`parse_junit` over MCP (in-process client) and `itest-mcp junit` on the command line, against real repos."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import Client

from itest_mcp.server.app import create_app
from itest_mcp.server.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "junit"


@pytest.fixture
def repo(make_repo: Callable[..., Path]) -> Path:
    root = make_repo({"README.md": "demo\n"})
    shutil.copytree(FIXTURES / "surefire", root / "target" / "surefire-reports")
    shutil.copy(FIXTURES / "gotestsum.xml", root / "gotestsum.xml")
    run = root / ".itest" / "runs" / "20240514-100455-ab12"
    run.mkdir(parents=True)
    shutil.copy(FIXTURES / "go_junit_report.xml", run / "junit.xml")
    return root


@pytest.mark.anyio
async def test_mcp_parse_junit_glob(repo: Path) -> None:
    async with Client(create_app(repo)) as client:
        result = await client.call_tool("parse_junit", {"paths": ["target/surefire-reports/TEST-*.xml"]})
    assert not result.is_error
    data = result.structured_content
    assert data is not None
    assert data["report"]["totals"] == {
        "tests": 6,
        "passed": 1,
        "failed": 1,
        "errors": 1,
        "skipped": 1,
        "flaky": 2,
        "attempts": 11,
    }
    assert [f["dialect"] for f in data["files"]] == ["surefire", "surefire"]
    assert data["files"][0]["path"] == "target/surefire-reports/TEST-com.acme.ghsync.CalculatorTest.xml"
    assert "tests" not in data["report"]  # the per-test list stays off the wire
    assert data["report"]["failures"][0]["location"] == {"file": "com/acme/ghsync/CalculatorTest.java", "line": 31}


@pytest.mark.anyio
async def test_mcp_parse_junit_run_id_and_errors(repo: Path) -> None:
    async with Client(create_app(repo)) as client:
        ok = await client.call_tool("parse_junit", {"run_id": "20240514-100455-ab12"})
        no_match = await client.call_tool("parse_junit", {"paths": ["build/**/*.xml"]})
        no_run = await client.call_tool("parse_junit", {"run_id": "nope"})
        escape = await client.call_tool("parse_junit", {"paths": ["../../etc/*.xml"]})
    assert not ok.is_error and ok.structured_content is not None
    assert ok.structured_content["files"][0]["path"] == ".itest/runs/20240514-100455-ab12/junit.xml"
    assert ok.structured_content["report"]["totals"]["flaky"] == 1
    assert no_match.is_error and "glob 'build/**/*.xml' matches no file" in no_match.content[0].text  # type: ignore[union-attr]
    assert no_run.is_error and "no run 'nope'" in no_run.content[0].text  # type: ignore[union-attr]
    assert escape.is_error and "outside the project root" in escape.content[0].text  # type: ignore[union-attr]


def test_cli_text_and_json(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--repo", str(repo), "junit", "gotestsum.xml"])
    out = capsys.readouterr().out
    assert code == 1  # a test failed
    assert out.splitlines()[0] == "tests 5: 3 passed, 1 failed, 0 errors, 0 skipped, 1 flaky (7 attempts)"
    assert "FAILED github.com/acme/ghsync/test/integration::TestWebhookSignature (webhook_test.go:41)" in out
    assert "FLAKY github.com/acme/ghsync/test/integration::TestNetworkEdgeCases (2 attempts)" in out

    code = main(["--repo", str(repo), "junit", "--run", "20240514-100455-ab12", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["files"][0]["dialect"] == "go-junit-report"


def test_cli_bad_input_exits_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--repo", str(repo), "junit", "reports/*.xml"]) == 2
    assert "glob 'reports/*.xml' matches no file" in capsys.readouterr().err
    assert main(["--repo", str(repo), "junit"]) == 2
    assert "give paths" in capsys.readouterr().err
    assert main(["--repo", str(repo), "junit", "gotestsum.xml", "--run", "x"]) == 2
    assert "not both" in capsys.readouterr().err


def test_cli_passing_file_exits_0(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "ok.xml").write_text('<testsuite name="s"><testcase name="a" time="1"/></testsuite>', encoding="utf-8")
    assert main(["--repo", str(repo), "junit", "ok.xml"]) == 0
    assert "tests 1: 1 passed" in capsys.readouterr().out
