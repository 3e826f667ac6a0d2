"""Find past runs: by id, the most recent ones, and pages of their logs."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from .errors import InputError, NotFoundError
from .models import Model, PhaseRun
from .repo import Project
from .runner import RUN_ID

LOG_PAGE_DEFAULT = 64 * 1024
LOG_PAGE_MAX = 1024 * 1024


class LogPage(Model):
    """A slice of a run's output.log (bytes decoded as UTF-8, invalid bytes replaced)."""

    run_id: str
    offset: int
    next_offset: int
    total_bytes: int
    eof: bool
    text: str


class RunSummary(Model):
    """One line of the run list."""

    run_id: str
    phase: str
    status: str | None = None
    started_at: str | None = None
    duration_s: float | None = None
    tests: int | None = None
    failed: int | None = None


class RunList(Model):
    """Recent runs, newest first."""

    runs: list[RunSummary] = Field(default_factory=list)


def run_dir(project: Project, run_id: str) -> Path:
    """The folder of run `run_id`; a malformed or unknown id is an input error naming it."""
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise InputError(
            f"run id {run_id!r} is not a run id (like 20261124T031500Z-api-client-1a2b); "
            "find ids in run_phase results or under .itest/runs/"
        )
    path = project.runs_dir / run_id
    if not path.is_dir():
        raise NotFoundError(f"no run {run_id!r} under {project.runs_dir}; look under .itest/runs/ or rerun the phase")
    return path


def load_run(project: Project, run_id: str) -> PhaseRun:
    """The PhaseRun of a finished run, with its per-test list read back from tests.jsonl."""
    path = run_dir(project, run_id)
    try:
        run = PhaseRun.model_validate_json((path / "run.json").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotFoundError(f"run {run_id!r} has no run.json yet (still running, or it was killed)") from exc
    from .models import TestResult

    tests_file = path / "tests.jsonl"
    if tests_file.exists():
        with tests_file.open(encoding="utf-8") as handle:
            run.report.tests = [TestResult.model_validate_json(line) for line in handle if line.strip()]
    return run


def list_runs(project: Project, limit: int = 20, phase: str | None = None) -> RunList:
    """The most recent runs (newest first), optionally of one phase."""
    names = sorted((p.name for p in project.runs_dir.iterdir() if p.is_dir() and RUN_ID.match(p.name)), reverse=True)
    runs: list[RunSummary] = []
    for name in names:
        if len(runs) >= limit:
            break
        summary = RunSummary(run_id=name, phase=name.split("-", 1)[1].rsplit("-", 1)[0])
        if phase is not None and summary.phase != phase:
            continue
        try:
            data = json.loads((project.runs_dir / name / "run.json").read_text(encoding="utf-8"))
            totals = data.get("report", {}).get("totals", {})
            summary = summary.model_copy(
                update={
                    "status": data.get("status"),
                    "started_at": data.get("started_at"),
                    "duration_s": data.get("duration_s"),
                    "tests": totals.get("tests"),
                    "failed": totals.get("failed"),
                }
            )
        except (OSError, ValueError):
            summary = summary.model_copy(update={"status": "running or incomplete"})
        runs.append(summary)
    return RunList(runs=runs)


def read_log(project: Project, run_id: str, offset: int = 0, limit: int = LOG_PAGE_DEFAULT) -> LogPage:
    """`limit` bytes of the run's output.log from byte `offset` (negative: from the end)."""
    if limit <= 0 or limit > LOG_PAGE_MAX:
        raise InputError(f"limit {limit} is out of range; give 1..{LOG_PAGE_MAX} bytes")
    path = run_dir(project, run_id) / "output.log"
    if not path.exists():
        raise NotFoundError(f"run {run_id!r} has no output.log")
    size = path.stat().st_size
    start = max(0, size + offset) if offset < 0 else offset
    if start > size:
        raise InputError(f"offset {offset} is past the end of the log ({size} bytes)")
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read(limit)
    end = start + len(data)
    return LogPage(
        run_id=run_id,
        offset=start,
        next_offset=end,
        total_bytes=size,
        eof=end >= size,
        text=data.decode("utf-8", errors="replace"),
    )


def junit_path(project: Project, run_id: str) -> Path:
    """The run's junit.xml."""
    path = run_dir(project, run_id) / "junit.xml"
    if not path.exists():
        raise NotFoundError(f"run {run_id!r} has no junit.xml (it may still be running)")
    return path
