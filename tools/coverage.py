"""`find_coverage_gaps`: coverage on the changed lines, uncovered risky functions, untested edge-case scenarios.

Inputs are coverage files (any format `covreaders` reads) or the latest run that
produced coverage, and the changed line ranges of `gitdiff.collect_changes`.
Changed-line numbers follow diff-cover exactly for the files a report measures
(measured = changed lines with coverage data; uncovered = those never executed);
changed source files with no coverage data at all are listed and, unless told
otherwise, counted as uncovered in `percent_with_unmeasured`.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Collection
from pathlib import Path

from pydantic import Field

from .covmap import PathMatcher, UnmatchedPath
from .covmodel import FileData, merge_files, paused_gc, query_files
from .covreaders import read_coverage
from .covspans import Index, Spans, intersect_spans, merge_spans, query_index, span_lines
from .errors import NotFoundError
from .gitdiff import ChangedFile, LineRange, collect_changes
from .gofuncs import FuncInfo, go_functions, python_functions
from .models import Model, PhaseRun
from .repo import Project
from .scenarios import ScenarioResult, assess_scenarios, is_test_path
from .stale_sources import Recorded, stale_files

RUN_COVERAGE_NAMES = ("coverage.out", "coverage.xml", "lcov.info", "coverage.lcov", "jacoco.xml")
FILES_LIMIT = 25
CHANGED_LIMIT = 50
FUNCTIONS_LIMIT = 15
TOP_GAPS = 8
FUNCTION_FILES_LIMIT = 200
_SUITE_LANGUAGE = {".go": "go", ".py": "python"}
_RISKY_PATH = re.compile(r"(?i)(http|client|api|net|retry|sync|fetch|github|request|transport|rpc)")
SIGNAL_WEIGHTS = {
    "http": 5, "net": 5, "rpc": 5, "retry": 5, "backoff": 4, "attempt": 3, "ratelimit": 4, "auth": 3, "token": 2,
    "goroutine": 4, "sync": 4, "select": 3, "channel": 3, "lock": 3, "context": 2, "timeout": 3, "deadline": 2,
    "sleep": 2, "json": 1,
}  # fmt: skip


class CoverageInput(Model):
    """One coverage file that was read."""

    file: str
    format: str
    mode: str | None = None
    files: int = 0
    entries: int = 0


class FileCoverage(Model):
    """Coverage of one file (statements for Go, lines otherwise)."""

    path: str
    unit: str
    measured: int
    covered: int
    percent: float | None
    stale: bool = False
    """The file changed after its coverage was recorded (the totals still say what that run measured)."""


class ChangedFileCoverage(Model):
    """Coverage of one changed file's changed lines."""

    path: str
    status: str
    """`measured`, `no-data` (a source file the reports do not cover), `stale` (the file changed after its coverage
    was recorded, so the recorded line numbers no longer fit it: no figures) or `not-source`."""
    changed_lines: int
    measured: int = 0
    covered: int = 0
    uncovered: int = 0
    """Measured changed lines not fully executed: `never_executed` + `partly_executed`."""
    percent: float | None = None
    uncovered_ranges: list[LineRange] = Field(default_factory=list)
    never_executed: int = 0
    """Uncovered lines where nothing ran."""
    partly_executed: int = 0
    """Uncovered lines where something ran but not all (an `if` whose condition ran and whose body did not):
    uncovered by the line rule, yet executed by some test."""
    partly_executed_ranges: list[LineRange] = Field(default_factory=list)
    unit: str = "lines"
    """Changed-line figures always count lines (for Go too: a line is covered when every block on it ran)."""


class PatchCoverage(Model):
    """Coverage of all changed lines: `percent` equals diff-cover's on the same diff and Cobertura report."""

    measured: int = 0
    covered: int = 0
    uncovered: int = 0
    percent: float | None = None
    partly_executed: int = 0
    """Of `uncovered`, the lines some test executed in part (see ChangedFileCoverage.partly_executed)."""
    unit: str = "lines"
    unmeasured_files: list[str] = Field(default_factory=list)
    unmeasured_lines: int = 0
    count_unmeasured: bool = True
    percent_with_unmeasured: float | None = None
    """Counting the changed lines of unmeasured source files as uncovered (when `count_unmeasured`)."""
    stale_files: list[str] = Field(default_factory=list)
    """Changed files edited after their coverage was recorded: left out of every figure above."""
    stale_lines: int = 0


class UncoveredFunction(Model):
    """A function with no (or little) executed code, ranked by risk."""

    file: str
    name: str
    line: int
    end_line: int
    measured: int
    covered: int
    unit: str = "lines"
    """`measured`/`covered` count the function's lines by the line rule (Go too), not statements."""
    changed: bool = False
    risk: int = 0
    reasons: list[str] = Field(default_factory=list)


class GapItem(Model):
    """One gap worth closing, in order."""

    rank: int
    kind: str
    what: str
    where: str
    why: str


class UnitTotals(Model):
    """Totals of the files whose coverage counts one unit."""

    unit: str
    """`statements` (Go profiles) or `lines` (line formats: Cobertura, LCOV, JaCoCo)."""
    measured: int = 0
    covered: int = 0
    percent: float | None = None
    files: int = 0


class Totals(Model):
    """Overall totals. Statements and lines are never added together: with both, `unit` is `mixed`,
    `measured`/`covered`/`percent` are None and `by_unit` holds one total per unit."""

    unit: str = "lines"
    measured: int | None = 0
    covered: int | None = 0
    percent: float | None = None
    files: int = 0
    by_unit: list[UnitTotals] = Field(default_factory=list)


class CoverageGaps(Model):
    """Result of find_coverage_gaps."""

    project_root: str
    run_id: str | None = None
    inputs: list[CoverageInput] = Field(default_factory=list)
    base: str | None = None
    base_label: str = ""
    head_label: str = ""
    totals: Totals = Field(default_factory=Totals)
    files: list[FileCoverage] = Field(default_factory=list)
    """Changed files first, then the least covered, up to a limit (`files_total` says how many exist)."""
    files_total: int = 0
    patch: PatchCoverage = Field(default_factory=PatchCoverage)
    changed_files: list[ChangedFileCoverage] = Field(default_factory=list)
    """Files without coverage data first, then the most uncovered changed lines, up to a limit."""
    uncovered_functions: list[UncoveredFunction] = Field(default_factory=list)
    scenarios: list[ScenarioResult] = Field(default_factory=list)
    top_gaps: list[GapItem] = Field(default_factory=list)
    unmatched: list[UnmatchedPath] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def _pct(covered: int, measured: int) -> float | None:
    return round(100.0 * covered / measured, 2) if measured else None


# -- loading --------------------------------------------------------------------------------


def latest_run_coverage(project: Project) -> tuple[str, list[Path]]:
    """The newest run folder with coverage files (run ids sort by time) and those files."""
    runs = project.root / ".itest" / "runs"
    if runs.is_dir():
        for run_dir in sorted((p for p in runs.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True):
            found = _run_files(project, run_dir)
            if found:
                return run_dir.name, found
    raise NotFoundError(
        "no coverage files were given and no run under .itest/runs produced coverage; "
        "run a phase with coverage=true (run_phase) or pass coverage files"
    )


def run_coverage(project: Project, run_id: str) -> list[Path]:
    """The coverage files of one run, or NotFoundError naming the run."""
    if "/" in run_id or "\\" in run_id or run_id.startswith((".", "-")):
        raise NotFoundError(f"run id {run_id!r} is not a run folder name; list runs with `itest-mcp history`")
    run_dir = project.root / ".itest" / "runs" / run_id
    if not run_dir.is_dir():
        raise NotFoundError(f"run {run_id!r} does not exist under {project.root / '.itest' / 'runs'}")
    found = _run_files(project, run_dir)
    if not found:
        raise NotFoundError(f"run {run_id!r} produced no coverage files; rerun the phase with coverage=true")
    return found


def _run_files(project: Project, run_dir: Path) -> list[Path]:
    run = _run_record(run_dir)
    if run is not None:
        paths = [project.root / p for p in run.artifacts.coverage]
        paths = [p for p in paths if p.is_file()]
        if paths:
            return paths
    return [run_dir / n for n in RUN_COVERAGE_NAMES if (run_dir / n).is_file()]


def _run_record(run_dir: Path) -> PhaseRun | None:
    record = run_dir / "run.json"
    try:
        return PhaseRun.model_validate(json.loads(record.read_text(encoding="utf-8")))
    except (ValueError, OSError):
        return None


def recorded_as(project: Project, paths: list[Path], run_id: str | None) -> list[Recorded]:
    """What each coverage file was recorded from: the run's commit and dirty flag when it belongs to a run."""
    run = _run_record(project.root / ".itest" / "runs" / run_id) if run_id else None
    if run is None:
        return [Recorded(coverage_file=p) for p in paths]
    return [Recorded(coverage_file=p, run_id=run.run_id, commit=run.commit, dirty=run.dirty) for p in paths]


def find_stale(project: Project, recorded: list[Recorded], covers: list[set[str]], notes: list[str]) -> set[str]:
    """Files some coverage input measured that changed since that input was recorded, each named in `notes`."""
    stale: dict[str, str] = {}
    for rec, rels in zip(recorded, covers, strict=True):
        for rel, why in stale_files(project, rec, rels).items():
            stale.setdefault(rel, why)
    for rel, why in sorted(stale.items()):
        notes.append(
            f"{rel}: stale coverage, the file {why}; its line numbers no longer match the coverage data, so its "
            "changed-line and function figures are left out (rerun the phase with coverage)"
        )
    return set(stale)


def changed_ranges(changed: list[ChangedFile]) -> dict[str, list[tuple[int, int]]]:
    """The changed line ranges `join_changes` asks about, per changed file."""
    return {
        cf.path: [(r.start, r.end) for r in cf.ranges]
        for cf in changed
        if cf.status != "deleted" and not cf.binary and cf.ranges
    }


def load_coverage(
    paths: list[Path],
    matcher: PathMatcher,
    project: Project | None = None,
    changed: list[ChangedFile] | None = None,
    covers: list[set[str]] | None = None,
) -> tuple[dict[str, FileData], list[CoverageInput], list[UnmatchedPath], list[str]]:
    """Read every file, map its names to repository files and merge what several reports say about one file.

    With `changed` (the diff), Go profiles collect the blocks meeting the changed lines while they
    stream, so `join_changes` needs no second read of them. `covers`, when given, receives per input
    the repository files it measured.
    """
    merged: dict[str, FileData] = {}
    inputs: list[CoverageInput] = []
    unmatched: list[UnmatchedPath] = []
    notes: list[str] = []
    wanted = changed_ranges(changed) if changed else {}

    resolved: dict[str, str | None] = {}  # names `want` mapped, reused below (no second look-up per file)

    def want(name: str) -> list[tuple[int, int]] | None:
        rel = resolved[name] = matcher.match(name)
        return wanted.get(rel) if rel is not None else None

    keys = _helper_keys(wanted, matcher) if wanted else None
    for path in paths:
        data = read_coverage(path, want=want if wanted else None, keys=keys)
        shown = project.rel(path) if project else str(path)
        inputs.append(
            CoverageInput(
                file=shown, format=data.format, mode=data.mode, files=len(data.files), entries=data.entries_read
            )
        )
        notes.extend(data.notes)
        measured_here: set[str] = set()
        if covers is not None:
            covers.append(measured_here)
        for name, fd in data.files.items():
            rel = resolved[name] if not data.sources and name in resolved else matcher.match(name, data.sources)
            if rel is None:
                unmatched.append(matcher.describe_miss(name, shown))
                continue
            fd.name = rel
            measured_here.add(rel)
            old = merged.get(rel)
            merged[rel] = fd if old is None else merge_files(old, fd)
        data.files.clear()
    if unmatched:
        notes.append(
            f"{len(unmatched)} file name(s) in the coverage data match no repository file (see `unmatched`); "
            "their lines are not counted"
        )
    return merged, inputs, unmatched, notes


def _helper_keys(wanted: dict[str, list[tuple[int, int]]], matcher: PathMatcher) -> dict[str, list[tuple[int, int]]]:
    """Changed ranges by the names a Go profile may give the file: its module import path, or a path it ends with.

    Only a hint for the compiled profile reader (the matcher still decides per file, see `covnative`).
    """
    keys = dict(wanted)
    for rel, ranges in wanted.items():
        for module, folder in matcher.modules:
            if rel.startswith(folder):
                keys[f"{module}/{rel[len(folder) :]}"] = ranges
    return keys


# -- the join ----------------------------------------------------------------------------------


def is_source_file(path: str, extensions: set[str]) -> bool:
    """A non-test file with an extension the coverage data covers."""
    return posixpath.splitext(path)[1] in extensions and not is_test_path(path)


def join_changes(
    files: dict[str, FileData],
    changed: list[ChangedFile],
    *,
    count_unmeasured: bool = True,
    limit: int | None = None,
    stale: Collection[str] = (),
) -> tuple[list[ChangedFileCoverage], PatchCoverage]:
    """Changed-line coverage per changed file and in total (diff-cover's rules for measured files).

    Totals cover every file; the per-file list holds the `limit` files with the most uncovered
    changed lines (all when None), so a 2,000-file diff does not flood a tool result.
    """
    with paused_gc():
        return _join_changes(files, changed, count_unmeasured, limit, stale)


def _join_changes(
    files: dict[str, FileData],
    changed: list[ChangedFile],
    count_unmeasured: bool,
    limit: int | None,
    stale: Collection[str],
) -> tuple[list[ChangedFileCoverage], PatchCoverage]:
    extensions: set[str] | None = None  # only needed for changed files without data: built on first use
    rows: list[tuple[str, str, int, int, int, Spans, Spans]] = []
    patch = PatchCoverage(count_unmeasured=count_unmeasured)
    asked: list[tuple[int, FileData, list[tuple[int, int]]]] = []
    answered: list[tuple[int, Spans, Spans]] = []  # measured lines, uncovered spans, partly executed spans
    wanted_files: list[tuple[str, int]] = []
    for cf in changed:
        if cf.status == "deleted" or cf.binary or not cf.ranges:
            continue
        pairs = [(r.start, r.end) for r in cf.ranges]
        changed_lines = span_lines(pairs)
        fd = files.get(cf.path)
        if fd is not None and cf.path in stale:
            rows.append((cf.path, "stale", changed_lines, 0, 0, [], []))
            patch.stale_files.append(cf.path)
            patch.stale_lines += changed_lines
            continue
        if fd is None:
            if extensions is None:
                extensions = {posixpath.splitext(p)[1] for p in files}
            if is_source_file(cf.path, extensions):
                rows.append((cf.path, "no-data", changed_lines, 0, 0, [], []))
                patch.unmeasured_files.append(cf.path)
                patch.unmeasured_lines += changed_lines
            continue
        if fd.changed is not None and fd.changed.ranges == pairs:
            lines, missed, executed = fd.changed.spans()  # collected while the profile was read
            answered.append((lines, missed, intersect_spans(missed, executed)))
        else:
            asked.append((len(answered), fd, pairs))
            answered.append((0, [], []))
        wanted_files.append((cf.path, changed_lines))
    for (i, fd, pairs), answers in zip(asked, query_files([(fd, p) for _i, fd, p in asked]), strict=True):
        measured = 0
        uncovered_spans: list[tuple[int, int]] = []
        for m, u in answers:
            if m:
                measured += span_lines(m)
                if u:
                    uncovered_spans += u
        uncovered_spans = merge_spans(uncovered_spans)
        answered[i] = (measured, uncovered_spans, _partly_in_index(fd, pairs, uncovered_spans))
    total_measured = total_uncovered = total_partly = 0
    for (path, changed_lines), (measured, uncovered_spans, partly) in zip(wanted_files, answered, strict=True):
        uncovered = span_lines(uncovered_spans)
        rows.append((path, "measured", changed_lines, measured, uncovered, uncovered_spans, partly))
        total_measured += measured
        total_uncovered += uncovered
        total_partly += span_lines(partly)
    patch.measured = total_measured
    patch.uncovered = total_uncovered
    patch.partly_executed = total_partly
    patch.covered = patch.measured - patch.uncovered
    patch.percent = _pct(patch.covered, patch.measured)
    extra = patch.unmeasured_lines if count_unmeasured else 0
    patch.percent_with_unmeasured = _pct(patch.covered, patch.measured + extra)
    if limit is not None and len(rows) > limit:
        rows = sorted(rows, key=lambda r: (r[1] not in ("no-data", "stale"), -r[4], r[0]))[:limit]
    out = [
        ChangedFileCoverage(
            path=path,
            status=status,
            changed_lines=changed_lines,
            measured=measured,
            covered=measured - uncovered,
            uncovered=uncovered,
            percent=_pct(measured - uncovered, measured),
            uncovered_ranges=[LineRange(start=a, end=b) for a, b in spans],
            never_executed=uncovered - span_lines(partly),
            partly_executed=span_lines(partly),
            partly_executed_ranges=[LineRange(start=a, end=b) for a, b in partly],
        )
        for path, status, changed_lines, measured, uncovered, spans, partly in rows
    ]
    return out, patch


def _partly_in_index(fd: FileData, ranges: list[tuple[int, int]], uncovered: Spans) -> Spans:
    """Of the `uncovered` lines, those where some entry ran: the index queried with its flags inverted marks
    as "uncovered" every line with an executed entry."""
    if not uncovered:
        return []
    starts, ends, flags, maxend = fd.line_index()
    inverted: Index = (starts, ends, bytes(0 if f else 1 for f in flags), maxend)
    executed = merge_spans([span for _m, u in query_index(inverted, ranges) for span in u])
    return intersect_spans(uncovered, executed)


def file_totals(files: dict[str, FileData], stale: Collection[str] = ()) -> tuple[Totals, list[FileCoverage]]:
    """Overall and per-file totals."""
    per: list[FileCoverage] = []
    by_unit: dict[str, UnitTotals] = {}
    for path, fd in files.items():
        m, c = fd.totals()
        unit = by_unit.setdefault(fd.unit, UnitTotals(unit=fd.unit))
        unit.measured += m
        unit.covered += c
        unit.files += 1
        per.append(
            FileCoverage(path=path, unit=fd.unit, measured=m, covered=c, percent=_pct(c, m), stale=path in stale)
        )
    units = sorted(by_unit.values(), key=lambda u: u.unit)
    for u in units:
        u.percent = _pct(u.covered, u.measured)
    if len(units) > 1:
        return Totals(unit="mixed", measured=None, covered=None, files=len(per), by_unit=units), per
    only = units[0] if units else UnitTotals(unit="lines")
    return Totals(
        unit=only.unit, measured=only.measured, covered=only.covered, percent=only.percent, files=len(per),
        by_unit=units,
    ), per  # fmt: skip


# -- functions ---------------------------------------------------------------------------------


def function_coverage(
    project_root: Path,
    files: dict[str, FileData],
    changed: dict[str, list[LineRange]],
    notes: list[str],
    stale: Collection[str] = (),
) -> tuple[list[UncoveredFunction], dict[str, dict[str, list[FuncInfo]]]]:
    """Uncovered functions of the changed and network/API files, ranked by risk; and the functions found.

    Files in `stale` are parsed (scenario suggestions name their functions) but not measured: their
    coverage data describes other line numbers.
    """
    # Test files (coverage.py measures them unless told not to) are no code under test.
    wanted = [p for p in files if (p in changed or _RISKY_PATH.search(p)) and not is_test_path(p)]
    wanted = sorted(wanted, key=lambda p: (p not in changed, p))[:FUNCTION_FILES_LIMIT]
    go_files = [p for p in wanted if p.endswith(".go") and not p.endswith("_test.go") and (project_root / p).is_file()]
    py_files = [p for p in wanted if p.endswith(".py") and (project_root / p).is_file()]
    found = {
        "go": go_functions(project_root, go_files, notes),
        "python": python_functions(project_root, py_files, notes),
    }
    out: list[UncoveredFunction] = []
    asked = [
        (path, funcs)
        for lang_funcs in found.values()
        for path, funcs in lang_funcs.items()
        if path in files and funcs and path not in stale
    ]
    answers = query_files([(files[path], [(f.line, f.end) for f in funcs]) for path, funcs in asked])
    for (path, funcs), spans in zip(asked, answers, strict=True):
        ranges = changed.get(path, [])
        for fn, (m_spans, u_spans) in zip(funcs, spans, strict=True):
            measured = span_lines(m_spans)
            if not measured:
                continue
            covered = measured - span_lines(u_spans)
            is_changed = any(r.start <= fn.end and r.end >= fn.line for r in ranges)
            if covered * 2 >= measured:
                continue
            reasons = [s for s in fn.signals if s in SIGNAL_WEIGHTS]
            risk = sum(SIGNAL_WEIGHTS[s] for s in reasons)
            if _RISKY_PATH.search(path):
                risk += 2
            if is_changed:
                risk += 6
                reasons.append("changed")
            if covered == 0:
                risk += 3
                reasons.append("never executed")
            out.append(
                UncoveredFunction(
                    file=path,
                    name=fn.name,
                    line=fn.line,
                    end_line=fn.end,
                    measured=measured,
                    covered=covered,
                    changed=is_changed,
                    risk=risk,
                    reasons=reasons,
                )
            )
    out.sort(key=lambda f: (-f.risk, -(f.measured - f.covered), f.file, f.line))
    return out, found


def functions_under_test(
    project_root: Path, notes: list[str], found: dict[str, dict[str, list[FuncInfo]]]
) -> dict[str, dict[str, list[FuncInfo]]]:
    """`found`, with the functions of non-test Go or Python files for a language no coverage pointed at (a Go
    profile says nothing of the Python client a pytest suite calls; scenario suggestions still name it)."""
    from .covmap import list_files

    out = dict(found)
    if out.get("go") and out.get("python"):
        return out  # both languages found through coverage: no walk of the tree
    all_files = [f for f in list_files(project_root) if not is_test_path(f)]
    if not out.get("go"):
        go = [f for f in all_files if f.endswith(".go")][:FUNCTION_FILES_LIMIT]
        out["go"] = go_functions(project_root, go, notes)
    if not out.get("python"):
        py = [f for f in all_files if f.endswith(".py") and "/" in f][:FUNCTION_FILES_LIMIT]
        out["python"] = python_functions(project_root, py, notes)
    return out


# -- the tool --------------------------------------------------------------------------------------


def find_coverage_gaps(
    project: Project,
    files: list[str] | None = None,
    *,
    run_id: str | None = None,
    base: str | None = None,
    count_unmeasured: bool = True,
    include_worktree: bool = True,
    all_files: bool = False,
    scenarios: bool = True,
) -> CoverageGaps:
    """Coverage totals, changed-line coverage, uncovered risky functions and scenario gaps."""
    notes: list[str] = []
    if files:
        paths = [project.resolve_path(f, what="coverage file", must_exist=True) for f in files]
        used_run = run_id
        if run_id:
            notes.append("coverage files were given, so --run was ignored")
            used_run = None
    elif run_id:
        paths, used_run = run_coverage(project, run_id), run_id
    else:
        used_run, paths = latest_run_coverage(project)
        notes.append(f"coverage from the latest run with coverage: {used_run}")
    matcher = PathMatcher(project.root)
    # The diff first: Go profiles are joined with it while they stream.
    changes = collect_changes(project, base, include_worktree=include_worktree)
    covers: list[set[str]] = []
    data, inputs, unmatched, load_notes = load_coverage(paths, matcher, project, changes.files, covers)
    notes.extend(load_notes)
    notes.extend(changes.notes)
    stale = find_stale(project, recorded_as(project, paths, used_run), covers, notes)
    changed_cov, patch = join_changes(
        data, changes.files, count_unmeasured=count_unmeasured, limit=CHANGED_LIMIT, stale=stale
    )
    totals, per_file = file_totals(data, stale)
    changed_paths = {c.path for c in changed_cov}
    per_file.sort(key=lambda f: (f.path not in changed_paths, f.percent if f.percent is not None else 101.0, f.path))
    changed_ranges = {cf.path: cf.ranges for cf in changes.files if cf.status != "deleted"}
    functions, found = function_coverage(project.root, data, changed_ranges, notes, stale)
    scen: list[ScenarioResult] = []
    if scenarios:
        scen = assess_scenarios(project.root, functions_under_test(project.root, notes, found))
    result = CoverageGaps(
        project_root=str(project.root),
        run_id=used_run,
        inputs=inputs,
        base=changes.base,
        base_label=changes.base_label,
        head_label=changes.head_label,
        totals=totals,
        files=per_file if all_files else per_file[:FILES_LIMIT],
        files_total=len(per_file),
        patch=patch,
        changed_files=changed_cov,
        uncovered_functions=functions[:FUNCTIONS_LIMIT],
        scenarios=scen,
        unmatched=unmatched[:50],
        notes=notes,
    )
    result.top_gaps = rank_gaps(result)
    return result


def describe_uncovered(cf: ChangedFileCoverage) -> str:
    """ "3 changed line(s) never executed, 2 partly executed": partly executed lines ran, but not every block on them
    (the line rule counts them uncovered; calling them never executed would send the reader after code that ran)."""
    parts = []
    if cf.never_executed:
        parts.append(f"{cf.never_executed} changed line(s) never executed")
    if cf.partly_executed:
        parts.append(
            f"{cf.partly_executed} {'' if parts else 'changed line(s) '}partly executed"
            " (a branch on the line never ran)"
        )
    return ", ".join(parts)


def rank_gaps(result: CoverageGaps) -> list[GapItem]:
    """The few gaps worth closing first: risky uncovered changed code, missing network scenarios, risky functions."""
    scored: list[tuple[int, str, str, str, str]] = []
    risky_fn = {(f.file, f.name): f for f in result.uncovered_functions}
    for cf in result.changed_files:
        if cf.status == "no-data":
            scored.append(
                (30, "changed-file-without-coverage", cf.path, cf.path, "changed source file the tests never load")
            )
        elif cf.status == "stale":
            why = "edited after its coverage was recorded; rerun the phase with coverage to measure it"
            scored.append((25, "stale-coverage", cf.path, cf.path, why))
        elif cf.uncovered:
            risk = 10 + min(cf.uncovered, 20) + (8 if _RISKY_PATH.search(cf.path) else 0)
            first = cf.uncovered_ranges[0]
            scored.append(
                (
                    risk,
                    "uncovered-changed-lines",
                    describe_uncovered(cf),
                    f"{cf.path}:{first.start}",
                    f"patch coverage of this file is {cf.percent}%",
                )  # fmt: skip
            )
    for f in result.uncovered_functions[:5]:
        scored.append((f.risk, "uncovered-function", f.name, f"{f.file}:{f.line}", ", ".join(f.reasons) or "uncovered"))
    weights = {"retry-exhaustion": 14, "rate-limiting": 14, "auth-failure": 12, "connection-timeout": 13,
               "context-cancellation": 12, "concurrency": 12, "server-errors": 11, "malformed-payload": 10,
               "intermittent-failure": 11, "connection-refused": 9}  # fmt: skip
    changed_dirs = {posixpath.dirname(c.path) for c in result.changed_files}
    changed_langs = {_SUITE_LANGUAGE.get(posixpath.splitext(c.path)[1]) for c in result.changed_files}
    for s in result.scenarios:
        if s.exercised or s.suggestion is None:
            continue
        risk = weights.get(s.scenario, 8)
        if s.suggestion.function and any(k[1] == s.suggestion.function for k in risky_fn):
            risk += 4
        target_dir = posixpath.dirname((s.suggestion.function_location or "").rsplit(":", 1)[0])
        if s.suggestion.function_location and target_dir in changed_dirs:
            risk += 3  # the suggested test exercises a changed package
        if result.changed_files and s.suite not in changed_langs:
            risk -= 20  # a suite of a language the change does not touch: after every gap of the change
        scored.append(
            (
                risk,
                "missing-scenario",
                f"{s.title} ({s.suite}): write {s.suggestion.test}",
                s.suggestion.file,
                s.suggestion.how,
            )
        )
    scored.sort(key=lambda x: -x[0])
    return [
        GapItem(rank=i + 1, kind=k, what=w, where=loc, why=why)
        for i, (_, k, w, loc, why) in enumerate(scored[:TOP_GAPS])
    ]
