"""`run_phase(phase, faults="profile")`: the run tool itself runs under a fault proxy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import commit_all, init_repo
from mcp import Client

from itest_mcp.server.app import create_app

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "faults"

CONFIG = """
[phases.integration]
runner = "pytest"
paths = ["itest_good.py"]
timeout = "90s"

[faults]
env = ["GITHUB_API_URL"]

[faults.profiles.retry-check]
seed = 11
faults = [{kind = "http_status", status = 503, first = 2}]
"""


@pytest.mark.timeout(120)
@pytest.mark.anyio
async def test_run_phase_with_faults_reports_verdicts_and_keeps_the_full_report(tmp_path: Path) -> None:
    root = tmp_path / "py_good"
    shutil.copytree(FIXTURES / "py_good", root)
    (root / "itest.toml").write_text(CONFIG, encoding="utf-8")
    init_repo(root)
    commit_all(root, "fixture")
    async with Client(create_app(root)) as client:
        result = await client.call_tool("run_phase", {"phase": "integration", "faults": "retry-check"})
        assert not result.is_error, result.content
        run = result.structured_content
        assert run["fault_profile"] == "retry-check"
        assert any(note.startswith("faults 'retry-check':") for note in run["notes"])
        assert any(note.startswith("edge case ") for note in run["notes"])
        report = json.loads((root / run["artifacts"]["run_dir"] / "fault_report.json").read_text())
        assert report["profile"] == "retry-check"
        assert report["injected_total"] == 2
        assert report["traffic"] is True

        unknown = await client.call_tool("run_phase", {"phase": "integration", "faults": "nope"})
        assert unknown.is_error
        assert "nope" in unknown.content[0].text and "rate-limited" in unknown.content[0].text
