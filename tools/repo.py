"""The project root, path confinement, the `.itest/` state folder and small git questions.

The project root is the `--repo` folder. It may sit inside a larger git repository
(a Go module in a monorepo, `examples/demo` in this one): phases, config and
`.itest/` live at the project root, git runs against the enclosing repository,
and paths are reported relative to the project root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .errors import GitError, NotAGitRepositoryError, PathOutsideRepoError, RepoError, UnsafeArgumentError
from .process import run_capture

STATE_DIR_NAME = ".itest"


def ensure_not_option(what: str, value: str) -> str:
    """Refuse a value that a command line would read as a flag (mcp-server-git's rule)."""
    if value.startswith("-"):
        raise UnsafeArgumentError(what, value)
    return value


def find_git_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding `.git` (a folder, or a file for worktrees/submodules)."""
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


@dataclass(frozen=True)
class Project:
    """A target repository: where phases run and where state is kept."""

    root: Path
    git_root: Path

    @property
    def git_prefix(self) -> str:
        """The project root relative to the git root ("" when they are the same), POSIX style."""
        rel = self.root.relative_to(self.git_root)
        return "" if str(rel) == "." else rel.as_posix()

    # -- paths -------------------------------------------------------------------------

    def resolve_path(self, value: str, *, what: str = "path", must_exist: bool = False) -> Path:
        """Resolve a caller-given path inside the project root; refuse `../`, outside absolutes and escaping links."""
        if not value:
            raise PathOutsideRepoError(value, str(self.root), "empty path")
        if "\x00" in value:
            raise PathOutsideRepoError(value, str(self.root), "contains a NUL byte")
        ensure_not_option(what, value)
        raw = Path(value)
        candidate = raw if raw.is_absolute() else self.root / raw
        resolved = candidate.resolve(strict=False)
        if not _is_within(resolved, self.root):
            if raw.is_absolute():
                reason = "absolute path outside the project"
            elif _is_within(Path(os.path.normpath(candidate)), self.root):
                reason = "a symbolic link on the way points outside the project"
            else:
                reason = "'..' leads outside the project"
            raise PathOutsideRepoError(value, str(self.root), reason)
        if must_exist and not resolved.exists():
            from .errors import NotFoundError

            raise NotFoundError(f"{what} {value!r} does not exist under {self.root}")
        return resolved

    def rel(self, path: Path | str) -> str:
        """`path` relative to the project root (POSIX), or unchanged when it lies elsewhere."""
        p = Path(path)
        try:
            return p.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return p.as_posix()

    def git_path_to_project(self, git_relative: str) -> str | None:
        """A git-root-relative path as a project-relative one, or None when it lies outside the project."""
        prefix = self.git_prefix
        if not prefix:
            return git_relative
        if git_relative == prefix:
            return "."
        if git_relative.startswith(prefix + "/"):
            return git_relative[len(prefix) + 1 :]
        return None

    # -- state --------------------------------------------------------------------------

    @cached_property
    def state_dir(self) -> Path:
        """`.itest/` under the project root, created on first use and ignored by git."""
        path = _state_folder(self.root / STATE_DIR_NAME, STATE_DIR_NAME)
        ignore = path / ".gitignore"
        if not ignore.exists():
            # '*' ignores the folder's whole content, this file included, so the
            # user's `git status` never shows our state.
            ignore.write_text("# created by itest-mcp: run state, never committed\n*\n", encoding="utf-8")
        return path

    def state_subdir(self, name: str) -> Path:
        """`.itest/<name>/`, created on demand; RepoError when something else is in its place."""
        return _state_folder(self.state_dir / name, f"{STATE_DIR_NAME}/{name}")

    @property
    def runs_dir(self) -> Path:
        return self.state_subdir("runs")

    @property
    def reports_dir(self) -> Path:
        return self.state_subdir("reports")

    # -- git -------------------------------------------------------------------------------

    def git(self, *args: str, timeout: float = 60.0, check: bool = True) -> str:
        """Run git in the enclosing repository and return stdout; a failure raises GitError with git's words."""
        result = run_capture(["git", *args], cwd=self.git_root, timeout=timeout)
        if check and result.returncode != 0:
            detail = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
            raise GitError(f"git {' '.join(args)} failed in {self.git_root}: {detail}")
        return result.stdout

    def head_commit(self) -> str | None:
        """The full sha of HEAD, or None in a repository without commits."""
        result = run_capture(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=self.git_root, timeout=30)
        sha = result.stdout.strip()
        return sha if result.returncode == 0 and sha else None

    def is_dirty(self) -> bool:
        """Whether the project folder has uncommitted changes (untracked files included, `.itest/` never)."""
        out = self.git("status", "--porcelain", "--untracked-files=normal", "--", self.git_prefix or ".")
        return any(line.strip() for line in out.splitlines())


def _state_folder(path: Path, shown: str) -> Path:
    """Create a state folder; a file (or anything else) in its place is named with what to do, not a traceback."""
    try:
        path.mkdir(exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise RepoError(
            f"{shown} in {path.parent} is a file, not the folder itest-mcp keeps its state in; "
            f"move it aside (e.g. `mv {shown} {shown}.bak`) and run again"
        ) from exc
    except OSError as exc:
        raise RepoError(
            f"{shown} cannot be created in {path.parent} ({exc.strerror or exc}); check that the folder is writable"
        ) from exc
    return path


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def open_project(path: str | os.PathLike[str]) -> Project:
    """Open the project at `path` (a folder inside a git work tree)."""
    raw = Path(path).expanduser()
    if not raw.exists():
        raise RepoError(f"--repo {str(path)!r} does not exist; pass the folder of the repository to test")
    if not raw.is_dir():
        raise RepoError(f"--repo {str(path)!r} is a file, not a folder; pass the folder of the repository to test")
    root = raw.resolve()
    git_root = find_git_root(root)
    if git_root is None:
        raise NotAGitRepositoryError(
            f"{root} is not inside a git repository; run 'git init' there or pass --repo with a folder of one"
        )
    return Project(root=root, git_root=git_root)
