"""The lines of a few folders' files that hold one of some literals, from one `git grep`.

assess_changes reads more than the changed lines for its `whole_file` rules: a changed file of a
GitHub API client is GitHub API code even when its changed lines name nothing of GitHub. One `git grep`
answers for every folder at once, in the working tree (untracked files included) or in a commit's tree,
and reads only the files git knows (no build output, no vendored trees the caller leaves out).
"""

from __future__ import annotations

from dataclasses import dataclass

from .process import run_capture
from .repo import Project

GREP_TIMEOUT_S = 60.0
MAX_LINE_CHARS = 400
"""A longer matching line is cut (a minified file's single line would otherwise come back whole)."""
SKIPPED_DIRS = ("vendor", "testdata", "node_modules")


@dataclass(frozen=True, slots=True)
class GrepLine:
    path: str
    """Project-relative."""
    line: int
    text: str


def grep_folders(project: Project, folders: list[str], needles: list[str], rev: str | None) -> list[GrepLine]:
    """Lines holding one of `needles` (case-insensitive) in the files directly inside `folders`.

    `rev` None reads the working tree; otherwise the tree of that commit. Folders are project-relative
    ("" is the project folder itself); subfolders are not read. A git failure returns no lines: the
    caller's answer is then what the changed lines alone say.
    """
    if not folders or not needles:
        return []
    specs = [f":(glob){folder}/*" if folder else ":(glob)*" for folder in sorted(set(folders))]
    specs += [f":(exclude,glob)**/{name}/**" for name in SKIPPED_DIRS]
    argv = ["git", "grep", "-I", "-n", "-z", "-i", "-F", "--no-color"]
    argv += ["--untracked"] if rev is None else []
    for needle in needles:
        argv += ["-e", needle]
    argv += ([rev] if rev is not None else []) + ["--", *specs]
    result = run_capture(argv, cwd=project.root, timeout=GREP_TIMEOUT_S)
    if result.returncode != 0:  # 1: nothing matched; anything else: git could not tell
        return []
    prefix = f"{rev}:" if rev is not None else ""
    found: list[GrepLine] = []
    for record in result.stdout.splitlines():
        path, _, rest = record.partition("\0")
        number, _, text = rest.partition("\0")
        if not number.isdigit():
            continue
        found.append(GrepLine(path.removeprefix(prefix), int(number), text[:MAX_LINE_CHARS]))
    return found
