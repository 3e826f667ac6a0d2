"""History database: recording, importing run folders, migrations, corrupt/locked databases, concurrent writers."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path
from types import ModuleType

import pytest

from itest_mcp.tools import history
from itest_mcp.tools.errors import HistoryError, InputError, NotFoundError
from itest_mcp.tools.models import Outcome, TestResult
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
    from itest_mcp.tools.models import Outcome, TestResult
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


# -- the cached connection -----------------------------------------------------------------


def _runs_and_names(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Run ids, and (run id, test name) of every attempt joined through the tests table."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        runs = [r[0] for r in conn.execute("SELECT run_id FROM runs ORDER BY run_id")]
        names = conn.execute(
            "SELECT r.run_id, t.name FROM attempts a JOIN runs r ON r.id = a.run JOIN tests t ON t.id = a.test "
            "ORDER BY r.run_id, t.name, a.attempt"
        ).fetchall()
    finally:
        conn.close()
    return runs, names


def _expected_names(run_id: str, n_tests: int = 3) -> list[tuple[str, str]]:
    return sorted([(run_id, f"TestOK{j}") for j in range(n_tests)] + [(run_id, "TestFlaky")] * 2)


def test_connection_is_kept_between_calls_and_a_nested_call_gets_its_own(project: Project) -> None:
    history.record_run(project, _run(0))
    with history.connect(project) as first:
        with history.connect(project) as nested:  # the cached one is in use: a private connection
            assert nested is not first
            assert nested.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
        assert first.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    with history.connect(project) as again:
        assert again is first
    history.record_run(project, _run(1))
    with history.connect(project) as after_write:
        assert after_write is first


@pytest.mark.parametrize("leave_wal", [False, True], ids=["rm-db-wal-shm", "rm-db-only"])
def test_deleted_database_is_recreated_not_written_through_the_old_connection(
    project: Project, leave_wal: bool
) -> None:
    history.record_run(project, _run(0))
    db = history.db_path(project)
    db.unlink()
    if not leave_wal:
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    history.record_run(project, _run(1))
    assert _runs_and_names(db) == ([factory.run_id_at(1)], _expected_names(factory.run_id_at(1)))


def test_replaced_database_is_written_with_its_own_test_ids(project: Project, make_repo) -> None:  # type: ignore[no-untyped-def]
    other = open_project(make_repo({"README.md": "other\n"}, name="other"))
    # Other tests first, so the replacement's ids for TestOK0.. differ from the ones this process cached.
    history.record_run(other, factory.make_run(50, [factory.make_test(f"TestOther{j}") for j in range(7)]))
    history.record_run(other, _run(51))
    history.close_connections()  # checkpoints the other file into one piece
    history.record_run(project, _run(0))  # caches a connection and the ids of this file
    db = history.db_path(project)
    os.replace(history.db_path(other), db)  # a new inode at the same path
    history.record_run(project, _run(1))
    runs, names = _runs_and_names(db)
    assert runs == [factory.run_id_at(1), factory.run_id_at(50), factory.run_id_at(51)]
    assert [n for n in names if n[0] == factory.run_id_at(1)] == _expected_names(factory.run_id_at(1))


def test_database_overwritten_in_place_is_noticed(project: Project, make_repo) -> None:  # type: ignore[no-untyped-def]
    other = open_project(make_repo({"README.md": "other\n"}, name="other"))
    history.record_run(other, factory.make_run(50, [factory.make_test(f"TestOther{j}") for j in range(7)]))
    history.close_connections()
    history.record_run(project, _run(0))
    history.checkpoint(project)
    db = history.db_path(project)
    inode = db.stat().st_ino
    shutil.copyfile(history.db_path(other), db)  # `cp other.db history.db`: same inode, new content
    assert db.stat().st_ino == inode
    history.record_run(project, _run(1))
    runs, names = _runs_and_names(db)
    assert runs == [factory.run_id_at(1), factory.run_id_at(50)]
    assert [n for n in names if n[0] == factory.run_id_at(1)] == _expected_names(factory.run_id_at(1))


def test_database_replaced_by_a_corrupt_file_gives_the_clear_error(project: Project) -> None:
    history.record_run(project, _run(0))
    db = history.db_path(project)
    bad = db.with_name("incoming.db")
    bad.write_bytes(b"this is not an sqlite database at all" * 100)
    os.replace(bad, db)
    with pytest.raises(HistoryError, match=r"\.itest/history\.db is corrupt .*move it aside"):
        history.record_run(project, _run(1))
    db.rename(db.with_name("history.db.bad"))
    history.record_run(project, _run(1))
    assert _runs_and_names(db)[0] == [factory.run_id_at(1)]


def test_stale_test_id_cache_is_dropped_when_rows_disappear(project: Project) -> None:
    history.record_run(project, _run(0))
    conn = sqlite3.connect(history.db_path(project), isolation_level=None)
    try:  # an outside edit the cache cannot see (same file, same ids gone)
        conn.execute("DELETE FROM attempts")
        conn.execute("DELETE FROM test_phases")
        conn.execute("DELETE FROM tests")
    finally:
        conn.close()
    history.record_run(project, _run(1))
    _, names = _runs_and_names(history.db_path(project))
    assert names == _expected_names(factory.run_id_at(1))


def test_threads_of_one_process_record_at_once(project: Project) -> None:
    history.record_run(project, _run(1000))
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            for i in range(start, start + 6):
                history.record_run(project, _run(i, n_tests=50))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(start,)) for start in (0, 100, 200, 300)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert _count(project, "SELECT COUNT(*) FROM runs") == 25
    assert _count(project, "SELECT COUNT(*) FROM attempts") == 24 * 52 + 5


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_and_parent_record_at_once(project: Project) -> None:
    history.record_run(project, _run(1000))  # the parent now holds a cached connection
    with history.connect(project) as before:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads alive warns on 3.12+
        pid = os.fork()
    if pid == 0:  # the child: record with a connection of its own, never the inherited one
        code = 1
        try:
            for i in range(10):
                history.record_run(project, _run(i, n_tests=100))
            with history.connect(project) as mine:
                code = 0 if mine is not before else 3
        finally:
            os._exit(code)
    for i in range(100, 110):
        history.record_run(project, _run(i, n_tests=100))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    history.record_run(project, _run(500))  # the parent's connection still works after the child exited
    with history.connect(project) as after:
        assert after is before
    assert _count(project, "SELECT COUNT(*) FROM runs") == 22
    assert _count(project, "SELECT COUNT(*) FROM attempts") == 20 * 102 + 2 * 5
    conn = sqlite3.connect(history.db_path(project))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


# -- importing run folders -----------------------------------------------------------------

_ROWS_SQL = (
    "SELECT r.run_id, t.key, t.name, t.classname, a.attempt, a.outcome, a.duration_us, a.message_sha256 "
    "FROM attempts a JOIN runs r ON r.id = a.run JOIN tests t ON t.id = a.test ORDER BY t.key, a.attempt"
)


def test_import_stores_the_same_rows_as_recording(project: Project, make_repo) -> None:  # type: ignore[no-untyped-def]
    tests = [
        factory.make_test("TestPass", duration=0.123456),
        factory.make_test("TestFail", Outcome.FAILED, message="want 1, got 2", duration=1.5),
        factory.make_test("TestSkip", Outcome.SKIPPED, classname=""),
        factory.make_test(
            "TestFlaky",
            Outcome.FLAKY,
            attempts=[(Outcome.FAILED, 0.2, None), (Outcome.ERROR, 0.3, "panic: x"), (Outcome.PASSED, 0.1, None)],
            message="first failure text",
        ),
        TestResult(name="TestNoAttempts", classname="pkg", outcome=Outcome.ERROR, duration_s=2.0, message="boom"),
    ]
    run = factory.make_run(0, tests)
    history.record_run(project, run)
    other = open_project(make_repo({"README.md": "other\n"}, name="other"))
    history.write_run_folder(other, run)
    assert history.import_run_folders(other).imported == [run.run_id]

    def rows(p: Project) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(history.db_path(p))
        try:
            return conn.execute(_ROWS_SQL).fetchall()
        finally:
            conn.close()

    recorded = rows(project)
    assert rows(other) == recorded
    assert len(recorded) == 7
    by_key = {(r[1], r[4]): r for r in recorded}
    assert by_key[("TestSkip", 0)][5] == 3
    assert by_key[("pkg::TestNoAttempts", 0)][6] == 2_000_000
    assert by_key[("pkg::TestNoAttempts", 0)][7] == history.message_hash("boom")
    flaky_key = "example.com/demo/test/integration::TestFlaky"
    assert by_key[(flaky_key, 0)][7] == history.message_hash("first failure text")  # the test's message
    assert by_key[(flaky_key, 1)][7] == history.message_hash("panic: x")
    assert by_key[(flaky_key, 2)][7] is None


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"{not json", "is not a test result"),
        (b'{"name": "TestX", "outcome": "exploded"}', "'outcome' must be one of passed, failed"),
        (b'{"name": 7, "outcome": "passed"}', "'name' must be a string"),
        (b'{"name": "TestX", "outcome": "passed", "duration_s": "slow"}', "'duration_s' must be a number"),
    ],
)
def test_import_names_the_bad_line_of_tests_jsonl(project: Project, line: bytes, why: str) -> None:
    history.write_run_folder(project, _run(0))
    folder = history.write_run_folder(project, _run(1))
    tests_file = folder / "tests.jsonl"
    kept = tests_file.read_bytes().splitlines()
    tests_file.write_bytes(b"\n".join([kept[0], line, *kept[1:]]) + b"\n")
    summary = history.import_run_folders(project)
    # The run is kept with its other tests; the bad line is named and skipped.
    assert summary.imported == [factory.run_id_at(0), factory.run_id_at(1)]
    assert len(summary.problems) == 1
    assert f".itest/runs/{factory.run_id_at(1)}/tests.jsonl:2 is not a test result" in summary.problems[0]
    assert why in summary.problems[0]


def test_cached_connections_are_bounded_and_an_evicted_project_reconnects(make_repo) -> None:  # type: ignore[no-untyped-def]
    history.close_connections()
    projects = [open_project(make_repo({"README.md": "x\n"}, name=f"p{i}")) for i in range(history.POOL_SIZE + 2)]
    for index, project in enumerate(projects):
        history.record_run(project, _run(index))
    assert len(history._POOL) == history.POOL_SIZE
    assert str(history.db_path(projects[0])) not in history._POOL  # least recently used went first
    history.record_run(projects[0], _run(100))
    assert _runs_and_names(history.db_path(projects[0]))[0] == [factory.run_id_at(0), factory.run_id_at(100)]
    assert len(history._POOL) == history.POOL_SIZE
