"""The one-shot workflow end to end on a copy of the demo, against the fake GitHub on 127.0.0.1."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from itest_mcp.server.cli import main
from itest_mcp.tools.changes import assess_changes
from itest_mcp.tools.errors import InputError
from itest_mcp.tools.fake_github import FakeGitHub
from itest_mcp.tools.repo import open_project
from itest_mcp.tools.report_markdown import render_markdown
from itest_mcp.tools.report_model import SECTIONS
from itest_mcp.tools.workflow import WorkflowResult, _phases_to_run, run_workflow

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="the demo's phases need the go toolchain")

# A code line (not a comment) that assess_changes' github-api rules recognise.
API_CHANGE = '\n// rateLimitHeader is read after every call.\nconst rateLimitHeader = "X-RateLimit-Remaining"\n'


def _change_client(demo: Path) -> None:
    with (demo / "internal" / "ghclient" / "client.go").open("a", encoding="utf-8") as handle:
        handle.write(API_CHANGE)


def _section(md: str, start: str, end: str) -> str:
    return md.split(start, 1)[1].split(end, 1)[0]


def test_all_replaces_the_per_file_phases_it_covers(demo_repo: Path) -> None:
    _change_client(demo_repo)
    project = open_project(demo_repo)
    assessment = assess_changes(project, None)
    recommended = [r.phase for r in assessment.recommended]
    assert {"api-client", "network-edge-cases", "race", "slow", "performance", "all"} <= set(recommended)
    result = WorkflowResult()
    assert _phases_to_run(project, assessment, result) == ["performance", "all"]
    (step,) = [s for s in result.steps if s.name == "phases"]
    assert step.detail.startswith("running all instead of api-client, network-edge-cases, race, slow: ")
    # With only one covered phase left, both run (the per-file one is the focused signal).
    result = WorkflowResult()
    assert _phases_to_run(project, assessment, result, only=["api-client", "all"]) == ["api-client", "all"]
    assert [s.detail for s in result.steps] == ["left out (--phase limits the run): network-edge-cases, race, slow, "
                                                "performance"]  # fmt: skip
    # A higher bar keeps every recommended phase.
    assert len(_phases_to_run(project, assessment, WorkflowResult(), wide_phase_min=5)) == len(recommended)


@pytest.mark.anyio
async def test_workflow_on_the_demo_with_the_fake_github(demo_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _change_client(demo_repo)
    project = open_project(demo_repo)
    with FakeGitHub() as fake:
        url = fake.url
        monkeypatch.setenv("GITHUB_API_URL", url)
        monkeypatch.setenv("GITHUB_TOKEN", "ghp_workflowtoken")
        monkeypatch.delenv("GH_TOKEN", raising=False)
        # api-client and all both run the failing TestAPIClientDefaultBranch: the report must say it once.
        result = await run_workflow(project, only=["api-client", "all"])
    steps = {s.name: s for s in result.steps}
    assert [s.name for s in result.steps if s.name.startswith("run ")] == ["run api-client", "run all"]
    assert steps["github validation"].status == "ok", steps["github validation"].detail
    assert result.exit_code == 1 and result.report is not None
    report = result.report
    md = render_markdown(report)
    assert re.findall(r"^## (.+)$", md, flags=re.MULTILINE) == list(SECTIONS)

    api_run, all_run = result.run_ids
    failures = _section(md, "### Failures", "### Performance")
    assert failures.count("**TestAPIClientDefaultBranch**") == 1
    assert f"seen in phases api-client, all (runs `{api_run}`, `{all_run}`)" in failures
    assert failures.count("**TestConcurrentSync**") == 1
    fixes = _section(md, "### Immediate fixes", "### Reliability")
    assert fixes.count("Fix TestAPIClientDefaultBranch") == 1
    assert "Fix the data race in TestConcurrentSync" in fixes

    reliability = _section(md, "### Reliability", "### Performance")
    assert "Stabilise TestFlakyEventualConsistency" in reliability

    env = _section(md, "### Environment and configuration", "## Coverage Analysis")
    assert "data race" not in env
    assert "phase performance was recommended by assess_changes but is not among the reported runs" in env
    summary = _section(md, "## Test Execution Summary", "## Critical Findings")
    assert "recommended phases network-edge-cases, race, slow: every test of theirs ran in phase all" in summary
    assert f"GitHub API: validate_github_api against {url} with token from GITHUB_TOKEN; reachable (HTTP 200" in (
        summary
    )
    assert "retry handling 16/16 scenarios passed — ok." in summary

    coverage = report.coverage
    assert coverage.total_percent is not None and 0 < coverage.total_percent <= 100
    assert f"Total coverage: {coverage.total_percent:.1f}%" in md
    ideas = md.split("### New integration tests", 1)[1]  # the report's last group
    assert ideas.count("TestNetworkEdgeCases/context_cancellation") == 1


def test_cli_workflow_refuses_a_bad_phase_and_timeout(demo_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--repo", str(demo_repo), "workflow", "--phase", "nope"]) == 2
    err = capsys.readouterr().err
    assert "phase 'nope' is not a phase of this project; phases here: api-client" in err
    assert main(["--repo", str(demo_repo), "workflow", "--github-timeout", "0"]) == 2
    assert "GitHub timeout 0.0 s is out of range; give more than 0 and at most 600 seconds" in capsys.readouterr().err


@pytest.mark.anyio
async def test_workflow_refuses_an_option_like_phase(demo_repo: Path) -> None:
    with pytest.raises(InputError, match="phase"):
        await run_workflow(open_project(demo_repo), only=["--exec=sh"])


def test_unchanged_fresh_clone_gets_a_baseline_and_later_runs_do_not(demo_repo: Path) -> None:
    """The README's first command on a fresh clone: nothing changed, nothing ran yet."""
    from conftest import commit_all

    from itest_mcp.tools.changes import assess_changes
    from itest_mcp.tools.repo import open_project
    from itest_mcp.tools.workflow import WorkflowResult, _phases_to_run

    readme = demo_repo / "README.md"
    readme.write_text(readme.read_text() + "\nA docs-only change.\n")
    commit_all(demo_repo, "docs")
    project = open_project(demo_repo)
    assessment = assess_changes(project, import_graph=False)
    assert assessment.recommended == []
    result = WorkflowResult()
    names = _phases_to_run(project, assessment, result)
    assert names == ["python-integration", "performance", "all"]
    assert any("baseline" in step.detail for step in result.steps)
    (project.runs_dir / "20260101T000000Z-all-0000").mkdir()
    assert _phases_to_run(project, assessment, WorkflowResult()) == []
    forced = _phases_to_run(project, assessment, WorkflowResult(), all_phases=True)
    assert forced == names
