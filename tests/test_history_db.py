"""History database: recording, importing run folders, migrations, corrupt/locked databases, concurrent writers."""

from __future__ import annotations

import importlib.util
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from itest_mcp.tools import history
from itest_mcp.tools.errors import HistoryError, InputError, NotFoundError
from itest_mcp.tools.models import Outcome
from itest_mcp.tools.repo import Project, open_project

FACTORY_PATH = Path(__file__).parent / "fixtures" / "history" / "factory.py"


def _load_factory() -> ModuleType:
    spec = importlib.util.spec_from_file_location("history_factory", FACTORY_PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


factory = _load_factory()


@pytest.fixture
def project(make_repo) -> Project:  # type: ignore[no-untyped-def]
    return open_project(make_repo({"README.md": "x\n"}))


def _run(index: int, n_tests: int = 3, **kwargs: object):  # type: ignore[no-untyped-def]
    tests = [factory.make_test(f"TestOK{j}", duration=0.01 * (j + 1)) for j in range(n_tests)]
    tests.append(
        factory.make_test(
            "TestFlaky",
            Outcome.FLAKY,
            attempts=[(Outcome.FAILED, 0.2, "eventual consistency: got 0 items"), (Outcome.PASSED, 0.1, None)],
        )
    )
    return factory.make_run(index, tests, **kwargs)


def _count(project: Project, sql: str) -> int:
    conn = sqlite3.connect(history.db_path(project))
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def test_record_run_stores_run_and_one_row_per_attempt(project: Project) -> None:
    run = _run(0)
    history.write_run_folder(project, run)
    history.record_run(project, run)
    history.record_run(project, run)  # a second write of the same run changes nothing
    assert _count(project, "SELECT COUNT(*) FROM runs") == 1
    # 3 passing tests with one attempt each + the flaky test's two attempts
    assert _count(project, "SELECT COUNT(*) FROM attempts") == 5
    assert _count(project, "SELECT COUNT(*) FROM attempts WHERE message_sha256 IS NOT NULL") == 1
    conn = sqlite3.connect(history.db_path(project))
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == history.SCHEMA_VERSION
        row = conn.execute("SELECT phase, commit_sha, dirty, status, argv, flaky FROM runs").fetchone()
    finally:
        conn.close()
    assert row[0] == "integration" and row[1] == f"{1:040x}" and row[2] == 0 and row[3] == "passed"
    assert '"-tags=integration"' in row[4] and row[5] == 1


def test_import_recovers_run_folders_that_were_never_recorded(project: Project) -> None:
    for i in range(3):
        history.write_run_folder(project, _run(i))
    history.record_run(project, _run(1))
    summary = history.import_run_folders(project)
    assert summary.imported == [factory.run_id_at(0), factory.run_id_at(2)]
    assert history.import_run_folders(project).imported == []
    listed = history.list_history(project)
    assert [r.run_id for r in listed] == [factory.run_id_at(i) for i in (2, 1, 0)]
    assert listed[0].tests == 4 and listed[0].flaky == 1


def test_import_reports_a_broken_run_folder_and_keeps_going(project: Project) -> None:
    history.write_run_folder(project, _run(0))
    bad = project.runs_dir / factory.run_id_at(1)
    bad.mkdir()
    (bad / "run.json").write_text("{not json", encoding="utf-8")
    summary = history.import_run_folders(project)
    assert summary.imported == [factory.run_id_at(0)]
    assert len(summary.problems) == 1
    assert f"{factory.run_id_at(1)}/run.json cannot be read" in summary.problems[0]


def test_corrupt_database_gives_clear_error_and_run_is_recovered_later(project: Project) -> None:
    run = _run(0)
    folder = history.write_run_folder(project, run)
    db = history.db_path(project)
    db.write_bytes(b"this is not an sqlite database at all" * 100)
    with pytest.raises(HistoryError) as info:
        history.record_run(project, run)
    message = str(info.value)
    assert ".itest/history.db is corrupt" in message
    assert "move it aside" in message and "rebuild it from the run folders" in message
    note = history.try_record_run(project, run)
    assert note is not None and note.startswith("not recorded in history yet")
    # The run's own results stay in its folder ...
    assert history.load_run(project, run.run_id).report.totals.tests == 4
    assert (folder / "tests.jsonl").read_text(encoding="utf-8").count("\n") == 4
    # ... and once the bad file is moved aside, the next history call records it.
    db.rename(db.with_name("history.db.bad"))
    assert history.import_run_folders(project).imported == [run.run_id]


def test_locked_database_gives_clear_error(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    history.record_run(project, _run(0))
    monkeypatch.setenv(history.BUSY_TIMEOUT_ENV, "0.2")
    holder = sqlite3.connect(history.db_path(project), isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(HistoryError) as info:
            history.record_run(project, _run(1))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = str(info.value)
    assert "stayed locked by another itest-mcp process" in message
    assert history.BUSY_TIMEOUT_ENV in message and "kept in their run folders" in message
    history.record_run(project, _run(1))  # the lock is gone: it works
    assert _count(project, "SELECT COUNT(*) FROM runs") == 2


def test_database_from_a_newer_version_is_refused(project: Project) -> None:
    history.record_run(project, _run(0))
    conn = sqlite3.connect(history.db_path(project))
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError, match=r"schema version 99, newer than this itest-mcp knows \(2\)"):
        history.list_history(project)


def test_version_1_database_is_migrated(project: Project) -> None:
    path = history.db_path(project)
    conn = sqlite3.connect(path)
    conn.executescript(history.MIGRATIONS[0])
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.commit()
    conn.close()
    history.record_run(project, _run(0))
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        conn.close()
    assert "attempts_failed" in names


WRITER = textwrap.dedent(
    """
    import importlib.util, sys
    from itest_mcp.tools import history
    from itest_mcp.tools.models import Outcome
    from itest_mcp.tools.repo import open_project
    spec = importlib.util.spec_from_file_location("f", sys.argv[1])
    f = importlib.util.module_from_spec(spec); spec.loader.exec_module(f)
    project = open_project(sys.argv[2])
    start = int(sys.argv[3])
    for i in range(start, start + 15):
        tests = [f.make_test(f"Test{j}", duration=0.01) for j in range(200)]
        tests.append(f.make_test("TestX", Outcome.FAILED, message=f"boom {i}"))
        history.record_run(project, f.make_run(i, tests))
    """
)


def test_concurrent_writers_lose_nothing(project: Project) -> None:
    history.record_run(project, _run(1000))  # create the schema first, as the first run would
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(FACTORY_PATH), str(project.root), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for start in (0, 100, 200)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert _count(project, "SELECT COUNT(*) FROM runs") == 46
    assert _count(project, "SELECT COUNT(*) FROM attempts") == 45 * 201 + 5
    conn = sqlite3.connect(history.db_path(project))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_unknown_run_id_lists_recent_runs(project: Project) -> None:
    for i in range(3):
        history.write_run_folder(project, _run(i))
    with pytest.raises(NotFoundError) as info:
        history.load_run(project, "20990101T000000Z-integration-dead")
    message = str(info.value)
    assert "'20990101T000000Z-integration-dead' not found" in message
    assert f"recent runs (newest first): {factory.run_id_at(2)}, {factory.run_id_at(1)}" in message


def test_no_runs_yet_says_what_to_run_first(project: Project) -> None:
    with pytest.raises(NotFoundError, match=r"holds no runs yet; run a phase first \(`itest-mcp phases`"):
        history.load_run(project, "20990101T000000Z-integration-dead")


def test_run_id_that_is_a_path_is_refused(project: Project) -> None:
    with pytest.raises(InputError, match=r"run id '\.\./etc' is not a run id"):
        history.load_run(project, "../etc")
