"""The tooling DESIGN.md names holds for the whole tree: ruff (lint and format) and mypy strict."""

from __future__ import annotations

import shutil
import subprocess
import sys

from conftest import ROOT


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_ruff_lint_and_format_are_clean():
    assert shutil.which("ruff"), "ruff is a dev dependency: pip install -e '.[dev]'"
    lint = _run("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = _run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout[-3000:]


def test_mypy_strict_is_clean():
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout[-3000:]
