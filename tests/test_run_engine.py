"""run_phase on a real copy of the demo and on small fixture Go modules (real go test, real pytest)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from helpers_run import committed, demo_copy, processes_with_run_dir

from itest_mcp.tools.errors import ToolNotFoundError, UnknownPhaseError, UnsafeArgumentError
from itest_mcp.tools.models import Outcome, RunStatus
from itest_mcp.tools.repo import Project, open_project
from itest_mcp.tools.runner import RUN_ID, RunOptions, run_phase

GOMOD = Path(__file__).resolve().parent / "fixtures" / "run" / "gomod"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One demo copy for the module: every run gets its own run folder, so sharing is safe."""
    return open_project(demo_copy(tmp_path_factory.mktemp("run") / "demo"))


PHASES = """
[phases.compile]
runner = "go"
packages = ["./compile_error"]
race = false

[phases.hang]
runner = "go"
packages = ["./hang"]
race = false

[phases.notests]
runner = "go"
packages = ["./notests"]
race = false

[phases.bigout]
runner = "go"
packages = ["./bigout"]
race = false
env = { BIG_OUTPUT_MB = "500" }

[phases.missing-tool]
runner = "command"
argv = ["itest-no-such-tool-xyz", "test"]

[phases.json-command]
runner = "command"
argv = ["go", "test", "-json", "-run", "TestQuick", "./hang"]

[phases.text-command]
runner = "command"
argv = ["go", "test", "-v", "-run", "TestQuick", "./hang"]
"""


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The fixture Go packages in one module with an itest.toml naming a phase per case."""
    target = tmp_path_factory.mktemp("run") / "fx"
    target.mkdir()
    (target / "go.mod").write_text("module example.com/fx\n\ngo 1.22\n", encoding="utf-8")
    for name in ("compile_error", "hang", "bigout", "notests"):
        shutil.copytree(GOMOD / name, target / name, ignore=shutil.ignore_patterns("go.mod"))
    (target / "itest.toml").write_text(PHASES, encoding="utf-8")
    return open_project(committed(target))


def run(project: Project, phase: str, **options: object) -> object:
    return anyio.run(lambda: run_phase(project, phase, RunOptions(**options)))  # type: ignore[arg-type]


# -- the demo ------------------------------------------------------------------------------------


def test_failing_test_has_file_line_and_run_folder_is_complete(demo: Project) -> None:
    result = run(demo, "api-client")
    assert result.status is RunStatus.FAILED
    assert RUN_ID.match(result.run_id)
    failure = next(f for f in result.report.failures if f.test == "TestAPIClientDefaultBranch")
    assert str(failure.location) == "test/integration/api_client_test.go:98"
    assert result.report.totals.passed == 3
    run_dir = demo.root / result.artifacts.run_dir
    for name in ("output.log", "run.json", "tests.jsonl", "junit.xml"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"
    lines = (run_dir / "tests.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["attempts"] for line in lines)
    assert "-json" in result.argv and result.commit and result.resources.cpu_user_s > 0


def test_flaky_test_is_classified_flaky_with_reruns(demo: Project) -> None:
    result = run(demo, "flaky", rerun_failures=2)
    test = result.report.tests[0]
    assert test.name == "TestFlakyEventualConsistency"
    assert test.outcome is Outcome.FLAKY
    assert [a.outcome for a in test.attempts] == [Outcome.FAILED, Outcome.PASSED]
    assert result.status is RunStatus.PASSED and result.report.totals.flaky == 1
    assert (demo.root / result.artifacts.run_dir / "flaky-eventual-consistency.marker").exists()


def test_data_race_is_attributed(demo: Project) -> None:
    result = run(demo, "race")
    assert result.status is RunStatus.FAILED
    assert {r.test for r in result.report.races} == {"TestConcurrentSync"}
    assert any(str(loc) == "internal/reposync/sync.go:42" for loc in result.report.races[0].locations)
    assert result.report.failures[0].kind == "data-race"


def test_slow_test_in_slowest_list_and_progress(demo: Project) -> None:
    seen: list[tuple[int, int | None, str, float]] = []

    async def progress(done: int, total: int | None, message: str) -> None:
        seen.append((done, total, message, time.monotonic()))

    async def go() -> object:
        return await run_phase(demo, "slow", RunOptions(), progress=progress)

    result = anyio.run(go)
    assert result.report.slowest[0].name == "TestSlowPagination"
    assert result.report.slowest[0].duration_s >= 1.4
    assert any(done == 1 and total == 1 and "TestSlowPagination" in msg for done, total, msg, _ in seen)


def test_python_phase_failure_location_and_coverage(demo: Project) -> None:
    result = run(demo, "python-integration", coverage=True)
    assert result.status is RunStatus.FAILED
    failure = result.report.failures[0]
    assert failure.test == "test_default_branch_is_main"
    assert str(failure.location) == "tests/integration/test_repo_client.py:110"
    assert result.report.totals.passed == 5
    assert any(p.endswith("coverage.xml") for p in result.artifacts.coverage)
    assert (demo.root / result.artifacts.junit).is_file()


def test_go_coverage_and_single_test_filter(demo: Project) -> None:
    result = run(demo, "api-client", test="TestAPIClientGetRepo", coverage=True, race=False)
    assert result.status is RunStatus.PASSED
    assert [t.name for t in result.report.tests] == ["TestAPIClientGetRepo"]
    cover = demo.root / result.artifacts.coverage[0]
    assert cover.name == "coverage.out" and cover.read_text().startswith("mode:")
    assert "-coverpkg=./..." in result.argv


def test_two_runs_at_once_get_separate_folders(demo: Project) -> None:
    results: list[object] = []

    async def both() -> None:
        async def one() -> None:
            results.append(await run_phase(demo, "api-client", RunOptions(test="TestAPIClientNotFound", race=False)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(one)
            tg.start_soon(one)

    anyio.run(both)
    assert len({r.run_id for r in results}) == 2
    assert all(r.status is RunStatus.PASSED for r in results)


# -- bad input -----------------------------------------------------------------------------------


def test_unknown_phase_lists_known(demo: Project) -> None:
    with pytest.raises(UnknownPhaseError, match="unknown phase 'nope'; known phases: .*api-client"):
        run(demo, "nope")


def test_test_value_starting_with_dash_is_refused(demo: Project) -> None:
    with pytest.raises(UnsafeArgumentError, match="'-exec=evil'"):
        run(demo, "api-client", test="-exec=evil")


def test_filter_matching_no_test_is_an_error(demo: Project) -> None:
    # Phase "all" has no -run pattern of its own, so the name reaches go test (api-client refuses it).
    result = run(demo, "all", test="TestDoesNotExist", race=False)
    assert result.status is RunStatus.ERROR
    assert "no tests matched 'TestDoesNotExist'" in result.notes[0]


def test_missing_go_names_it(demo: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolNotFoundError, match="'go' was not found on PATH; install Go"):
        run(demo, "api-client")


def test_missing_pytest_names_it(demo: Project) -> None:
    venv = demo.root / ".venv"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    try:
        with pytest.raises(ToolNotFoundError, match="'pytest' was not found.*pip install pytest"):
            run(demo, "python-integration")
    finally:
        shutil.rmtree(venv)


def test_missing_command_names_it(fixtures: Project) -> None:
    with pytest.raises(ToolNotFoundError, match="'itest-no-such-tool-xyz' was not found on PATH"):
        run(fixtures, "missing-tool")


# -- fixture modules -----------------------------------------------------------------------------


def test_compile_error_is_an_error_with_position(fixtures: Project) -> None:
    result = run(fixtures, "compile")
    assert result.status is RunStatus.ERROR
    assert result.report.build_errors[0].location is not None
    assert str(result.report.build_errors[0].location) == "compile_error/calc_test.go:6"
    assert "build failed" in result.notes[0] and "cannot use" in result.notes[0]


def test_zero_tests_is_flagged(fixtures: Project) -> None:
    result = run(fixtures, "notests")
    assert result.report.totals.tests == 0
    assert "ran no tests" in result.notes[0]


def test_timeout_kills_hanging_test_and_leaves_nothing(fixtures: Project) -> None:
    prefix = str(fixtures.runs_dir)
    seen_running: list[int] = []

    async def progress(done: int, total: int | None, message: str) -> None:
        seen_running.extend(processes_with_run_dir(prefix))

    async def go() -> object:
        return await run_phase(fixtures, "hang", RunOptions(timeout_s=3), progress=progress)

    start = time.monotonic()
    result = anyio.run(go)
    assert time.monotonic() - start < 12
    assert result.status is RunStatus.TIMEOUT
    assert seen_running, "the run's processes should have been visible while it ran"
    assert processes_with_run_dir(prefix) == []
    hang = next(f for f in result.report.failures if f.test == "TestHang")
    assert hang.kind == "timeout"
    assert [t.name for t in result.report.tests if t.outcome is Outcome.PASSED] == ["TestQuick"]
    assert result.notes[0].startswith("the run hit its timeout of 3 s (stopped after ")
    assert result.timeout_s == 3  # kept on the run, so the report states the limit without reading the note


def test_command_printing_go_json_uses_go_parser(fixtures: Project) -> None:
    result = run(fixtures, "json-command")
    assert result.report.source.value == "go-json"
    assert [t.name for t in result.report.tests] == ["TestQuick"]
    assert result.status is RunStatus.PASSED


def test_command_with_text_output_says_counts_are_from_text(fixtures: Project) -> None:
    result = run(fixtures, "text-command")
    assert result.status is RunStatus.PASSED
    assert result.report.source.value == "text"
    assert [t.name for t in result.report.tests] == ["TestQuick"]
    assert any("counts are from the command's text output" in n for n in result.notes)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_500_mb_of_output_keeps_memory_flat(fixtures: Project) -> None:
    idle = _rss_mb()
    peak = [idle]

    async def go() -> object:
        async with anyio.create_task_group() as tg:

            async def sample() -> None:
                while True:
                    peak[0] = max(peak[0], _rss_mb())
                    await anyio.sleep(0.05)

            tg.start_soon(sample)
            result = await run_phase(fixtures, "bigout", RunOptions())
            tg.cancel_scope.cancel()
        return result

    result = anyio.run(go)
    assert result.status is RunStatus.PASSED
    log = fixtures.root / result.artifacts.log
    assert log.stat().st_size > 500 * 1024 * 1024
    assert peak[0] - idle < 200, f"server memory grew {peak[0] - idle:.0f} MB"


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    yield
