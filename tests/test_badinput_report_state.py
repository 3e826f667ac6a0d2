"""Corrupt state under .itest (a file for a folder, non-UTF-8 results, a bad report) is named, not a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_history import NOW, factory

from itest_mcp.server.cli import main
from itest_mcp.tools import history
from itest_mcp.tools.errors import ParseError
from itest_mcp.tools.repo import Project, open_project
from itest_mcp.tools.report import build_report, latest_report_markdown
from itest_mcp.tools.results_store import load_latest


@pytest.fixture
def project(make_repo) -> Project:  # type: ignore[no-untyped-def]
    return open_project(make_repo({"README.md": "x\n"}))


@pytest.mark.parametrize("command", [["history"], ["report"], ["flaky"], ["run", "api-client"]])
def test_itest_being_a_file_says_move_it_aside(
    demo_repo: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = demo_repo
    (repo / ".itest").write_text("not a folder\n", encoding="utf-8")
    assert main(["--repo", str(repo), *command]) == 2
    err = capsys.readouterr().err
    assert ".itest in " in err and "is a file, not the folder itest-mcp keeps its state in" in err
    assert "move it aside" in err and "Traceback" not in err
    assert (repo / ".itest").read_text(encoding="utf-8") == "not a folder\n"


def test_a_state_subfolder_being_a_file_is_named(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    (project.state_dir / "runs").write_text("x", encoding="utf-8")
    assert main(["--repo", str(project.root), "history"]) == 2
    assert ".itest/runs in " in capsys.readouterr().err


def test_non_utf8_latest_result_is_a_finding(project: Project) -> None:
    history.write_run_folder(project, factory.make_run(0, [factory.make_test("TestA")]))
    (project.state_subdir("latest") / "coverage.json").write_bytes(b'{"a": "\xff\xfe"}')
    with pytest.raises(ParseError, match=r"\.itest/latest/coverage\.json is not UTF-8 text \(byte 0xff at offset 7\)"):
        load_latest(project, "coverage")
    report = build_report(project, now=NOW)
    titles = [f.title for f in report.findings.environment]
    assert any("coverage.json is not UTF-8 text" in t and "rerun the coverage tool" in t for t in titles), titles


@pytest.mark.parametrize("content", [b'{"run_ids": 5}', b"[1, 2]", b'{"run_ids": [1, 2]}', b"\xff\xfe"])
def test_malformed_latest_report_json_is_treated_as_unreadable(project: Project, content: bytes) -> None:
    run = factory.make_run(0, [factory.make_test("TestA")])
    history.write_run_folder(project, run)
    (project.reports_dir / "report-20990101T000000-000000.json").write_bytes(content)
    report = build_report(project, now=NOW)
    assert report.run_ids == [run.run_id]
    assert "the last report .itest/reports/report-20990101T000000-000000.json cannot be read" in report.selection


def test_latest_report_resource_with_a_broken_report_says_build_a_new_one(project: Project) -> None:
    (project.reports_dir / "report-20990101T000000-000000.json").write_text(json.dumps({"run_ids": 5}))
    with pytest.raises(ParseError, match="report-20990101T000000-000000.json cannot be read .*build a new one"):
        latest_report_markdown(project)
