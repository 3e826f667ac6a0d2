"""What `itest-mcp run` tells a person: race sites, reruns, timeouts and filters (real go test on a demo copy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_run import demo_copy

from itest_mcp.server.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_copy(tmp_path_factory.mktemp("cli") / "demo")


def test_data_race_is_located_at_the_racing_access_not_the_test_line(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--repo", str(demo), "run", "race", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    failure = data["report"]["failures"][0]
    assert failure["kind"] == "data-race"
    assert failure["location"] == {"file": "internal/reposync/sync.go", "line": 42}
    assert "data race detected in TestConcurrentSync at internal/reposync/sync.go:42" in data["notes"]

    code = main(["--repo", str(demo), "run", "race"])
    out = capsys.readouterr().out
    assert out.count("RACE TestConcurrentSync at internal/reposync/sync.go:42") == 1
    assert "FAIL TestConcurrentSync (internal/reposync/sync.go:42) [data-race]" in out


def test_summary_says_a_failure_failed_every_rerun(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--repo", str(demo), "run", "api-client", "--no-race", "--test", "TestAPIClientDefaultBranch"]
        + ["--rerun-failures", "2"]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert (
        "FAIL TestAPIClientDefaultBranch (test/integration/api_client_test.go:98) [assertion], failed 3 of 3 attempts"
        in out
    )


def test_timeout_note_names_the_limit_and_the_killed_test_keeps_its_time(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--repo", str(demo), "run", "slow", "--no-race", "--timeout", "1", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["status"] == "timeout"
    assert data["notes"][0].startswith("the run hit its timeout of 1 s (stopped after ")
    # Killed by go's -timeout=1s panic after running about a second, not 0.000 s.
    assert data["report"]["slowest"][0]["name"] == "TestSlowPagination"
    assert 0.8 <= data["report"]["slowest"][0]["duration_s"] < 10
    lines = (demo / data["artifacts"]["run_dir"] / "tests.jsonl").read_text().splitlines()
    assert 0.8 <= json.loads(lines[0])["attempts"][0]["duration_s"] < 10


def test_filter_matching_no_test_exits_2(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--repo", str(demo), "run", "all", "--no-race", "--test", "TestNoSuchTest"])
    captured = capsys.readouterr()
    assert code == 2
    assert "no tests matched 'TestNoSuchTest'" in captured.err
    assert "note: no tests matched 'TestNoSuchTest' in phase 'all'" in captured.out
    # Outside the phase's own selection it is refused before anything runs, also with exit 2.
    code = main(["--repo", str(demo), "run", "api-client", "--test", "TestNoSuchTest"])
    assert code == 2
    assert "is not part of phase 'api-client'" in capsys.readouterr().err
