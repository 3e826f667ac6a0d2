"""Read JUnit XML from any common producer into the shared `TestReport`, streaming and hardened.

The public entry points live here: `parse_junit_files` reads a list of files into one report (a file that
fails is reported in its `JUnitFile` and never stops the others), `parse_junit_paths` first resolves files
and globs inside a project, and `run_junit_paths` lists the files a run left in its run folder. The work is
split by job:

- `junit_prolog`: everything before the root element is checked before lxml sees a byte, and a streaming
  byte filter replaces the characters XML 1.0 forbids;
- `junit_target`: one file is fed to lxml through a parser target that builds no tree (why not
  `iterparse`, with the measurements, is written there);
- `junit_merge`: the testcases of every file are kept in columns, reruns become attempts, and the report
  is built;
- `junit_dialects`: what each producer writes differently.

Hardening, in order: (1) the prolog scan refuses entity declarations and non-JUnit roots and (2) a byte
filter replaces forbidden characters rather than `recover=True` (`junit_prolog`); (3) the parser never
expands entities or loads anything and (4) text per element is bounded (`junit_target`); (5) location
patterns run on bounded text and cannot backtrack quadratically (`junit_dialects`).

What junitparser is used for: not for reading, and by no module at run time. `JUnitXml.fromfile`
builds the whole tree (peak memory about 3x ours on 100k cases, and it grows with the file), and it has
no notion of reruns, Surefire `flakyFailure`/`rerunFailure`, Bazel suite-level output or trace
locations. It is the reference the tests cross-check our per-file counts against on every golden
fixture, and the speed and memory anchor of `bench/bench_junit.py`.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from .errors import JUnitError, NotFoundError
from .junit_merge import Accumulator
from .junit_target import read_file
from .models import Failure, Model, TestReport

if TYPE_CHECKING:
    from .repo import Project


class JUnitFile(Model):
    """One file that was read (or could not be)."""

    path: str
    """Relative to the project root when one was given."""
    dialect: str | None = None
    """The producer recognised: pytest-xunit1/2, go-junit-report, gotestsum, surefire, gradle, jest-junit, ..."""
    tests: int = 0
    """Testcase elements read from this file (attempts, before reruns are merged)."""
    suites: int = 0
    error: str | None = None
    notes: list[str] = Field(default_factory=list)


class JUnitParseResult(Model):
    """The merged report of a set of JUnit files, with what happened to each file."""

    report: TestReport
    files: list[JUnitFile] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    """One message per file that could not be read (the others are still in the report)."""
    flaky: list[Failure] = Field(default_factory=list)
    """Tests that failed and then passed: the failing attempt's details."""
    failures_omitted: int = 0
    """Failures left out of `report.failures` by `max_failures` (counts stay complete)."""


# -- public API ------------------------------------------------------------------------------


def parse_junit_files(
    paths: Sequence[Path],
    *,
    root: Path | None = None,
    keep_tests: bool = True,
    max_failures: int | None = None,
) -> JUnitParseResult:
    """Read JUnit files into one report; a file that fails is reported and never stops the others."""
    root = root.resolve() if root is not None else None
    acc = Accumulator(root)
    # Reading allocates many objects but makes no garbage cycles worth collecting mid-read; pausing the cyclic
    # collector spares it repeated scans of the growing test columns (about 5% of the time on 100k testcases).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse(paths, acc, root, keep_tests=keep_tests, max_failures=max_failures)
    finally:
        if gc_was_enabled:
            gc.enable()


def _parse(
    paths: Sequence[Path], acc: Accumulator, root: Path | None, *, keep_tests: bool, max_failures: int | None
) -> JUnitParseResult:
    files: list[JUnitFile] = []
    errors: list[str] = []
    for path in paths:
        entry = JUnitFile(path=_display(path, root))
        files.append(entry)
        try:
            read_file(Path(path), entry, acc)
        except JUnitError as exc:
            entry.error = str(exc)
            errors.append(str(exc))
    report, flaky, omitted = acc.finish(keep_tests=keep_tests, max_failures=max_failures)
    return JUnitParseResult(report=report, files=files, errors=errors, flaky=flaky, failures_omitted=omitted)


_GLOB_CHARS = re.compile(r"[*?\[]")


def parse_junit_paths(
    project: Project,
    patterns: list[str],
    *,
    keep_tests: bool = True,
    max_failures: int | None = None,
) -> JUnitParseResult:
    """Resolve files and globs inside the project (escapes refused, empty globs an error) and read them."""
    if not patterns:
        raise NotFoundError("no JUnit paths given; pass files or globs such as 'build/test-results/**/*.xml'")
    found: dict[Path, None] = {}
    for pattern in patterns:
        anchored = project.resolve_path(pattern, what="JUnit path")
        if not _GLOB_CHARS.search(pattern):
            found[anchored] = None  # a missing literal file is reported per file, like a corrupt one
            continue
        rel = anchored.relative_to(project.root).as_posix() if anchored != project.root else "."
        matches = sorted(m for m in project.root.glob(rel) if m.is_file())
        if not matches:
            raise NotFoundError(
                f"glob {pattern!r} matches no file under {project.root}; check the pattern "
                f"(use '**/' to search folders, e.g. 'reports/**/*.xml')"
            )
        for match in matches:
            found[project.resolve_path(str(match), what="JUnit path")] = None
    return parse_junit_files(list(found), root=project.root, keep_tests=keep_tests, max_failures=max_failures)


def run_junit_paths(project: Project, run_id: str) -> list[Path]:
    """The JUnit files a run left in its run folder (`.itest/runs/<id>/*.xml`)."""
    if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith((".", "-")):
        raise NotFoundError(f"run id {run_id!r} is not valid; pass a run id as a run_phase result shows it")
    run_dir = project.root / ".itest" / "runs" / run_id
    if not run_dir.is_dir():
        raise NotFoundError(f"no run {run_id!r}: {project.rel(run_dir)} does not exist; run a phase first")
    xml = sorted(p for p in run_dir.glob("*.xml") if p.is_file())
    if not xml:
        raise NotFoundError(f"run {run_id!r} left no JUnit XML in {project.rel(run_dir)}")
    return xml


def _display(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return Path(path).resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return Path(path).as_posix()
