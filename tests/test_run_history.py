"""Every run_phase lands in `.itest/history.db`; a history that cannot be written costs a note, not the run."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import threading
from pathlib import Path

import anyio
import pytest

from itest_mcp.tools.history import connect, db_path, recent_runs
from itest_mcp.tools.models import RunStatus
from itest_mcp.tools.repo import Project, open_project
from itest_mcp.tools.runner import RunOptions, run_phase

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"

pytestmark = pytest.mark.slow


def _demo_copy(tmp_path: Path) -> Project:
    target = tmp_path / "demo"
    shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns(".itest", "__pycache__", ".pytest_cache"))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "GIT_CONFIG_NOSYSTEM": "1"}  # fmt: skip
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *args], cwd=target, env=env, check=True, capture_output=True)
    return open_project(target)


def test_demo_run_is_recorded_by_the_runner(tmp_path: Path) -> None:
    project = _demo_copy(tmp_path)
    options = RunOptions(test="TestAPIClientDefaultBranch", race=False)
    result = anyio.run(lambda: run_phase(project, "api-client", options))
    assert result.status is RunStatus.FAILED
    assert not [n for n in result.notes if "history" in n]
    # Read the database directly: list_history would import the run folder and hide a missing write.
    with connect(project) as conn:
        rows = recent_runs(conn)
        attempts = conn.execute(
            "SELECT COUNT(*) FROM attempts JOIN runs ON runs.id = attempts.run WHERE runs.run_id = ?",
            (result.run_id,),
        ).fetchone()[0]
    assert [r.run_id for r in rows] == [result.run_id]
    row = rows[0]
    assert row.phase == "api-client" and row.status == "failed"
    assert (row.tests, row.failed) == (result.report.totals.tests, 1)
    assert row.commit == result.commit and row.commit is not None
    assert attempts == result.report.totals.attempts >= 1


def test_unwritable_history_becomes_a_note_and_the_run_is_kept(tmp_path: Path) -> None:
    project = _demo_copy(tmp_path)
    path = db_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a SQLite database, " * 200)
    options = RunOptions(test="TestAPIClientGetRepo", race=False)
    result = anyio.run(lambda: run_phase(project, "api-client", options))
    assert result.status is RunStatus.PASSED and result.report.totals.passed == 1
    notes = [n for n in result.notes if "history" in n]
    assert len(notes) == 1
    assert "history.db" in notes[0] and "corrupt" in notes[0] and "itest-mcp history" in notes[0]
    # The run folder (the record import_run_folders recovers from) says the same.
    saved = json.loads((project.root / result.artifacts.run_dir / "run.json").read_text(encoding="utf-8"))
    assert saved["notes"] == result.notes
    assert (project.root / result.artifacts.run_dir / "tests.jsonl").read_text(encoding="utf-8").count("\n") == 1


def _join_recorder(run_id: str) -> None:
    """Wait for the runner's history thread, which checkpoints after the run's answer is returned."""
    for thread in threading.enumerate():
        if thread.name == f"itest-history-{run_id}":
            thread.join(10)
            assert not thread.is_alive()


def test_runner_leaves_one_whole_history_file_and_survives_its_deletion(tmp_path: Path) -> None:
    project = _demo_copy(tmp_path)
    options = RunOptions(test="TestAPIClientGetRepo", race=False)
    first = anyio.run(lambda: run_phase(project, "api-client", options))
    _join_recorder(first.run_id)
    db = db_path(project)
    wal = Path(f"{db}-wal")
    # The connection stays cached, but its WAL is checkpointed and emptied: history.db alone holds the run.
    assert not wal.exists() or wal.stat().st_size == 0
    alone = tmp_path / "alone.db"
    shutil.copyfile(db, alone)
    conn = sqlite3.connect(alone)
    try:
        assert conn.execute("SELECT run_id FROM runs").fetchall() == [(first.run_id,)]
    finally:
        conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)  # `rm .itest/history.db*` while the process lives
    second = anyio.run(lambda: run_phase(project, "api-client", options))
    assert second.status is RunStatus.PASSED
    assert not [n for n in second.notes if "history" in n]
    with connect(project) as conn:
        assert [r.run_id for r in recent_runs(conn)] == [second.run_id]
