"""Which covered source files changed after their coverage was recorded.

A coverage file maps what ran to line numbers of the source as it was when the tests ran; applied
to an edited file it marks the wrong lines (three comment lines inserted at the top shift every
uncovered range by three). A run records its commit and whether the tree was dirty: for a clean run
a file is stale when it differs now from that commit (git decides, so a checkout that only touched
modification times does not count). For a dirty run, a commit that no longer exists, or a coverage
file given by hand, a file is stale when it was modified after the coverage file was written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import ItestError
from .repo import Project


@dataclass(frozen=True)
class Recorded:
    """When and from what one coverage file was recorded."""

    coverage_file: Path
    run_id: str | None = None
    commit: str | None = None
    dirty: bool = False


def stale_files(project: Project, recorded: Recorded, paths: Iterable[str]) -> dict[str, str]:
    """The project-relative `paths` that changed after `recorded` was written, each with why (for a note)."""
    wanted = set(paths)
    if not wanted:
        return {}
    if recorded.commit and not recorded.dirty:
        differing = _differing_from(project, recorded.commit)
        if differing is not None:
            why = f"differs from commit {recorded.commit[:12]} that run {recorded.run_id or '?'} measured"
            return {p: why for p in sorted(wanted & differing)}
    try:
        written = recorded.coverage_file.stat().st_mtime_ns
    except OSError:
        return {}
    shown = project.rel(recorded.coverage_file)
    out: dict[str, str] = {}
    for rel in sorted(wanted):
        try:
            modified = (project.root / rel).stat().st_mtime_ns
        except OSError:
            continue
        if modified > written:
            out[rel] = f"modified after {shown} was written"
    return out


def _differing_from(project: Project, commit: str) -> set[str] | None:
    """Project files whose working-tree content differs from `commit` (untracked ones included); None when git
    cannot tell (the commit is gone, e.g. after a rebase and gc)."""
    try:
        project.git("cat-file", "-e", f"{commit}^{{commit}}")
        changed = project.git("diff", "--name-only", "-z", "--no-renames", commit, "--", project.git_prefix or ".")
        untracked = project.git("ls-files", "-z", "--others", "--exclude-standard", "--", project.git_prefix or ".")
    except ItestError:
        return None
    names = (n for n in (changed + untracked).split("\0") if n)
    return {p for p in (project.git_path_to_project(n) for n in names) if p is not None}
