"""Run history: run folders on disk and `.itest/history.db` (SQLite) built from them.

The run folder `.itest/runs/<run-id>/` (`run.json` = the PhaseRun, `tests.jsonl` =
one TestResult per line) is the record of a run; the database is an index over
those folders for questions across runs (flaky, broken, slow). A run whose
history write failed (locked or corrupt database) keeps its folder, and
`import_run_folders` records it later.

The database uses WAL (readers never block the one writer), a busy timeout
(concurrent writers wait instead of failing), foreign keys, and a
`schema_version` table with numbered migrations. Attempts live in a
WITHOUT ROWID table keyed by (run, test, attempt): a run's rows are appended
together, and every question is asked over a bounded window of recent runs.

Recording is cheap because each process keeps one connection per database path
(opened, configured and schema-checked once; re-checked by inode, size and mtime
before each use), caches the test ids it has committed, and inserts attempts as
multi-row VALUES statements. Recording a 2,000-test run measured 52 ms before
these (connect, id lookups, executemany, close) and about 8 ms after.
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from .errors import HistoryError, InputError, NotFoundError
from .models import Model, Outcome, PhaseRun, TestResult
from .repo import Project

DB_NAME = "history.db"
RUN_FILE = "run.json"
TESTS_FILE = "tests.jsonl"
BUSY_TIMEOUT_ENV = "ITEST_HISTORY_TIMEOUT"
DEFAULT_BUSY_TIMEOUT_S = 10.0
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

OUTCOME_CODE: dict[Outcome, int] = {
    Outcome.PASSED: 0,
    Outcome.FAILED: 1,
    Outcome.ERROR: 2,
    Outcome.SKIPPED: 3,
    Outcome.FLAKY: 4,
}
CODE_OUTCOME: dict[int, Outcome] = {v: k for k, v in OUTCOME_CODE.items()}
PASS_CODES = (0, 4)
FAIL_CODES = (1, 2, 4)

# Each entry moves the schema from version i to i+1; never edit a shipped entry, append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL UNIQUE,
        phase TEXT NOT NULL,
        argv TEXT NOT NULL,
        commit_sha TEXT,
        dirty INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        exit_code INTEGER,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        duration_s REAL NOT NULL DEFAULT 0,
        tests INTEGER NOT NULL DEFAULT 0,
        passed INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        flaky INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        wall_s REAL,
        cpu_user_s REAL,
        cpu_system_s REAL,
        peak_rss_mb REAL,
        recorded_at TEXT NOT NULL
    );
    CREATE INDEX runs_phase ON runs(phase, run_id);
    CREATE INDEX runs_commit ON runs(commit_sha);
    CREATE TABLE tests (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        classname TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX tests_name ON tests(name);
    CREATE TABLE test_phases (
        test INTEGER NOT NULL REFERENCES tests(id),
        phase TEXT NOT NULL,
        PRIMARY KEY (test, phase)
    ) WITHOUT ROWID;
    CREATE TABLE attempts (
        run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        test INTEGER NOT NULL REFERENCES tests(id),
        attempt INTEGER NOT NULL,
        outcome INTEGER NOT NULL,
        duration_us INTEGER NOT NULL,
        message_sha256 TEXT,
        PRIMARY KEY (run, test, attempt)
    ) WITHOUT ROWID;
    """,
    # 2: failed attempts only, so "which tests failed in these runs" never scans the passing millions.
    """
    CREATE INDEX attempts_failed ON attempts(run, test) WHERE outcome IN (1, 2, 4);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class RunRow(Model):
    """One recorded run, as history lists it."""

    run_id: str
    phase: str
    status: str
    commit: str | None = None
    dirty: bool = False
    started_at: datetime
    duration_s: float = 0.0
    tests: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    flaky: int = 0


class ImportSummary(Model):
    """What `import_run_folders` recorded and what it could not read."""

    imported: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


# -- run folders ---------------------------------------------------------------------------


def check_run_id(run_id: str) -> str:
    """Refuse a run id that could name anything but a folder under `.itest/runs/`."""
    if not RUN_ID.match(run_id):
        raise InputError(
            f"run id {run_id!r} is not a run id (letters, digits, '.', '_', ':', '-'); "
            "list runs with `itest-mcp history`"
        )
    return run_id


def list_run_ids(project: Project) -> list[str]:
    """Ids of the run folders that hold a `run.json`, oldest first (run ids sort by time)."""
    runs_dir = project.runs_dir
    try:
        names = os.listdir(runs_dir)
    except OSError:
        return []
    return sorted(n for n in names if RUN_ID.match(n) and (runs_dir / n / RUN_FILE).is_file())


def unknown_run_error(project: Project, run_id: str) -> NotFoundError:
    """The error for a run id with no folder, listing the most recent ones."""
    recent = list_run_ids(project)[-8:]
    if recent:
        shown = ", ".join(reversed(recent))
        return NotFoundError(
            f"run {run_id!r} not found in {project.rel(project.runs_dir)}; recent runs (newest first): {shown}"
        )
    return NotFoundError(
        f"run {run_id!r} not found: {project.rel(project.runs_dir)} holds no runs yet; "
        "run a phase first (`itest-mcp phases` lists them, `itest-mcp run <phase>` runs one)"
    )


def write_run_folder(project: Project, run: PhaseRun) -> Path:
    """Write `run.json` and `tests.jsonl` for `run` under `.itest/runs/<run-id>/` (tests first, run.json last)."""
    folder = project.runs_dir / check_run_id(run.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (TESTS_FILE + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for test in run.report.tests:
            handle.write(test.model_dump_json())
            handle.write("\n")
    os.replace(tmp, folder / TESTS_FILE)
    # run.json last: its presence marks a complete folder.
    tmp = folder / (RUN_FILE + ".tmp")
    tmp.write_text(run.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, folder / RUN_FILE)
    return folder


def load_run(project: Project, run_id: str) -> PhaseRun:
    """The PhaseRun of run folder `run_id` with its full test list; NotFoundError lists recent runs."""
    folder = project.runs_dir / check_run_id(run_id)
    run_file = folder / RUN_FILE
    if not run_file.is_file():
        raise unknown_run_error(project, run_id)
    return load_run_folder(folder, project)


def load_run_folder(folder: Path, project: Project | None = None) -> PhaseRun:
    """Read one run folder; a file that is not valid gives HistoryError naming it and the line."""
    shown = project.rel(folder) if project else str(folder)
    run = read_run_file(folder, shown)
    tests_file = folder / TESTS_FILE
    tests: list[TestResult] = []
    if tests_file.is_file():
        with tests_file.open("rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    tests.append(TestResult.model_validate_json(line))
                except (ValidationError, ValueError) as exc:
                    raise HistoryError(f"{shown}/{TESTS_FILE}:{number} is not a test result: {_short(exc)}") from exc
    run.report.tests = tests
    return run


def read_run_file(folder: Path, shown: str) -> PhaseRun:
    """A run folder's `run.json` as a PhaseRun (full test list not loaded); HistoryError says what to do."""
    path = folder / RUN_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HistoryError(
            f"{shown}/{RUN_FILE} cannot be read ({exc.strerror or exc}); check its permissions, or rerun the phase"
        ) from exc
    try:
        return PhaseRun.model_validate_json(data)
    except (ValidationError, ValueError) as exc:
        raise HistoryError(
            f"{shown}/{RUN_FILE} cannot be read: it looks truncated or corrupt ({len(data)} bytes; "
            f"{_validation_text(exc)}), so run {folder.name} is left out; rerun its phase (`itest-mcp run <phase>`) "
            "for fresh results, or delete the folder if the run is not needed"
        ) from exc


def _validation_text(exc: ValueError) -> str:
    """The first problem pydantic found, with where ("Field required at phase"), not "1 validation error for …"."""
    if not isinstance(exc, ValidationError):
        return _short(exc)
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    more = exc.error_count() - 1
    return first["msg"] + (f" at {where}" if where else "") + (f" (+{more} more)" if more else "")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# -- the database --------------------------------------------------------------------------


def db_path(project: Project) -> Path:
    """`.itest/history.db` of the project."""
    return project.state_dir / DB_NAME


def _busy_timeout() -> float:
    raw = os.environ.get(BUSY_TIMEOUT_ENV)
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
    return DEFAULT_BUSY_TIMEOUT_S


def _history_error(path: str, exc: sqlite3.Error, timeout: float) -> HistoryError:
    text = str(exc)
    lower = text.lower()
    if "locked" in lower or "busy" in lower:
        return HistoryError(
            f"history database {path} stayed locked by another itest-mcp process for {timeout:.0f} s; "
            f"retry when that run finishes (raise ${BUSY_TIMEOUT_ENV} to wait longer). "
            "Run results are kept in their run folders and recorded later."
        )
    if "not a database" in lower or "malformed" in lower or "corrupt" in lower:
        return HistoryError(
            f"history database {path} is corrupt ({text}); move it aside (e.g. rename it to {DB_NAME}.bad) "
            "and run `itest-mcp history` to rebuild it from the run folders in .itest/runs/"
        )
    if "readonly" in lower or "unable to open" in lower or "disk i/o" in lower or "full" in lower:
        return HistoryError(
            f"history database {path} cannot be written ({text}); check the permissions and free space of "
            "the .itest folder. Run results are kept in their run folders and recorded later."
        )
    return HistoryError(f"history database {path}: {text}")


# A connection stays open per process and database path: opening one (PRAGMAs, schema check) and closing
# the last one (SQLite checkpoints the WAL into the file on close) cost more than recording a 2,000-test run.
# Each use checks that the path still names the file the connection opened (dev, inode, size, mtime): a
# history.db deleted, replaced or rewritten between calls gets a new connection (and a fresh test-id cache).
# A forked child never uses or closes its parent's connections; a thread that finds the cached connection in
# use opens a private one for that call.


class _Handle:
    """One open connection, the file it opened, and the test ids it has seen committed."""

    __slots__ = ("conn", "ident", "timeout", "lock", "test_ids", "test_phases")

    def __init__(self, conn: sqlite3.Connection, ident: tuple[int, int, int, int], timeout: float) -> None:
        self.conn = conn
        self.ident = ident
        self.timeout = timeout
        self.lock = threading.Lock()
        # Rows of `tests` and `test_phases` are never deleted, so ids committed through this connection
        # stay valid for as long as the file is the same one (checked by inode before every use).
        self.test_ids: dict[str, int] = {}
        self.test_phases: set[tuple[int, str]] = set()

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:
            pass  # a connection that cannot close cleanly is dropped all the same


POOL_SIZE = 4
CHECKPOINT_WAIT_S = 1.0
_POOL: dict[str, _Handle] = {}
_POOL_LOCK = threading.Lock()
# Connections inherited over fork(): never used or closed by the child (SQLite forbids both).
_INHERITED: list[_Handle] = []


def _forget_after_fork() -> None:
    global _POOL_LOCK
    _INHERITED.extend(_POOL.values())
    _POOL.clear()
    _POOL_LOCK = threading.Lock()


def close_connections() -> None:
    """Close this process's cached history connections (the last one to close checkpoints the WAL)."""
    with _POOL_LOCK:
        handles = list(_POOL.values())
        _POOL.clear()
    for handle in handles:
        # A thread still inside a call (a checkpoint waiting on another process) keeps its connection.
        if handle.lock.acquire(timeout=CHECKPOINT_WAIT_S):
            handle.close()
            handle.lock.release()


os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(close_connections)


def _identity(path: str) -> tuple[int, int, int, int] | None:
    # Size and mtime too: a file copied over history.db in place keeps its inode. The main file changes only
    # when a checkpoint copies the WAL into it, so another process's checkpoint costs a reconnect, no more.
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _open(path: str, shown: str, timeout: float) -> _Handle:
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a power cut may lose the last commit, never corrupt the file.
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn, shown)
        ident = _identity(path)
        if ident is None:
            raise sqlite3.OperationalError("unable to open database file: it disappeared while being opened")
    except BaseException:
        conn.close()
        raise
    return _Handle(conn, ident, timeout)


def _checkout(path: str, shown: str, timeout: float) -> tuple[_Handle, bool]:
    """A connection for one use and whether it is the pooled one (else it is private and closed after use)."""
    with _POOL_LOCK:
        handle = _POOL.get(path)
        if handle is not None and not handle.lock.acquire(blocking=False):
            handle = None
            busy = True  # another thread (or an outer `with connect()` in this one) is using it
        else:
            busy = False
            if handle is not None:
                _POOL[path] = _POOL.pop(path)  # most recently used last
    if busy:
        private = _open(path, shown, timeout)
        private.lock.acquire()
        return private, False
    if handle is not None:
        current = _identity(path)
        if handle.ident == current and not handle.conn.in_transaction:
            try:
                if handle.timeout != timeout:
                    handle.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
                    handle.timeout = timeout
                # One indexed row: another itest-mcp may have migrated the file since the last use.
                _migrate(handle.conn, shown)
            except BaseException:
                _checkin(path, handle, pooled=True, healthy=False)
                raise
            return handle, True
        _checkin(path, handle, pooled=True, healthy=False)  # deleted, replaced or rewritten since the last use
    handle = _open(path, shown, timeout)
    handle.lock.acquire()
    evicted: list[_Handle] = []
    with _POOL_LOCK:
        if path in _POOL:
            return handle, False  # another thread pooled one meanwhile; this one stays private
        _POOL[path] = handle
        # A process touching many projects (a test session) keeps only the recently used few open.
        for other_path, other in list(_POOL.items()):
            if len(_POOL) <= POOL_SIZE:
                break
            if other is not handle and other.lock.acquire(blocking=False):
                del _POOL[other_path]
                evicted.append(other)
    for other in evicted:
        other.close()
        other.lock.release()
    return handle, True


def _empty_wal(handle: _Handle) -> None:
    """Before dropping a connection to a file moved away: checkpoint its WAL into that file and empty it.

    The WAL keeps the path's name (`history.db-wal`). Left with frames, it would be replayed into whatever file
    is now at the path when that is next opened; SQLite cannot tell the two files apart.
    """
    try:
        handle.conn.execute(f"PRAGMA busy_timeout = {int(min(handle.timeout, CHECKPOINT_WAIT_S) * 1000)}")
        handle.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error:
        pass  # busy in another process, which must then do the same; nothing more to do from here


def _discard(path: str, handle: _Handle) -> None:
    with _POOL_LOCK:
        if _POOL.get(path) is handle:
            del _POOL[path]
    handle.close()
    handle.lock.release()


def _checkin(path: str, handle: _Handle, pooled: bool, healthy: bool) -> None:
    """Return a connection after use: keep it cached if it is fine, else close it (emptying a moved file's WAL)."""
    conn = handle.conn
    if conn.in_transaction:  # an error or a cancel between BEGIN and COMMIT
        healthy = False
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
    ident = _identity(path)
    if ident is None or ident[:2] != handle.ident[:2]:
        _empty_wal(handle)
    elif pooled and healthy:
        handle.ident = ident  # this use's own checkpoints changed the file; another's next time means a reconnect
        handle.lock.release()
        return
    _discard(path, handle)


@contextmanager
def _session(project: Project) -> Iterator[_Handle]:
    path = db_path(project)
    key = os.fspath(path)
    shown = project.rel(path)
    timeout = _busy_timeout()
    try:
        handle, pooled = _checkout(key, shown, timeout)
    except sqlite3.Error as exc:
        raise _history_error(shown, exc, timeout) from exc
    healthy = False
    try:
        yield handle
        healthy = True
    except sqlite3.Error as exc:
        raise _history_error(shown, exc, timeout) from exc
    except Exception:
        healthy = True  # the caller's own error; the connection is fine unless a transaction was left open
        raise
    finally:
        _checkin(key, handle, pooled, healthy)


@contextmanager
def connect(project: Project) -> Iterator[sqlite3.Connection]:
    """An open, migrated connection to the project's history; every SQLite failure becomes HistoryError."""
    with _session(project) as handle:
        yield handle.conn


def _current_version(conn: sqlite3.Connection) -> int:
    try:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0
        raise
    return int(row[0]) if row else 0


def _migrate(conn: sqlite3.Connection, shown: str) -> None:
    version = _current_version(conn)
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"history database {shown} has schema version {version}, newer than this itest-mcp knows "
            f"({SCHEMA_VERSION}); upgrade itest-mcp, or move the file aside to start a new history"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = _current_version(conn)  # another process may have migrated while we waited
        for number in range(version, SCHEMA_VERSION):
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (max(version, SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> Iterable[str]:
    # executescript() would commit our transaction; run one statement at a time instead.
    return (s.strip() for s in script.split(";") if s.strip())


def message_hash(message: str | None) -> str | None:
    """sha256 of a failure message (so equal failures group without storing the text)."""
    if not message:
        return None
    return hashlib.sha256(message.encode("utf-8", errors="replace")).hexdigest()


def _insert_many(conn: sqlite3.Connection, head: str, width: int, rows: Sequence[Sequence[Any]]) -> None:
    """`head VALUES (...), (...), ...` in chunks: one statement per chunk, not one per row.

    Measured 2.5x faster than executemany on `attempts` (2,000 rows: 3.8 ms against 9.7 ms): each execution
    of an INSERT re-evaluates the partial index's `outcome IN (1, 2, 4)`, which builds its IN table anew.
    """
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if hasattr(conn, "getlimit") else 999
    per = max(1, min(500, limit // width))
    group = "(" + ",".join("?" * width) + ")"
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        conn.execute(f"{head} VALUES {','.join([group] * len(chunk))}", [v for row in chunk for v in row])


# One test of a run as history stores it: key, name, classname, and (outcome code, µs, message hash) per attempt.
_TestRow = tuple[str, str, str, list[tuple[int, int, str | None]]]


def _result_row(test: TestResult) -> _TestRow:
    name = test.name
    classname = test.classname
    key = f"{classname}::{name}" if classname else name  # TestResult.key, without the property call
    attempts = test.attempts
    if not attempts:
        code = OUTCOME_CODE[test.outcome]
        msg = test.message if code in (1, 2) else None
        return (key, name, classname, [(code, int(test.duration_s * 1e6), message_hash(msg) if msg else None)])
    rows: list[tuple[int, int, str | None]] = []
    for attempt in attempts:
        code = OUTCOME_CODE[attempt.outcome]
        if code == 1 or code == 2:
            msg = attempt.message or test.message
            rows.append((code, int(attempt.duration_s * 1e6), message_hash(msg) if msg else None))
        else:
            rows.append((code, int(attempt.duration_s * 1e6), None))
    return (key, name, classname, rows)


_OUTCOME_BY_VALUE: dict[str, int] = {o.value: c for o, c in OUTCOME_CODE.items()}


def _json_row(data: Any) -> _TestRow:
    """The history row of one `tests.jsonl` object (parsed as JSON, not as a model: import reads thousands)."""
    if not isinstance(data, dict):
        raise ValueError(f"expected an object, got {type(data).__name__}")
    name = data.get("name")
    if not isinstance(name, str):
        raise ValueError(f"'name' must be a string, got {name!r}")
    classname = data.get("classname") or ""
    if not isinstance(classname, str):
        raise ValueError(f"'classname' must be a string, got {classname!r}")
    message = data.get("message")
    if message is not None and not isinstance(message, str):
        raise ValueError(f"'message' must be a string, got {type(message).__name__}")
    attempts = data.get("attempts") or [data]
    if not isinstance(attempts, list):
        raise ValueError(f"'attempts' must be a list, got {type(attempts).__name__}")
    rows: list[tuple[int, int, str | None]] = []
    for attempt in attempts:
        if not isinstance(attempt, dict):
            raise ValueError(f"an attempt must be an object, got {type(attempt).__name__}")
        code = _OUTCOME_BY_VALUE.get(attempt.get("outcome"))  # type: ignore[arg-type]
        if code is None:
            raise ValueError(f"'outcome' must be one of {', '.join(_OUTCOME_BY_VALUE)}, got {attempt.get('outcome')!r}")
        duration = attempt.get("duration_s", 0.0)
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise ValueError(f"'duration_s' must be a number, got {duration!r}")
        msg = None
        if code == 1 or code == 2:
            msg = attempt.get("message") or message
            if msg is not None and not isinstance(msg, str):
                raise ValueError(f"'message' must be a string, got {type(msg).__name__}")
        rows.append((code, int(duration * 1e6), message_hash(msg) if msg else None))
    key = f"{classname}::{name}" if classname else name
    return (key, name, classname, rows)


def _test_ids(handle: _Handle, rows: Sequence[_TestRow], new: dict[str, int]) -> dict[str, int]:
    """key → tests.id for every row, inserting unknown tests; `new` collects what this transaction added."""
    conn = handle.conn
    known = handle.test_ids
    ids: dict[str, int] = {}
    missing: dict[str, _TestRow] = {}
    for row in rows:
        key = row[0]
        pk = known.get(key)
        if pk is None:
            missing[key] = row
        else:
            ids[key] = pk
    if not missing:
        return ids
    # Inside BEGIN IMMEDIATE nobody else writes: what this SELECT misses is ours to insert, with explicit ids.
    keys = list(missing)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        found = conn.execute(f"SELECT key, id FROM tests WHERE key IN ({marks})", chunk).fetchall()
        ids.update(found)
        new.update(found)
    absent = [missing[k] for k in keys if k not in ids]
    if absent:
        top = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM tests").fetchone()[0])
        fresh = [(top + i, row[0], row[1], row[2]) for i, row in enumerate(absent, 1)]
        _insert_many(conn, "INSERT INTO tests (id, key, name, classname)", 4, fresh)
        for pk, key, _, _ in fresh:
            ids[key] = pk
            new[key] = pk
    return ids


def _insert_run(handle: _Handle, run: PhaseRun, rows: Sequence[_TestRow], pending: _Pending) -> bool:
    conn = handle.conn
    totals = run.report.totals
    res = run.resources
    cursor = conn.execute(
        """INSERT INTO runs (run_id, phase, argv, commit_sha, dirty, status, exit_code, started_at, ended_at,
               duration_s, tests, passed, failed, errors, skipped, flaky, attempts,
               wall_s, cpu_user_s, cpu_system_s, peak_rss_mb, recorded_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(run_id) DO NOTHING""",
        (
            run.run_id,
            run.phase,
            json.dumps(run.argv),
            run.commit,
            int(run.dirty),
            run.status.value,
            run.exit_code,
            run.started_at.isoformat(),
            run.ended_at.isoformat() if run.ended_at else None,
            run.duration_s,
            totals.tests,
            totals.passed,
            totals.failed,
            totals.errors,
            totals.skipped,
            totals.flaky,
            totals.attempts,
            res.wall_s,
            res.cpu_user_s,
            res.cpu_system_s,
            res.peak_rss_mb,
            datetime.now(UTC).isoformat(),
        ),
    )
    if cursor.rowcount == 0:
        return False  # already recorded (a retry, or import racing the runner)
    if not rows:
        return True
    run_pk = int(cursor.lastrowid or 0)
    ids = _test_ids(handle, rows, pending.test_ids)
    # Ordered by test id, the (run, test, attempt) keys append to the end of the attempts b-tree.
    by_pk: dict[int, list[tuple[int, int, str | None]]] = {}
    for row in rows:
        by_pk.setdefault(ids[row[0]], row[3])  # the same key twice in one run (a parser quirk): first one wins
    attempts = [
        (run_pk, pk, index, code, micros, digest)
        for pk in sorted(by_pk)
        for index, (code, micros, digest) in enumerate(by_pk[pk])
    ]
    _insert_many(conn, "INSERT INTO attempts (run, test, attempt, outcome, duration_us, message_sha256)", 6, attempts)
    phase = run.phase
    known = handle.test_phases
    phases = [(pk, phase) for pk in by_pk if (pk, phase) not in known]
    if phases:
        _insert_many(conn, "INSERT OR IGNORE INTO test_phases (test, phase)", 2, phases)
        pending.test_phases.update(phases)
    return True


class _Pending:
    """Cache entries a transaction would add; kept only once it commits."""

    __slots__ = ("test_ids", "test_phases")

    def __init__(self) -> None:
        self.test_ids: dict[str, int] = {}
        self.test_phases: set[tuple[int, str]] = set()


def _record(handle: _Handle, run: PhaseRun, rows: Sequence[_TestRow]) -> bool:
    for retry in (False, True):
        pending = _Pending()
        conn = handle.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            added = _insert_run(handle, run, rows, pending)
            conn.execute("COMMIT")
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK")
            if retry:
                raise
            # A cached test id no longer names a row (someone edited the file): forget the cache, once.
            handle.test_ids.clear()
            handle.test_phases.clear()
            continue
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        handle.test_ids.update(pending.test_ids)
        handle.test_phases.update(pending.test_phases)
        return added
    raise AssertionError("unreachable")


def record_run(project: Project, run: PhaseRun) -> None:
    """Store `run` and one row per test attempt in history (a run already recorded is left as it is)."""
    check_run_id(run.run_id)
    rows = [_result_row(test) for test in run.report.tests]
    with _session(project) as handle:
        _record(handle, run, rows)


def checkpoint(project: Project) -> None:
    """Copy committed WAL pages into history.db and empty the WAL (an idle server leaves one whole file).

    A cached connection keeps the WAL open between calls; checkpointed, history.db can be moved aside, copied
    or deleted while the server idles without losing what it recorded, and no stale `-wal` is left for a file
    put in its place. The runner calls this after it has the run's answer, off the caller's path.
    """
    with _session(project) as handle:
        # TRUNCATE waits for readers; a reader in another process must not hold this thread (or exit) for long.
        handle.conn.execute(f"PRAGMA busy_timeout = {int(min(handle.timeout, CHECKPOINT_WAIT_S) * 1000)}")
        try:
            handle.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            handle.conn.execute(f"PRAGMA busy_timeout = {int(handle.timeout * 1000)}")


def try_record_run(project: Project, run: PhaseRun) -> str | None:
    """Record `run`; on a history failure return a note for `run.notes` instead of raising."""
    try:
        record_run(project, run)
    except HistoryError as exc:
        return f"not recorded in history yet: {exc}"
    return None


def recorded_run_ids(conn: sqlite3.Connection) -> set[str]:
    """Every run id the database holds."""
    return {row[0] for row in conn.execute("SELECT run_id FROM runs")}


def _load_rows(folder: Path, shown: str) -> tuple[PhaseRun, list[_TestRow], list[tuple[int, str]]]:
    """The run header, history rows and unreadable `tests.jsonl` lines of one run folder (no model per test)."""
    run = read_run_file(folder, shown)
    try:
        data = (folder / TESTS_FILE).read_bytes()
    except FileNotFoundError:
        return run, [], []
    except OSError as exc:
        raise HistoryError(f"{shown}/{TESTS_FILE} cannot be read: {_short(exc)}") from exc
    loads = _json_loads()
    rows: list[_TestRow] = []
    skipped: list[tuple[int, str]] = []
    collecting = gc.isenabled()
    gc.disable()  # small acyclic dicts and tuples only; measured 59 -> 52 ms parsing 20,000 lines
    try:
        for number, line in enumerate(data.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                rows.append(_json_row(loads(line)))
            except (ValueError, OverflowError) as exc:  # orjson's and json's decode errors are ValueErrors
                # One bad line (a run cut short mid-write) costs that test, not the whole run.
                skipped.append((number, _short(exc)))
    finally:
        if collecting:
            gc.enable()
    return run, rows, skipped


def _skipped_lines_note(shown: str, skipped: list[tuple[int, str]], kept: int) -> str:
    """What import says about the `tests.jsonl` lines it could not read (the first with its reason)."""
    number, why = skipped[0]
    others = [str(n) for n, _ in skipped[1:]]
    more = f" (also line(s) {', '.join(others[:10])}{', …' if len(others) > 10 else ''})" if others else ""
    return (
        f"{shown}/{TESTS_FILE}:{number} is not a test result: {why}{more}; skipped {len(skipped)} line(s) and "
        f"recorded the run with its other {kept} test(s); rerun the phase for a complete record"
    )


def _json_loads() -> Callable[[bytes], Any]:
    try:
        import orjson  # imported on first use: history is imported by modules the server starts with
    except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
        return json.loads
    return orjson.loads


def import_run_folders(project: Project) -> ImportSummary:
    """Record every run folder not yet in history (runs whose history write failed are recovered here)."""
    summary = ImportSummary()
    runs_dir = project.runs_dir
    try:
        names = os.listdir(runs_dir)
    except OSError:
        names = []
    with _session(project) as handle:
        known = recorded_run_ids(handle.conn) if names else set()
        # Only folders history lacks are stat'ed and read: a long history is mostly known runs.
        for run_id in sorted(n for n in names if n not in known and RUN_ID.match(n)):
            folder = runs_dir / run_id
            if not (folder / RUN_FILE).is_file():
                continue
            shown = project.rel(folder)
            try:
                run, rows, skipped = _load_rows(folder, shown)
            except HistoryError as exc:
                summary.problems.append(str(exc))
                continue
            if run.run_id != run_id:
                summary.problems.append(f"{shown}/{RUN_FILE} names run {run.run_id!r}, not its folder; skipped")
                continue
            if skipped:
                summary.problems.append(_skipped_lines_note(shown, skipped, len(rows)))
            if _record(handle, run, rows):
                summary.imported.append(run_id)
        if summary.imported:
            handle.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()  # see checkpoint()
    return summary


def _row(row: Any) -> RunRow:
    names = ("run_id", "phase", "status", "commit", "dirty", "started_at", "duration_s") + _COUNTS
    data = dict(zip(names, row, strict=True))
    data["started_at"] = datetime.fromisoformat(data["started_at"])
    data["dirty"] = bool(data["dirty"])
    return RunRow.model_validate(data)


_COUNTS = ("tests", "passed", "failed", "errors", "skipped", "flaky")


RUN_COLUMNS = (
    "run_id, phase, status, commit_sha, dirty, started_at, duration_s, tests, passed, failed, errors, skipped, flaky"
)


def recent_runs(conn: sqlite3.Connection, limit: int = 20, phase: str | None = None) -> list[RunRow]:
    """The newest `limit` runs (of one phase, or all), newest first."""
    if phase is None:
        rows = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY run_id DESC LIMIT ?", (limit,))
    else:
        rows = conn.execute(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE phase = ? ORDER BY run_id DESC LIMIT ?", (phase, limit)
        )
    return [_row(r) for r in rows]


def list_history(project: Project, limit: int = 20) -> list[RunRow]:
    """Import new run folders, then the newest `limit` runs."""
    import_run_folders(project)
    with connect(project) as conn:
        return recent_runs(conn, limit)
