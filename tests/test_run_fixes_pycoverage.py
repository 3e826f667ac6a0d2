"""pytest coverage measures the project's code, not its test files or our plugin (real pytest + coverage.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import anyio
import pytest
from helpers_run import committed, demo_copy

from itest_mcp.tools.repo import Project, open_project
from itest_mcp.tools.runner import RunOptions, run_phase

pytestmark = pytest.mark.slow


def _measured(project: Project) -> set[str]:
    result = anyio.run(lambda: run_phase(project, "python-integration", RunOptions(coverage=True)))
    xml = next(p for p in result.artifacts.coverage if p.endswith("coverage.xml"))
    return {c.get("filename") or "" for c in ET.parse(project.root / xml).getroot().iter("class")}


def test_coverage_leaves_out_test_files_and_our_plugin(tmp_path: Path) -> None:
    measured = _measured(open_project(demo_copy(tmp_path / "demo")))
    assert "client.py" in {Path(f).name for f in measured}, measured
    assert not any("test_repo_client" in f or "itest_pytest_plugin" in f for f in measured), measured


def test_a_configured_source_keeps_test_files_and_the_configured_omit(tmp_path: Path) -> None:
    root = demo_copy(tmp_path / "demo")
    with (root / "pyproject.toml").open("a", encoding="utf-8") as config:
        config.write('\n[tool.coverage.run]\nsource = ["."]\nomit = ["demo_client/__init__.py"]\n')
    measured = _measured(open_project(committed(root)))
    names = {Path(f).name for f in measured}
    assert "client.py" in names and "test_repo_client.py" in names, measured
    assert "__init__.py" not in names, measured  # the project's own omit still applies
    assert not any("itest_pytest_plugin" in f for f in measured), measured
