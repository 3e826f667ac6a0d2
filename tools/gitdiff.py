"""What changed between two revisions (and in the working tree), parsed from git's own `-U0` diff.

`collect_changes` picks the range (the merge-base with the default branch unless
told otherwise, saying which and why) and streams one `git diff --raw -U0`: the raw
records give status, modes and renames; the hunk headers give the changed line
ranges and the line counts (exactly what `--numstat` counts, without git diffing
every file a second time). GitPython's `create_patch` is not used: measured 14×
slower, and it drops `-U0` silently (DESIGN.md).

Memory stays bounded on huge diffs: the patch is read line by line (a single line
is read in pieces), ranges per file are capped (then coarsened), and the hunk text
that `scan_changes` keeps for the change rules is capped per file and per line.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from .errors import GitError, InputError
from .models import Model
from .process import StreamResult, run_capture, stream_lines
from .repo import Project, ensure_not_option

STATUSES = ("added", "modified", "deleted", "renamed", "copied", "binary", "submodule", "untracked")
RANGES_PER_FILE = 20_000
"""Beyond this many ranges in one file, further changes extend the last range (noted)."""
KEPT_LINES_PER_FILE = 4_000
KEPT_LINE_CHARS = 400
READ_PIECE = 1 << 20
"""A patch line longer than this is read in pieces (a minified 50 MB line never sits whole in memory)."""
BINARY_SNIFF = 8000
DIFF_TIMEOUT_S = 300.0


M = TypeVar("M", bound=BaseModel)
_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {}
_new = object.__new__
_setattr = object.__setattr__


def trusted(cls: type[M], **values: Any) -> M:
    """A model built from values this code produced itself (types already right), skipping validation.

    Every field must be given. It ends as pydantic's `model_construct` ends; `model_construct` itself
    walks aliases and defaults in Python and measured slower than validating these small models.
    """
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(cls.model_fields)
    if len(values) != len(names):
        raise TypeError(f"{cls.__name__}: give every field ({', '.join(names)}), got {', '.join(values)}")
    model = _new(cls)
    # Field order matters to repr and iteration; call sites pass fields in order, so this is rarely a copy.
    _setattr(model, "__dict__", values if tuple(values) == names else {name: values[name] for name in names})
    _setattr(model, "__pydantic_fields_set__", set(names))
    _setattr(model, "__pydantic_extra__", None)
    _setattr(model, "__pydantic_private__", None)
    return model


class LineRange(Model):
    """Inclusive, 1-based line range in the new version of a file."""

    start: int
    end: int


def line_range(start: int, end: int) -> LineRange:
    """`trusted(LineRange, ...)` for the most numerous model here (thousands per large diff), spelled out."""
    model = _new(LineRange)
    _setattr(model, "__dict__", {"start": start, "end": end})
    _setattr(model, "__pydantic_fields_set__", {"start", "end"})
    _setattr(model, "__pydantic_extra__", None)
    _setattr(model, "__pydantic_private__", None)
    return model


class ChangedFile(Model):
    """One changed file: status, counts and the changed line ranges of its new version."""

    path: str
    """Project-relative POSIX path (the new path for renames, the old one for deletions)."""
    old_path: str | None = None
    status: str
    """One of: added, modified, deleted, renamed, copied, binary (a modified binary), submodule, untracked."""
    added: int = 0
    removed: int = 0
    binary: bool = False
    ranges: list[LineRange] = Field(default_factory=list)


class ChangeSet(Model):
    """The files changed between `base` and `head` (plus the working tree when included)."""

    base: str | None
    """Full sha of the base commit; None means the empty tree (the first commit, or no commits yet)."""
    base_label: str
    head: str
    """Full sha of the head commit ("" in a repository without commits)."""
    head_label: str
    base_reason: str
    include_worktree: bool
    files: list[ChangedFile] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


@dataclass(slots=True)
class DiffLine:
    """One added ('+', new-file line number) or removed ('-', old-file line number) line of a hunk."""

    kind: str
    line: int
    text: str


@dataclass
class FileLines:
    """The hunk lines kept for one file (bounded; `truncated` says when some were dropped)."""

    lines: list[DiffLine] = field(default_factory=list)
    truncated: bool = False


FileCallback = Callable[[str, "FileLines | None"], None]
"""Called with a project-relative path and its kept lines (None: binary or submodule) as its patch ends."""


@dataclass
class _Range:
    base: str | None
    base_label: str
    base_reason: str
    head: str
    head_label: str
    worktree: bool
    notes: list[str]


# -- public entry points ----------------------------------------------------------------------


def collect_changes(
    project: Project, base: str | None = None, head: str | None = None, *, include_worktree: bool = True
) -> ChangeSet:
    """The files changed between `base` (default: merge-base with the default branch) and `head` (default HEAD)."""
    return scan_changes(project, base, head, include_worktree=include_worktree, keep_lines=False)[0]


def scan_changes(
    project: Project,
    base: str | None = None,
    head: str | None = None,
    *,
    include_worktree: bool = True,
    keep_lines: bool = True,
    on_file: FileCallback | None = None,
) -> tuple[ChangeSet, dict[str, FileLines]]:
    """`collect_changes` plus the (bounded) added/removed hunk lines per project-relative path.

    `on_file(path, lines)` is called as each file's patch ends (lines None for a binary file or a
    submodule), so a caller can work on it while git is still diffing the next files; it may be
    called twice for one path (a type change comes as two patches), the last call with every line.
    """
    rng = resolve_range(project, base, head, include_worktree=include_worktree)
    files, kept, notes = _diff(project, rng, keep_lines=keep_lines, on_file=on_file)
    all_notes = rng.notes + notes
    if not files:
        what = f"{rng.base_label} and {rng.head_label}"
        where = f" under {project.git_prefix}/" if project.git_prefix else ""
        all_notes.append(f"no changes: {what} have the same content{where}")
    changeset = ChangeSet(
        base=rng.base,
        base_label=rng.base_label,
        head=rng.head,
        head_label=rng.head_label,
        base_reason=rng.base_reason,
        include_worktree=rng.worktree,
        files=files,
        notes=all_notes,
    )
    return changeset, kept


# -- choosing the range -----------------------------------------------------------------------


def _short(sha: str) -> str:
    return sha[:12]


def _rev(project: Project, rev: str) -> str | None:
    result = run_capture(["git", "rev-parse", "--verify", "-q", rev], cwd=project.git_root, timeout=30)
    sha = result.stdout.strip()
    return sha if result.returncode == 0 and sha else None


def _revs(project: Project, revs: list[str]) -> dict[str, str]:
    """Full shas of several revisions in one git run; {} when any of them does not resolve (ask one by one)."""
    result = run_capture(["git", "rev-parse", "--revs-only", *revs, "--"], cwd=project.git_root, timeout=30)
    shas = result.stdout.split()
    if result.returncode != 0 or len(shas) != len(revs):
        return {}
    if not all(len(sha) in (40, 64) and all(c in "0123456789abcdef" for c in sha) for sha in shas):
        return {}
    return dict(zip(revs, shas, strict=True))


def ref_names(project: Project) -> list[str]:
    """Short names of local branches, remote branches and tags."""
    out = project.git("for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/remotes", "refs/tags")
    return [line for line in out.splitlines() if line and not line.endswith("/HEAD")]


def resolve_commit(project: Project, what: str, rev: str, known: dict[str, str] | None = None) -> str:
    """The full sha of commit `rev`; otherwise an InputError naming it and listing nearby branch names."""
    ensure_not_option(what, rev)
    if not rev.strip() or "\x00" in rev:
        raise InputError(f"{what} {rev!r} is empty; pass a branch, tag or commit sha")
    sha = (known or {}).get(f"{rev}^{{commit}}") or _rev(project, f"{rev}^{{commit}}")
    if sha:
        return sha
    if _rev(project, rev):
        kind = project.git("cat-file", "-t", rev, check=False).strip()
        if not kind:  # rev-parse takes any full-length hex as an object name without looking it up
            raise InputError(
                f"{what}: commit {rev} is not in this clone; fetch it (a shallow CI clone may need "
                f"`git fetch --deepen=<n>` or a fetch of the base branch), or pass a branch, tag or sha it has"
            )
        raise InputError(f"{what} {rev!r} names a {kind}, not a commit; pass a branch, tag or commit sha")
    names = ref_names(project)
    near = difflib.get_close_matches(rev, names, n=5, cutoff=0.5)
    if near:
        hint = "nearby branch names: " + ", ".join(near)
    elif names:
        hint = "known branches: " + ", ".join(names[:10]) + (" …" if len(names) > 10 else "")
    else:
        hint = "the repository has no branches yet"
    raise InputError(f"{what} {rev!r} is not a commit in {project.git_root}; {hint}; pass a branch, tag or commit sha")


def default_branch(project: Project) -> str | None:
    """`origin/HEAD`'s target, else `main`, `master`, `origin/main`, `origin/master` — the first that exists."""
    out = project.git(
        "for-each-ref",
        "--format=%(refname)%09%(symref)",
        "refs/heads/main",
        "refs/heads/master",
        "refs/remotes/origin",
        check=False,
    )
    refs: dict[str, str] = {}
    for line in out.splitlines():
        name, _, symref = line.partition("\t")
        refs[name] = symref
    target = refs.get("refs/remotes/origin/HEAD")
    if target and target in refs:
        return target.removeprefix("refs/remotes/")
    for candidate in ("refs/heads/main", "refs/heads/master", "refs/remotes/origin/main", "refs/remotes/origin/master"):
        if candidate in refs:
            return candidate.removeprefix("refs/heads/").removeprefix("refs/remotes/")
    return None


def _is_shallow(project: Project) -> bool:
    return project.git("rev-parse", "--is-shallow-repository", check=False).strip() == "true"


def _parent_or_empty(project: Project, head: str, why: str, notes: list[str]) -> tuple[str | None, str, str]:
    """(base sha, label, reason) for HEAD~1, or the empty tree when `head` has no parent."""
    parent = _rev(project, f"{head}~1^{{commit}}")
    if parent:
        return parent, "HEAD~1", f"HEAD~1 ({why})"
    if _is_shallow(project):
        notes.append(
            f"shallow clone: the parent of {_short(head)} is not in the clone, so every file at HEAD counts "
            "as added; fetch more history (git fetch --deepen=50 or --unshallow) for a narrower range"
        )
        return None, "empty tree", f"the empty tree ({why}; the parent is missing from this shallow clone)"
    return None, "empty tree", f"the empty tree ({why}; HEAD is the first commit)"


def resolve_range(project: Project, base: str | None, head: str | None, *, include_worktree: bool) -> _Range:
    """Decide base, head and whether the working tree counts, with labels and the reason for the base."""
    notes: list[str] = []
    if base is not None:
        ensure_not_option("base", base)
    if head is not None:
        ensure_not_option("head", head)
    # One git run for HEAD and the given revisions; anything odd falls back to asking one by one (clear errors).
    wanted = ["HEAD"] + [
        f"{rev}^{{commit}}" for rev in (head, base) if rev is not None and rev != "HEAD" and rev.strip()
    ]
    known = _revs(project, wanted) if len(wanted) > 1 and not any("\x00" in w for w in wanted) else {}
    head_commit = known["HEAD"] if known else project.head_commit()
    if head is None or head == "HEAD":
        if head_commit is None:
            if base is not None:
                raise InputError(f"base {base!r} given, but the repository has no commits yet; commit first")
            notes.append("the repository has no commits yet: everything in the working tree counts as added")
            return _Range(None, "empty tree", "the empty tree (no commits yet)", "", "(no commits yet)", True, notes)
        head_sha = head_commit
        branch = project.git("symbolic-ref", "-q", "--short", "HEAD", check=False).strip()
        if branch:
            head_label = f"HEAD ({branch})"
        else:
            head_label = f"HEAD (detached at {_short(head_sha)})"
            notes.append(f"HEAD is detached at {_short(head_sha)}; the range ends there")
    else:
        head_sha = resolve_commit(project, "head", head, known)
        head_label = head
    worktree = include_worktree and head_sha == head_commit
    if include_worktree and not worktree:
        notes.append(f"working-tree changes are not included: head {head_label!r} is not the checked-out HEAD")
    if worktree:
        head_label += " + working tree"

    if base is not None:
        base_sha = resolve_commit(project, "base", base, known)
        return _Range(base_sha, base, f"{base} (given)", head_sha, head_label, worktree, notes)

    branch_name = default_branch(project)
    if branch_name is None:
        sha, label, reason = _parent_or_empty(
            project, head_sha, "no default branch found: no origin/HEAD, main or master", notes
        )
        return _Range(sha, label, reason, head_sha, head_label, worktree, notes)
    merge_base = project.git("merge-base", branch_name, head_sha, check=False).strip()
    if not merge_base:
        if _is_shallow(project):
            notes.append(
                f"shallow clone: the merge-base of {branch_name} and {_short(head_sha)} is missing; "
                "fell back to HEAD~1 — fetch more history (git fetch --deepen=100 or --unshallow) for the full range"
            )
            why = f"merge-base with {branch_name} missing in this shallow clone"
        else:
            notes.append(f"{branch_name} and {_short(head_sha)} share no history; fell back to HEAD~1")
            why = f"no merge-base with {branch_name}"
        sha, label, reason = _parent_or_empty(project, head_sha, why, notes)
        return _Range(sha, label, reason, head_sha, head_label, worktree, notes)
    if merge_base != head_sha:
        reason = f"merge-base with {branch_name} ({_short(merge_base)})"
        return _Range(merge_base, f"merge-base({branch_name})", reason, head_sha, head_label, worktree, notes)
    # HEAD is on the default branch itself (its tip, or a commit in its history, e.g. a detached checkout of
    # master~2): its own uncommitted work, else its last commit.
    where = _place_on_branch(project, head_sha, branch_name)
    if worktree and project.is_dirty():
        reason = f"HEAD ({where}: only uncommitted changes)"
        return _Range(head_sha, "HEAD", reason, head_sha, head_label, worktree, notes)
    sha, label, reason = _parent_or_empty(project, head_sha, where, notes)
    return _Range(sha, label, reason, head_sha, head_label, worktree, notes)


def _place_on_branch(project: Project, head_sha: str, branch_name: str) -> str:
    """Where HEAD, an ancestor of `branch_name` or its tip, sits on it, in words."""
    tip = _rev(project, f"{branch_name}^{{commit}}")
    if tip is None or tip == head_sha:
        return f"HEAD is the tip of the default branch {branch_name}"
    behind = project.git("rev-list", "--count", f"{head_sha}..{tip}", check=False).strip()
    count = f"{behind} commit{'' if behind == '1' else 's'}" if behind.isdigit() else "some commits"
    return f"HEAD is {count} behind the tip of the default branch {branch_name}, in its history"


# -- running and parsing the diff -------------------------------------------------------------

_DIFF_OPTS = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--find-renames",
    "--no-relative",
    "--submodule=short",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)


def empty_tree(project: Project) -> str:
    """The id of the empty tree in this repository's hash (sha1 or sha256)."""
    result = run_capture(["git", "hash-object", "-t", "tree", "--stdin"], cwd=project.git_root, stdin_data=b"")
    if result.returncode != 0:
        raise GitError(f"git hash-object failed in {project.git_root}: {result.stderr.strip()[-300:]}")
    return result.stdout.strip()


def _diff_args(project: Project, rng: _Range) -> tuple[list[str], list[str]]:
    """(revision arguments, pathspec) for both diff invocations."""
    base = rng.base or empty_tree(project)
    revs = [base] if rng.worktree else [base, rng.head]
    pathspec = ["--", project.git_prefix] if project.git_prefix else []
    return revs, pathspec


def _diff(
    project: Project, rng: _Range, *, keep_lines: bool, on_file: FileCallback | None = None
) -> tuple[list[ChangedFile], dict[str, FileLines], list[str]]:
    notes: list[str] = []
    revs, pathspec = _diff_args(project, rng)
    # One git run gives both the raw records (status, modes, renames) and the -U0 patch; the line counts
    # come from the hunk headers (what --numstat counts), so git diffs every file once, not twice.
    args = ["--literal-pathspecs", "-c", "core.quotePath=true", "diff", *_DIFF_OPTS, "--raw", "-U0", *revs, *pathspec]
    to_project = _path_mapper(project)
    done: Callable[[str, _Parsed, bool], None] | None = None
    if on_file is not None and keep_lines:
        callback = on_file

        def done(git_path: str, parsed: _Parsed, submodule: bool) -> None:
            path = to_project(git_path)
            if path is not None:
                callback(path, None if submodule or parsed.binary else parsed.kept)

    entries, hunks = _stream_diff(project, args, keep_lines=keep_lines, on_file=done)

    files: list[ChangedFile] = []
    kept: dict[str, FileLines] = {}
    for entry in entries:
        path = to_project(entry.path)
        if path is None:
            continue
        old = to_project(entry.old_path) if entry.old_path else None
        parsed = hunks.get(entry.path)
        is_sub = entry.submodule
        ranges = [] if (is_sub or entry.status == "deleted" or parsed is None) else parsed.ranges
        if parsed is not None and parsed.coarsened:
            notes.append(
                f"{path}: more than {RANGES_PER_FILE} changed ranges; the last range was widened to cover the rest"
            )
        binary = parsed is not None and parsed.binary
        status = "submodule" if is_sub else entry.status
        if binary and status == "modified":
            status = "binary"
        files.append(
            trusted(
                ChangedFile,
                path=path,
                old_path=old if entry.old_path else None,
                status=status,
                added=0 if parsed is None or binary else parsed.added,
                removed=0 if parsed is None or binary else parsed.removed,
                binary=binary,
                ranges=[line_range(s, e) for s, e in ranges],
            )
        )
        if keep_lines and parsed is not None and not is_sub:
            kept[path] = parsed.kept
    if rng.worktree:
        _add_untracked(project, files, kept, keep_lines=keep_lines)
    files.sort(key=lambda f: f.path)
    return files, kept, notes


def _path_mapper(project: Project) -> Callable[[str], str | None]:
    """`Project.git_path_to_project` with the prefix computed once (it is called per file)."""
    prefix = project.git_prefix
    if not prefix:
        return lambda path: path
    start = prefix + "/"

    def mapper(path: str) -> str | None:
        if path == prefix:
            return "."
        return path[len(start) :] if path.startswith(start) else None

    return mapper


@dataclass
class _Entry:
    status: str
    path: str
    old_path: str | None
    submodule: bool


_RAW_STATUS = {"A": "added", "M": "modified", "D": "deleted", "R": "renamed", "C": "copied", "T": "modified"}


def _parse_raw(line: str) -> _Entry:
    """One `--raw` record: `:old_mode new_mode old_sha new_sha STATUS<TAB>path[<TAB>new path]` (paths C-quoted)."""
    header, _, paths = line.partition("\t")
    fields = header[1:].split()
    old_mode, new_mode, letter = fields[0], fields[1], fields[4]
    code = letter[:1]
    if code in ("R", "C"):
        old_path, _, path = paths.partition("\t")
        old: str | None = _c_unquote(old_path)
    else:
        path, old = paths, None
    status = _RAW_STATUS.get(code, "modified")
    return _Entry(status, _c_unquote(path), old, submodule="160000" in (old_mode, new_mode))


@dataclass(slots=True)
class _Parsed:
    ranges: list[tuple[int, int]] = field(default_factory=list)
    kept: FileLines = field(default_factory=lambda: FileLines())
    coarsened: bool = False
    added: int = 0
    removed: int = 0
    binary: bool = False


def _c_unquote(text: str) -> str:
    """Undo git's C-style quoting of a path ("a\\tb", octal bytes)."""
    if not (len(text) >= 2 and text[0] == '"' and text[-1] == '"'):
        return text
    body = text[1:-1]
    out = bytearray()
    escapes = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in escapes:
                out.append(escapes[nxt])
                i += 2
                continue
            if nxt.isdigit() and i + 3 < len(body) + 1:
                out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
        out.extend(ch.encode("utf-8"))
        i += 1
    return out.decode("utf-8", errors="replace")


def _header_path(rest: str) -> str:
    """The (b-side) path from the part of `diff --git` after the command, for same-name entries."""
    if rest.startswith('"'):
        # "a/x" "b/y" or a/x "b/y": the last quoted token is the b side.
        idx = rest.rfind(' "')
        return _c_unquote(rest[idx + 1 :] if idx >= 0 else rest).removeprefix("b/")
    if rest.endswith('"'):
        idx = rest.rfind(' "')
        return _c_unquote(rest[idx + 1 :]).removeprefix("b/")
    # Unquoted "a/P b/P": both halves are equal for every entry this is used for.
    half = (len(rest) - 5) // 2
    return rest[2 : 2 + half]


def _hunk_numbers(line: bytes) -> tuple[int, int, int, int]:
    """(old start, old count, new start, new count) from `@@ -a[,b] +c[,d] @@`."""
    parts = line.split(b" ", 3)
    o_start, _, o_count = parts[1][1:].partition(b",")
    n_start, _, n_count = parts[2][1:].partition(b",")
    return int(o_start), int(o_count) if o_count else 1, int(n_start), int(n_count) if n_count else 1


def _stream_diff(
    project: Project,
    args: list[str],
    *,
    keep_lines: bool,
    on_file: Callable[[str, _Parsed, bool], None] | None = None,
) -> tuple[list[_Entry], dict[str, _Parsed]]:
    """Stream `git diff --raw -U0`: the raw records, then per git path the counts, new-side ranges and kept lines."""
    result = StreamResult()
    entries: list[_Entry] = []
    submodules: set[str] = set()
    parsed: dict[str, _Parsed] = {}
    current: _Parsed | None = None
    current_kept = FileLines()
    kept_lines: list[DiffLine] = current_kept.lines
    keep = False  # keep this file's lines (keep_lines and under the per-file cap)
    capped = False  # keep_lines, but this file is at the cap: a further line marks it truncated
    header_path: str | None = None
    in_header = False
    in_raw = True
    old_left = new_left = 0
    old_no = new_no = 0
    continuing = False  # inside a patch line longer than READ_PIECE
    for raw in stream_lines(
        ["git", *args], cwd=project.git_root, timeout=DIFF_TIMEOUT_S, result=result, piece=READ_PIECE
    ):
        if continuing:
            continuing = raw[-1] != 10  # no "\n" yet: still inside an over-long line
            continue
        continuing = raw[-1] != 10
        first = raw[0]
        if old_left or new_left:
            if first == 43:  # "+"
                if keep:
                    text = raw[1:_KEEP_BYTES].decode("utf-8", errors="replace").rstrip("\r\n")
                    kept_lines.append(DiffLine("+", new_no, text[:KEPT_LINE_CHARS]))
                    keep = len(kept_lines) < KEPT_LINES_PER_FILE
                    capped = not keep
                elif capped:
                    current_kept.truncated = True
                new_no += 1
                new_left -= 1
                continue
            if first == 45:  # "-"
                if keep:
                    text = raw[1:_KEEP_BYTES].decode("utf-8", errors="replace").rstrip("\r\n")
                    kept_lines.append(DiffLine("-", old_no, text[:KEPT_LINE_CHARS]))
                    keep = len(kept_lines) < KEPT_LINES_PER_FILE
                    capped = not keep
                elif capped:
                    current_kept.truncated = True
                old_no += 1
                old_left -= 1
                continue
            if first == 32:  # " " (context; -U0 has none, but count it right)
                old_no += 1
                new_no += 1
                old_left -= 1
                new_left -= 1
                continue
        if first == 64 and current is not None and raw.startswith(b"@@ "):  # "@"
            in_header = False
            o_start, o_count, n_start, n_count = _hunk_numbers(raw)
            old_left, new_left = o_count, n_count
            old_no, new_no = o_start, n_start
            current.removed += o_count
            current.added += n_count
            if n_count > 0:
                _add_range(current, n_start, n_start + n_count - 1)
            continue
        if in_raw:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if line.startswith(":"):
                entries.append(_parse_raw(line))
                continue
            in_raw = False
            submodules = {e.path for e in entries if e.submodule}
            if not line:
                continue  # the blank line between the raw records and the patch
        if first == 100 and raw.startswith(b"diff --git "):  # "d"
            if on_file is not None and current is not None and header_path is not None:
                on_file(header_path, current, header_path in submodules)
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            header_path = _header_path(line[len("diff --git ") :])
            # A type change comes as two patches (delete, create) of one path: they add up.
            current = parsed.get(header_path) or _Parsed()
            parsed[header_path] = current
            current_kept = current.kept
            kept_lines = current_kept.lines
            keep = keep_lines and len(kept_lines) < KEPT_LINES_PER_FILE
            capped = keep_lines and not keep
            in_header = True
            old_left = new_left = 0
            continue
        # Header lines that matter start with "+++", "Binary", "rename to", "copy to"; skip the rest undecoded.
        if current is None or not in_header or first not in _HEADER_FIRST:
            continue
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        if line.startswith("Binary files ") and line.endswith(" differ"):
            current.binary = True
            continue
        new_path = None
        if line.startswith("rename to "):
            new_path = _c_unquote(line[len("rename to ") :])
        elif line.startswith("copy to "):
            new_path = _c_unquote(line[len("copy to ") :])
        elif line.startswith("+++ b/") or line.startswith('+++ "b/'):
            # git ends the name with a TAB when it holds a space.
            new_path = _c_unquote(line[4:].rstrip("\t")).removeprefix("b/")
        if new_path is not None and new_path != header_path:
            if header_path is not None and parsed.get(header_path) is current:
                del parsed[header_path]
            parsed[new_path] = current
            header_path = new_path
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
        raise GitError(f"git diff -U0 failed in {project.git_root}: {detail}")
    if on_file is not None and current is not None and header_path is not None:
        on_file(header_path, current, header_path in submodules)
    return entries, parsed


_HEADER_FIRST = frozenset(b"+Brc")
_KEEP_BYTES = 1 + KEPT_LINE_CHARS * 4
"""Bytes of a patch line decoded for the rules: enough for KEPT_LINE_CHARS characters of UTF-8."""


def _add_range(current: _Parsed, start: int, end: int) -> None:
    ranges = current.ranges
    if ranges and start <= ranges[-1][1] + 1:
        ranges[-1] = (ranges[-1][0], max(end, ranges[-1][1]))
    elif len(ranges) >= RANGES_PER_FILE:
        ranges[-1] = (ranges[-1][0], end)
        current.coarsened = True
    else:
        ranges.append((start, end))


def _keep(kept: FileLines, kind: str, number: int, raw: bytes) -> None:
    if len(kept.lines) >= KEPT_LINES_PER_FILE:
        kept.truncated = True
        return
    text = raw[1:_KEEP_BYTES].decode("utf-8", errors="replace").rstrip("\r\n")
    kept.lines.append(DiffLine(kind, number, text[:KEPT_LINE_CHARS]))


# -- untracked files --------------------------------------------------------------------------


def _add_untracked(project: Project, files: list[ChangedFile], kept: dict[str, FileLines], *, keep_lines: bool) -> None:
    args = ["--literal-pathspecs", "ls-files", "--others", "--exclude-standard", "-z"]
    if project.git_prefix:
        args += ["--", project.git_prefix]
    out = project.git(*args, timeout=DIFF_TIMEOUT_S)
    to_project = _path_mapper(project)
    for git_path in out.split("\0"):
        if not git_path:
            continue
        path = to_project(git_path.rstrip("/"))
        if path is None:
            continue
        full = project.git_root / git_path
        if git_path.endswith("/"):
            # A nested repository that was never added as a submodule.
            files.append(ChangedFile(path=path, status="submodule"))
            continue
        lines, binary, sample = _count_file(full, keep_lines=keep_lines)
        ranges = [LineRange(start=1, end=lines)] if lines and not binary else []
        files.append(
            ChangedFile(path=path, status="untracked", added=0 if binary else lines, binary=binary, ranges=ranges)
        )
        if keep_lines and not binary:
            kept[path] = sample


def _count_file(path: Path, *, keep_lines: bool) -> tuple[int, bool, FileLines]:
    """(line count, is binary, the first lines) of a file, read in chunks."""
    sample = FileLines()
    if path.is_symlink() or not path.is_file():
        return (1 if path.is_symlink() else 0), False, sample
    count = 0
    last = b"\n"
    pending = b""
    number = 1
    try:
        with path.open("rb") as handle:
            first = True
            while chunk := handle.read(READ_PIECE):
                if first and b"\0" in chunk[:BINARY_SNIFF]:
                    return 0, True, sample
                first = False
                count += chunk.count(b"\n")
                last = chunk[-1:]
                if keep_lines and not sample.truncated:
                    pending += chunk
                    parts = pending.split(b"\n")
                    pending = parts.pop()[: KEPT_LINE_CHARS * 4]
                    for part in parts:
                        _keep(sample, "+", number, b"+" + part)
                        number += 1
                        if sample.truncated:
                            break
    except OSError:
        return 0, False, sample
    if last != b"\n":
        count += 1
        if keep_lines and pending and not sample.truncated:
            _keep(sample, "+", number, b"+" + pending)
    return count, False, sample
