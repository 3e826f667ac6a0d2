"""`build_report`: the four-section report from run folders, history and the other tools' latest results.

Sections, always these four and in this order: Test Execution Summary, Critical
Findings, Coverage Analysis, Recommendations. Every line is derived from data a
run, history or a tool left behind (run ids, durations, counts, file:line,
messages); a section with nothing to report says so with the numbers behind it.
A result the report cannot read (a corrupt latest result, a coverage file that
does not parse, a locked history) becomes a finding, never a failed report.

This module selects and loads the runs, builds, saves and loads reports. The model is in
report_model, cause classes in report_causes, the sections in report_sections and
report_tool_results, the markdown in report_markdown.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import HistoryError, InputError, ItestError, NotFoundError, ParseError
from .flaky import DEFAULT_WINDOW, FlakyReport, flaky_tests
from .history import RUN_FILE, TESTS_FILE, check_run_id, list_run_ids, read_run_file, unknown_run_error
from .models import Outcome, PhaseRun, TestResult
from .repo import Project
from .report_markdown import render_markdown
from .report_model import Finding, Report, ReportFiles
from .report_sections import (
    environment_findings,
    execution_summary,
    failure_findings,
    performance_findings,
    recommendations,
)
from .report_tool_results import coverage_analysis
from .results_store import load_latest

MAX_RUNS = 50
REPORT_ID = re.compile(r"^report-\d{8}T\d{6}-\d{6}$")


# -- selecting and reading runs -----------------------------------------------------------


def load_run_summary(project: Project, run_id: str) -> PhaseRun:
    """A run folder's PhaseRun without its full test list (the report needs counts and failures)."""
    folder = project.runs_dir / check_run_id(run_id)
    if not (folder / RUN_FILE).is_file():
        raise unknown_run_error(project, run_id)
    return read_run_file(folder, project.rel(folder))


def flaky_in_run(project: Project, run_id: str) -> list[TestResult]:
    """Tests of one run that failed and then passed on a rerun (scanned cheaply from tests.jsonl)."""
    path = project.runs_dir / run_id / TESTS_FILE
    found: list[TestResult] = []
    try:
        with path.open("rb") as handle:
            for line in handle:
                if b'"flaky"' not in line:
                    continue
                try:
                    test = TestResult.model_validate_json(line)
                except (ValidationError, ValueError):
                    continue
                if test.outcome is Outcome.FLAKY:
                    found.append(test)
    except OSError:
        return []
    return found


def latest_report_path(project: Project) -> Path | None:
    """The newest saved report's JSON, or None."""
    reports = sorted(p for p in project.reports_dir.glob("report-*.json") if REPORT_ID.match(p.stem))
    return reports[-1] if reports else None


def _no_runs_error(project: Project) -> NotFoundError:
    hint = "`itest-mcp phases` lists them"
    try:
        from .phases import list_phases

        names = [p.name for p in list_phases(project).phases if p.available]
        if names:
            hint = f"phases here: {', '.join(names)}"
    except ItestError:
        pass
    return NotFoundError(
        f"no test runs yet in {project.rel(project.runs_dir)}; run a phase first "
        f"(`itest-mcp run <phase>` or the run_phase tool; {hint}), or `itest-mcp workflow` for the whole workflow"
    )


RUNNER_ID = re.compile(r"^\d{8}T\d{6}Z-(?P<phase>.+)-[0-9a-f]{4}$")
"""The runner's run ids (`20261124T031500Z-<phase>-<4 hex>`) name the phase."""


def _phase_in_run_id(run_id: str) -> str:
    """The phase a run id names (an unreadable run.json still has it), else the id itself."""
    match = RUNNER_ID.match(run_id)
    return match["phase"] if match else run_id


def _runs_covered_by(report_json: Path) -> list[str] | None:
    """The run ids a saved report covered; None when the file is unreadable or not one of our reports."""
    try:
        previous = json.loads(report_json.read_bytes())
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    run_ids = previous.get("run_ids") if isinstance(previous, dict) else None
    if not isinstance(run_ids, list) or not all(isinstance(r, str) for r in run_ids):
        return None
    return run_ids


def select_runs(project: Project, run_ids: list[str] | None) -> tuple[list[str], str]:
    """The runs a report covers and why: given ids, else runs since the last report, else the current commit's."""
    if run_ids:
        for run_id in run_ids:
            check_run_id(run_id)
            if not (project.runs_dir / run_id / RUN_FILE).is_file():
                raise unknown_run_error(project, run_id)
        unique = list(dict.fromkeys(run_ids))
        return unique, f"the {len(unique)} run(s) asked for"
    all_ids = list_run_ids(project)
    if not all_ids:
        raise _no_runs_error(project)
    last = latest_report_path(project)
    unread = ""
    if last is not None:
        covered = _runs_covered_by(last)
        if covered is None:
            unread = f" (the last report {project.rel(last)} cannot be read; a new report replaces it)"
        elif covered:
            newest = max(covered)
            since = [r for r in all_ids if r > newest]
            if since:
                return since[-MAX_RUNS:], f"the {len(since)} run(s) since the last report {last.stem}"
    # An unreadable run stays selected (build_report makes it a finding): dropping it would let
    # an older run of its phase stand in for it without a word.
    readable: dict[str, PhaseRun] = {}
    unreadable: list[str] = []
    for run_id in all_ids[-500:]:
        try:
            readable[run_id] = load_run_summary(project, run_id)
        except ItestError:
            unreadable.append(run_id)
    head = project.head_commit()
    if head:
        at_head = [run_id for run_id, run in readable.items() if run.commit == head]
        if at_head:
            # Its commit is unknown; one newer than the first run at HEAD may well be of HEAD.
            maybe = [r for r in unreadable if r > at_head[0]]
            at_head = sorted(at_head + maybe)
            note = f", {len(maybe)} of them unreadable" if maybe else ""
            return at_head[-MAX_RUNS:], f"the {len(at_head)} run(s) of the current commit {head[:12]}{note}{unread}"
    latest: dict[str, str] = {}
    for run_id in all_ids[-500:]:
        run = readable.get(run_id)
        latest[run.phase if run else _phase_in_run_id(run_id)] = run_id
    chosen = sorted(latest.values())
    return chosen, f"the latest run of each phase ({len(chosen)}), as none is newer than the last report{unread}"


# -- building, saving, loading --------------------------------------------------------------


def _load_latest_safely(project: Project, problems: list[Finding]) -> dict[str, dict[str, Any] | None]:
    latest: dict[str, dict[str, Any] | None] = {}
    for kind, tool in (
        ("assess", "assess_changes"),
        ("coverage", "find_coverage_gaps"),
        ("github", "validate_github_api"),
    ):
        try:
            latest[kind] = load_latest(project, kind)
        except ParseError as exc:
            latest[kind] = None
            problems.append(
                Finding(category="input", title=f"the latest {tool} result cannot be read: {exc}", source=tool)
            )
    return latest


def build_report(
    project: Project,
    run_ids: list[str] | None = None,
    *,
    now: datetime | None = None,
    window: int = DEFAULT_WINDOW,
    save: bool = True,
) -> Report:
    """The four-section report over the given runs (default: since the last report, else the current commit)."""
    now = now or datetime.now(UTC)
    selected, why = select_runs(project, run_ids)
    problems: list[Finding] = []
    runs: list[PhaseRun] = []
    for run_id in selected:
        try:
            runs.append(load_run_summary(project, run_id))
        except HistoryError as exc:
            if run_ids:
                raise
            problems.append(
                Finding(
                    category="input",
                    title=str(exc),
                    detail="no older run of its phase is reported in its place; `itest-mcp history` lists the runs "
                    "that can be read",
                    run_id=run_id,
                    source="run folder",
                )
            )
    runs.sort(key=lambda r: r.run_id)
    history: FlakyReport | None = None
    try:
        history = flaky_tests(project, window)
        for problem in history.problems:
            problems.append(Finding(category="input", title=problem, source="history import"))
    except HistoryError as exc:
        problems.append(
            Finding(
                category="environment",
                title=f"history is unavailable, so flaky and slow-test trends are missing: {exc}",
                source="history",
            )
        )
    latest = _load_latest_safely(project, problems)
    summary = execution_summary(runs)
    findings = failure_findings(runs, history)
    findings.performance = performance_findings(runs, history)
    coverage = coverage_analysis(project, runs, latest, problems)
    findings.environment = environment_findings(project, runs, latest, problems, summary)
    flaky_now = [
        (run.run_id, test) for run in runs if run.report.totals.flaky for test in flaky_in_run(project, run.run_id)
    ]
    report = Report(
        report_id=f"report-{now.strftime('%Y%m%dT%H%M%S')}-{now.microsecond:06d}",
        created_at=now,
        project_root=str(project.root),
        commit=runs[-1].commit if runs else None,
        run_ids=[r.run_id for r in runs],
        selection=why,
        summary=summary,
        findings=findings,
        coverage=coverage,
        history=history,
    )
    report.recommendations = recommendations(findings, history, flaky_now, coverage, runs)
    if save:
        save_report(project, report)
    return report


def save_report(project: Project, report: Report) -> ReportFiles:
    """Write `<id>.json` and `<id>.md` under `.itest/reports/` (JSON last: it marks the report complete)."""
    folder = project.reports_dir
    md = folder / f"{report.report_id}.md"
    js = folder / f"{report.report_id}.json"
    report.files.markdown = project.rel(md)
    report.files.json_path = project.rel(js)
    _atomic_write(md, render_markdown(report))
    _atomic_write(js, report.model_dump_json(indent=2))
    return report.files


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


REPORT_MARKERS = (b"# Integration test report", b"<!DOCTYPE html>", b'{\n  "report_id": "report-')
"""How each format this module writes begins: a file starting otherwise is not ours to overwrite."""


def out_path(project: Project, out: str) -> Path:
    """Where `--out` may write: a new file, or one of our reports; never `.git/`, a folder or the user's file."""
    target = project.resolve_path(out, what="--out")
    git_dir = project.git_root / ".git"
    if target == git_dir or target.is_relative_to(git_dir) or ".git" in target.relative_to(project.root).parts:
        raise InputError(
            f"--out {out!r} is inside .git/, where a report would damage the repository; "
            "pick a file name outside .git (e.g. report.md)"
        )
    if target.is_dir():
        raise InputError(f"--out {out!r} is a folder; pick a file name inside it (e.g. {out.rstrip('/')}/report.md)")
    if target.exists() or target.is_symlink():
        try:
            with target.open("rb") as handle:
                head = handle.read(64)
        except OSError as exc:
            raise InputError(
                f"--out {out!r} exists and cannot be read ({exc.strerror or exc}); pick a new file name"
            ) from exc
        if not head.startswith(REPORT_MARKERS):
            raise InputError(
                f"--out {out!r} already exists and is not a report itest-mcp wrote; it was left unchanged. "
                "Pick a new file name (or move the file aside first)"
            )
    for parent in target.relative_to(project.root).parents:
        if (project.root / parent).exists() and not (project.root / parent).is_dir():
            raise InputError(f"--out {out!r}: {parent.as_posix()!r} is a file, not a folder; pick another path")
    return target


def write_out(project: Project, target: Path, text: str) -> None:
    """Write the report to a checked `--out` path; a failure names the path and what to do."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(target, text)
    except OSError as exc:
        raise InputError(
            f"--out {project.rel(target)!r} cannot be written ({exc.strerror or exc}); pick another file name"
        ) from exc


def load_report(path: Path) -> Report:
    """A saved report's model."""
    return Report.model_validate_json(path.read_bytes())


def latest_report_markdown(project: Project) -> str:
    """The newest saved report as markdown; NotFoundError says how to make one."""
    path = latest_report_path(project)
    if path is None:
        raise NotFoundError(
            f"no report saved in {project.rel(project.reports_dir)} yet; build one with the build_report tool "
            "(`itest-mcp report`)"
        )
    md = path.with_suffix(".md")
    try:
        if md.is_file():
            return md.read_text(encoding="utf-8")
        return render_markdown(load_report(path))
    except (OSError, ValueError) as exc:  # ValidationError and UnicodeDecodeError are ValueErrors
        raise ParseError(
            f"the latest report {project.rel(md if md.is_file() else path)} cannot be read "
            f"({str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__}); "
            "build a new one with the build_report tool (`itest-mcp report`)"
        ) from exc
