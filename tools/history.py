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
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
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
    try:
        run = PhaseRun.model_validate_json((folder / RUN_FILE).read_bytes())
    except (OSError, ValidationError, ValueError) as exc:
        raise HistoryError(f"{shown}/{RUN_FILE} cannot be read: {_short(exc)}") from exc
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


@contextmanager
def connect(project: Project) -> Iterator[sqlite3.Connection]:
    """An open, migrated connection to the project's history; every SQLite failure becomes HistoryError."""
    path = db_path(project)
    shown = project.rel(path)
    timeout = _busy_timeout()
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a power cut may lose the last commit, never corrupt the file.
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn, shown)
        yield conn
    except sqlite3.Error as exc:
        raise _history_error(shown, exc, timeout) from exc
    finally:
        if conn is not None:
            conn.close()


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


def _attempt_rows(run_pk: int, test_pk: int, test: TestResult) -> Iterator[tuple[int, int, int, int, int, str | None]]:
    attempts = test.attempts
    if not attempts:
        code = OUTCOME_CODE[test.outcome]
        msg = test.message if code in (1, 2) else None
        yield (run_pk, test_pk, 0, code, int(test.duration_s * 1e6), message_hash(msg))
        return
    for index, attempt in enumerate(attempts):
        code = OUTCOME_CODE[attempt.outcome]
        msg = (attempt.message or test.message) if code in (1, 2) else None
        yield (run_pk, test_pk, index, code, int(attempt.duration_s * 1e6), message_hash(msg))


def _test_ids(conn: sqlite3.Connection, tests: Sequence[TestResult]) -> dict[str, int]:
    keys = {t.key: t for t in tests}
    ids: dict[str, int] = {}
    key_list = list(keys)
    for start in range(0, len(key_list), 500):
        chunk = key_list[start : start + 500]
        marks = ",".join("?" * len(chunk))
        ids.update(conn.execute(f"SELECT key, id FROM tests WHERE key IN ({marks})", chunk).fetchall())
    missing = [keys[k] for k in key_list if k not in ids]
    if missing:
        conn.executemany(
            "INSERT OR IGNORE INTO tests (key, name, classname) VALUES (?, ?, ?)",
            [(t.key, t.name, t.classname) for t in missing],
        )
        for start in range(0, len(missing), 500):
            chunk = [t.key for t in missing[start : start + 500]]
            marks = ",".join("?" * len(chunk))
            ids.update(conn.execute(f"SELECT key, id FROM tests WHERE key IN ({marks})", chunk).fetchall())
    return ids


def _insert_run(conn: sqlite3.Connection, run: PhaseRun) -> bool:
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
    run_pk = int(cursor.lastrowid or 0)
    tests = run.report.tests
    if not tests:
        return True
    ids = _test_ids(conn, tests)
    rows: list[tuple[int, int, int, int, int, str | None]] = []
    seen: set[int] = set()
    for test in tests:
        test_pk = ids[test.key]
        if test_pk in seen:
            continue  # the same key twice in one run (a parser quirk) must not break the primary key
        seen.add(test_pk)
        rows.extend(_attempt_rows(run_pk, test_pk, test))
    conn.executemany(
        "INSERT INTO attempts (run, test, attempt, outcome, duration_us, message_sha256) VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.executemany("INSERT OR IGNORE INTO test_phases (test, phase) VALUES (?, ?)", [(pk, run.phase) for pk in seen])
    return True


def _record(conn: sqlite3.Connection, run: PhaseRun) -> bool:
    conn.execute("BEGIN IMMEDIATE")
    try:
        added = _insert_run(conn, run)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return added


def record_run(project: Project, run: PhaseRun) -> None:
    """Store `run` and one row per test attempt in history (a run already recorded is left as it is)."""
    check_run_id(run.run_id)
    with connect(project) as conn:
        _record(conn, run)


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


def import_run_folders(project: Project) -> ImportSummary:
    """Record every run folder not yet in history (runs whose history write failed are recovered here)."""
    summary = ImportSummary()
    on_disk = list_run_ids(project)
    with connect(project) as conn:
        known = recorded_run_ids(conn)
        for run_id in on_disk:
            if run_id in known:
                continue
            try:
                run = load_run_folder(project.runs_dir / run_id, project)
            except HistoryError as exc:
                summary.problems.append(str(exc))
                continue
            if run.run_id != run_id:
                summary.problems.append(
                    f"{project.rel(project.runs_dir / run_id)}/{RUN_FILE} names run {run.run_id!r}, "
                    "not its folder; skipped"
                )
                continue
            if _record(conn, run):
                summary.imported.append(run_id)
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
