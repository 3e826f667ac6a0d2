"""A test filter narrows a phase's own selection and never widens it (real go test on a demo copy)."""

from __future__ import annotations

import anyio
import pytest
from helpers_run import demo_copy

from itest_mcp.tools.errors import InputError
from itest_mcp.tools.models import RunStatus
from itest_mcp.tools.phases import ArgvOptions, build_argv, load_phases
from itest_mcp.tools.repo import Project, open_project
from itest_mcp.tools.runner import RunOptions, run_phase

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return open_project(demo_copy(tmp_path_factory.mktemp("sel") / "demo"))


def test_test_outside_the_phase_pattern_is_refused_naming_the_phase_that_has_it(demo: Project) -> None:
    with pytest.raises(InputError) as caught:
        anyio.run(lambda: run_phase(demo, "api-client", RunOptions(test="TestSlowPagination")))
    message = str(caught.value)
    assert "'TestSlowPagination' is not part of phase 'api-client'" in message
    assert "-run=^(TestAPIClientDefaultBranch|" in message
    assert "phases 'slow', 'all' run it" in message
    # Nothing ran, so nothing was filed under api-client.
    assert not demo.runs_dir.exists() or not any(demo.runs_dir.glob("*api-client*"))


def test_regex_filter_is_narrowed_to_the_phase_tests(demo: Project) -> None:
    phase = load_phases(demo).get("api-client")
    argv = build_argv(phase, ArgvOptions(test="Test(APIClientGet|Slow)"))
    assert "-run=^(TestAPIClientGetRepo)$" in argv
    with pytest.raises(InputError, match="not part of phase 'api-client'"):
        build_argv(phase, ArgvOptions(test="Slow.*"))


def test_test_inside_the_phase_runs_under_it(demo: Project) -> None:
    result = anyio.run(lambda: run_phase(demo, "api-client", RunOptions(test="TestAPIClientGetRepo", race=False)))
    assert result.status is RunStatus.PASSED
    assert [t.name for t in result.report.tests] == ["TestAPIClientGetRepo"]
    assert "-run=^TestAPIClientGetRepo$" in result.argv


def test_run_phases_refuses_a_filter_outside_a_later_phase_before_running_any(demo: Project) -> None:
    from itest_mcp.tools.runner import run_phases

    before = set(demo.runs_dir.iterdir()) if demo.runs_dir.exists() else set()
    with pytest.raises(InputError, match="not part of phase 'api-client'"):
        anyio.run(lambda: run_phases(demo, ["slow", "api-client"], RunOptions(test="TestSlowPagination")))
    after = set(demo.runs_dir.iterdir()) if demo.runs_dir.exists() else set()
    assert after == before  # phase "slow" did not run first
