"""History keeps a run whose tests.jsonl has a bad line (and says which), and validates --limit."""

from __future__ import annotations

import json

import pytest
from helpers_history import factory

from itest_mcp.server.cli import main
from itest_mcp.tools import history
from itest_mcp.tools.errors import NotFoundError
from itest_mcp.tools.flaky import test_history
from itest_mcp.tools.models import Outcome
from itest_mcp.tools.repo import Project, open_project


@pytest.fixture
def project(make_repo) -> Project:  # type: ignore[no-untyped-def]
    return open_project(make_repo({"README.md": "x\n"}))


def _run_with_truncated_line(project: Project) -> str:
    tests = [factory.make_test(f"Test{i}", Outcome.FAILED if i == 2 else Outcome.PASSED) for i in range(8)]
    folder = history.write_run_folder(project, factory.make_run(0, tests))
    tests_file = folder / history.TESTS_FILE
    lines = tests_file.read_bytes().splitlines()
    lines[6] = lines[6][: len(lines[6]) // 2]  # line 7 cut short, as by a crash mid-write
    tests_file.write_bytes(b"\n".join(lines) + b"\n")
    return folder.name


def test_a_truncated_tests_line_keeps_the_run_and_its_other_tests(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = _run_with_truncated_line(project)
    assert main(["--repo", str(project.root), "history"]) == 0
    out = capsys.readouterr().out
    assert "recorded 1 run folder(s) into history" in out
    assert f".itest/runs/{run_id}/tests.jsonl:7 is not a test result" in out
    assert "skipped 1 line(s) and recorded the run with its other 7 test(s)" in out
    assert run_id in out.split("note:")[-1]  # listed as a run, not only named in the note
    assert test_history(project, "Test2").test.entries[0].outcome is Outcome.FAILED  # type: ignore[union-attr]
    assert test_history(project, "Test7").test.entries[0].outcome is Outcome.PASSED  # type: ignore[union-attr]
    with pytest.raises(NotFoundError, match="no test 'Test6' in history"):
        test_history(project, "Test6")  # the one line that was cut short


@pytest.mark.parametrize("limit", ["99999999999999999999", "0", "-3", "100000"])
def test_history_limit_out_of_range_is_a_clear_error(
    project: Project, limit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--repo", str(project.root), "history", "--limit", limit]) == 2
    err = capsys.readouterr().err
    assert f"--limit {limit} must be" in err and "Traceback" not in err


@pytest.mark.parametrize("command", [["flaky", "--window"], ["report", "--window"]])
def test_window_out_of_range_is_a_clear_error(
    project: Project, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    history.write_run_folder(project, factory.make_run(0, [factory.make_test("TestA")]))
    assert main(["--repo", str(project.root), *command, "99999999999999999999"]) == 2
    assert "--window 99999999999999999999 must be" in capsys.readouterr().err


def test_history_limit_in_range_still_works(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    history.write_run_folder(project, factory.make_run(0, [factory.make_test("TestA")]))
    assert main(["--repo", str(project.root), "history", "--limit", "500", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["runs"]) == 1
