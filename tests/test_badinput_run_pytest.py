"""A run whose command refused its arguments says so with the command's own error line, not "no tests
matched", and the CLI keeps the end of a note that quotes output."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from itest_mcp.server.cli import main
from itest_mcp.tools.models import RunStatus
from itest_mcp.tools.repo import open_project
from itest_mcp.tools.runner import RunOptions, run_phase

TESTS = {"tests/test_one.py": "def test_one():\n    assert True\n"}


def _pytest_repo(make_repo: Callable[..., Path], extra: str = "") -> Path:
    return make_repo({**TESTS, "itest.toml": f'[phases.p]\nrunner = "pytest"\npaths = ["tests"]\n{extra}'})


def test_a_bad_k_expression_is_reported_as_pytest_refusing_it(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = _pytest_repo(make_repo)
    result = anyio.run(lambda: run_phase(open_project(root), "p", RunOptions(test="not (")))
    assert result.status is RunStatus.ERROR and result.exit_code == 4
    assert result.notes[0].startswith("pytest refused its arguments (exit code 4, a usage error): ERROR: ")
    assert "Wrong expression passed to '-k'" in result.notes[0]
    assert not any("no tests matched" in note for note in result.notes)

    code = main(["--repo", str(root), "run", "p", "--test", "not ("])
    err = capsys.readouterr().err
    assert code == 2 and "no tests matched" not in err
    assert "itest-mcp: error: pytest refused its arguments" in err and "Wrong expression passed to '-k'" in err


def test_a_filter_that_matches_nothing_still_says_so(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--repo", str(_pytest_repo(make_repo)), "run", "p", "--test", "nothing_like_this"])
    assert code == 2 and "itest-mcp: error: no tests matched 'nothing_like_this'" in capsys.readouterr().err


def test_a_missing_test_path_names_pytests_error_line(make_repo: Callable[..., Path]) -> None:
    root = make_repo({**TESTS, "itest.toml": '[phases.p]\nrunner = "pytest"\npaths = ["nonexistent_dir"]\n'})
    result = anyio.run(lambda: run_phase(open_project(root), "p"))
    assert result.status is RunStatus.ERROR
    assert result.notes[0] == (
        "pytest refused its arguments (exit code 4, a usage error): ERROR: file or directory not found: nonexistent_dir"
    )


def test_the_cli_keeps_the_last_line_of_a_long_output_note(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    script = "for i in range(8):\n    print(f'progress line {i} ' + 'x' * 80)\nprint('ERROR: the real cause')\n"
    script += "raise SystemExit(3)\n"
    python = sys.executable.replace("\\", "\\\\")
    root = make_repo(
        {"say.py": script, "itest.toml": f'[phases.c]\nrunner = "command"\nargv = ["{python}", "say.py"]\n'}
    )
    code = main(["--repo", str(root), "run", "c"])
    out = capsys.readouterr().out
    assert code == 1
    note = out[out.index("  note: exited with code 3") : out.index("\n  cpu ")]
    assert note.endswith("\n        ERROR: the real cause") and " … " in note
    assert len(note) <= len("  note: ") + 300 + 8 * note.count("\n")
